"""CUDA kernels of the uniform-box realism index (MATH.md 1.2): an indicator of each row.

The same two layouts as cuda_radial.py: one thread per narrow row; for wide rows a warp
reads 32 rows in turn with coalesced loads, each lane keeps a status code of its columns
(0 inside, 1 outside, 2 not finite) in a shared table, and lane l combines row l's codes.
A row holding NaN or inf gets out[i] = NaN and sets bad[0] = 1, as on the CPU.
"""
import math

import numpy as np
from numba import cuda, int32

from .cuda_launch import NARROW_D, PADDED, THREADS, WARP, WARPS, launch

INSIDE, OUTSIDE, NONFINITE = 0, 1, 2


@cuda.jit(device=True)
def entry_status(v, lo, hi):
    if not math.isfinite(v):
        return NONFINITE
    if v < lo or v > hi:
        return OUTSIDE
    return INSIDE


@cuda.jit(device=True)
def write_row(status, row, log_alpha, exp_out, out, bad):
    if status == NONFINITE:
        out[row] = math.nan
        bad[0] = 1
    elif status == OUTSIDE:
        out[row] = 0.0 if exp_out else -math.inf
    else:
        out[row] = math.exp(log_alpha) if exp_out else log_alpha


@cuda.jit(cache=True)
def box_narrow(z, low, high, log_alpha, exp_out, out, bad):
    m, d = z.shape
    row = cuda.grid(1)
    if row >= m:
        return
    status = INSIDE
    for j in range(d):
        status = max(status, entry_status(np.float64(z[row, j]), low[j], high[j]))
    write_row(status, row, log_alpha, exp_out, out, bad)


@cuda.jit(cache=True)
def box_wide(z, low, high, log_alpha, exp_out, out, bad):
    codes = cuda.shared.array((WARPS, WARP, PADDED), int32)
    m, d = z.shape
    lane = cuda.threadIdx.x % WARP
    warp = cuda.threadIdx.x // WARP
    first = cuda.blockIdx.x * THREADS + warp * WARP
    for r in range(WARP):
        row = first + r
        status = INSIDE
        if row < m:
            j = lane
            while j < d:
                status = max(status, entry_status(np.float64(z[row, j]), low[j], high[j]))
                j += WARP
        codes[warp, r, lane] = status
    cuda.syncthreads()
    row = first + lane
    if row < m:
        status = INSIDE
        for k in range(WARP):
            status = max(status, codes[warp, lane, k])
        write_row(status, row, log_alpha, exp_out, out, bad)


KERNELS = {"box_narrow": box_narrow, "box_wide": box_wide}


def signature(dtype: str, layout: str = "C") -> str:
    arr = f"{dtype}[:, ::1]" if layout == "C" else f"{dtype}[:, :]"
    return f"void({arr}, float64[::1], float64[::1], float64, int64, {dtype}[::1], int32[::1])"


def box_index(z, low, high, log_alpha, exp_out, out, bad, stream=0):
    """Launch on ``stream``: out[i] = log_alpha (alpha) inside [low, high], -inf (0) outside.

    z: (M, D) device array of any strides; low, high: (D,) float64; out: (M,) of z's dtype;
    bad: (1,) int32.
    """
    m, d = z.shape
    if m == 0:
        return
    kernel = box_narrow if d <= NARROW_D else box_wide
    launch(kernel, m, stream, z, low, high, float(log_alpha), int(exp_out), out, bad)
