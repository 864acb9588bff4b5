"""The Gauss-Newton metric of the path energy and its block-tridiagonal solve (MATH.md 3.1).

For E = sum_i w_i |G(x_{i+1}) - G(x_i)|^2 with the weights w_i held fixed, the Gauss-Newton
matrix is the *matrix-weighted path Laplacian*, block tridiagonal over the free points::

    M_jj = 2 (w_{j-1} + w_j) J_j^T J_j,      M_{j,j+1} = -2 w_j J_j^T J_{j+1}

(J_j the generator's Jacobian at x_j). It is positive semi-definite and sees what the
scalar path Laplacian 2 c (L_w kron I) cannot: the generator's gain differs by orders of
magnitude between latent directions (docs/solver-diagnosis.md). Directions with J_j v ~ 0
are shaped only by the realism term, whose convex part is added per point::

    R_j = [ dE/dl_j grad^2 l_j + (d^2E/dl_j^2)_+ grad l_j grad l_j^T ]_+

([.]_+: eigenvalues below 0 set to 0), l_j = log ri(x_j); in closed form where l depends on
the distance to a center alone (:func:`radial_realism_blocks`). With ``s`` the two-term softmax
weights of a segment's ends and ``log a_i`` its log scaled index (MATH.md 3)::

    dE/dl_j    = 2 log a_{j-1} s^R_{j-1} d_{j-1} + 2 log a_j s^L_j d_j
    d^2E/dl_j^2 = 2 d_{j-1} ((s^R)^2 + log a s^L s^R)_{j-1} + 2 d_j ((s^L)^2 + log a s^L s^R)_j

Everything here is float64 torch on the paths' device.
"""
from __future__ import annotations

import math

import torch


def realism_derivatives(log_ri, dist2, alpha):
    """(dE/dl, d^2E/dl^2) (n, K-1) of the free points from log ri (n, K+1) of the whole path
    and the squared decoded steps d_i (n, K), float64."""
    l = log_ri.to(torch.float64)
    log_a = math.log(alpha) + torch.logaddexp(l[:, :-1], l[:, 1:]) - math.log(2.0)
    s_left = torch.sigmoid(l[:, :-1] - l[:, 1:])  # r_i / (r_i + r_{i+1})
    s_right = 1.0 - s_left
    cross = log_a * s_left * s_right
    first = 2 * log_a * dist2
    d_l = first[:, :-1] * s_right[:, :-1] + first[:, 1:] * s_left[:, 1:]
    second = 2 * dist2[:, :-1] * (s_right[:, :-1] ** 2 + cross[:, :-1]) + \
        2 * dist2[:, 1:] * (s_left[:, 1:] ** 2 + cross[:, 1:])
    return d_l, second


def realism_blocks(d_l, d2_l, grad_l, hess_l):
    """The convex part R (n, K-1, D, D) of the realism term's Hessian (see the module
    docstring) from dE/dl, d^2E/dl^2 (n, K-1), grad l (n, K-1, D) and grad^2 l (n, K-1, D, D)."""
    r = d_l[..., None, None] * hess_l + \
        d2_l.clamp(min=0)[..., None, None] * (grad_l[..., :, None] * grad_l[..., None, :])
    r = 0.5 * (r + r.mT)
    # most blocks are positive definite already (a Cholesky, far cheaper than an eigh, says so)
    _, info = torch.linalg.cholesky_ex(r)
    bad = info != 0
    if bad.any():
        values, vectors = torch.linalg.eigh(r[bad])
        r[bad] = (vectors * values.clamp(min=0)[..., None, :]) @ vectors.mT
    return r


def radial_realism_blocks(d_l, d2_l, grad_l, tangential, radial, unit):
    """:func:`realism_blocks` where l depends on the distance to a center alone
    (``PathProblem.log_ri_radial_curvature``): there grad^2 l = tangential (I - u u^T) +
    radial u u^T and grad l = (grad l . u) u, so R's eigenvalues are known without an eigh:

        [dE/dl tangential]_+ across u (D - 1 times),
        [dE/dl radial + (d^2E/dl^2)_+ (grad l . u)^2]_+ along u.

    Shapes: d_l, d2_l, tangential, radial (n, K-1); grad_l, unit (n, K-1, D)."""
    across = (d_l * tangential).clamp(min=0)
    along = (d_l * radial + d2_l.clamp(min=0) * torch.linalg.vecdot(grad_l, unit).square()).clamp(min=0)
    eye = torch.eye(unit.shape[-1], dtype=unit.dtype, device=unit.device)
    return across[..., None, None] * eye + (along - across)[..., None, None] * (unit[..., :, None] * unit[..., None, :])


def realism_term(problem, x, d_l, d2_l):
    """R at the free points x (n, K-1, D) of ``problem`` (a PathProblem): in closed form for a
    prior whose ri depends on the distance to a center alone, else from the Hessian of l by
    differences and an eigh of the blocks that are not positive definite."""
    center = problem.isotropic_center()
    if center is None:
        return realism_blocks(d_l, d2_l, *problem.log_ri_hessian(x))
    return radial_realism_blocks(d_l, d2_l, *problem.log_ri_radial_curvature(x, center))


def gauss_newton_blocks(jtj, jtj_next, weights, realism):
    """(diag (n, K-1, D, D), off (n, K-2, D, D)) of M + R: ``jtj`` = J_j^T J_j (n, K-1, D, D),
    ``jtj_next`` = J_j^T J_{j+1} (n, K-2, D, D), ``weights`` w (n, K), ``realism`` R."""
    w = weights.to(torch.float64)
    diag = 2 * (w[:, :-1] + w[:, 1:])[..., None, None] * jtj + realism
    off = -2 * w[:, 1:-1, None, None] * jtj_next
    return diag, off


def solve_block_tridiagonal(diag, off, rhs, damping):
    """x with (M + Lambda_b) x = rhs for each path b, M symmetric block tridiagonal with
    blocks ``diag`` (n, m, D, D) and ``off`` (n, m-1, D, D) (M_{j,j+1} = off_j), rhs (n, m, D),
    Lambda_b block diagonal with blocks damping[b, j] I (damping (n, m)).
    Returns (x, damping used): :func:`factor_block_tridiagonal`, then :func:`substitute`.
    """
    chol, coupling, damping = factor_block_tridiagonal(diag, off, damping)
    return substitute(chol, coupling, rhs), damping


def factor_block_tridiagonal(diag, off, damping):
    """(chol, coupling, damping used) of M + Lambda (see :func:`solve_block_tridiagonal`).

    Block Cholesky (block Thomas): M = L L^T with diagonal blocks L_j = chol(diag_j -
    C_{j-1}^T C_{j-1}) and C_j = L_j^{-1} off_j; cost m D^3 per path. Where a block is not
    positive definite (a singular or indefinite system), that path's damping is raised
    100-fold (at least to 1e-12 of its blocks' mean diagonal) and its factorisation redone, so
    that a solve with the result is never NaN.
    """
    n, m, d, _ = diag.shape
    damping = damping.clone()
    eye = torch.eye(d, dtype=diag.dtype, device=diag.device)
    chol = torch.empty_like(diag)
    coupling = torch.empty_like(off)
    todo = torch.arange(n, device=diag.device)
    for _ in range(12):
        c, cp, failed = _factor(diag[todo], off[todo], damping[todo], eye)
        ok = ~failed
        if ok.any():
            keep = ok.nonzero().flatten()
            chol[todo[keep]], coupling[todo[keep]] = c[keep], cp[keep]
        if not failed.any():
            return chol, coupling, damping
        todo = todo[failed]
        scale = diag[todo].diagonal(dim1=-2, dim2=-1).abs().mean(dim=2)
        damping[todo] = torch.maximum(100 * damping[todo], 1e-12 * scale + torch.finfo(diag.dtype).tiny)
    raise FloatingPointError("the Gauss-Newton system could not be factored even with damping; "
                             "its blocks hold NaN or inf")


def _factor(diag, off, damping, eye):
    n, m, d, _ = diag.shape
    chol = torch.empty_like(diag)
    coupling = torch.empty_like(off)
    failed = torch.zeros(n, dtype=torch.bool, device=diag.device)
    for j in range(m):
        block = diag[:, j] + damping[:, j, None, None] * eye
        if j:
            block = block - coupling[:, j - 1].mT @ coupling[:, j - 1]
        chol[:, j], info = torch.linalg.cholesky_ex(block)
        failed |= info != 0
        if failed.any():  # keep the failed paths' arithmetic finite; their result is dropped
            chol[failed, j] = eye
        if j < m - 1:
            coupling[:, j] = torch.linalg.solve_triangular(chol[:, j], off[:, j], upper=False)
    return chol, coupling, failed


def substitute(chol, coupling, rhs):
    """x with L L^T x = rhs for the factors of :func:`factor_block_tridiagonal`, rhs (n, m, D)."""
    m = chol.shape[1]
    y = torch.empty_like(rhs)
    for j in range(m):
        r = rhs[:, j, :, None]
        if j:
            r = r - coupling[:, j - 1].mT @ y[:, j - 1, :, None]
        y[:, j] = torch.linalg.solve_triangular(chol[:, j], r, upper=False)[..., 0]
    x = torch.empty_like(rhs)
    for j in reversed(range(m)):
        r = y[:, j, :, None]
        if j < m - 1:
            r = r - coupling[:, j] @ x[:, j + 1, :, None]
        x[:, j] = torch.linalg.solve_triangular(chol[:, j].mT, r, upper=True)[..., 0]
    return x
