"""Numba CPU kernel of the held Gauss-Newton direction of "lbfgs-gn" (fastgeo/_solver/gauss_newton.py).

For each path, r = H g by the two-loop recursion over the L-BFGS pairs gathered since the last
refresh, with H0 = (L L^T)^{-1} the held block-tridiagonal factorisation of the Gauss-Newton
matrix (fastgeo/_solver/metric.py: ``factor_block_tridiagonal``): diagonal Cholesky blocks L_j
and couplings C_j = L_j^{-1} M_{j,j+1}. The substitution solves L L^T x = q in two sweeps::

    forward   y_j = L_j^{-1} (q_j - C_{j-1}^T y_{j-1}),   j = 0 .. m-1
    backward  x_j = L_j^{-T} (y_j - C_j x_{j+1}),        j = m-1 .. 0

The torch route (metric.substitute) makes 2 m small batched calls a substitution and gathers
the factors of the paths it serves; on the CPU their overhead exceeds the 4 m D^2
multiply-adds a path, so this kernel reads the held factors in place, one path at a time,
and sweeps with unit-stride inner loops. Everything is float64.
"""
import numpy as np
from numba import njit

jit = njit(cache=True, nogil=True)

_SIGNATURE = ("void(int64[::1], float64[:, :, :, ::1], float64[:, :, :, ::1], float64[:, :, :, ::1], "
              "float64[:, :, :, ::1], int64[::1], float64[:, :, ::1], float64[:, :, ::1])")


@jit
def substitute_path(chol, coupling, q, y, x):
    """x with L L^T x = q for one path's factors (chol (m, D, D), coupling (m-1, D, D), q, y
    (scratch) and x (m, D))."""
    m, d = q.shape
    t = np.empty(d)
    for j in range(m):
        for i in range(d):
            t[i] = q[j, i]
        if j:
            for k in range(d):  # t -= C_{j-1}^T y_{j-1}, by rows of C
                yk = y[j - 1, k]
                for i in range(d):
                    t[i] -= coupling[j - 1, k, i] * yk
        for i in range(d):  # L_j y_j = t, by rows of L_j
            acc = t[i]
            for k in range(i):
                acc -= chol[j, i, k] * y[j, k]
            y[j, i] = acc / chol[j, i, i]
    for j in range(m - 1, -1, -1):
        for i in range(d):
            acc = y[j, i]
            if j < m - 1:
                for k in range(d):  # t = y_j - C_j x_{j+1}, by rows of C
                    acc -= coupling[j, i, k] * x[j + 1, k]
            t[i] = acc
        for i in range(d - 1, -1, -1):  # L_j^T x_j = t, column by column (rows of L_j)
            xi = t[i] / chol[j, i, i]
            x[j, i] = xi
            for k in range(i):
                t[k] -= chol[j, i, k] * xi


@jit
def _dot(a, b):
    m, d = a.shape
    acc = 0.0
    for j in range(m):
        for i in range(d):
            acc += a[j, i] * b[j, i]
    return acc


@njit(_SIGNATURE, cache=True, nogil=True)
def held_directions(rows, chol, coupling, pairs_s, pairs_y, n_pairs, g, out):
    """out[r] = H g[r] for path rows[r] (its factors chol[rows[r]], coupling[rows[r]], its first
    n_pairs[r] pairs pairs_s/pairs_y[rows[r], k], oldest first), by the two-loop recursion."""
    m, d = g.shape[1], g.shape[2]
    q = np.empty((m, d))
    y = np.empty((m, d))
    alphas = np.empty(pairs_s.shape[1])
    rhos = np.empty(pairs_s.shape[1])
    for r in range(rows.shape[0]):
        b = rows[r]
        q[:, :] = g[r]
        for k in range(n_pairs[r] - 1, -1, -1):
            s, yk = pairs_s[b, k], pairs_y[b, k]
            rho = 1.0 / _dot(s, yk)
            a = rho * _dot(s, q)
            for j in range(m):
                for i in range(d):
                    q[j, i] -= a * yk[j, i]
            alphas[k], rhos[k] = a, rho
        x = out[r]
        substitute_path(chol[b], coupling[b], q, y, x)
        for k in range(n_pairs[r]):
            s, yk = pairs_s[b, k], pairs_y[b, k]
            beta = rhos[k] * _dot(yk, x)
            for j in range(m):
                for i in range(d):
                    x[j, i] += (alphas[k] - beta) * s[j, i]
