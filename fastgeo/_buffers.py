"""Large output arrays whose memory is reused once nobody else holds them.

Fresh memory for a large array costs the operating system a page fault and a page of zeros
for every page first written: for the 80 MB gradient of a path-energy call that is about as
long as the kernel that fills it. Kernels that return a large output on every call (inside an
optimiser loop) take it from a :class:`BufferPool`, which keeps the last few arrays it handed
out and gives one out again only when the pool's own reference is the last one left: no
array, view, torch tensor or memoryview of it survives, so no caller can see the reuse.
"""
from __future__ import annotations

import math
import sys
import threading

import numpy as np

# sys.getrefcount of a pooled array that nobody else holds: the pool's list, the local
# name in BufferPool.empty, and getrefcount's own argument.
_POOL_ONLY_REFCOUNT = 3


class BufferPool:
    """np.empty for large arrays, recycling arrays their callers have dropped.

    keep: how many arrays the pool holds on to (the most recently used); min_bytes: smaller
    arrays are plain np.empty (fresh small allocations are cheap).
    """

    def __init__(self, keep: int = 2, min_bytes: int = 1 << 20):
        self.keep = keep
        self.min_bytes = min_bytes
        self._arrays: list[np.ndarray] = []
        self._lock = threading.Lock()

    def empty(self, shape, dtype) -> np.ndarray:
        shape = tuple(int(s) for s in shape)
        dtype = np.dtype(dtype)
        if math.prod(shape) * dtype.itemsize < self.min_bytes:
            return np.empty(shape, dtype)
        with self._lock:
            for i in range(len(self._arrays)):
                arr = self._arrays[i]
                if arr.shape == shape and arr.dtype == dtype and sys.getrefcount(arr) <= _POOL_ONLY_REFCOUNT:
                    self._arrays.append(self._arrays.pop(i))  # most recently used last
                    return arr
            arr = np.empty(shape, dtype)
            self._arrays.append(arr)
            del self._arrays[:max(0, len(self._arrays) - self.keep)]
            return arr

    def clear(self) -> None:
        """Let go of every pooled array (memory returns to the system once unreferenced)."""
        with self._lock:
            self._arrays.clear()
