"""The operations every backend provides, on 2-D arrays of its own array library.

Callers (the public functions) have already validated shapes, dtypes and parameters,
flattened batch dimensions to a leading axis, and will restore the caller's array type.
Backends compute in float64 and return arrays of the input's dtype; they report NaN/inf
in inputs by raising ValueError, never by returning NaN.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _arrays
from .._arrays import contiguous, namespace

#: numpy, cupy or torch for an array (fastgeo._arrays.namespace), kept for backends written against it
array_namespace = namespace

WHATS = ("log_ri", "ri", "log_density")


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here (missing package or device)."""


class Backend:
    name = "base"
    devices = ("cpu",)  # "cpu" and/or "cuda"
    #: whether the L-BFGS path solver forms its directions in this backend's compiled kernels
    #: (:meth:`lbfgs_accept`, :meth:`lbfgs_directions`) rather than in batched torch products
    compiled_lbfgs = False

    def check_device(self, kind) -> None:
        on = "cuda" if kind.is_cuda else "cpu"
        if on not in self.devices:
            if on == "cuda":
                raise ValueError(
                    f"the {self.name!r} backend runs on the CPU but the input is a {kind.describe()} "
                    "array; use backend='cuda' or 'auto', or move the input with .cpu()"
                )
            raise ValueError(
                f"the {self.name!r} backend runs on the GPU but the input is a {kind.describe()} "
                "array; move it to the GPU or use backend='cpu'"
            )

    # -- realism index of radial priors (MATH.md 1.1) ---------------------------------
    def radial(self, y, family, dim, p0, p1, log_alpha, what, need_grad):
        """For each row y_i with s_i = |y_i|^2: log ri (+ log_alpha), ri, or log density.

        Returns (out of shape (M,), grad of shape (M, D) or None): grad is d out / d y for
        what == "log_ri" (it does not depend on log_alpha).
        """
        raise NotImplementedError

    # -- realism index of a box (MATH.md 1.2) -------------------------------------------
    def box(self, z, low, high, log_alpha, what):
        """log_alpha inside [low, high] and -inf outside (what="log_ri"), or its exp."""
        raise NotImplementedError

    # -- KDE of the log-density (MATH.md 1.3) -------------------------------------------
    def kde(self, x, kde, what, need_grad):
        """G_W (what="cdf"), log G_W ("log_cdf"), g_W ("pdf") or log g_W ("log_pdf") at x.

        x is 1-D float. With need_grad, also returns d out / dx.
        """
        raise NotImplementedError

    # -- log-density of a Gaussian mixture (MATH.md 1.3) -------------------------------
    def mixture_log_density(self, z, whiten, means, log_norm, need_grad, first=None):
        """log f = logsumexp_k (log_norm_k - |y_k|^2 / 2) with y_k = W_k (z - mu_k), and with
        need_grad grad log f = -sum_k r_k W_k^T y_k (r_k the components' posterior
        probabilities; 0 on rows where log f = -inf), for the rows of z (M, D), float32 or
        float64, any strides. whiten (K, D, D) lower triangular, means (K, D), log_norm (K,):
        float64 on z's device; first (K, D) int64 on z's device or None: the first column of
        each row of W_k that may be nonzero (kernels.mixture.first_columns; the compiled
        kernels skip the zeros left of it). Returns float64 (M,) and (M, D) or None; a NaN in
        z gives NaN.

        This default is the float64 formula in z's own library (the ground truth the
        compiled backends are tested against)."""
        z = _arrays.astype(z, np.float64)
        # y[k, m] = W_k (z_m - mu_k): rows times W_k^T
        y = _arrays.matmul(z[None, :, :] - means[:, None, :], _arrays.swap_last(whiten))
        log_comp = log_norm[:, None] - 0.5 * _arrays.total(y * y, axis=2)
        lp = _arrays.log_sum_exp(log_comp, axis=0)
        if not need_grad:
            return lp, None
        # r_k; 0 where every component underflowed (lp = -inf: z beyond float64's reach)
        resp = _arrays.exp(log_comp - _arrays.where(_arrays.isfinite(lp), lp, 0.0)[None, :])
        # W_k^T y_k for each row is the row y_k W_k
        grad = -_arrays.total(resp[:, :, None] * _arrays.matmul(y, whiten), axis=0)
        return lp, grad

    # -- energy of a path, eq. (3), and its gradients (MATH.md 3) -----------------------
    def path_energy(self, G3, l, log_alpha, need_grads):
        """E = sum_i w_i d_i of each path and, with need_grads, dE/dG; dE/dl always.

        G3: decoded outputs (B, K+1, N), float32 or float64, any strides; l: log ri (B, K+1)
        float64, no NaN and no +inf (the caller checks); K+1 >= 2; log_alpha = log alpha < 0.
        With ``log a_i = log_alpha + logaddexp(l_i, l_{i+1}) - log 2``, ``w_i = (log a_i)^2``,
        ``d_i = |G_{i+1} - G_i|^2``::

            dE/dG_j = 2 w_{j-1} (G_j - G_{j-1}) - 2 w_j (G_{j+1} - G_j)
            dE/dl_j = sum_{i in {j-1, j}} 2 log(a_i) d_i exp(l_j - logaddexp(l_i, l_{i+1}))

        Returns (E (B,) in G3's dtype, dE/dG (B, K+1, N) C-contiguous in G3's dtype or None,
        dE/dl (B, K+1) float64). dE/dl costs O(B K) once the d_i are known, so it is always
        returned. Edge semantics (d_i = 0, l = -inf, overflowing weights) are those of
        :mod:`fastgeo.kernels.path`. Raises ValueError if G3 holds NaN or inf, or if a squared
        difference overflows float64.
        """
        raise NotImplementedError

    def path_log_index(self, G3, l):
        """log ri(path) ~ sum_i (logaddexp(l_i, l_{i+1}) - log 2) |G_{i+1} - G_i| (MATH.md 2).

        Same inputs as :meth:`path_energy`; returns (B,) in G3's dtype; a segment with
        d_i = 0 contributes 0, one between two points of l = -inf that moves gives -inf.
        """
        raise NotImplementedError

    # -- the L-BFGS path solver's step, compiled (only where ``compiled_lbfgs``) ----------
    def lbfgs_accept(self, memory, rows, src, x, grad, x_new, g_new):
        """Make rows ``src`` of (x_new, g_new) the iterates of paths ``rows`` (see
        :meth:`fastgeo._solver.lbfgs.PairMemory.accept`); returns max |g_new| per path."""
        raise NotImplementedError

    def lbfgs_directions(self, memory, rows, g, weights, precondition, gamma, out):
        """-H g into out[rows] (see :meth:`fastgeo._solver.lbfgs.PairMemory.directions`)."""
        raise NotImplementedError

    def held_gauss_newton_directions(self, rows, chol, coupling, pairs_s, pairs_y, n_pairs, g, out):
        """out[r] = H g[r] for path rows[r] of the held Gauss-Newton factorisation and pairs
        (see :meth:`fastgeo._solver.gauss_newton.GaussNewton._inverse_hessian_times`); the held
        tensors (B, ...) are read in place, g and out are (len(rows), K-1, D), all float64."""
        raise NotImplementedError

    # -- the solver's form of the path energy (fastgeo.interpolate) ----------------------
    def path_energy_ends(self, G0, Gfree, GK, l, log_alpha, need_grads):
        """:meth:`path_energy` of paths held as end points and free points, for the solver.

        G0, GK: the fixed end points' outputs (B, N); Gfree: the free points' outputs
        (B, K-1, N), K-1 >= 0; all C-contiguous, of one dtype (float32 or float64). Point j of
        path b is G0[b] for j = 0, GK[b] for j = K and Gfree[b, j-1] otherwise.
        l: log ri (B, K+1) float64, any values. log_alpha < 0.

        Returns ``(E, dE/dGfree, dE/dl, log_a)``:

        - E (B,) float64: eq. (3) as in :meth:`path_energy`, except per path, never raising:
          NaN where the path's inputs are broken (NaN or inf in its G rows, NaN or +inf in its
          l, or a squared difference beyond float64), else +inf where one of its points has
          l = -inf (zero density: outside the prior's support);
        - dE/dGfree (B, K-1, N) C-contiguous in Gfree's dtype, None unless need_grads;
          dE/dl (B, K+1) float64. Both are 0 on every path whose E is not finite (so that a
          vector-Jacobian product with them stays finite);
        - log_a (B, K) float64: log a_i = log_alpha + logaddexp(l_i, l_{i+1}) - log 2, whose
          square is the segment weight w_i (the solver's preconditioner uses them).

        Nothing is ever copied into a whole-path array by a native implementation: this is
        the largest array of the solver's iteration. This default does just that (it
        concatenates the path and calls :meth:`path_energy`, with neutral values standing
        in for the rows of non-finite E), so any backend with :meth:`path_energy` supports
        the solver; the CPU backend overrides it with a fused kernel. It works on numpy and
        CuPy arrays and on torch tensors; on this default, a squared difference beyond
        float64 from finite outputs raises ValueError.
        """
        xp = namespace(Gfree)
        nb = Gfree.shape[0]
        G = xp.concatenate([G0[:, None], Gfree, GK[:, None]], axis=1)
        broken = ~xp.isfinite(G.reshape(nb, -1)).all(axis=1) | (xp.isnan(l) | xp.isposinf(l)).any(axis=1)
        zero = xp.isneginf(l).any(axis=1)
        bad = broken | zero
        G = xp.where(bad[:, None, None], 0.0, G)
        l = xp.where(bad[:, None], 0.0, l)
        energy, grad, dl = self.path_energy(G, l, log_alpha, need_grads)
        energy = xp.asarray(energy, dtype=xp.float64)
        log_a = log_alpha + xp.logaddexp(l[:, :-1], l[:, 1:]) - math.log(2.0)
        grad = grad[:, 1:-1] if need_grads else None
        energy, grad, dl = finish_path_energy_ends(xp, energy, grad, dl, broken, zero)
        if grad is not None:
            grad = contiguous(grad)
        return energy, grad, dl, log_a


def finish_path_energy_ends(xp, energy, grad, dl, broken, zero):
    """The edge cases of :meth:`Backend.path_energy_ends` on a computed (E, dE/dGfree, dE/dl):
    E = +inf on ``zero`` paths, NaN on ``broken`` ones, gradients 0 wherever E is not finite.
    Works in place where it can; returns the three arrays."""
    energy[zero] = math.inf
    energy[broken] = math.nan
    bad = ~xp.isfinite(energy)
    if bool(bad.any()):
        if grad is not None:
            grad[bad] = 0
        dl[bad] = 0
    return energy, grad, dl
