"""Backends: the same operations computed by different engines.

- ``reference``: float64 numpy/scipy, written for clarity; the ground truth in tests.
- ``cpu``: Numba kernels from :mod:`fastgeo.kernels`, parallel over the batch.
- ``cuda``: GPU kernels, when a GPU and the GPU extras are present.

:func:`select` turns a backend request and the input's :class:`~fastgeo._arrays.ArrayKind`
into a backend object; the public functions never name a backend class themselves, so a new
backend slots in here without touching them.
"""
from __future__ import annotations

import importlib

from .._config import requested_backend
from .base import Backend, BackendUnavailable

_MODULES = {"reference": "reference", "cpu": "cpu", "cuda": "cuda"}
_instances: dict[str, Backend] = {}


def get(name: str) -> Backend:
    """The backend called ``name``; raise BackendUnavailable saying what to install."""
    if name not in _instances:
        module = importlib.import_module(f".{_MODULES[name]}", __name__)
        reason = module.unavailable_reason()
        if reason:
            raise BackendUnavailable(f"backend {name!r} is not available: {reason}")
        _instances[name] = module.make()
    return _instances[name]


def availability() -> dict[str, str | None]:
    """For each backend, None if it can run here, else why not."""
    out = {}
    for name, mod in _MODULES.items():
        try:
            out[name] = importlib.import_module(f".{mod}", __name__).unavailable_reason()
        except Exception as err:  # a broken optional install must not break info()
            out[name] = f"{type(err).__name__}: {err}"
    return out


def auto_choice(device: str = "cpu") -> str:
    """The backend "auto" picks for inputs on ``device``.

    CPU inputs never ask about the GPU: CPU-only work does not import numba.cuda.
    """
    if device != "cpu":
        return "cuda"
    cpu_reason = importlib.import_module(f".{_MODULES['cpu']}", __name__).unavailable_reason()
    return "cpu" if cpu_reason is None else "reference"


def select(backend: str, kind) -> Backend:
    """The backend that runs a call on inputs of ``kind``; never moves data between devices."""
    name = requested_backend(backend)
    if kind.is_cuda and not kind.device.startswith("cuda"):
        raise ValueError(f"the input is a {kind.describe()} array; fastgeo runs on CPUs and "
                         "NVIDIA CUDA GPUs only")
    if name == "auto":
        name = auto_choice(kind.device)
    try:
        chosen = get(name)
    except BackendUnavailable as err:
        if kind.is_cuda and name == "cuda":
            raise BackendUnavailable(
                f"the input is a {kind.describe()} array, which needs the 'cuda' backend, and {err}; "
                "or move the input to the CPU (.cpu(), cupy.asnumpy)") from None
        raise
    chosen.check_device(kind)
    return chosen


__all__ = ["Backend", "BackendUnavailable", "availability", "auto_choice", "get", "select"]
