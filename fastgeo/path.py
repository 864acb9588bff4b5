"""Path realism index and the energy of ri-optimal interpolation (MATH.md 2 and 3).

For a batch of B paths of K+1 points with decoded outputs G_j (flattened to N values) and
log realism indices l_j = log ri(x_j):

    log a_i = log alpha + logaddexp(l_i, l_{i+1}) - log 2,   w_i = (log a_i)^2,
    d_i = |G_{i+1} - G_i|^2,                                 E = sum_i w_i d_i            (eq. 3)
    log ri(path) ~ sum_i (logaddexp(l_i, l_{i+1}) - log 2) |G_{i+1} - G_i|             (MATH.md 2)

This first version is the plain float64 formula (the reference); the fused kernels replace
its internals without changing the API.
"""
from __future__ import annotations

import math

import numpy as np

from ._arrays import as_array, check_finite, common_kind
from .realism import check_alpha

LOG2 = math.log(2.0)


def _check_path_arrays(decoded, log_ri):
    kind = common_kind(decoded, log_ri, names=["decoded", "log_ri"])
    if kind.is_cuda:
        from .backends.cuda import NOT_YET_ON_GPU

        raise NotImplementedError(NOT_YET_ON_GPU.format(what="The path energy (fastgeo.path)"))
    g, _ = as_array(decoded, "decoded")
    l, _ = as_array(log_ri, "log_ri")
    if g.ndim < 2 or l.ndim != 2 or g.shape[:2] != l.shape:
        raise ValueError(
            f"decoded must have shape (B, K+1, ...) and log_ri shape (B, K+1); got {tuple(g.shape)} "
            f"and {tuple(l.shape)}"
        )
    if g.shape[1] < 2:
        raise ValueError(f"a path needs at least 2 points, got K+1 = {g.shape[1]}")
    check_finite(g, "decoded")
    if np.isnan(l).any() or np.isposinf(l).any():
        raise ValueError("log_ri contains NaN or +inf")
    return kind, g, l


def energy_and_grads(decoded, log_ri, alpha, backend="auto"):
    """(E, dE/d decoded, dE/d log_ri) in the array type of the inputs (no autograd graph)."""
    kind, g, l = _check_path_arrays(decoded, log_ri)
    log_alpha = math.log(check_alpha(alpha, upper_inclusive=False))
    b, k1 = l.shape
    G = np.asarray(g, dtype=np.float64).reshape(b, k1, -1)
    l64 = np.asarray(l, dtype=np.float64)
    diff = G[:, 1:] - G[:, :-1]
    d = np.einsum("bkn,bkn->bk", diff, diff)
    lse = np.logaddexp(l64[:, :-1], l64[:, 1:])
    log_a = log_alpha + lse - LOG2
    w = log_a * log_a
    E = np.sum(w * d, axis=1)
    dG = np.zeros_like(G)
    dG[:, 1:] += 2 * w[:, :, None] * diff
    dG[:, :-1] -= 2 * w[:, :, None] * diff
    coef = 2 * log_a * d
    dl = np.zeros_like(l64)
    dl[:, :-1] += coef * np.exp(l64[:, :-1] - lse)
    dl[:, 1:] += coef * np.exp(l64[:, 1:] - lse)
    return (kind.wrap(E.astype(g.dtype)), kind.wrap(dG.reshape(g.shape).astype(g.dtype)),
            kind.wrap(dl.astype(l.dtype)))


def path_energy(decoded, log_ri, alpha, backend="auto"):
    """The energy E of eq. (3) of each path, shape (B,)."""
    return energy_and_grads(decoded, log_ri, alpha, backend)[0]


def path_log_index(decoded, log_ri, backend="auto"):
    """log ri(path) ~ sum_i log((r_i + r_{i+1})/2) |G_{i+1} - G_i| per path, shape (B,)."""
    kind, g, l = _check_path_arrays(decoded, log_ri)
    b, k1 = l.shape
    G = np.asarray(g, dtype=np.float64).reshape(b, k1, -1)
    step = np.linalg.norm(G[:, 1:] - G[:, :-1], axis=2)
    l64 = np.asarray(l, dtype=np.float64)
    log_rbar = np.logaddexp(l64[:, :-1], l64[:, 1:]) - LOG2
    return kind.wrap(np.sum(log_rbar * step, axis=1).astype(g.dtype))
