"""The scalar recursions of the L-BFGS two-loop recursion, per path, on the host.

The solver (fastgeo/_lbfgs.py, ``PairMemory.direction``) reads the pair memory in three
batched products on the paths' device; between them the two-loop recursion runs on m x m
numbers per path: the coefficients a_j (newest pair first) and c_j (oldest first). Written
as numpy operations that is a few dozen tiny array operations per L-BFGS iteration; here it
is one compiled loop over the paths. Arrays are the solver's float64 host arrays, indexed by
ring-buffer slot; ``rows`` selects the paths.

Notation (slot t of path b): rho[b, t] = 1 / s_t^T y_t; gram[b, i, t] = s_i^T y_t for pair i
older than pair t (and i = t); sg[b, t] = s_t^T g for the path's current gradient g.
"""
import numpy as np
from numba import njit

_SIG_FIRST = "void(int64[::1], int64[::1], int64[::1], float64[:, ::1], float64[:, :, ::1], float64[:, ::1], " \
             "float64[:, ::1])"
_SIG_SECOND = "void(int64[::1], int64[::1], int64[::1], float64[:, ::1], float64[:, :, ::1], float64[:, ::1], " \
              "float64[:, ::1], float64[:, ::1], float64[::1], float64[:, ::1], float64[::1])"


@njit(cache=True, inline="always")
def _slot(head, j, m):
    """The ring-buffer slot of a path's j-th newest pair."""
    return (head - 1 - j) % m


@njit(_SIG_FIRST, cache=True, nogil=True)
def two_loop_first(rows, head, n_pairs, rho, gram, sg, a_slot):
    """a_j = rho_j s_j^T q_j, newest pair first, where q_j = g - sum_{i newer} a_i y_i, so
    s_j^T q_j = s_j^T g - sum_{i newer than j} a_i s_j^T y_i. Writes a_slot[r] (slot order,
    0 in slots without a pair) for path rows[r]."""
    m = rho.shape[1]
    for r in range(rows.shape[0]):
        b = rows[r]
        for t in range(m):
            a_slot[r, t] = 0.0
        for j in range(n_pairs[b]):
            sj = _slot(head[b], j, m)
            acc = sg[b, sj]
            for i in range(j):
                si = _slot(head[b], i, m)
                acc -= gram[b, sj, si] * a_slot[r, si]
            a_slot[r, sj] = rho[b, sj] * acc


@njit(_SIG_SECOND, cache=True, nogil=True)
def two_loop_second(rows, head, n_pairs, rho, gram, sg, a_slot, ypq_slot, gamma, c_slot, c_dot_sg):
    """c_j = a_j - rho_j y_j^T r_j, oldest pair first, where r_j = gamma P q + sum_{i older}
    c_i s_i, so y_j^T r_j = gamma y_j^T P q + sum_{i older than j} c_i s_i^T y_j, given
    ypq_slot[r, t] = y_t^T P q. Writes c_slot[r] (slot order) and c_dot_sg[r] = sum_j c_j
    s_j^T g (the slope g^T p needs it)."""
    m = rho.shape[1]
    for r in range(rows.shape[0]):
        b = rows[r]
        for t in range(m):
            c_slot[r, t] = 0.0
        total = 0.0
        for j in range(n_pairs[b] - 1, -1, -1):
            sj = _slot(head[b], j, m)
            acc = gamma[r] * ypq_slot[r, sj]
            for i in range(j + 1, n_pairs[b]):
                si = _slot(head[b], i, m)
                acc += gram[b, si, sj] * c_slot[r, si]
            c = a_slot[r, sj] - rho[b, sj] * acc
            c_slot[r, sj] = c
            total += c * sg[b, sj]
        c_dot_sg[r] = total


@njit("void(float64[:, ::1], float64[:, :, ::1])", cache=True, nogil=True)
def path_laplacian_inverse_into(w, out):
    """out[b] = L_w^{-1} for the weights w[b] (K,) > 0 of a chain with both ends held:
    (L_w^{-1})_ij = rho_min(i,j) sigma_max(i,j) / R, with the resistances rho_i (from the
    first point to point i), sigma_j (from point j to the last) and R = rho_K, formed in
    units of the smallest weight's resistance so that neither tiny nor huge weights overflow
    (see fastgeo._lbfgs.path_laplacian_inverse)."""
    nb, k = w.shape
    k1 = k - 1
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
        for i in range(k1):
            for j in range(i, k1):
                v = rho[i] * sigma[j + 1] / denom
                out[b, i, j] = v
                out[b, j, i] = v
