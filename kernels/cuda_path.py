"""CUDA kernels of the path energy (MATH.md 3): one fused pass over the decoded outputs.

The same scalar functions as the CPU kernels (:mod:`.path`) give the weights, the edge cases
and the reductions; only the work split is the GPU's. Three launches on the caller's stream:

1. ``path_log_a``: log a_i of every segment (B K threads), from the log indices alone.
2. ``path_pass``: the bandwidth-bound pass. A block owns one path and a tile of
   ``TILE = THREADS * COLS`` columns; thread t holds columns t, t + THREADS, ... (so every
   load and store of a warp is 128 consecutive elements) and walks the points j = 0 .. K
   keeping rows j-1 and j in registers: each element of G is read once, and dE/dG_j is
   written once, in order. The squared segment lengths are reduced without atomics: each
   thread leaves its partial sum of segment j in a shared table, and every ``SEG`` segments
   the block sums the table in two short steps (one row of 32 lanes per segment, then one
   thread per segment) into ``d_part[b, tile, j]``: three barriers per eight segments, and
   the order of every sum is fixed, so results do not vary from run to run.
3. ``path_energy_reduce`` (or ``path_log_index_reduce``): one block per path sums the tiles'
   partials into d_i and forms E, dE/dl (or log ri of the path) with the shared scalar math;
   it also flags a d_i that is not finite (NaN or inf in G, or an overflow) and a log index
   that is NaN or +inf, for the caller to raise after its one read of the flags.

Float32 inputs are widened element by element: differences, sums and gradients are formed
in float64 and only the stored gradient is rounded, as on the CPU. No fastmath: the shared
scalar math keeps exact IEEE semantics (NaN, inf, the d_i = 0 and infinite-weight cases).
"""
import math

import numpy as np
from numba import cuda, float64

from .cuda_launch import kernel, launch, launch_grid
from .path import (
    log_ri_share,
    point_grad_coef,
    point_grad_is_plain,
    point_grad_safe,
    segment_dl,
    segment_energy,
    segment_log_a,
    segment_log_index,
)

THREADS = 256  # threads of a path_pass block
COLS = 4  # columns per thread: four independent loads in flight per row
TILE = THREADS * COLS  # columns per block
WARP = 32
SEG = THREADS // WARP  # segments per reduction round: one row of 32 lanes per warp-sized group
REDUCE_THREADS = 64  # threads of the per-path reduction blocks
#: path_pass blocks per multiprocessor that the register budget must allow (ptxas: 80 registers
#: per thread, no spills for float32 rows; with 99 unbounded only two blocks would fit)
PASS_BLOCKS_PER_SM = 3
#: launch bounds of the kernels that have them (the PTX tests compile with the same)
LAUNCH_BOUNDS = {"path_pass": (THREADS, PASS_BLOCKS_PER_SM)}

# codes of the flags the kernels set (bad[0], bad[1])
BAD_SEGMENT, BAD_LOG_RI = 0, 1


def tiles_for(n: int) -> int:
    return max(1, -(-n // TILE))


@cuda.jit(cache=True)
def path_log_a(l, log_alpha, log_a):
    """log_a[b, i] = log alpha + logaddexp(l[b, i], l[b, i+1]) - log 2, one thread per segment."""
    nb, k = log_a.shape
    s = cuda.grid(1)
    if s >= nb * k:
        return
    b = s // k
    i = s - b * k
    log_a[b, i] = segment_log_a(l[b, i], l[b, i + 1], log_alpha)


@cuda.jit(device=True)
def _flush(part, total, t, b, tile, first, last, d_part):
    """Sum the threads' partials of segments first .. last (part rows first % SEG ...) into
    d_part[b, tile, first .. last]. Every thread of the block calls it."""
    cuda.syncthreads()
    row = t // WARP
    lane = t - row * WARP
    acc = 0.0
    for m in range(THREADS // WARP):
        acc += part[row, lane + WARP * m]
    total[row, lane] = acc
    cuda.syncthreads()
    if t <= last - first:
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        for m in range(0, WARP, 4):
            a0 += total[t, m]
            a1 += total[t, m + 1]
            a2 += total[t, m + 2]
            a3 += total[t, m + 3]
        d_part[b, tile, first + t] = (a0 + a1) + (a2 + a3)


@kernel(LAUNCH_BOUNDS["path_pass"])
def path_pass(g, log_a, need_grads, d_part, grad):
    """d_part[b, tile, i] = the tile's share of |G_{i+1} - G_i|^2; with need_grads,
    grad = dE/dG (B, K+1, N). Grid: B * ntiles blocks of THREADS threads."""
    part = cuda.shared.array((SEG, THREADS), float64)
    total = cuda.shared.array((SEG, WARP), float64)
    prev = cuda.local.array(COLS, g.dtype)
    cur = cuda.local.array(COLS, g.dtype)
    nxt = cuda.local.array(COLS, g.dtype)
    ahead = cuda.local.array(COLS, g.dtype)
    _, n_points, n = g.shape
    k = n_points - 1
    ntiles = d_part.shape[1]
    t = cuda.threadIdx.x
    b = cuda.blockIdx.x // ntiles
    tile = cuda.blockIdx.x - b * ntiles
    c0 = tile * TILE + t
    for v in range(COLS):
        c = c0 + v * THREADS
        cur[v] = g[b, 0, c] if c < n else 0.0
        nxt[v] = g[b, 1, c] if c < n else 0.0
        prev[v] = cur[v]  # no point before the first: G_0 - G_{-1} counts as 0
    first = 0
    for j in range(n_points):
        # row j+2 is loaded while row j is worked on: two rows of loads in flight per thread
        for v in range(COLS):
            c = c0 + v * THREADS
            ahead[v] = g[b, j + 2, c] if j + 2 <= k and c < n else nxt[v]
        if need_grads:
            la_prev = log_a[b, j - 1] if j > 0 else 0.0
            la_next = log_a[b, j] if j < k else 0.0
            if point_grad_is_plain(la_prev, la_next):
                c_prev = point_grad_coef(la_prev)
                c_next = point_grad_coef(la_next)
                for v in range(COLS):
                    c = c0 + v * THREADS
                    if c < n:
                        gc = np.float64(cur[v])
                        grad[b, j, c] = c_prev * (gc - np.float64(prev[v])) - c_next * (np.float64(nxt[v]) - gc)
            else:
                for v in range(COLS):
                    c = c0 + v * THREADS
                    if c < n:
                        gc = np.float64(cur[v])
                        grad[b, j, c] = point_grad_safe(gc - np.float64(prev[v]), np.float64(nxt[v]) - gc,
                                                        la_prev, la_next)
        if j < k:
            s = 0.0
            for v in range(COLS):
                dn = np.float64(nxt[v]) - np.float64(cur[v])
                s += dn * dn
            part[j - first, t] = s
            if j - first == SEG - 1 or j == k - 1:
                _flush(part, total, t, b, tile, first, j, d_part)
                first = j + 1
        for v in range(COLS):
            prev[v] = cur[v]
            cur[v] = nxt[v]
            nxt[v] = ahead[v]  # at j = K - 1 this is row K again: G_{K+1} - G_K counts as 0


@cuda.jit(device=True)
def _segment_d(d_part, b, i):
    """d_i of path b: the sum of its tiles' partials."""
    s = 0.0
    for tile in range(d_part.shape[1]):
        s += d_part[b, tile, i]
    return s


@cuda.jit(device=True)
def _check_log_ri(l, b, j, bad):
    v = l[b, j]
    if v != v or v == math.inf:
        bad[BAD_LOG_RI] = 1


@cuda.jit(device=True)
def _block_sum(acc, t, value):
    """The sum of ``value`` over the REDUCE_THREADS threads of the block (a fixed tree)."""
    acc[t] = value
    cuda.syncthreads()
    width = REDUCE_THREADS // 2
    while width > 0:
        if t < width:
            acc[t] += acc[t + width]
        cuda.syncthreads()
        width //= 2
    return acc[0]


@cuda.jit(cache=True)
def path_energy_reduce(d_part, l, log_a, energy, dl, bad):
    """energy[b] = sum_i w_i d_i and dl[b, j] = dE/dl_j (one block per path)."""
    acc = cuda.shared.array(REDUCE_THREADS, float64)
    b = cuda.blockIdx.x
    t = cuda.threadIdx.x
    k = log_a.shape[1]
    e = 0.0
    j = t
    while j <= k:
        _check_log_ri(l, b, j, bad)
        lj = l[b, j]
        v = 0.0
        if j > 0:
            lp = l[b, j - 1]
            v += segment_dl(log_a[b, j - 1], _segment_d(d_part, b, j - 1), log_ri_share(lj, lp, lj))
        if j < k:
            d = _segment_d(d_part, b, j)
            if not math.isfinite(d):
                bad[BAD_SEGMENT] = 1
            v += segment_dl(log_a[b, j], d, log_ri_share(lj, lj, l[b, j + 1]))
            e += segment_energy(log_a[b, j], d)
        dl[b, j] = v
        j += REDUCE_THREADS
    total = _block_sum(acc, t, e)
    if t == 0:
        energy[b] = total


@cuda.jit(cache=True)
def path_log_index_reduce(d_part, l, out, bad):
    """out[b] = sum_i (logaddexp(l_i, l_{i+1}) - log 2) sqrt(d_i) (one block per path)."""
    acc = cuda.shared.array(REDUCE_THREADS, float64)
    b = cuda.blockIdx.x
    t = cuda.threadIdx.x
    k = l.shape[1] - 1
    s = 0.0
    j = t
    while j <= k:
        _check_log_ri(l, b, j, bad)
        if j < k:
            d = _segment_d(d_part, b, j)
            if not math.isfinite(d):
                bad[BAD_SEGMENT] = 1
            s += segment_log_index(l[b, j], l[b, j + 1], d)
        j += REDUCE_THREADS
    total = _block_sum(acc, t, s)
    if t == 0:
        out[b] = total


KERNELS = {"path_log_a": path_log_a, "path_pass": path_pass, "path_energy_reduce": path_energy_reduce,
           "path_log_index_reduce": path_log_index_reduce}


def signature(name: str, dtype: str = "float32", layout: str = "C") -> str:
    """The signature of kernel ``name`` for decoded outputs of ``dtype`` and ``layout`` ("C":
    contiguous rows, "A": any strides); used to compile PTX ahead of time in tests."""
    mat, cube, flags = "float64[:, ::1]", "float64[:, :, ::1]", "int32[::1]"
    if name == "path_log_a":
        return f"void({mat}, float64, {mat})"
    if name == "path_pass":
        g = f"{dtype}[:, :, ::1]" if layout == "C" else f"{dtype}[:, :, :]"
        return f"void({g}, {mat}, boolean, {cube}, {dtype}[:, :, ::1])"
    if name == "path_energy_reduce":
        return f"void({cube}, {mat}, {mat}, {dtype}[::1], {mat}, {flags})"
    return f"void({cube}, {mat}, {dtype}[::1], {flags})"


def path_energy(g, l, log_alpha, need_grads, log_a, d_part, grad, energy, dl, bad, stream=0):
    """Launch the energy's three kernels on ``stream``.

    g: (B, K+1, N) device array, float32 or float64, any strides; l: (B, K+1) float64;
    scratch log_a (B, K) and d_part (B, tiles_for(N), K) float64; outputs grad (B, K+1, N)
    C-contiguous of g's dtype (shape (0, 0, 0) without need_grads), energy (B,) of g's dtype,
    dl (B, K+1) float64; bad: (2,) int32 zeros, set to 1 at BAD_SEGMENT / BAD_LOG_RI.
    """
    nb, n_points, _ = g.shape
    if nb == 0:
        return
    launch(path_log_a, nb * (n_points - 1), stream, l, float(log_alpha), log_a)
    launch_grid(path_pass, nb * d_part.shape[1], THREADS, stream, g, log_a, bool(need_grads), d_part, grad)
    launch_grid(path_energy_reduce, nb, REDUCE_THREADS, stream, d_part, l, log_a, energy, dl, bad)


def path_log_index(g, l, log_a, d_part, grad, out, bad, stream=0):
    """Launch the pass (without gradients) and the log-index reduction on ``stream``; arguments
    as in :func:`path_energy` (log_a is not read: an empty (0, 0) float64 array; grad: an
    empty (0, 0, 0) array of g's dtype; out: (B,) of g's dtype)."""
    nb = g.shape[0]
    if nb == 0:
        return
    launch_grid(path_pass, nb * d_part.shape[1], THREADS, stream, g, log_a, False, d_part, grad)
    launch_grid(path_log_index_reduce, nb, REDUCE_THREADS, stream, d_part, l, out, bad)
