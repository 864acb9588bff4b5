"""Array kinds: which library an array belongs to, where it lives, and the registry of libraries.

An :class:`ArrayLibrary` (numpy's is the base class; torch's, CuPy's and Numba's are in
:mod:`.libraries`) knows one array type: how to recognise it, the device it lives on,
the array fastgeo computes on (a numpy view for CPU inputs; the array itself, or a detached
tensor, on a GPU), how to hand a result back as that type, and how to allocate and copy
there. :func:`register` adds one; every other module asks this registry, so an array type
is taught to fastgeo here and nowhere else.
"""
from __future__ import annotations

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


# -- the registry ------------------------------------------------------------------------------

_NUMPY = ArrayLibrary()
#: asked in order; numpy (the fallback) is not in it. fastgeo._arrays registers torch, CuPy
#: and Numba device arrays (.libraries) when it is imported.
_LIBRARIES: list[ArrayLibrary] = []


def register(library: ArrayLibrary, first: bool = True) -> ArrayLibrary:
    """Teach fastgeo an array type: asked before the ones registered earlier (after them with
    ``first=False``). Returns it."""
    if any(lib.name == library.name for lib in _LIBRARIES) or library.name == _NUMPY.name:
        raise ValueError(f"an array library called {library.name!r} is already registered")
    _LIBRARIES.insert(0 if first else len(_LIBRARIES), library)
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
