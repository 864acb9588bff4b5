"""Stand-in array libraries for tests: registered in the array layer (fastgeo._arrays), the
one place that knows array types, they make CPU data pose as GPU data without a GPU."""
from fastgeo._arrays import ArrayKind, kinds
from fastgeo._arrays import NumbaLibrary, TorchLibrary


class TorchPosingAsCuda(TorchLibrary):
    """torch CPU tensors reported as living on cuda:0: the GPU code path runs, with torch
    operations on the CPU (Numba's current device, the legacy default stream)."""

    def kind(self, x):
        return ArrayKind("torch", "cuda:0", x.device)

    def stream_handle(self, x):
        return 0


def use_array_library(monkeypatch, library):
    """Make ``library`` the array layer's library of its name for the rest of the test."""
    others = [lib for lib in kinds._LIBRARIES if lib.name != library.name]
    monkeypatch.setattr(kinds, "_LIBRARIES", [library] + others)
    return library


def poison_numba_outputs(monkeypatch, fill):
    """Every output the CUDA backend allocates for Numba device arrays is pre-filled:
    ``fill(shape, dtype)`` returns the host array to copy to the device."""
    from numba import cuda

    monkeypatch.setattr(NumbaLibrary, "empty", lambda self, kind, shape, dtype: cuda.to_device(fill(shape, dtype)))
