"""What the benchmarks ran on: the machine (CPU, memory, GPUs, versions, backends) and a device.

The one description every benchmark result carries: ``fastgeo bench``, ``bench/gpu_bench.py``,
the pytest-benchmark JSON of ``bench/`` (its conftest) and the ``bench/`` scripts.
"""
from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return cpu


def describe_machine() -> dict:
    """CPU, cores, memory, GPUs, Numba threads, Python, system, and fastgeo's versions and
    backends (``fastgeo.info()``)."""
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        mem_gib = None
    import fastgeo

    facts = fastgeo.info()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "memory_gib": mem_gib, "gpus": facts["gpus"],
            "numba_threads": facts["numba_threads"], "python": platform.python_version(),
            "system": platform.platform(), "fastgeo": facts["fastgeo"],
            "versions": {k: v for k, v in facts["versions"].items() if v}, "backends": facts["backends"]}


def describe_device(name) -> dict:
    """What runs the benchmarks of device ``name``: the CPU model, or the GPU (name, compute
    capability, memory) and the library holding its arrays; an unavailable GPU says why."""
    if name == "cpu":
        return {"kind": "cpu", "description": cpu_model()}
    from .. import backends

    reason = backends.availability()["cuda"]
    if reason is not None:
        return {"kind": "cuda", "available": False, "description": f"no CUDA backend: {reason}"}
    from numba import cuda

    dev = cuda.get_current_device()
    free, total = cuda.current_context().get_memory_info()
    name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    return {"kind": "cuda", "available": True, "description": name,
            "compute_capability": list(dev.compute_capability), "memory_gib": round(total / 2**30, 1),
            "multiprocessors": dev.MULTIPROCESSOR_COUNT}
