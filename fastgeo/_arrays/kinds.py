"""Array kinds: which library an array belongs to, where it lives, and the registry of libraries.

An :class:`ArrayLibrary` knows one array type: how to recognise it, the device it lives on,
the array fastgeo computes on (a numpy view for CPU inputs; the array itself, or a detached
tensor, on a GPU), how to hand a result back as that type, and how to allocate and copy
there. :func:`register` adds one; every other module asks this registry, so an array type
is taught to fastgeo here and nowhere else.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass(frozen=True)
class ArrayKind:
    """Where an input lives: its library ("numpy", "torch", "cupy", ...) and device."""

    library: str
    device: str  # "cpu" or "cuda:N"
    torch_device: object = None  # the torch.device, for torch inputs

    @property
    def is_cuda(self) -> bool:
        return self.device != "cpu"

    @property
    def lib(self) -> "ArrayLibrary":
        return library_named(self.library)

    def wrap(self, arr):
        """Hand a computed array back as this kind (zero-copy where possible)."""
        return self.lib.wrap(arr, self)

    def describe(self) -> str:
        return f"{self.library} on {self.device}"


def check_float_dtype(dtype, name: str = "z") -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dtype}")
    return dtype


class ArrayLibrary:
    """One array type. Subclasses set ``name`` and override what differs from numpy's.

    The arrays fastgeo computes on (``compute_view``'s results) are numpy arrays on the CPU,
    and torch tensors or CuPy arrays on a GPU; only those three libraries need ``xp``, the
    module whose numpy-like functions apply to them.
    """

    name = "numpy"
    xp = np

    def owns(self, x) -> bool:
        """Whether x is this library's array (without importing the library)."""
        return isinstance(x, (np.ndarray, np.generic))

    def kind(self, x) -> ArrayKind:
        return ArrayKind(self.name, "cpu")

    def compute_view(self, x, kind: ArrayKind, name: str):
        """The array to compute on, sharing memory with x; float32 or float64 only."""
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
            if x.dtype.kind in "iub":
                x = x.astype(np.float64)
        check_float_dtype(x.dtype, name)
        return x

    def wrap(self, arr, kind: ArrayKind):
        """A computed array (numpy on the CPU) as this library's array."""
        return arr

    # -- on compute arrays ---------------------------------------------------------------
    def dtype(self, x) -> np.dtype:
        return np.dtype(x.dtype)

    def astype(self, x, dtype):
        return x.astype(dtype, copy=False)

    def empty(self, kind: ArrayKind, shape, dtype):
        return np.empty(tuple(shape), dtype=np.dtype(dtype))

    def zeros(self, kind: ArrayKind, shape, dtype):
        return np.zeros(tuple(shape), dtype=np.dtype(dtype))

    def reduce(self, x, name: str, axis):
        """x.sum / x.max / x.all along ``axis`` (name is "sum", "max" or "all")."""
        return getattr(x, name)(axis=axis)

    def expand_dims(self, x, axis):
        return self.xp.expand_dims(x, axis)

    def swap_last(self, x):
        return x.swapaxes(-1, -2)

    def contiguous(self, x, dtype=None):
        return self.xp.ascontiguousarray(x, dtype=dtype)

    def argwhere(self, mask):
        return self.xp.argwhere(mask)

    def to_host(self, x) -> np.ndarray:
        return np.asarray(x)

    def copy_into(self, out, x):
        """out[...] = x, in place (both of this library, on one device); returns out."""
        self.xp.copyto(out, x)
        return out

    def synchronize(self, kind: ArrayKind) -> None:
        """Wait for the work queued on ``kind``'s device (for timing; nothing on the CPU)."""

    # -- devices ---------------------------------------------------------------------------
    def device_index(self, kind: ArrayKind):
        """The CUDA device ordinal of ``kind`` (None where the library does not say)."""
        return int(kind.device.split(":")[1]) if kind.is_cuda else None

    def to_device(self, host: np.ndarray, kind: ArrayKind):
        """A copy of a host array where ``kind`` lives."""
        return host

    def free_bytes(self, kind: ArrayKind) -> int | None:
        """Device memory this library can still hand out (None: unknown, or the host's)."""
        return None

    def stream_handle(self, x) -> int:
        """The caller's current CUDA stream for x (0: the legacy default stream)."""
        return 0

    def numba_view(self, x):
        """A zero-copy Numba CUDA view of a device array x; sync=False: ordering comes from
        launching on the caller's current stream."""
        from numba import cuda

        return cuda.as_cuda_array(x, sync=False)


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
        # a writable copy: torch warns about read-only numpy arrays
        return self.xp.as_tensor(np.array(host), device=kind.torch_device)

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
        module = numba_cuda.devicearray  # the simulator's under NUMBA_ENABLE_CUDASIM=1
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


# -- the registry ------------------------------------------------------------------------------

_NUMPY = ArrayLibrary()
_LIBRARIES: list[ArrayLibrary] = [TorchLibrary(), CupyLibrary(), NumbaLibrary()]


def register(library: ArrayLibrary) -> ArrayLibrary:
    """Teach fastgeo an array type; it is asked before the built-in ones. Returns it."""
    if any(lib.name == library.name for lib in _LIBRARIES):
        raise ValueError(f"an array library called {library.name!r} is already registered")
    _LIBRARIES.insert(0, library)
    return library


def unregister(name: str) -> None:
    _LIBRARIES[:] = [lib for lib in _LIBRARIES if lib.name != name]


def library_of(x) -> ArrayLibrary:
    """The registered library of x; numpy for anything else (lists, scalars, numpy arrays)."""
    if type(x) is np.ndarray:  # the common case, and no registered library can own it
        return _NUMPY
    for lib in _LIBRARIES:
        if lib.owns(x):
            return lib
    return _NUMPY


def library_named(name: str) -> ArrayLibrary:
    if name == _NUMPY.name:
        return _NUMPY
    for lib in _LIBRARIES:
        if lib.name == name:
            return lib
    raise KeyError(f"no array library called {name!r} is registered")


def kind_of(x) -> ArrayKind:
    return library_of(x).kind(x)


def is_torch(x) -> bool:
    return library_of(x).name == "torch"


def common_kind(*arrays, names=None) -> ArrayKind:
    """The one ArrayKind shared by all arguments; raise if libraries or devices differ."""
    kinds = [kind_of(a) for a in arrays]
    names = names or [f"argument {i}" for i in range(len(arrays))]
    first = kinds[0]
    for k, name in zip(kinds[1:], names[1:]):
        if k.library != first.library:
            raise TypeError(
                f"{names[0]} is a {first.library} array but {name} is a {k.library} array; "
                "pass arrays from one library"
            )
        if k.device != first.device:
            raise ValueError(
                f"{names[0]} is on {first.device} but {name} is on {k.device}; "
                "move them to one device first (fastgeo never moves data between devices)"
            )
    return first


def as_array(x, name: str = "z"):
    """(an array sharing memory with x to compute on, x's ArrayKind): a numpy array for CPU
    inputs; a CuPy array or a (detached) torch CUDA tensor for GPU inputs.

    torch tensors are detached (autograd is handled by the caller); lists become float64
    numpy arrays. Only float32 and float64 are accepted.
    """
    lib = library_of(x)
    kind = lib.kind(x)
    return lib.compute_view(x, kind, name), kind
