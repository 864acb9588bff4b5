"""Numba CPU kernels of the path energy (MATH.md 3): one fused pass over the decoded outputs.

The weights w_i depend only on the log indices, so they are known before the decoded array
is touched; one pass over G (B x (K+1) x N) then yields both the squared segment lengths d_i
(reductions over N) and dE/dG_j = 2 w_{j-1} (G_j - G_{j-1}) - 2 w_j (G_{j+1} - G_j)
(written once). The O(B K) remainder (E, dE/dl, log ri of the path) is formed from the d_i
by ``path_reduce``.

Work split: a task is one path and one block of columns [n0, n1) of N. It walks the points
j = 0 .. K in order, so each element of G comes from memory once (the rows j-1 and j it
re-reads are still in cache) and the gradient is written out in the same order. Paths give
enough tasks when B is large; when B is small (B = 1), the columns are split into blocks so
that every thread has work. Float32 inputs are widened to float64 element by element: the
differences, the sums and the gradients are formed in float64 and only the stored gradient is
rounded to float32.

``fastmath`` (reassoc/contract only, so NaN and inf keep their IEEE meaning) is set on the
row loops alone, which call nothing: Numba compiles a jitted callee with its caller's
fastmath flags when the caller is compiled first, and the shared scalar math of
kernels/path.py and kernels/special.py must keep exact IEEE semantics whichever kernel
happens to compile it (tests/test_numba_flags.py checks this).
"""
import numpy as np
from numba import njit, prange

from .signatures import OnDemand, on_demand, reading
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

_FASTMATH = {"reassoc", "contract"}

leaf = njit(cache=True, nogil=True, fastmath=_FASTMATH)  # vectorised row loops; call nothing
jit = njit(cache=True, nogil=True)


# -- row loops (LLVM inlines them into the pass below, keeping their fast-math flags) -------
@leaf
def _row_sq_dist(g_cur, g_next):
    """sum_x (g_next[x] - g_cur[x])^2 in float64."""
    acc = 0.0
    for x in range(g_cur.shape[0]):
        dn = np.float64(g_next[x]) - np.float64(g_cur[x])
        acc += dn * dn
    return acc


@leaf
def _row_grad_first(g_cur, g_next, out, c_next):
    """Point 0: out = -c_next (g_next - g_cur); returns |g_next - g_cur|^2."""
    acc = 0.0
    for x in range(g_cur.shape[0]):
        dn = np.float64(g_next[x]) - np.float64(g_cur[x])
        out[x] = -c_next * dn
        acc += dn * dn
    return acc


@leaf
def _row_grad_inner(g_prev, g_cur, g_next, out, c_prev, c_next):
    """Point 0 < j < K: out = c_prev (g_cur - g_prev) - c_next (g_next - g_cur); returns
    |g_next - g_cur|^2."""
    acc = 0.0
    for x in range(g_cur.shape[0]):
        gc = np.float64(g_cur[x])
        dp = gc - np.float64(g_prev[x])
        dn = np.float64(g_next[x]) - gc
        out[x] = c_prev * dp - c_next * dn
        acc += dn * dn
    return acc


@leaf
def _row_grad_last(g_prev, g_cur, out, c_prev):
    """Point K: out = c_prev (g_cur - g_prev)."""
    for x in range(g_cur.shape[0]):
        out[x] = c_prev * (np.float64(g_cur[x]) - np.float64(g_prev[x]))


@jit
def _rows_grad_safe(g_prev, g_cur, g_next, out, la_prev, la_next):
    """Any weights (infinite or huge): :func:`point_grad_safe` element by element for a point
    given as three rows (its neighbours; the point itself stands in for a missing one, which
    makes that difference 0). Returns |g_next - g_cur|^2."""
    acc = 0.0
    for x in range(g_cur.shape[0]):
        gc = np.float64(g_cur[x])
        dp = gc - np.float64(g_prev[x])
        dn = np.float64(g_next[x]) - gc
        out[x] = point_grad_safe(dp, dn, la_prev, la_next)
        acc += dn * dn
    return acc


@jit
def _row_grad_safe(g, j, c0, c1, out, la_prev, la_next):
    """:func:`_rows_grad_safe` for point j of a path g (K+1, N), columns c0 .. c1 (0 for the
    last point's squared distance: it has no next point)."""
    last = g.shape[0] - 1
    return _rows_grad_safe(g[max(j - 1, 0), c0:c1], g[j, c0:c1], g[min(j + 1, last), c0:c1], out, la_prev,
                           la_next)


@jit
def _point_block(gb, j, n0, n1, dst, la_prev, la_next):
    """dE/dG_j over columns n0 .. n1 of one path into dst; returns |G_{j+1} - G_j|^2 there."""
    k = gb.shape[0] - 1
    if not point_grad_is_plain(la_prev, la_next):
        return _row_grad_safe(gb, j, n0, n1, dst, la_prev, la_next)
    if j == 0:
        return _row_grad_first(gb[0, n0:n1], gb[1, n0:n1], dst, point_grad_coef(la_next))
    if j < k:
        return _row_grad_inner(gb[j - 1, n0:n1], gb[j, n0:n1], gb[j + 1, n0:n1], dst,
                               point_grad_coef(la_prev), point_grad_coef(la_next))
    _row_grad_last(gb[k - 1, n0:n1], gb[k, n0:n1], dst, point_grad_coef(la_prev))
    return 0.0


def _pass_signature(layout, dt):
    """g C-contiguous (layout "::1") or of any strides (":"); read-only inputs allowed."""
    return reading(f"void({dt}[:, :, {layout}], float64[:, ::1], int64, boolean, float64[:, :, ::1], "
                   f"{dt}[:, :, ::1])", 0, 1)


def _pass_contiguous(dt):
    return _pass_signature("::1", dt)


def _pass_strided(dt):
    return _pass_signature(":", dt)


@njit(cache=True, inline="always")
def _path_task(g, log_a, block, need_grads, d_part, grad, task):
    """One task of the pass: path b = task // nblk, columns [n0, n1) of block task % nblk."""
    k = g.shape[1] - 1
    nblk = d_part.shape[1]
    b = task // nblk
    blk = task - b * nblk
    n0 = blk * block
    n1 = min(g.shape[2], n0 + block)
    gb = g[b]
    if not need_grads:
        for i in range(k):
            d_part[b, blk, i] = _row_sq_dist(gb[i, n0:n1], gb[i + 1, n0:n1])
        return
    for j in range(k + 1):
        la_prev = log_a[b, j - 1] if j > 0 else 0.0
        la_next = log_a[b, j] if j < k else 0.0
        acc = _point_block(gb, j, n0, n1, grad[b, j, n0:n1], la_prev, la_next)
        if j < k:
            d_part[b, blk, j] = acc


def _path_pass(g, log_a, block, need_grads, d_part, grad):
    """The fused pass: per-block squared segment lengths and (with need_grads) dE/dG.

    g: decoded (B, K+1, N); log_a: (B, K) from :func:`segment_log_a_rows`; block: columns per
    task. Writes d_part[b, blk, i] = sum over the block's columns of (G_{i+1} - G_i)^2
    (d_part has ceil(N / block) blocks) and, with need_grads, grad (B, K+1, N) = dE/dG.
    Call it inside ``numba.parallel_chunksize(1)`` so that tasks are handed out one at a
    time (balanced when a core is busy with something else).
    """
    for task in prange(g.shape[0] * d_part.shape[1]):
        _path_task(g, log_a, block, need_grads, d_part, grad, task)


def _path_pass_serial(g, log_a, block, need_grads, d_part, grad):
    """:func:`path_pass` on the calling thread, for small inputs (the solver's toy models)."""
    for task in range(g.shape[0] * d_part.shape[1]):
        _path_task(g, log_a, block, need_grads, d_part, grad, task)


# contiguous and strided g, each with and without the thread pool, each compiled for a dtype
# when a call first needs it (kernels/signatures.py)
path_pass = OnDemand(_path_pass, _pass_contiguous, parallel=True, cache=True)
path_pass_strided = OnDemand(_path_pass, _pass_strided, parallel=True, cache=True)
path_pass_serial = OnDemand(_path_pass_serial, _pass_contiguous, cache=True)
path_pass_serial_strided = OnDemand(_path_pass_serial, _pass_strided, cache=True)


# -- the same pass with the fixed end points held apart (the solver's layout) ---------------
@jit
def _ends_row(g0, g_free, g_end, b, j, n0, n1):
    """Columns n0 .. n1 of point j of path b: g0[b] for j = 0, g_end[b] for j = K, else
    g_free[b, j - 1]."""
    if j == 0:
        return g0[b, n0:n1]
    if j > g_free.shape[1]:
        return g_end[b, n0:n1]
    return g_free[b, j - 1, n0:n1]


def _ends_signature(dt):
    return reading(f"void({dt}[:, ::1], {dt}[:, :, ::1], {dt}[:, ::1], float64[:, ::1], int64, boolean, "
                   f"float64[:, :, ::1], {dt}[:, :, ::1])", 0, 1, 2, 3)


@njit(cache=True, inline="always")
def _ends_task(g0, g_free, g_end, log_a, block, need_grads, d_part, grad, task):
    """One task of :func:`path_pass_ends`: path b, columns [n0, n1) (as in :func:`_path_task`)."""
    k = g_free.shape[1] + 1
    nblk = d_part.shape[1]
    b = task // nblk
    blk = task - b * nblk
    n0 = blk * block
    n1 = min(g_free.shape[2], n0 + block)
    if not need_grads:
        for i in range(k):
            d_part[b, blk, i] = _row_sq_dist(_ends_row(g0, g_free, g_end, b, i, n0, n1),
                                             _ends_row(g0, g_free, g_end, b, i + 1, n0, n1))
        return
    d_part[b, blk, 0] = _row_sq_dist(g0[b, n0:n1], _ends_row(g0, g_free, g_end, b, 1, n0, n1))
    for j in range(1, k):  # the free points: all inner
        la_prev = log_a[b, j - 1]
        la_next = log_a[b, j]
        g_prev = _ends_row(g0, g_free, g_end, b, j - 1, n0, n1)
        g_next = _ends_row(g0, g_free, g_end, b, j + 1, n0, n1)
        dst = grad[b, j - 1, n0:n1]
        if point_grad_is_plain(la_prev, la_next):
            acc = _row_grad_inner(g_prev, g_free[b, j - 1, n0:n1], g_next, dst, point_grad_coef(la_prev),
                                  point_grad_coef(la_next))
        else:
            acc = _rows_grad_safe(g_prev, g_free[b, j - 1, n0:n1], g_next, dst, la_prev, la_next)
        d_part[b, blk, j] = acc


@on_demand(_ends_signature, parallel=True, cache=True)
def path_pass_ends(g0, g_free, g_end, log_a, block, need_grads, d_part, grad):
    """:func:`path_pass` on a path held as its end points g0, g_end (B, N) and its free points
    g_free (B, K-1, N), all C-contiguous; with need_grads, grad (B, K-1, N) = dE/dG of the
    free points only. Reads each element once and writes no end-point gradient: no copy of
    the whole path is ever formed.
    """
    for task in prange(g_free.shape[0] * d_part.shape[1]):
        _ends_task(g0, g_free, g_end, log_a, block, need_grads, d_part, grad, task)


@on_demand(_ends_signature, cache=True)
def path_pass_ends_serial(g0, g_free, g_end, log_a, block, need_grads, d_part, grad):
    """:func:`path_pass_ends` on the calling thread, for small inputs."""
    for task in range(g_free.shape[0] * d_part.shape[1]):
        _ends_task(g0, g_free, g_end, log_a, block, need_grads, d_part, grad, task)


@njit(reading("void(float64[:, ::1], float64, float64[:, ::1])", 0), cache=True)
def segment_log_a_rows(l, log_alpha, log_a):
    """log_a[b, i] = log alpha + logaddexp(l[b, i], l[b, i+1]) - log 2."""
    nb, n_points = l.shape
    for b in range(nb):
        for i in range(n_points - 1):
            log_a[b, i] = segment_log_a(l[b, i], l[b, i + 1], log_alpha)


@njit(reading("void(float64[:, ::1], float64[:, ::1], float64[:, ::1], float64[::1], float64[:, ::1])",
              0, 1, 2),
      cache=True)
def path_reduce(d, l, log_a, energy, dl):
    """From d (B, K): energy[b] = sum_i w_i d_i and dl[b, j] = dE/dl_j."""
    nb, k = d.shape
    for b in range(nb):
        e = 0.0
        for j in range(k + 1):
            dl[b, j] = 0.0
        for i in range(k):
            e += segment_energy(log_a[b, i], d[b, i])
            l0 = l[b, i]
            l1 = l[b, i + 1]
            dl[b, i] += segment_dl(log_a[b, i], d[b, i], log_ri_share(l0, l0, l1))
            dl[b, i + 1] += segment_dl(log_a[b, i], d[b, i], log_ri_share(l1, l0, l1))
        energy[b] = e


@njit(reading("void(float64[:, ::1], float64[:, ::1], float64[::1])", 0, 1), cache=True)
def path_log_index_reduce(d, l, out):
    """out[b] = sum_i (logaddexp(l_i, l_{i+1}) - log 2) sqrt(d_i)."""
    nb, k = d.shape
    for b in range(nb):
        s = 0.0
        for i in range(k):
            s += segment_log_index(l[b, i], l[b, i + 1], d[b, i])
        out[b] = s
