"""Memory: prior constants copied to a device once, what a device or the host can still give,
and out-of-memory errors of every library."""
from __future__ import annotations

import os
import weakref

import numpy as np

from .kinds import ArrayKind

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
        per_owner[key] = tuple(None if a is None else kind.lib.to_device(np.asarray(a), kind) for a in host)
    return per_owner[key]


def free_bytes(kind: ArrayKind) -> int | None:
    """Device memory the input's library can still hand out (free + its own cached pool)."""
    if not kind.is_cuda:
        return None
    try:
        return kind.lib.free_bytes(kind)
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
