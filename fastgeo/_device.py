"""The few array operations the realism path applies around a backend call, for any library.

The realism path whitens, casts, scales and allocates on the caller's arrays: numpy on the
CPU, and on the GPU torch tensors or CuPy arrays, computed in the input's own library so
that the work stays on the caller's device and stream. numpy keeps the exact expressions it
always had. Prior parameters (host float64 arrays) are copied to a device once and cached
per (library, device) on the object that owns them.
"""
from __future__ import annotations

import os
import sys
import weakref

import numpy as np

from ._arrays import ArrayKind, is_torch


def _torch():
    return sys.modules["torch"]


def numpy_dtype(x) -> np.dtype:
    """x's dtype as a numpy dtype (torch tensors included)."""
    if is_torch(x):
        return np.dtype(str(x.dtype).removeprefix("torch."))
    return np.dtype(x.dtype)


def torch_dtype(dtype):
    torch = _torch()
    return dtype if isinstance(dtype, torch.dtype) else getattr(torch, np.dtype(dtype).name)


def astype(x, dtype):
    """x converted to ``dtype`` (a numpy or torch dtype); x itself when it already is."""
    if is_torch(x):
        return x.to(torch_dtype(dtype))
    return x.astype(dtype, copy=False)


def matmul(a, b):
    """a @ b; torch does not promote mixed float dtypes in matmul, so cast a to b's dtype."""
    if is_torch(a) and a.dtype != b.dtype:
        a = a.to(b.dtype)
    return a @ b


def add_scalar(x, value: float):
    """x + value in x's dtype (a Python float does not promote torch or CuPy arrays)."""
    if isinstance(x, np.ndarray):
        return x + x.dtype.type(value)
    return x + float(value)


def zeros_like(x):
    if is_torch(x):
        return _torch().zeros_like(x)
    if isinstance(x, np.ndarray):
        return np.zeros_like(x)
    import cupy

    return cupy.zeros_like(x)


def empty(kind: ArrayKind, shape, dtype):
    """An uninitialised array of ``shape`` and ``dtype`` where ``kind`` lives."""
    if kind.library == "torch" and kind.is_cuda:
        return _torch().empty(tuple(shape), dtype=torch_dtype(dtype), device=kind.torch_device)
    if kind.library == "cupy":
        import cupy

        with cupy.cuda.Device(device_index(kind)):
            return cupy.empty(tuple(shape), dtype=np.dtype(dtype))
    return np.empty(tuple(shape), dtype=np.dtype(dtype))


def _lib(x):
    """The array library of x: torch, numpy or CuPy (whose functions mirror numpy's)."""
    if is_torch(x):
        return _torch()
    if isinstance(x, (np.ndarray, np.generic)):
        return np
    import cupy

    return cupy


def isnan(x):
    return _lib(x).isnan(x)


def isfinite(x):
    return _lib(x).isfinite(x)


def exp(x):
    return _lib(x).exp(x)


def log(x):
    return _lib(x).log(x)


def where(cond, a, b):
    """a where cond, else b (either may be a Python scalar)."""
    return _lib(cond).where(cond, a, b)


def total(x, axis):
    """The sum of x along ``axis``."""
    return x.sum(dim=axis) if is_torch(x) else x.sum(axis=axis)


def largest(x, axis):
    """The maximum of x along ``axis``."""
    return x.amax(dim=axis) if is_torch(x) else x.max(axis=axis)


def every(x, axis):
    """True where every entry of the boolean x along ``axis`` is."""
    return x.all(dim=axis) if is_torch(x) else x.all(axis=axis)


def swap_last(x):
    """x with its last two axes exchanged (a view)."""
    return x.transpose(-1, -2) if is_torch(x) else x.swapaxes(-1, -2)


def log_sum_exp(x, axis):
    """log sum exp(x) along ``axis`` without overflow; -inf where every entry is -inf."""
    top = largest(x, axis)
    shift = where(isfinite(top), top, 0.0)
    expand = shift.unsqueeze(axis) if is_torch(x) else _lib(x).expand_dims(shift, axis)
    with np.errstate(divide="ignore"):  # log(0) = -inf is the answer there
        return log(total(exp(x - expand), axis)) + shift


def contiguous(x):
    """x as a C-contiguous array of its own library, dtype and device (x itself if it is)."""
    if is_torch(x):
        return x.contiguous()
    return _lib(x).ascontiguousarray(x)


def contiguous_float64(x):
    """x as a C-contiguous float64 array of its own library and device (x itself if it is)."""
    if is_torch(x):
        return x.to(_torch().float64).contiguous()
    return _lib(x).ascontiguousarray(x, dtype=np.float64)


def first_true(mask, x):
    """(index, value of x there) of the first True entry of ``mask``, or None (one sync)."""
    if is_torch(mask):
        found = mask.nonzero()
    else:
        found = _lib(mask).argwhere(mask)
    if found.shape[0] == 0:
        return None
    idx = tuple(int(i) for i in found[0].tolist())
    return idx, float(x[idx])


def first_nonfinite(x):
    """(index, value) of the first NaN or inf in x (numpy, torch or CuPy), or None."""
    return first_true(~isfinite(x), x)


def check_finite(x, name="z"):
    """Raise ValueError naming the first NaN or inf of x (any library; syncs on a GPU)."""
    found = first_nonfinite(x)
    if found is not None:
        raise ValueError(f"{name} contains NaN or inf (first at index {found[0]}: {found[1]})")


def device_index(kind: ArrayKind) -> int:
    return int(kind.device.split(":")[1]) if kind.is_cuda else -1


# -- prior constants on devices -------------------------------------------------------------

_constants: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


def on_device(owner, kind: ArrayKind, *names):
    """``owner``'s array attributes ``names`` as arrays where ``kind`` lives (None stays None).

    On the CPU these are the host arrays themselves. On a GPU they are copied once per
    (library, device) and cached for as long as ``owner`` lives.
    """
    host = tuple(getattr(owner, name) for name in names)
    if not kind.is_cuda:
        return host
    per_owner = _constants.setdefault(owner, {})
    key = (kind.library, kind.device, names)
    if key not in per_owner:
        per_owner[key] = tuple(None if a is None else _to_device(np.asarray(a), kind) for a in host)
    return per_owner[key]


def _to_device(host: np.ndarray, kind: ArrayKind):
    if kind.library == "torch":  # (a writable copy: torch warns about read-only numpy arrays)
        return _torch().as_tensor(np.array(host), device=kind.torch_device)
    import cupy

    with cupy.cuda.Device(device_index(kind)):
        return cupy.asarray(host)


# -- memory ----------------------------------------------------------------------------------

def free_bytes(kind: ArrayKind) -> int | None:
    """Device memory the input's library can still hand out (free + its own cached pool)."""
    if not kind.is_cuda:
        return None
    idx = device_index(kind)
    try:
        if kind.library == "torch":
            torch = _torch()
            free, _ = torch.cuda.mem_get_info(idx)
            return int(free + torch.cuda.memory_reserved(idx) - torch.cuda.memory_allocated(idx))
        import cupy

        with cupy.cuda.Device(idx):
            free, _ = cupy.cuda.runtime.memGetInfo()
            return int(free + cupy.get_default_memory_pool().free_bytes())
    except Exception:  # an exotic allocator: fall back to the out-of-memory retry alone
        return None


def host_available_bytes() -> int | None:
    """Memory this process can still get without swapping or being killed: Linux's
    MemAvailable, lowered to what the control group's limit leaves (containers, CI runners);
    elsewhere the free physical pages; None where nothing is known."""
    have = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    have = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if have is None:
        try:
            have = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):
            return None
    limit = _cgroup_room()
    return have if limit is None else min(have, limit)


def _cgroup_room() -> int | None:
    """The control group's memory limit less its usage (cgroup v2, then v1), or None."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as fh:
                text = fh.read().strip()
            if text == "max":
                return None
            with open(usage_file) as fh:
                used = int(fh.read().strip())
            limit = int(text)
        except (OSError, ValueError):
            continue
        return None if limit >= 1 << 60 else max(0, limit - used)  # v1 writes "no limit" as ~2^63
    return None


def available_bytes(kind: ArrayKind) -> int | None:
    """Memory that arrays of ``kind`` can still get: the GPU's (:func:`free_bytes`) or the host's."""
    return free_bytes(kind) if kind.is_cuda else host_available_bytes()


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover - the loop returns


def require_bytes(kind: ArrayKind, need: float, what: str):
    """A MemoryError, before anything is allocated, when ``what`` needs at least ``need`` bytes
    and the device of ``kind`` has fewer available; nothing when its memory is unknown."""
    have = available_bytes(kind)
    if have is not None and need > have:
        where = "this machine" if not kind.is_cuda else kind.device
        raise MemoryError(f"{what} needs at least {format_bytes(need)} but {where} has {format_bytes(have)} "
                          "of memory available")


def is_out_of_memory(err: BaseException) -> bool:
    """True for the out-of-memory errors of numpy, torch, CuPy and Numba."""
    return (isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError"
            or "CUDA_ERROR_OUT_OF_MEMORY" in str(err))
