"""The L-BFGS parts of the path solver: curvature-pair memory, two-loop recursion, and the
path-Laplacian initial inverse Hessian (MATH.md 3; see :mod:`fastgeo._solver`).

The large arrays (the pairs s, y of every path, the Laplacian inverses) are torch tensors on
the paths' device; the small per-path numbers (rho = 1 / s^T y, the products s_i^T y_j of a
path's pairs, ring-buffer positions) are float64 numpy arrays on the host, where the few
operations on them cost microseconds instead of a torch dispatch each.

Two routes keep them: batched torch products (:meth:`PairMemory.products`,
:meth:`PairMemory.remember`, :meth:`PairMemory.direction`; the GPU's) and compiled CPU
kernels that do a path's whole step in one pass (:meth:`PairMemory.accept`,
:meth:`PairMemory.directions`; kernels/cpu_lbfgs.py). Both run the same scalar recursions
and keep the same state, and tests/test_lbfgs.py holds each against the dense BFGS inverse
and the two against each other.
"""
from __future__ import annotations

import numpy as np
import torch

TINY = np.finfo(np.float64).tiny
# a pair is stored only if s^T y > CURVATURE y^T y (positive curvature, to rounding)
CURVATURE = 1e-10


def to_host(t):
    """A float64 numpy copy of a small tensor (one device-to-host transfer)."""
    return t.detach().to(torch.float64).cpu().numpy().copy()


def to_device(a, like):
    """A small numpy array as a tensor of ``like``'s dtype on its device.

    Host-to-device copies are asynchronous (``non_blocking``): from pageable memory CUDA
    stages the source at once, so the host does not wait for the device's queue; only the
    device-to-host transfers (:func:`to_host`) synchronise.
    """
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.to(device=like.device, non_blocking=True).to(like.dtype)


def index_on(rows, device):
    """Row numbers (numpy) as an index tensor on ``device`` (an asynchronous copy)."""
    return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64)).to(device, non_blocking=True)


def path_laplacian_inverse(w):
    """L_w^{-1} (n, K-1, K-1) for segment weights w (n, K) > 0, in closed form.

    L_w is the (K-1) x (K-1) tridiagonal weighted Laplacian of a chain of K+1 points with both
    ends held: diagonal w_{j-1} + w_j, off-diagonal -w_j. Its inverse is the chain's Green's
    function: with the resistances rho_i = sum_{t<i} 1/w_t from the first point to point i,
    sigma_j = sum_{t>=j} 1/w_t from point j to the last, and R = rho_K,

        (L_w^{-1})_ij = rho_min(i,j) sigma_max(i,j) / R                 (0 < i, j < K)

    (sums and products of positive terms: no cancellation). The resistances are formed in
    units of the largest one, so that neither tiny nor huge weights overflow.
    """
    from ..kernels.cpu_lbfgs import path_laplacian_inverse_into

    w = np.ascontiguousarray(w, dtype=np.float64)
    out = np.empty((w.shape[0], w.shape[1] - 1, w.shape[1] - 1))
    path_laplacian_inverse_into(w, out)  # one compiled pass (numpy needs several over n K^2)
    return out


class PathLaplacianInverse:
    """L_w^{-1} of every path (see :func:`path_laplacian_inverse`), kept between iterations.

    A path's weights ``weights[b]`` are taken anew only when one of them has moved by more
    than ``REFRESH`` (relative) since; a stale L_w^{-1} is still a symmetric positive definite
    H0, and the L-BFGS scale gamma absorbs its overall size. With ``dense`` (the GPU route)
    the inverse is formed then, in closed form, and applied as one batched matrix product;
    the CPU route solves with L_w instead (kernels/cpu_lbfgs.py), which needs the weights only.
    """

    REFRESH = 0.25

    def __init__(self, b, n_free, dtype, device, dense=True):
        # formed in float64, applied in the path's dtype (a preconditioner need not be exact)
        self.inverse = torch.zeros((b, n_free, n_free), dtype=dtype, device=device) if dense else None
        self.weights = np.full((b, n_free + 1), np.nan)

    def refresh(self, rows, w):
        """Take the weights w (n, K) of paths ``rows`` (numpy) where they moved too far."""
        old = self.weights[rows]
        with np.errstate(invalid="ignore"):  # NaN: never taken, so stale
            stale = ~(np.abs(w - old) <= self.REFRESH * old).all(axis=1)
        if stale.any():
            if self.inverse is not None:
                self.inverse[index_on(rows[stale], self.inverse.device)] = to_device(
                    path_laplacian_inverse(w[stale]), self.inverse)
            self.weights[rows[stale]] = w[stale]

    def apply(self, index, rhs):
        """L_w^{-1} rhs for rhs (n, K-1, m) of the paths at ``index`` (dense only)."""
        inverse = self.inverse[index]
        return torch.bmm(inverse, rhs.to(inverse.dtype))


class PairMemory:
    """The ``m`` most recent curvature pairs (s, y) of every path, in a ring buffer per path.

    ``head[b]`` is the slot path b writes next; ``n_pairs[b]`` how many of the slots before it
    hold pairs (0 after :meth:`forget`). ``gram[b, i, j] = s_i^T y_j`` for the slots of pairs
    i older than j (and i = j): the products the two-loop recursion needs besides those with
    the gradient. ``sg[b] = S^T g`` (slot order) for path b's current gradient g. Both are
    kept up to date at each accepted iterate from one product with the pair memory
    (:meth:`products`), which the caller fetches with its other per-path numbers in one
    transfer: the two-loop recursion then needs no product of S with g of its own.
    """

    def __init__(self, b, m, n_free, d, dtype, device):
        self.m = m
        self.S = torch.zeros((b, m, n_free * d), dtype=dtype, device=device)
        self.Y = torch.zeros_like(self.S)
        self.rho = np.zeros((b, m))
        self.gram = np.zeros((b, m, m))
        self.head = np.zeros(b, dtype=np.int64)
        self.n_pairs = np.zeros(b, dtype=np.int64)
        self.sg = np.zeros((b, m))
        self.curvature = CURVATURE

    def forget(self, rows):
        self.n_pairs[rows] = 0
        self.rho[rows] = 0.0

    def products(self, index, s, y, g):
        """[s^T y, y^T y, s^T g, S^T y, S^T g] (n, 3 + 2 m) float64 on the device, for new pairs
        (s, y) (n, n_x) of the paths at ``index`` and their new gradients g, with their current
        pairs S (one pass over them): what :meth:`remember` needs."""
        with_s = torch.bmm(torch.stack([y, g], dim=1), self.S[index].mT).flatten(1)  # (n, 2 m)
        dots = [torch.linalg.vecdot(s, y), torch.linalg.vecdot(y, y), torch.linalg.vecdot(s, g)]
        return torch.cat([torch.stack(dots, dim=1), with_s], dim=1).to(torch.float64)

    def remember(self, rows, s, y, products):
        """Store the pair (s, y) (n, n_x) of each of paths ``rows`` (numpy) whose curvature
        s^T y is positive, over its oldest pair, and take note of S^T g for the paths' new
        gradients g; ``products``: :meth:`products` on the host."""
        m = self.m
        sy, yy, sg_new = products[:, 0], products[:, 1], products[:, 2]
        column, self.sg[rows] = products[:, 3:3 + m], products[:, 3 + m:]
        good = sy > CURVATURE * yy
        if not good.any():
            return
        if not good.all():
            keep = index_on(np.flatnonzero(good), s.device)
            rows, s, y, sy, sg_new, column = rows[good], s[keep], y[keep], sy[good], sg_new[good], column[good]
        slot = self.head[rows]
        rows_t, slot_t = index_on(rows, s.device), index_on(slot, s.device)
        self.S[rows_t, slot_t] = s
        self.Y[rows_t, slot_t] = y
        self.rho[rows, slot] = 1.0 / sy
        self.gram[rows, :, slot] = column  # s_i^T y_new of the older pairs; the new one's own:
        self.gram[rows, slot, slot] = sy
        self.sg[rows, slot] = sg_new
        self.head[rows] = (slot + 1) % self.m
        self.n_pairs[rows] = np.minimum(self.n_pairs[rows] + 1, self.m)

    def direction(self, rows, index, g, apply_h0, first_scale):
        """-H g and the slope g^T (-H g) for paths ``rows`` (numpy; ``index``: the same rows of
        the device tensors, a slice for all of them) with gradients g (A, n), by the two-loop
        recursion with H0 = gamma P::

            a_j = rho_j s_j^T q,  q <- q - a_j y_j     (newest pair first)
            r = gamma P q
            c_j = a_j - rho_j y_j^T r,  r <- r + c_j s_j     (oldest first)

        Every dot product it takes is of a stored vector with g or with P q, or of two
        stored vectors: s_j^T q = s_j^T g - sum_{i newer} a_i s_j^T y_i and
        y_j^T r = gamma y_j^T P q + sum_{i older} c_i y_j^T s_i. So the pair memory is read
        three times here, in three batched products (Y^T a, Y^T P q, S^T c), and once more when
        the iterate was accepted (S^T g and S^T y, in :meth:`products`; kept on the host); the
        recursion itself runs on m x m numbers per path on the host (compiled loops,
        kernels/cpu_lbfgs.py), and one small device-to-host transfer carries the products it
        still needs:
        [Y^T P q, g^T P q, y_new^T P y_new]. The slope follows from them without another:
        g^T p = -(gamma g^T P q + sum_j c_j s_j^T g).

        ``apply_h0(q, y)`` returns (P q, P y) (A, n) (y and P y None when no path has a pair);
        gamma = s^T y / y^T P y from the newest pair, or ``first_scale(mask)`` (numpy, for
        the rows where ``mask`` is set) where a path has no pair or that ratio is not a
        positive number. Returns (p (A, n) tensor, slope (A,) float64 numpy).
        """
        from ..kernels.cpu_lbfgs import two_loop_first, two_loop_second

        m = self.m
        a_rows = len(rows)
        rows = _int64(rows)
        S, Y = self.S[index], self.Y[index]
        head, n_pairs = self.head[rows], self.n_pairs[rows]
        depth = int(n_pairs.max()) if a_rows else 0
        y_new = None
        q = g
        if depth:
            newest = (head - 1) % m
            y_new = Y.reshape(a_rows * m, -1).index_select(0, index_on(np.arange(a_rows) * m + newest, g.device))
            a = np.empty((a_rows, m))
            two_loop_first(rows, self.head, self.n_pairs, self.rho, self.gram, self.sg, a)
            q = torch.baddbmm(g[:, None, :], to_device(-a, g)[:, None, :], Y)[:, 0]
        hq, hy = apply_h0(q, y_new)
        parts = [torch.bmm(hq[:, None, :], Y.mT)[:, 0]] if depth else []
        parts.append(torch.linalg.vecdot(g, hq)[:, None])
        if depth:
            parts.append(torch.linalg.vecdot(y_new, hy)[:, None])
        host = to_host(torch.cat(parts, dim=1))
        ghq = host[:, -2] if depth else host[:, 0]
        gamma = np.full(a_rows, np.nan)
        if depth:
            with np.errstate(divide="ignore", invalid="ignore"):
                gamma = np.where(n_pairs > 0, self.gram[rows, newest, newest] / host[:, -1], np.nan)
        unscaled = ~(np.isfinite(gamma) & (gamma > 0))
        if unscaled.any():
            gamma[unscaled] = first_scale(unscaled)
        minus_r = to_device(-gamma, hq)[:, None] * hq
        if not depth:
            return minus_r, -gamma * ghq
        c = np.empty((a_rows, m))
        c_dot_sg = np.empty(a_rows)
        two_loop_second(rows, self.head, self.n_pairs, self.rho, self.gram, self.sg, a,
                        np.ascontiguousarray(host[:, :m]), gamma, c, c_dot_sg)
        p = torch.baddbmm(minus_r[:, None, :], to_device(-c, g)[:, None, :], S)[:, 0]
        return p, -(gamma * ghq + c_dot_sg)

    # -- the CPU route: the whole step compiled, one path at a time (kernels/cpu_lbfgs.py) ------
    def accept(self, backend, rows, src, x, grad, x_new, g_new):
        """Make x_new[src[r]] (gradient g_new[src[r]]) the iterate of path rows[r]: store the
        curvature pair it makes with the path's current x, grad (where s^T y is positive),
        bring the products S^T g up to date, and copy the point and gradient into x, grad
        (the solver's CPU tensors (B, ...), written in place), in ``backend``'s compiled
        kernels (``backend.compiled_lbfgs``). Returns max |g_new| per path."""
        return backend.lbfgs_accept(self, rows, src, x, grad, x_new, g_new)

    def directions(self, backend, rows, g, weights, precondition, gamma, out):
        """p = -H g into out[rows] (the solver's CPU tensor (B, ...), written in place) for
        gradients g (B, ...), with H0 = gamma L_w^{-1} (``weights`` (B, K) the Laplacian's w)
        or gamma I; gamma (n,) where given, NaN for s^T y / y^T P y of the newest pair, in
        ``backend``'s compiled kernels. Returns (gamma used, slope g^T p), both NaN for the
        paths where gamma was to come from pairs that give none (their out rows are
        untouched)."""
        return backend.lbfgs_directions(self, rows, g, weights, precondition, gamma, out)


def _int64(rows):
    return np.ascontiguousarray(rows, dtype=np.int64)
