"""CUDA kernels of the KDE realism-index estimator (MATH.md 1.3): queries of the host-built table.

The table (quintic Hermite coefficients per cell, their check flags, the sorted samples) is
built once on the host by :func:`fastgeo.kde.build_table` and copied to each device once;
these kernels only query it, with the same scalar functions as the CPU kernels
(:func:`.kde.table_point`, :func:`.kde.kde_point` and the exact sums they call), which Numba
compiles for the GPU.

Two passes, as on the CPU, because the two kinds of query cost very different amounts:

1. ``kde_table_pass``: one thread per query evaluates the interpolant of its cell (about
   twenty floating-point operations and one exp or log). Queries it cannot answer (outside
   the table, in a cell whose check failed, NaN or +-inf) are appended to a work list: each
   block collects its own in shared memory and reserves room in the list with one atomic
   add, so the list stays dense and atomics on the global counter are one per block.
2. ``kde_exact_pass``: a fixed grid walks the work list (its length is read on the device,
   so the host never waits between the passes) and evaluates :func:`.kde.kde_point`, whose
   exact sums run for tens to thousands of terms. Packed densely, the expensive queries keep
   all 32 lanes of a warp busy instead of stalling the cheap ones beside them, and the table
   pass stays small in registers (the exact sums are not compiled into it).

A NaN query gets out = NaN and sets ``bad[0] = 1``; the caller reads the flag once and raises.
"""
import numpy as np
from numba import cuda, int32

from .cuda_launch import THREADS, launch, launch_grid
from .kde import kde_point, table_point

#: blocks of the exact pass (a grid-stride loop over the work list): enough threads to fill
#: any current GPU when the list is long, few idle blocks when it is short
EXACT_BLOCKS = 1024
#: queries per launch: the work list and its counter are int32
MAX_QUERIES = 1 << 30


@cuda.jit(cache=True)
def kde_table_pass(x, what, want_grad, x0, inv_dx, coef, flags, j_middle, j_upper, out, dout, todo,
                   count):
    """out[i] (and dout[i]) from the interpolants; the indices of the other queries go to
    todo[count[0]...] (count[0] grows by their number)."""
    pending = cuda.shared.array(THREADS, int32)
    slots = cuda.shared.array(2, int32)  # [0]: this block's pending queries, [1]: their offset in todo
    t = cuda.threadIdx.x
    if t == 0:
        slots[0] = 0
    cuda.syncthreads()
    i = cuda.blockIdx.x * THREADS + t
    if i < x.shape[0]:
        v, d, ok = table_point(np.float64(x[i]), what, want_grad, x0, inv_dx, coef, flags, j_middle,
                               j_upper)
        if ok:
            out[i] = v
            if want_grad:
                dout[i] = d
        else:
            pending[cuda.atomic.add(slots, 0, 1)] = i
    cuda.syncthreads()
    if t == 0 and slots[0] > 0:
        slots[1] = cuda.atomic.add(count, 0, slots[0])
    cuda.syncthreads()
    if t < slots[0]:
        todo[slots[1] + t] = pending[t]


@cuda.jit(cache=True)
def kde_exact_pass(x, what, want_grad, vals, cnts, cum, n, h, log_n, log_nh, x0, inv_dx, coef, flags,
                   j_middle, j_upper, out, dout, todo, count, bad):
    """The queries of the work list, by :func:`.kde.kde_point` (exact sums where needed)."""
    k = cuda.grid(1)
    stride = cuda.gridsize(1)
    while k < count[0]:
        i = todo[k]
        v, d = kde_point(np.float64(x[i]), what, want_grad, vals, cnts, cum, n, h, log_n, log_nh, x0,
                         inv_dx, coef, flags, j_middle, j_upper)
        out[i] = v
        if want_grad:
            dout[i] = d
        if v != v:
            bad[0] = 1
        k += stride


KERNELS = {"kde_table_pass": kde_table_pass, "kde_exact_pass": kde_exact_pass}


def signature(name: str, dtype: str, layout: str = "C") -> str:
    """The signature of kernel ``name`` for queries x of ``dtype`` ("float32"/"float64") and
    ``layout`` ("C" contiguous, "A" any stride); used to compile PTX ahead of time in tests."""
    x = f"{dtype}[::1]" if layout == "C" else f"{dtype}[:]"
    vec, table = "float64[::1]", "float64[:, ::1], uint8[::1]"
    f64, i64 = "float64", "int64"
    if name == "kde_table_pass":
        return (f"void({x}, {i64}, {i64}, {f64}, {f64}, {table}, {i64}, {i64}, {dtype}[::1], {dtype}[::1], "
                "int32[::1], int32[::1])")
    return (f"void({x}, {i64}, {i64}, {vec}, {vec}, {vec}, {f64}, {f64}, {f64}, {f64}, {f64}, {f64}, "
            f"{table}, {i64}, {i64}, {dtype}[::1], {dtype}[::1], int32[::1], int32[::1], int32[::1])")


def kde_query(x, what, want_grad, vals, cnts, cum, n, h, log_n, log_nh, x0, inv_dx, coef, flags, j_middle,
              j_upper, out, dout, todo, count, bad, stream=0):
    """Launch both passes on ``stream`` for at most MAX_QUERIES queries x (any stride).

    out, dout (empty unless want_grad): x's dtype; todo: int32 scratch of x's length;
    count, bad: (1,) int32 zeros. The table arguments are those of :func:`.kde.kde_point`.
    """
    m = x.shape[0]
    if m == 0:
        return
    if m > MAX_QUERIES:
        raise ValueError(f"at most {MAX_QUERIES} queries per launch, got {m}")
    launch(kde_table_pass, m, stream, x, what, want_grad, x0, inv_dx, coef, flags, j_middle, j_upper, out,
           dout, todo, count)
    blocks = min(EXACT_BLOCKS, -(-m // THREADS))
    launch_grid(kde_exact_pass, blocks, THREADS, stream, x, what, want_grad, vals, cnts, cum, n, h, log_n,
                log_nh, x0, inv_dx, coef, flags, j_middle, j_upper, out, dout, todo, count, bad)

