"""CPU kernels of the L-BFGS path solver (fastgeo/_solver/lbfgs.py, fastgeo/_solver/directions.py).

Two routes share the scalar recursions here. On a GPU the solver reads the pair memory in
batched torch products and runs only the two-loop recursion's m x m arithmetic on the host
(``two_loop_first``, ``two_loop_second``). On the CPU the whole L-BFGS step is compiled, one
path at a time, so that a path's pairs (m n numbers, 64 KiB at m = 10, n = 1600 float32)
come from memory once per pass and stay in cache for the passes that follow:

- ``accept_iterates``: a path's accepted point and gradient, the new pair s = x_new - x,
  y = g_new - g (stored over the oldest if its curvature s^T y is positive enough) and the products with the
  stored pairs that the recursion needs (s_i^T y, s_i^T g_new);
- ``lbfgs_directions``: p = -H g by the two-loop recursion with H0 = gamma L_w^{-1} (or
  gamma I), L_w^{-1} applied by a tridiagonal solve (O(n) per application instead of a dense
  (K-1)^2 d product), and the slope g^T p.

Notation (slot t of path b): rho[b, t] = 1 / s_t^T y_t; gram[b, i, t] = s_i^T y_t for pair i
older than pair t (and i = t); sg[b, t] = s_t^T g for the path's current gradient g. These
are float64 host arrays; the vectors (points, gradients, pairs, directions) are in the path's
dtype, and every product is accumulated in float64.

``fastmath`` (reassoc/contract) is set on the call-free vector loops only (see
tests/test_numba_flags.py).
"""
import numpy as np
from numba import njit, prange

from .signatures import OnDemand, on_demand

_FASTMATH = {"reassoc", "contract"}
leaf = njit(cache=True, nogil=True, fastmath=_FASTMATH)  # vectorised loops; call nothing
jit = njit(cache=True, nogil=True)

_SIG_FIRST = "void(int64[::1], int64[::1], int64[::1], float64[:, ::1], float64[:, :, ::1], float64[:, ::1], " \
             "float64[:, ::1])"
_SIG_SECOND = "void(int64[::1], int64[::1], int64[::1], float64[:, ::1], float64[:, :, ::1], float64[:, ::1], " \
              "float64[:, ::1], float64[:, ::1], float64[::1], float64[:, ::1], float64[::1])"
_DTYPES = ("float32", "float64")  # of the points, gradients, pairs and directions
# rho, gram, sg, head, n_pairs
_MEMORY = "float64[:, ::1], float64[:, :, ::1], float64[:, ::1], int64[::1], int64[::1]"


def _accept_signature(f):
    return (f"void(int64[::1], int64[::1], {f}[:, ::1], {f}[:, ::1], {f}[:, ::1], {f}[:, ::1], "
            f"{f}[:, :, ::1], {f}[:, :, ::1], {_MEMORY}, float64, float64[::1])")


def _direction_signature(f):
    return (f"void(int64[::1], {f}[:, ::1], {f}[:, :, ::1], {f}[:, :, ::1], float64[:, ::1], boolean, "
            f"float64[::1], {_MEMORY}, {f}[:, ::1], float64[::1], float64[::1])")


@njit(cache=True, inline="always")
def _slot(head, j, m):
    """The ring-buffer slot of a path's j-th newest pair."""
    return (head - 1 - j) % m


# -- the two-loop recursion on a path's m x m numbers ------------------------------------------
@jit
def _first_loop(b, head, n_pairs, rho, gram, sg, a):
    """a_j = rho_j s_j^T q_j, newest pair first, where q_j = g - sum_{i newer} a_i y_i, so
    s_j^T q_j = s_j^T g - sum_{i newer than j} a_i s_j^T y_i. Writes a (slot order, 0 in
    slots without a pair)."""
    m = rho.shape[1]
    for t in range(m):
        a[t] = 0.0
    for j in range(n_pairs[b]):
        sj = _slot(head[b], j, m)
        acc = sg[b, sj]
        for i in range(j):
            si = _slot(head[b], i, m)
            acc -= gram[b, sj, si] * a[si]
        a[sj] = rho[b, sj] * acc


@jit
def _second_loop(b, head, n_pairs, rho, gram, sg, a, ypq, gamma, c):
    """c_j = a_j - rho_j y_j^T r_j, oldest pair first, where r_j = gamma P q + sum_{i older}
    c_i s_i, so y_j^T r_j = gamma y_j^T P q + sum_{i older than j} c_i s_i^T y_j, given
    ypq[t] = y_t^T P q. Writes c (slot order); returns sum_j c_j s_j^T g (for the slope)."""
    m = rho.shape[1]
    for t in range(m):
        c[t] = 0.0
    total = 0.0
    for j in range(n_pairs[b] - 1, -1, -1):
        sj = _slot(head[b], j, m)
        acc = gamma * ypq[sj]
        for i in range(j + 1, n_pairs[b]):
            si = _slot(head[b], i, m)
            acc += gram[b, si, sj] * c[si]
        cj = a[sj] - rho[b, sj] * acc
        c[sj] = cj
        total += cj * sg[b, sj]
    return total


@on_demand(lambda f: _SIG_FIRST, dtype_at=3, dtypes=("float64",), cache=True, nogil=True)  # GPU route only
def two_loop_first(rows, head, n_pairs, rho, gram, sg, a_slot):
    """:func:`_first_loop` for paths rows[r], into a_slot[r] (the GPU route's host step)."""
    for r in range(rows.shape[0]):
        _first_loop(rows[r], head, n_pairs, rho, gram, sg, a_slot[r])


@on_demand(lambda f: _SIG_SECOND, dtype_at=3, dtypes=("float64",), cache=True, nogil=True)
def two_loop_second(rows, head, n_pairs, rho, gram, sg, a_slot, ypq_slot, gamma, c_slot, c_dot_sg):
    """:func:`_second_loop` for paths rows[r] given ypq_slot[r, t] = y_t^T P q, into
    c_slot[r] and c_dot_sg[r] (the GPU route's host step)."""
    for r in range(rows.shape[0]):
        c_dot_sg[r] = _second_loop(rows[r], head, n_pairs, rho, gram, sg, a_slot[r], ypq_slot[r], gamma[r],
                                   c_slot[r])


# -- vector loops ---------------------------------------------------------------------------
@leaf
def _dot(u, v):
    acc = 0.0
    for e in range(u.shape[0]):
        acc += np.float64(u[e]) * np.float64(v[e])
    return acc


@leaf
def _dot2(u, v, w):
    """(u^T v, u^T w): one pass over u."""
    acc_v = 0.0
    acc_w = 0.0
    for e in range(u.shape[0]):
        ue = np.float64(u[e])
        acc_v += ue * np.float64(v[e])
        acc_w += ue * np.float64(w[e])
    return acc_v, acc_w


@leaf
def _axpy(coef, v, out):
    """out += coef v (out float64)."""
    for e in range(out.shape[0]):
        out[e] += coef * np.float64(v[e])


@leaf
def _widen(v, out):
    for e in range(out.shape[0]):
        out[e] = np.float64(v[e])


@leaf
def _new_pair(x, x_new, g, g_new, s, y):
    """s = x_new - x, y = g_new - g (in the path's dtype: the pair as it is stored); returns
    (s^T y, y^T y, s^T g_new) in float64."""
    sy = 0.0
    yy = 0.0
    sg = 0.0
    for e in range(s.shape[0]):
        se = x_new[e] - x[e]
        ye = g_new[e] - g[e]
        s[e] = se
        y[e] = ye
        sy += np.float64(se) * np.float64(ye)
        yy += np.float64(ye) * np.float64(ye)
        sg += np.float64(se) * np.float64(g_new[e])
    return sy, yy, sg


@jit
def _abs_max(v):
    """max |v| (apart from _new_pair's loop, which a maximum would keep from vectorising)."""
    top = 0.0
    for e in range(v.shape[0]):
        top = max(top, abs(np.float64(v[e])))
    return top


@leaf
def _copy(v, out):
    """out = v, rounded to out's dtype."""
    for e in range(out.shape[0]):
        out[e] = v[e]


# -- the path-Laplacian preconditioner ------------------------------------------------------
@jit
def _laplacian_factor(w, mult, inv_pivot):
    """Elimination factors of L_w (the (K-1) x (K-1) Laplacian of a chain with both ends
    held: diagonal w_{i} + w_{i+1}, off-diagonal -w_{i+1}) for weights w (K,) > 0.

    Eliminating from the first point, pivot_i = c_i + w_{i+1}, where c_i is the conductance
    from point i back to the held first point through the chain: c_0 = w_0 and
    c_{i+1} = c_i w_{i+1} / pivot_i (resistors in series). Sums and products of positive
    terms only, so no cancellation, whatever the weights' spread (they are formed in units of
    the largest, so nothing overflows). mult_i = w_{i+1} / pivot_i in (0, 1) is both the
    forward multiplier and the back substitution's coupling; inv_pivot_i = 1 / pivot_i in
    the weights' own units.
    """
    n_free = mult.shape[0]
    top = w[0]
    for t in range(1, n_free + 1):
        top = max(top, w[t])
    c = w[0] / top
    for i in range(n_free):
        wn = w[i + 1] / top
        pivot = c + wn
        mult[i] = wn / pivot
        inv_pivot[i] = 1.0 / (pivot * top)
        c *= mult[i]


@leaf
def _eliminate_row(prev, cur, mult):
    for x in range(cur.shape[0]):
        cur[x] += mult * prev[x]


@leaf
def _substitute_row(cur, nxt, inv_pivot, mult):
    for x in range(cur.shape[0]):
        cur[x] = inv_pivot * cur[x] + mult * nxt[x]


@jit
def _laplacian_solve(mult, inv_pivot, v):
    """v <- L_w^{-1} v for v (K-1, d) float64 (each of the d columns is one chain), from
    :func:`_laplacian_factor`: forward elimination, then back substitution
    x_i = r_i / pivot_i + mult_i x_{i+1}. (L_w is an M-matrix: the multipliers are
    positive, so the solve is componentwise stable.)"""
    n_free = v.shape[0]
    for i in range(1, n_free):
        _eliminate_row(v[i - 1], v[i], mult[i - 1])
    last = v[n_free - 1]
    for x in range(last.shape[0]):
        last[x] *= inv_pivot[n_free - 1]
    for i in range(n_free - 2, -1, -1):
        _substitute_row(v[i], v[i + 1], inv_pivot[i], mult[i])


@njit("void(float64[:, ::1], float64[:, :, ::1])", cache=True, nogil=True)
def path_laplacian_inverse_into(w, out):
    """out[b] = L_w^{-1} for the weights w[b] (K,) > 0 of a chain with both ends held:
    (L_w^{-1})_ij = rho_min(i,j) sigma_max(i,j) / R, with the resistances rho_i (from the
    first point to point i), sigma_j (from point j to the last) and R = rho_K, formed in
    units of the smallest weight's resistance so that neither tiny nor huge weights overflow
    (see fastgeo._solver.lbfgs.path_laplacian_inverse). The GPU route applies it as a dense product."""
    nb, k = w.shape
    n_free = k - 1
    rho = np.empty(k)
    sigma = np.empty(k)
    for b in range(nb):
        scale = w[b, 0]
        for t in range(1, k):
            scale = min(scale, w[b, t])
        acc = 0.0
        for t in range(k):
            acc += scale / w[b, t]
            rho[t] = acc  # rho[t]: resistance from point 0 to point t + 1
        acc = 0.0
        for t in range(k - 1, -1, -1):
            acc += scale / w[b, t]
            sigma[t] = acc  # sigma[t]: from point t to the last
        denom = rho[k - 1] * scale
        for i in range(n_free):
            for j in range(i, n_free):
                v = rho[i] * sigma[j + 1] / denom
                out[b, i, j] = v
                out[b, j, i] = v


# -- the CPU route: one path at a time --------------------------------------------------------
@njit(cache=True, inline="always")
def _accept_path(b, src, x, grad, x_new, g_new, S, Y, rho, gram, sg, head, n_pairs, curvature, s, y, column):
    m = S.shape[1]
    sy, yy, sg_new = _new_pair(x[b], x_new[src], grad[b], g_new[src], s, y)
    depth = n_pairs[b]
    for j in range(depth):
        t = _slot(head[b], j, m)
        column[t], sg[b, t] = _dot2(S[b, t], y, g_new[src])
    if sy > curvature * yy:  # false for NaN
        new = head[b]
        _copy(s, S[b, new])
        _copy(y, Y[b, new])
        rho[b, new] = 1.0 / sy
        for j in range(depth):
            t = _slot(head[b], j, m)
            gram[b, t, new] = column[t]  # s_t^T y_new of the older pairs; the new one's own:
        gram[b, new, new] = sy
        sg[b, new] = sg_new
        head[b] = (new + 1) % m
        n_pairs[b] = min(depth + 1, m)
    _copy(x_new[src], x[b])
    _copy(g_new[src], grad[b])
    return _abs_max(g_new[src])


def _accept_iterates(rows, src, x, grad, x_new, g_new, S, Y, rho, gram, sg, head, n_pairs, curvature, gmax):
    """Accept iterate x_new[src[r]] with gradient g_new[src[r]] for path rows[r]: store the
    curvature pair it makes with the path's current point and gradient over its oldest if
    s^T y > curvature y^T y, bring the path's products s_t^T g up to date, and copy the
    point and gradient into x[rows[r]], grad[rows[r]]; gmax[r] = max |g_new|."""
    m, n = S.shape[1], S.shape[2]
    for r in prange(rows.shape[0]):
        s = np.empty(n, dtype=S.dtype)
        y = np.empty(n, dtype=S.dtype)
        column = np.empty(m)
        gmax[r] = _accept_path(rows[r], src[r], x, grad, x_new, g_new, S, Y, rho, gram, sg, head, n_pairs,
                               curvature, s, y, column)


@njit(cache=True, inline="always")
def _direction_path(b, g, S, Y, w, precondition, gamma, rho, gram, sg, head, n_pairs, out,
                    a, c, ypq, q, hy, mult, inv_pivot):
    """-H g of path b into out[b]; returns (gamma, slope), or NaN for both where gamma was
    to come from the newest pair (NaN given) and that gives no positive number."""
    m, n_free = S.shape[1], mult.shape[0]
    depth = n_pairs[b]
    if precondition:
        _laplacian_factor(w[b], mult, inv_pivot)
    _first_loop(b, head, n_pairs, rho, gram, sg, a)
    _widen(g[b], q)
    for j in range(depth):
        t = _slot(head[b], j, m)
        _axpy(-a[t], Y[b, t], q)
    if precondition:
        _laplacian_solve(mult, inv_pivot, q.reshape((n_free, -1)))  # q <- P q
    if np.isnan(gamma):
        if depth == 0:
            return np.nan, np.nan
        newest = _slot(head[b], 0, m)
        _widen(Y[b, newest], hy)
        if precondition:
            _laplacian_solve(mult, inv_pivot, hy.reshape((n_free, -1)))
        gamma = gram[b, newest, newest] / _dot(Y[b, newest], hy)
        if not (np.isfinite(gamma) and gamma > 0):
            return np.nan, np.nan
    g_pq = _dot(g[b], q)
    for j in range(depth):
        t = _slot(head[b], j, m)
        ypq[t] = _dot(Y[b, t], q)
    c_sg = _second_loop(b, head, n_pairs, rho, gram, sg, a, ypq, gamma, c)
    for e in range(q.shape[0]):
        q[e] *= -gamma
    for j in range(depth):
        t = _slot(head[b], j, m)
        _axpy(-c[t], S[b, t], q)
    _copy(q, out[b])
    return gamma, -(gamma * g_pq + c_sg)


def _lbfgs_directions(rows, g, S, Y, w, precondition, gamma, rho, gram, sg, head, n_pairs, out, gamma_out,
                      slope):
    """p = -H g (into out[rows[r]]) and slope[r] = g^T p for paths rows[r], H the L-BFGS
    inverse Hessian of the path's stored pairs with H0 = gamma_r L_w^{-1} (w = w[rows[r]]; or
    gamma_r I without ``precondition``)::

        a_j = rho_j s_j^T q,  q <- q - a_j y_j     (newest pair first; q = g at the start)
        r = gamma P q
        c_j = a_j - rho_j y_j^T r,  r <- r + c_j s_j     (oldest first);  p = -r

    gamma_r is gamma[r] where that is a number, else s^T y / y^T P y of the newest pair;
    gamma_out[r] is the one used, NaN (and slope NaN, out[rows[r]] untouched) where it was to
    come from the pairs and the path has none or the ratio is not positive."""
    m, n = S.shape[1], S.shape[2]
    n_free = w.shape[1] - 1
    for r in prange(rows.shape[0]):
        a = np.empty(m)
        c = np.empty(m)
        ypq = np.empty(m)
        q = np.empty(n)
        hy = np.empty(n)
        mult = np.empty(n_free)
        inv_pivot = np.empty(n_free)
        gamma_out[r], slope[r] = _direction_path(rows[r], g, S, Y, w, precondition, gamma[r], rho, gram, sg,
                                                 head, n_pairs, out, a, c, ypq, q, hy, mult, inv_pivot)


# each compiled for the dtype of the points (x, g) when a call first needs it (kernels/signatures.py)
accept_iterates = OnDemand(_accept_iterates, _accept_signature, dtype_at=2, parallel=True, cache=True)
accept_iterates_serial = OnDemand(_accept_iterates, _accept_signature, dtype_at=2, cache=True, nogil=True)
lbfgs_directions = OnDemand(_lbfgs_directions, _direction_signature, dtype_at=1, parallel=True, cache=True)
lbfgs_directions_serial = OnDemand(_lbfgs_directions, _direction_signature, dtype_at=1, cache=True, nogil=True)
