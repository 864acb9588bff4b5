"""``fastgeo.info()``: versions, backends and devices of this machine."""
from __future__ import annotations

import os
import platform

from . import __version__, backends
from ._config import ENV_VAR, requested_backend


# distribution names; the first one installed is reported (CuPy ships per CUDA version)
_PACKAGES = {"numpy": ("numpy",), "scipy": ("scipy",), "numba": ("numba",), "torch": ("torch",),
             "numba-cuda": ("numba-cuda",), "cupy": ("cupy-cuda13x", "cupy-cuda12x", "cupy")}


def _version(names):
    """The installed version, read from package metadata: nothing is imported."""
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _text(name):
    return name.decode() if isinstance(name, bytes) else str(name)


class Info(dict):
    """A dict of facts that prints as a readable report."""

    def __str__(self):
        lines = [f"fastgeo {self['fastgeo']} on Python {self['python']} ({self['machine']})"]
        lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in self["versions"].items() if v))
        lines.append("backends:")
        for name, reason in self["backends"].items():
            lines.append(f"  {name:<10} {'available' if reason is None else 'unavailable: ' + reason}")
        lines.append(f"auto picks: {self['auto']['cpu']} for CPU arrays, {self['auto']['cuda']} for GPU arrays")
        lines.append(f"backend in force: {self['backend_setting']} ({ENV_VAR}={self['env'] or 'unset'})")
        lines.append(f"numba threads: {self['numba_threads']}")
        lines.append("GPUs: " + (", ".join(self["gpus"]) if self["gpus"] else "none found"))
        return "\n".join(lines)


def info() -> Info:
    """Which backends exist here, which one "auto" picks, and the versions that matter."""
    avail = backends.availability()
    gpus = []
    try:
        import torch

        if torch.cuda.is_available():
            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:
        pass
    if not gpus and avail.get("cuda") is None:  # a GPU that torch (a CPU build?) does not see
        try:
            from numba import cuda

            gpus = [_text(d.name) for d in cuda.list_devices()]
        except Exception:
            pass
    try:
        import numba

        threads = numba.get_num_threads()
    except Exception:
        threads = None
    return Info(
        fastgeo=__version__,
        python=platform.python_version(),
        machine=f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        versions={name: _version(dists) for name, dists in _PACKAGES.items()},
        backends=avail,
        auto={"cpu": backends.auto_choice("cpu"),
              "cuda": backends.auto_choice("cuda") if avail.get("cuda") is None else "none (cuda unavailable)"},
        backend_setting=requested_backend("auto"),
        env=os.environ.get(ENV_VAR),
        numba_threads=threads,
        gpus=gpus,
    )
