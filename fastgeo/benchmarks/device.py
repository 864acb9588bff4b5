"""Where a benchmark's inputs live and how to wait for the work there, through the array
layer (fastgeo._arrays): CPU inputs are numpy arrays, GPU inputs torch CUDA tensors (or CuPy
arrays where torch has no CUDA)."""
from __future__ import annotations

import importlib

from .. import _arrays
from .._arrays import ArrayKind


class Device:
    """Where inputs live and how to wait for work there (CPU: numpy; GPU: torch or CuPy)."""

    def __init__(self, name):
        self.name = name
        self.lib = None
        self.kind = ArrayKind("numpy", "cpu")
        if name == "cuda":
            try:
                import torch

                if torch.cuda.is_available():
                    self.lib = "torch"
                    self.kind = _arrays.kind_of(torch.empty(0, device="cuda"))
            except ImportError:
                pass
            if self.lib is None:
                cupy = importlib.import_module("cupy")  # raises if there is no GPU library at all
                self.lib = "cupy"
                self.kind = _arrays.kind_of(cupy.empty(0))

    def put(self, host):
        """A host numpy array where this device's inputs live (itself on the CPU)."""
        return host if not self.kind.is_cuda else self.kind.lib.to_device(host, self.kind)

    def sync(self):
        self.kind.lib.synchronize(self.kind)

    def copier(self, x):
        """A call copying x into a preallocated array (read + write of x's bytes); it returns
        the copy, so that the copy can be checked like any other benchmarked result."""
        lib = _arrays.library_of(x)
        out = _arrays.empty(self.kind, x.shape, _arrays.numpy_dtype(x))
        return lambda: lib.copy_into(out, x)


def available_devices():
    from .. import backends

    return ["cpu"] + (["cuda"] if backends.availability()["cuda"] is None else [])


def backends_for(device):
    from .. import backends

    avail = backends.availability()
    names = ("cuda",) if device == "cuda" else ("cpu", "reference")
    return [n for n in names if avail[n] is None]
