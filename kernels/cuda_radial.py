"""CUDA kernels of the radial realism index: row norms, then the scalar survival function.

The same scalar functions as the CPU kernels (:mod:`.radial`, built on :mod:`.special`) run
here: Numba compiles those ``@njit`` functions for the GPU when a ``@cuda.jit`` kernel calls
them, so the CPU and GPU paths share one source of the mathematics.

Work is split in two phases per tile of rows, because they want different thread layouts:

1. the reduction ``s_i = sum_j y_ij^2`` (float64 accumulation whatever the input dtype) is
   bandwidth-bound and wants coalesced reads: for rows wider than ``NARROW_D`` the 32 lanes
   of a warp read one row side by side (eight independent loads in flight per lane, enough
   bytes in flight to cover the memory latency at the occupancy the shared table allows),
   for 32 rows in turn, and leave their partial sums in a shared table;
2. the survival function of ``s_i`` (an incomplete gamma or beta function in float64, tens
   to hundreds of iterations) is compute-bound and wants every lane busy: lane ``l`` sums
   row ``l`` of the table and evaluates its own row, so the 32 rows of a warp are finished
   in parallel instead of one lane working while 31 wait (the cost of "one warp per row").

The gradient ``d log ri / d y_i = 2 (d log S / ds) y_i`` is a third, coalesced pass that
reads the tile again (from L2 when it is still there). Narrow rows (``d <= NARROW_D``) are
done by one thread each: a warp's 32 rows are one contiguous span of memory.

Entries are widened with ``np.float64(...)`` before they are squared (Python's ``float()``
keeps float32 in a CUDA kernel), so float32 inputs are squared and summed in float64, as on
the CPU.

A row holding NaN or inf gets ``out[i] = NaN`` and sets ``bad[0] = 1``; the caller reads
the flag once and raises. Non-finite inputs are only looked for when ``s_i`` is not finite,
so the check costs nothing on clean data.
"""
import math

import numpy as np
from numba import cuda, float64

from .codes import WHAT_LOG_DENSITY, WHAT_LOG_RI, WHAT_RI
from .cuda_launch import NARROW_D, PADDED, THREADS, WARP, WARPS, launch
from .radial import from_radius, radial_far, radial_log_density, radial_log_sf_and_dlog
from .rows import row_radius


@cuda.jit(device=True)
def row_has_nonfinite(y, row):
    for j in range(y.shape[1]):
        if not math.isfinite(y[row, j]):
            return True
    return False


@cuda.jit(device=True)
def finish_row(y, row, s, family, dim, p0, p1, log_alpha, what, want_grad, out, bad):
    """Write out[row] from s = |y_row|^2; return (g, r): the row's gradient is g y_row when
    r is 0, and g (y_row / r) for a row whose s overflows (r = |y_row| by scaling, g the
    r-derivative; kernels/radial.py). g is NaN for a row holding NaN or inf, so that its
    gradient is marked too."""
    if not math.isfinite(s) or from_radius(family, s):
        # s overflows only for huge finite entries; NaN/inf entries are the error case.
        if not math.isfinite(s) and row_has_nonfinite(y, row):
            out[row] = math.nan
            bad[0] = 1
            return math.nan, 0.0
        r = row_radius(y, row)
        v, dv = radial_far(family, r, dim, p0, p1, what == WHAT_LOG_DENSITY, want_grad, True)
        if what == WHAT_RI:
            out[row] = math.exp(v + log_alpha)
        elif what == WHAT_LOG_RI:
            out[row] = v + log_alpha
        else:
            out[row] = v
        return (dv, r) if 0.0 < r < math.inf else (0.0, 0.0)
    if what == WHAT_LOG_DENSITY:
        out[row] = radial_log_density(family, s, dim, p0, p1)
        return 0.0, 0.0
    log_sf, dlog = radial_log_sf_and_dlog(family, s, dim, p0, p1, want_grad, True)
    if what == WHAT_RI:
        out[row] = math.exp(log_sf + log_alpha)
    else:
        out[row] = log_sf + log_alpha
    return 2.0 * dlog, 0.0


@cuda.jit(device=True)
def scaled(v, r):
    """v, or v / r for a far row (r > 0): the entry that the gradient factor multiplies."""
    return v / r if r > 0.0 else v


@cuda.jit(cache=True)
def radial_narrow(y, family, dim, p0, p1, log_alpha, what, out, grad, bad):
    """One thread per row (rows of at most NARROW_D entries)."""
    m, d = y.shape
    row = cuda.grid(1)
    if row >= m:
        return
    s = 0.0
    for j in range(d):
        v = np.float64(y[row, j])
        s += v * v
    want_grad = grad.shape[0] > 0
    g, r = finish_row(y, row, s, family, dim, p0, p1, log_alpha, what, want_grad, out, bad)
    if want_grad:
        for j in range(d):
            grad[row, j] = g * scaled(np.float64(y[row, j]), r)


@cuda.jit(cache=True)
def radial_wide(y, family, dim, p0, p1, log_alpha, what, out, grad, bad):
    """Each warp reduces 32 rows with coalesced reads, then each lane finishes one row."""
    # partial[w, r, lane]: lane's share of row r of warp w's tile; the +1 column staggers
    # the banks when lane l later reads row l across.
    partial = cuda.shared.array((WARPS, WARP, PADDED), float64)
    factor = cuda.shared.array((WARPS, WARP), float64)
    radius = cuda.shared.array((WARPS, WARP), float64)  # 0, or |y_row| for a far row
    m, d = y.shape
    lane = cuda.threadIdx.x % WARP
    warp = cuda.threadIdx.x // WARP
    first = cuda.blockIdx.x * THREADS + warp * WARP
    for r in range(WARP):
        row = first + r
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        if row < m:
            j = lane
            while j + 7 * WARP < d:  # eight independent loads in flight per lane
                v0 = np.float64(y[row, j])
                v1 = np.float64(y[row, j + WARP])
                v2 = np.float64(y[row, j + 2 * WARP])
                v3 = np.float64(y[row, j + 3 * WARP])
                v4 = np.float64(y[row, j + 4 * WARP])
                v5 = np.float64(y[row, j + 5 * WARP])
                v6 = np.float64(y[row, j + 6 * WARP])
                v7 = np.float64(y[row, j + 7 * WARP])
                a0 += v0 * v0 + v4 * v4
                a1 += v1 * v1 + v5 * v5
                a2 += v2 * v2 + v6 * v6
                a3 += v3 * v3 + v7 * v7
                j += 8 * WARP
            while j < d:
                v0 = np.float64(y[row, j])
                a0 += v0 * v0
                j += WARP
        partial[warp, r, lane] = (a0 + a1) + (a2 + a3)
    cuda.syncthreads()

    want_grad = grad.shape[0] > 0
    row = first + lane
    g = 0.0
    rad = 0.0
    if row < m:
        s = 0.0
        for k in range(WARP):
            s += partial[warp, lane, k]
        g, rad = finish_row(y, row, s, family, dim, p0, p1, log_alpha, what, want_grad, out, bad)
    if want_grad:  # uniform over the launch, so the barrier below is reached by all threads
        factor[warp, lane] = g
        radius[warp, lane] = rad
        cuda.syncthreads()
        for r in range(WARP):
            row = first + r
            if row < m:
                gr = factor[warp, r]
                rr = radius[warp, r]
                j = lane
                while j < d:
                    grad[row, j] = gr * scaled(np.float64(y[row, j]), rr)
                    j += WARP


KERNELS = {"radial_narrow": radial_narrow, "radial_wide": radial_wide}


def signature(dtype: str, layout: str = "C") -> str:
    """The kernels' signature for y of ``dtype`` ("float32"/"float64") and ``layout``
    ("C" contiguous rows, "A" any strides); used to compile PTX ahead of time in tests."""
    arr = f"{dtype}[:, ::1]" if layout == "C" else f"{dtype}[:, :]"
    return (f"void({arr}, int64, float64, float64, float64, float64, int64, "
            f"{dtype}[::1], {dtype}[:, ::1], int32[::1])")


def radial_index(y, family, dim, p0, p1, log_alpha, what, out, grad, bad, stream=0):
    """Launch on ``stream``: out[i] (and grad[i] when grad has rows) for each row of y.

    y: (M, D) device array, float32 or float64, any strides; out: (M,) and grad: (M, D) or
    (0, D), C-contiguous, of y's dtype; bad: (1,) int32, set to 1 if a row is not finite.
    """
    m, d = y.shape
    if m == 0:
        return
    kernel = radial_narrow if d <= NARROW_D else radial_wide
    launch(kernel, m, stream, y, family, float(dim), float(p0), float(p1), float(log_alpha),
           what, out, grad, bad)
