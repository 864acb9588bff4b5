"""The L-BFGS parts of the path solver: curvature-pair memory, two-loop recursion, and the
path-Laplacian initial inverse Hessian (MATH.md 3; see :mod:`fastgeo._solvers`).

The large arrays (the pairs s, y of every path, the Laplacian inverses) are torch tensors on
the paths' device; the small per-path numbers (rho = 1 / s^T y, the products s_i^T y_j of a
path's pairs, ring-buffer positions) are float64 numpy arrays on the host, where the few
operations on them cost microseconds instead of a torch dispatch each.
"""
from __future__ import annotations

import numpy as np
import torch

TINY = np.finfo(np.float64).tiny


def to_host(t):
    """A float64 numpy copy of a small tensor (one device-to-host transfer)."""
    return t.detach().to(torch.float64).cpu().numpy().copy()


def to_device(a, like):
    """A small numpy array as a tensor of ``like``'s dtype on its device."""
    return torch.from_numpy(np.ascontiguousarray(a)).to(device=like.device, dtype=like.dtype)


def index_on(rows, device):
    """Row numbers (numpy) as an index tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64)).to(device)


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
    scale = w.min(axis=1, keepdims=True)
    u = scale / w  # in (0, 1]
    rho = np.cumsum(u, axis=1)  # rho[:, i] = resistance from point 0 to point i + 1
    sigma = np.cumsum(u[:, ::-1], axis=1)[:, ::-1]  # sigma[:, j] = from point j to the last
    rho, sigma, total = rho[:, :-1], sigma[:, 1:], rho[:, -1:]
    k1 = rho.shape[1]
    upper = np.arange(k1)[:, None] <= np.arange(k1)[None, :]
    outer = rho[:, :, None] * sigma[:, None, :]  # rho_i sigma_j, the value for i <= j
    return np.where(upper, outer, outer.transpose(0, 2, 1)) / (total * scale)[:, :, None]


class PathLaplacianInverse:
    """L_w^{-1} of every path (see :func:`path_laplacian_inverse`), kept between iterations.

    A path's inverse is formed anew only when one of its weights has moved by more than
    ``REFRESH`` (relative) since; applying it is then one batched matrix product. A stale
    inverse is still a symmetric positive definite H0, and the L-BFGS scale gamma absorbs its
    overall size.
    """

    REFRESH = 0.25

    def __init__(self, b, k1, dtype, device):
        # formed in float64, applied in the path's dtype (a preconditioner need not be exact)
        self.inverse = torch.zeros((b, k1, k1), dtype=dtype, device=device)
        self.weights = np.full((b, k1 + 1), np.nan)

    def refresh(self, rows, w):
        """Form the inverses of paths ``rows`` (numpy) whose weights w (n, K) moved too far."""
        old = self.weights[rows]
        with np.errstate(invalid="ignore"):  # NaN: never formed, so stale
            stale = ~(np.abs(w - old) <= self.REFRESH * old).all(axis=1)
        if stale.any():
            self.inverse[index_on(rows[stale], self.inverse.device)] = to_device(path_laplacian_inverse(w[stale]),
                                                                                 self.inverse)
            self.weights[rows[stale]] = w[stale]

    def apply(self, index, rhs):
        """L_w^{-1} r for each r in ``rhs`` (tensors (n, K-1, m)) of the paths at ``index``."""
        inverse = self.inverse[index]
        return [torch.bmm(inverse, r.to(inverse.dtype)) for r in rhs]


class PairMemory:
    """The ``m`` most recent curvature pairs (s, y) of every path, in a ring buffer per path.

    ``head[b]`` is the slot path b writes next; ``n_pairs[b]`` how many of the slots before it
    hold pairs (0 after :meth:`forget`). ``gram[b, i, j] = s_i^T y_j`` for the slots of pairs
    i older than j (and i = j): the products the two-loop recursion needs besides those with
    the gradient. The column of a new pair is formed lazily, by the next :meth:`direction`
    of its path, in the same matrix product as S^T g (``pending`` marks it).
    """

    def __init__(self, b, m, k1, d, dtype, device):
        self.m = m
        self.S = torch.zeros((b, m, k1 * d), dtype=dtype, device=device)
        self.Y = torch.zeros_like(self.S)
        self.rho = np.zeros((b, m))
        self.gram = np.zeros((b, m, m))
        self.head = np.zeros(b, dtype=np.int64)
        self.n_pairs = np.zeros(b, dtype=np.int64)
        self.pending = np.zeros(b, dtype=bool)

    def forget(self, rows):
        self.n_pairs[rows] = 0
        self.rho[rows] = 0.0
        self.pending[rows] = False

    def remember(self, rows, s, y):
        """Store the pair (s, y) (n, K-1, D) of each of paths ``rows`` (numpy) whose curvature
        s^T y is positive, over its oldest pair."""
        n = s.shape[0]
        flat_s, flat_y = s.reshape(n, -1), y.reshape(n, -1)
        sy, yy = to_host(torch.stack([torch.linalg.vecdot(flat_s, flat_y).to(torch.float64),
                                      flat_y.to(torch.float64).square().sum(dim=1)]))
        good = sy > 1e-10 * yy
        if not good.any():
            return
        if not good.all():
            keep = index_on(np.flatnonzero(good), s.device)
            rows, flat_s, flat_y, sy = rows[good], flat_s[keep], flat_y[keep], sy[good]
        if self.pending[rows].any():  # a pair whose column no direction has formed (never, in the solver)
            self._form_columns(rows[self.pending[rows]])
        slot = self.head[rows]
        rows_t, slot_t = index_on(rows, s.device), index_on(slot, s.device)
        self.S[rows_t, slot_t] = flat_s
        self.Y[rows_t, slot_t] = flat_y
        self.rho[rows, slot] = 1.0 / sy
        self.head[rows] = (slot + 1) % self.m
        self.n_pairs[rows] = np.minimum(self.n_pairs[rows] + 1, self.m)
        self.pending[rows] = True

    def _form_columns(self, rows):
        newest = (self.head[rows] - 1) % self.m
        rows_t = index_on(rows, self.S.device)
        y_new = self.Y[rows_t, index_on(newest, self.S.device)]
        self.gram[rows, :, newest] = to_host(torch.bmm(self.S[rows_t], y_new[:, :, None])[:, :, 0])
        self.pending[rows] = False

    def direction(self, rows, index, g, initial):
        """-H g for paths ``rows`` (numpy; ``index``: the same rows of the device tensors, a
        slice for all of them) with gradients g (A, n), by the two-loop recursion::

            a_j = rho_j s_j^T q,  q <- q - a_j y_j     (newest pair first)
            r = H0 q
            c_j = a_j - rho_j y_j^T r,  r <- r + c_j s_j     (oldest first)

        Every dot product it takes is of a stored vector with g or with H0 q, or of two
        stored vectors: s_j^T q = s_j^T g - sum_{i newer} a_i s_j^T y_i and
        y_j^T r = y_j^T H0 q + sum_{i older} c_i y_j^T s_i. So the pair memory is read four
        times, in four batched products (S^T g, Y^T a, Y^T H0 q, S^T c), and the recursion
        itself runs on m x m numbers per path on the host.

        ``initial(q, y_new, sy_new, have_pair)`` returns H0 q (A, n) given the newest pair's
        y and s^T y (None when no path has a pair) and whether the path has a pair.
        """
        m = self.m
        a_rows = len(rows)
        S, Y = self.S[index], self.Y[index]
        head, n_pairs = self.head[rows], self.n_pairs[rows]
        depth = int(n_pairs.max()) if a_rows else 0
        if not depth:
            return -initial(g, None, None, np.zeros(a_rows, dtype=bool))
        newest = (head - 1) % m
        y_new = Y[torch.arange(a_rows, device=g.device), index_on(newest, g.device)]
        pending = self.pending[rows]
        rhs = torch.stack([g, y_new], dim=2) if pending.any() else g[:, :, None]
        products = to_host(torch.bmm(S, rhs))  # (A, m, 1 or 2): S^T g (and S^T y_new)
        if pending.any():
            at = np.flatnonzero(pending)
            self.gram[rows[at], :, newest[at]] = products[at, :, 1]
            self.pending[rows] = False
        # slot of each path's j-th newest pair, j < depth; pairs past n_pairs drop out (rho = 0)
        order = (head[:, None] - 1 - np.arange(depth)[None, :]) % m
        valid = np.arange(depth)[None, :] < n_pairs[:, None]
        rho = np.where(valid, np.take_along_axis(self.rho[rows], order, axis=1), 0.0)
        # sy[:, j, i] = s_(j)^T y_(i), j and i in newest-first order
        sy = self.gram[rows[:, None, None], order[:, :, None], order[:, None, :]]
        sy = np.where(valid[:, :, None] & valid[:, None, :], sy, 0.0)
        sg = np.take_along_axis(products[:, :, 0], order, axis=1)
        a = np.zeros((a_rows, depth))
        for j in range(depth):
            a[:, j] = rho[:, j] * (sg[:, j] - (sy[:, j, :j] * a[:, :j]).sum(axis=1))
        q = g - torch.bmm(to_device(self._scatter(a, order), g)[:, None, :], Y)[:, 0]
        r = initial(q, y_new, sy[:, 0, 0], n_pairs > 0)
        yr = np.take_along_axis(to_host(torch.bmm(Y, r[:, :, None])[:, :, 0]), order, axis=1)
        c = np.zeros((a_rows, depth))
        for j in reversed(range(depth)):
            c[:, j] = a[:, j] - rho[:, j] * (yr[:, j] + (sy[:, j + 1:, j] * c[:, j + 1:]).sum(axis=1))
        return -torch.baddbmm(r[:, None, :], to_device(self._scatter(c, order), g)[:, None, :], S)[:, 0]

    def _scatter(self, values, order):
        """Coefficients in newest-first order (A, depth) back to slot order (A, m)."""
        out = np.zeros((values.shape[0], self.m))
        np.put_along_axis(out, order, values, axis=1)
        return out
