"""Fixtures of the real-GPU tests (each module skips itself, with the reason, when the CUDA
backend is unavailable). Every array the CUDA backend allocates can be poisoned, so an element
a kernel leaves unwritten shows as NaN (floats) or -1 (integer scratch)."""
import pytest

from fastgeo._arrays import CupyLibrary, TorchLibrary


def _poison(dtype):
    import numpy as np

    return float("nan") if np.dtype(dtype).kind == "f" else -1


@pytest.fixture
def poisoned_outputs(monkeypatch):
    """torch and CuPy outputs and scratch start as NaN (or -1 for the int32 work lists)."""
    import numpy as np

    def torch_empty(self, kind, shape, dtype):
        return self.xp.full(tuple(shape), _poison(dtype), dtype=self.torch_dtype(dtype), device=kind.torch_device)

    def cupy_empty(self, kind, shape, dtype):
        with self.xp.cuda.Device(self.device_index(kind)):
            return self.xp.full(tuple(shape), _poison(dtype), dtype=np.dtype(dtype))

    monkeypatch.setattr(TorchLibrary, "empty", torch_empty)
    monkeypatch.setattr(CupyLibrary, "empty", cupy_empty)


@pytest.fixture
def torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here (a CPU build of torch?)")
    return torch


def _stream_handle(stream):
    """The CUstream handle of a Numba stream argument (0: the legacy default stream)."""
    if isinstance(stream, int):
        return stream
    try:
        return int(stream.handle)
    except TypeError:
        return int(stream.handle.value)


@pytest.fixture
def stream_handle():
    return _stream_handle
