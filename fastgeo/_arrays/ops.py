"""Array operations on the arrays fastgeo computes on, in their own library and device.

numpy on the CPU; torch tensors or CuPy arrays on a GPU (see :mod:`.kinds`): the work stays
on the caller's device and stream. numpy keeps the exact expressions it always had. Each
function asks the registry which library x belongs to; none names a library itself.
"""
from __future__ import annotations

import numpy as np

from .kinds import _NUMPY, ArrayKind, library_of

#: the error of a log realism index that no path energy accepts (fastgeo.path, the backends)
LOG_RI_ERROR = ("log_ri contains NaN or +inf (first at index {index}: {value}); log ri is at most 0, "
                "and -inf where the density is zero")


def namespace(x):
    """numpy, cupy or torch: the module whose numpy-like functions operate on x (their shared
    subset -- concatenate, where, isfinite, isnan, isposinf, isneginf, logaddexp, asarray)."""
    return library_of(x).xp


def numpy_dtype(x) -> np.dtype:
    """x's dtype as a numpy dtype (torch tensors included)."""
    return library_of(x).dtype(x)


def astype(x, dtype):
    """x converted to ``dtype`` (a numpy or torch dtype); x itself when it already is."""
    return library_of(x).astype(x, dtype)


def matmul(a, b):
    """a @ b; torch does not promote mixed float dtypes in matmul, so cast a to b's dtype."""
    if a.dtype != b.dtype and library_of(a).name == "torch":
        a = a.to(b.dtype)
    return a @ b


def add_scalar(x, value: float):
    """x + value in x's dtype (a Python float does not promote torch or CuPy arrays)."""
    if isinstance(x, np.ndarray):
        return x + x.dtype.type(value)
    return x + float(value)


def empty(kind: ArrayKind, shape, dtype):
    """An uninitialised array of ``shape`` and ``dtype`` where ``kind`` computes (numpy on the CPU)."""
    lib = kind.lib if kind.is_cuda else _NUMPY
    return lib.empty(kind, shape, dtype)


def zeros_like(x):
    return namespace(x).zeros_like(x)


def isnan(x):
    return namespace(x).isnan(x)


def isfinite(x):
    return namespace(x).isfinite(x)


def exp(x):
    return namespace(x).exp(x)


def log(x):
    return namespace(x).log(x)


def where(cond, a, b):
    """a where cond, else b (either may be a Python scalar)."""
    return namespace(cond).where(cond, a, b)


def total(x, axis):
    """The sum of x along ``axis``."""
    return library_of(x).reduce(x, "sum", axis)


def largest(x, axis):
    """The maximum of x along ``axis``."""
    return library_of(x).reduce(x, "max", axis)


def every(x, axis=None):
    """True where every entry of the boolean x along ``axis`` (None: all of x) is."""
    return x.all() if axis is None else library_of(x).reduce(x, "all", axis)


def swap_last(x):
    """x with its last two axes exchanged (a view)."""
    return library_of(x).swap_last(x)


def log_sum_exp(x, axis):
    """log sum exp(x) along ``axis`` without overflow; -inf where every entry is -inf."""
    top = largest(x, axis)
    shift = where(isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):  # log(0) = -inf is the answer there
        return log(total(exp(x - library_of(x).expand_dims(shift, axis)), axis)) + shift


def contiguous(x):
    """x as a C-contiguous array of its own library, dtype and device (x itself if it is)."""
    return library_of(x).contiguous(x)


def contiguous_float64(x):
    """x as a C-contiguous float64 array of its own library and device (x itself if it is)."""
    return library_of(x).contiguous(x, np.float64)


def to_host(x) -> np.ndarray:
    """A numpy copy of x (x itself for numpy): for messages and tests, never on a hot path."""
    return library_of(x).to_host(x)


# -- checks ----------------------------------------------------------------------------------

def first_true(mask, x):
    """(index, value of x there) of the first True entry of ``mask``, or None (one sync)."""
    found = library_of(mask).argwhere(mask)
    if found.shape[0] == 0:
        return None
    idx = tuple(int(i) for i in found[0].tolist())
    return idx, float(x[idx])


def first_nonfinite(x):
    """(index, value) of the first NaN or inf in x, or None."""
    return first_true(~isfinite(x), x)


def nonfinite_message(name: str, index, value) -> str:
    """The one message for an array ``name`` whose first NaN or inf is ``value`` at ``index``
    (check_finite here; the evaluator and the CUDA backend, which find the entry themselves)."""
    return f"{name} contains NaN or inf (first at index {index}: {value})"


def check_finite(x, name: str = "z"):
    """Raise ValueError naming the first NaN or inf of x (any library; syncs on a GPU)."""
    finite = isfinite(x)
    if bool(every(finite)):
        return
    found = first_true(~finite, x)
    raise ValueError(nonfinite_message(name, *found))


def check_not_nan(x, name: str = "x"):
    """Raise ValueError naming the first NaN entry of x (infinities are allowed)."""
    nan = isnan(x)
    if bool(nan.any()):
        raise ValueError(f"{name} contains NaN (first at index {first_true(nan, x)[0]})")


def check_last_dim(z, dim: int, name: str = "z"):
    if z.ndim == 0 or z.shape[-1] != dim:
        raise ValueError(
            f"{name} must have shape (..., {dim}) for this {dim}-dimensional prior, "
            f"got shape {tuple(z.shape)}"
        )
