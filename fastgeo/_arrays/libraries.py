"""The array libraries besides numpy: torch tensors (CPU and CUDA), CuPy arrays, and Numba
CUDA device arrays. Each overrides what differs from numpy's :class:`~.kinds.ArrayLibrary`;
:mod:`fastgeo._arrays` registers them."""
from __future__ import annotations

import sys

import numpy as np

from .kinds import ArrayKind, ArrayLibrary, check_float_dtype


class TorchLibrary(ArrayLibrary):
    name = "torch"

    @property
    def xp(self):
        return sys.modules["torch"]

    def owns(self, x) -> bool:
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(x, torch.Tensor)

    def kind(self, x) -> ArrayKind:
        dev = x.device
        name = "cpu" if dev.type == "cpu" else f"{dev.type}:{dev.index or 0}"
        return ArrayKind(self.name, name, dev)

    def compute_view(self, x, kind, name):
        torch = self.xp
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{name} must be float32 or float64, got {x.dtype} (convert it with "
                            f".float() or .double())")
        t = x.detach()
        if t.is_conj() or t.is_neg():
            t = t.resolve_conj().resolve_neg()
        # on a GPU it stays a tensor: the work runs with torch on torch's current stream
        return t if kind.is_cuda else t.numpy()

    def wrap(self, arr, kind):
        torch = self.xp
        if isinstance(arr, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(arr) if arr.ndim == 0 else arr)
        return torch.as_tensor(arr, device=kind.torch_device)

    def dtype(self, x):
        return np.dtype(str(x.dtype).removeprefix("torch."))

    def torch_dtype(self, dtype):
        torch = self.xp
        return dtype if isinstance(dtype, torch.dtype) else getattr(torch, np.dtype(dtype).name)

    def astype(self, x, dtype):
        return x.to(self.torch_dtype(dtype))

    def empty(self, kind, shape, dtype):
        return self.xp.empty(tuple(shape), dtype=self.torch_dtype(dtype), device=kind.torch_device)

    def zeros(self, kind, shape, dtype):
        return self.xp.zeros(tuple(shape), dtype=self.torch_dtype(dtype), device=kind.torch_device)

    def reduce(self, x, name, axis):
        return getattr(x, {"sum": "sum", "max": "amax", "all": "all"}[name])(dim=axis)

    def expand_dims(self, x, axis):
        return x.unsqueeze(axis)

    def swap_last(self, x):
        return x.transpose(-1, -2)

    def contiguous(self, x, dtype=None):
        return (x if dtype is None else x.to(self.torch_dtype(dtype))).contiguous()

    def argwhere(self, mask):
        return mask.nonzero()

    def to_host(self, x):
        return x.detach().cpu().numpy()

    def copy_into(self, out, x):
        return out.copy_(x)

    def synchronize(self, kind):
        if kind.is_cuda:
            self.xp.cuda.synchronize(kind.torch_device)

    def to_device(self, host, kind):
        # torch warns about read-only numpy arrays: those are copied first
        return self.xp.as_tensor(host if host.flags.writeable else np.array(host), device=kind.torch_device)

    def device_index(self, kind):
        return kind.torch_device.index if kind.is_cuda else None

    def free_bytes(self, kind):
        if not kind.is_cuda:
            return None
        torch, idx = self.xp, self.device_index(kind)
        free, _ = torch.cuda.mem_get_info(idx)
        return int(free + torch.cuda.memory_reserved(idx) - torch.cuda.memory_allocated(idx))

    def stream_handle(self, x):
        return self.xp.cuda.current_stream(x.device).cuda_stream

    def numba_view(self, x):
        return super().numba_view(x.detach())


class CupyLibrary(ArrayLibrary):
    name = "cupy"

    @property
    def xp(self):
        return sys.modules["cupy"]

    def owns(self, x) -> bool:
        cupy = sys.modules.get("cupy")
        return cupy is not None and isinstance(x, cupy.ndarray)

    def kind(self, x):
        return ArrayKind(self.name, f"cuda:{x.device.id}")

    def compute_view(self, x, kind, name):
        check_float_dtype(x.dtype, name)
        return x

    def empty(self, kind, shape, dtype):
        cupy = self.xp
        with cupy.cuda.Device(self.device_index(kind)):
            return cupy.empty(tuple(shape), dtype=np.dtype(dtype))

    def zeros(self, kind, shape, dtype):
        cupy = self.xp
        with cupy.cuda.Device(self.device_index(kind)):
            return cupy.zeros(tuple(shape), dtype=np.dtype(dtype))

    def to_host(self, x):
        with self.xp.cuda.Device(x.device.id):
            return x.get()

    def synchronize(self, kind):
        self.xp.cuda.get_current_stream(self.device_index(kind)).synchronize()

    def to_device(self, host, kind):
        cupy = self.xp
        with cupy.cuda.Device(self.device_index(kind)):
            return cupy.asarray(host)

    def free_bytes(self, kind):
        cupy = self.xp
        with cupy.cuda.Device(self.device_index(kind)):
            free, _ = cupy.cuda.runtime.memGetInfo()
            return int(free + cupy.get_default_memory_pool().free_bytes())

    def stream_handle(self, x):
        return self.xp.cuda.get_current_stream(x.device.id).ptr


class NumbaLibrary(ArrayLibrary):
    """Numba CUDA device arrays (and, under NUMBA_ENABLE_CUDASIM=1, the simulator's): the
    CUDA backend's kernels accept them (that is how they are tested without a GPU); the
    public functions do not, as fastgeo has no array operations on them."""

    name = "numba"
    xp = None

    def owns(self, x) -> bool:
        numba_cuda = sys.modules.get("numba.cuda")
        if numba_cuda is None:
            return False
        module = getattr(numba_cuda, "devicearray", None)  # the simulator's under NUMBA_ENABLE_CUDASIM=1
        types = tuple(filter(None, (getattr(module, "DeviceNDArray", None), getattr(module, "FakeCUDAArray", None))))
        return isinstance(x, types)

    def kind(self, x):
        return ArrayKind(self.name, "cuda:0")

    def compute_view(self, x, kind, name):
        raise TypeError(f"{name} is a Numba device array; pass a torch tensor or a CuPy array "
                        "(torch.as_tensor(x, device='cuda') or cupy.asarray(x) wrap it without a copy)")

    def empty(self, kind, shape, dtype):
        from numba import cuda

        return cuda.device_array(tuple(shape), dtype=np.dtype(dtype))

    def zeros(self, kind, shape, dtype):
        return self.to_device(np.zeros(tuple(shape), dtype=np.dtype(dtype)), kind)

    def to_host(self, x):
        return x.copy_to_host()

    def to_device(self, host, kind):
        from numba import cuda

        return cuda.to_device(np.ascontiguousarray(host))

    def device_index(self, kind):
        return None  # Numba's current device

    def numba_view(self, x):
        return x
