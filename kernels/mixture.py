"""Scalar math of a Gaussian mixture's log-density and its gradient (MATH.md 1.3), for the CPU
and CUDA kernels.

With whitening matrices W_k = L_k^{-1} (lower triangular, L_k L_k^T = Sigma_k), means mu_k and
log_norm_k = log w_k + log|W_k| - D/2 log 2 pi, for a row z::

    y_k = W_k (z - mu_k),   c_k = log_norm_k - |y_k|^2 / 2,   log f = logsumexp_k c_k,
    grad log f = -sum_k r_k W_k^T y_k,   r_k = exp(c_k - log f).

One pass over the components with an online log-sum-exp: the running maximum m, the sum
s = sum_k exp(c_k - m) and the gradient accumulator a = sum_k exp(c_k - m) W_k^T y_k are
rescaled by exp(m_old - m_new) whenever a larger c_k arrives, so nothing overflows or
underflows that float64 can hold. Components with c_k = -inf (zero weight, or |y_k|^2
overflowing) are skipped; a row where every component is -inf gets log f = -inf and a zero
gradient (its realism index is 0 and so is the index's gradient). Everything accumulates in
float64 whatever z's dtype. Plain ``@njit`` scalar code on arrays: the same source compiles
for the ``@cuda.jit`` kernel.
"""
import math

import numpy as np
from numba import njit

jit = njit(cache=True, nogil=True)


@njit(cache=True, nogil=True, inline="always")
def whiten_entry(z, i, whiten, first, means, k, j):
    """(W_k (z_i - mu_k))_j in float64: the diagonal term, then the row's nonzero columns left
    of it (none for a diagonal W_k; a loop that does not run costs next to nothing)."""
    y = whiten[k, j, j] * (np.float64(z[i, j]) - means[k, j])
    for l in range(first[k, j], j):
        y += whiten[k, j, l] * (np.float64(z[i, l]) - means[k, l])
    return y


@jit
def component_sq(z, i, whiten, first, means, k):
    """|W_k (z_i - mu_k)|^2 in float64 (W_k lower triangular, row j nonzero from column
    first[k, j] on)."""
    d = means.shape[1]
    q = 0.0
    for j in range(d):
        y = whiten_entry(z, i, whiten, first, means, k, j)
        q += y * y
    return q


@jit
def add_pulled_back(z, i, whiten, first, means, k, weight, grad):
    """grad[i, :] += weight W_k^T y_k with y_k = W_k (z_i - mu_k)."""
    d = means.shape[1]
    for j in range(d):
        wy = weight * whiten_entry(z, i, whiten, first, means, k, j)
        grad[i, j] += wy * whiten[k, j, j]
        for l in range(first[k, j], j):
            grad[i, l] += wy * whiten[k, j, l]


@jit
def mixture_row(z, i, whiten, first, means, log_norm, want_grad, grad):
    """log f(z_i) of the mixture; with want_grad, grad log f(z_i) in grad[i, :] (float64).

    first[k, j]: the first column of row j of W_k that may be nonzero (:func:`first_columns`;
    0 for a full matrix, j for a diagonal one, so diagonal and block-diagonal covariances
    cost O(D) per component instead of O(D^2)). A NaN in z_i gives NaN (and a NaN
    gradient)."""
    n_comp = means.shape[0]
    d = means.shape[1]
    if want_grad:
        for l in range(d):
            grad[i, l] = 0.0
    m = -math.inf
    s = 0.0
    for k in range(n_comp):
        if log_norm[k] == -math.inf:
            continue
        q = component_sq(z, i, whiten, first, means, k)
        if q != q:
            if want_grad:
                for l in range(d):
                    grad[i, l] = math.nan
            return math.nan
        c = log_norm[k] - 0.5 * q
        if c == -math.inf:
            continue
        if c > m:
            scale = math.exp(m - c)  # 0 for the first finite component
            s = s * scale + 1.0
            if want_grad:
                for l in range(d):
                    grad[i, l] *= scale
            m = c
            weight = 1.0
        else:
            weight = math.exp(c - m)
            s += weight
        if want_grad and weight > 0.0:
            add_pulled_back(z, i, whiten, first, means, k, weight, grad)
    if m == -math.inf:  # every component underflowed (or has zero weight): gradient 0
        return -math.inf
    if want_grad:
        inv = -1.0 / s
        for l in range(d):
            grad[i, l] *= inv
    return m + math.log(s)


def first_columns(whiten):
    """first[k, j] = the first column of row j of whiten[k] (K, D, D lower triangular) that is
    nonzero (j where the whole row left of the diagonal is zero): int64 (K, D), host numpy."""
    lower = np.tril(whiten != 0)
    d = whiten.shape[1]
    lower[:, np.arange(d), np.arange(d)] = True
    return np.argmax(lower, axis=2).astype(np.int64)
