"""Array-type bookkeeping: what came in, how to compute on it, how to hand it back.

fastgeo accepts numpy arrays, torch tensors and CuPy arrays. Every public function
normalises its inputs with :func:`as_array`, computes on a numpy (or, on the GPU, a CuPy)
view of the same memory, and returns results through :meth:`ArrayKind.wrap`, so that
numpy comes back as numpy, a torch tensor as a torch tensor of the same dtype on the same
device. Nothing here copies data between devices: mixing devices is an error.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _torch():
    return sys.modules.get("torch")


def _cupy():
    return sys.modules.get("cupy")


def is_torch(x) -> bool:
    torch = _torch()
    return torch is not None and isinstance(x, torch.Tensor)


def is_cupy(x) -> bool:
    cupy = _cupy()
    return cupy is not None and isinstance(x, cupy.ndarray)


@dataclass(frozen=True)
class ArrayKind:
    """Where an input lives: its library ("numpy", "torch", "cupy") and device."""

    library: str
    device: str  # "cpu" or "cuda:N"
    torch_device: object = None  # the torch.device, for torch inputs

    @property
    def is_cuda(self) -> bool:
        return self.device != "cpu"

    def wrap(self, arr):
        """Hand a computed numpy/CuPy array back as this kind (zero-copy where possible)."""
        if self.library == "numpy":
            return arr
        if self.library == "torch":
            torch = _torch()
            if isinstance(arr, np.ndarray):
                return torch.from_numpy(np.ascontiguousarray(arr) if arr.ndim == 0 else arr)
            return torch.as_tensor(arr, device=self.torch_device)
        return arr  # cupy

    def describe(self) -> str:
        return f"{self.library} on {self.device}"


def kind_of(x) -> ArrayKind:
    if is_torch(x):
        dev = x.device
        name = "cpu" if dev.type == "cpu" else f"{dev.type}:{dev.index or 0}"
        return ArrayKind("torch", name, dev)
    if is_cupy(x):
        return ArrayKind("cupy", f"cuda:{x.device.id}")
    return ArrayKind("numpy", "cpu")


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


def check_float_dtype(dtype, name: str = "z") -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dtype}")
    return dtype


def as_array(x, name: str = "z"):
    """An array sharing memory with x, and x's ArrayKind: a numpy array for CPU inputs;
    a CuPy array or a (detached) torch CUDA tensor for GPU inputs.

    torch tensors are detached (autograd is handled by the caller); lists become float64
    numpy arrays. Only float32 and float64 are accepted.
    """
    kind = kind_of(x)
    if kind.library == "torch":
        torch = _torch()
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{name} must be float32 or float64, got {x.dtype} (convert it with "
                            f".float() or .double())")
        t = x.detach()
        if t.is_conj() or t.is_neg():
            t = t.resolve_conj().resolve_neg()
        if kind.is_cuda:
            # Stays a tensor: the GPU path computes with torch on torch's current stream.
            return t, kind
        return t.numpy(), kind
    if kind.library == "cupy":
        check_float_dtype(x.dtype, name)
        return x, kind
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
        if x.dtype.kind in "iub":
            x = x.astype(np.float64)
    check_float_dtype(x.dtype, name)
    return x, kind


def check_last_dim(z, dim: int, name: str = "z"):
    if z.ndim == 0 or z.shape[-1] != dim:
        raise ValueError(
            f"{name} must have shape (..., {dim}) for this {dim}-dimensional prior, "
            f"got shape {tuple(z.shape)}"
        )


def check_finite(x, name: str = "z"):
    """Raise ValueError naming the first non-finite entry of a numpy array."""
    finite = np.isfinite(x)
    if not finite.all():
        idx = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"{name} contains NaN or inf (first at index {idx}: {x[idx]})")


#: the error of a log realism index that no path energy accepts (fastgeo.path, the backends)
LOG_RI_ERROR = ("log_ri contains NaN or +inf (first at index {index}: {value}); log ri is at most 0, "
                "and -inf where the density is zero")


def check_not_nan(x, name: str = "x"):
    """Raise ValueError naming the first NaN entry of a numpy array (infinities are allowed)."""
    nan = np.isnan(x)
    if nan.any():
        idx = tuple(int(i) for i in np.argwhere(nan)[0])
        raise ValueError(f"{name} contains NaN (first at index {idx})")
