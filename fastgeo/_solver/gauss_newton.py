"""``"lbfgs-gn"``: L-BFGS that shapes the path, then L-BFGS on the Gauss-Newton metric that
finishes it (:class:`LBFGSThenGaussNewton`, :class:`GaussNewton`; docs/solver-diagnosis.md).
The metric and its block-tridiagonal factorisation are :mod:`fastgeo._solver.metric`.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from .._path_problem import ForwardModeError
from .directions import Direction
from .lbfgs import index_on, to_host
from .metric import factor_block_tridiagonal, gauss_newton_blocks, realism_derivatives, realism_term, substitute

#: L-BFGS iterations of "lbfgs-gn" before its Gauss-Newton phase (unless a path stalls first):
#: the switch point decides which minimum some paths settle in; from 150 to 300 it shifts as
#: many paths up as down, and earlier only costs where L-BFGS is cheap (bench/solver_switch_point.py)
SWITCH_AFTER = 150


#: Levenberg-Marquardt damping of the Gauss-Newton system, relative to each block's mean diagonal
GN_DAMPING = 1e-6
#: the largest factor on GN_DAMPING
BOOST_MAX = 1e6
#: the least factor on the damping after a full Gauss-Newton step (Nielsen's rule)
BOOST_DOWN = 1 / 3
#: the least factor on the damping after a Gauss-Newton step that the line search shortened
BOOST_UP = 4.0

#: iterations a Gauss-Newton factorisation serves as L-BFGS's initial inverse Hessian (and
#: the curvature pairs kept meanwhile)
GN_HOLD = 20
#: float64 D-vectors a free point that the held pairs take (s and y of each)
HELD_PAIR_VECTORS = 2 * GN_HOLD


class GaussNewton(Direction):
    """L-BFGS on the Gauss-Newton metric: directions p = -H g from the two-loop recursion over
    the curvature pairs gathered since the last refresh, with the initial inverse Hessian
    H0 = (M + R + lambda I)^{-1}: the matrix-weighted path Laplacian M (blocks from J^T J) and
    the realism term's convex part R (:mod:`fastgeo._solver.metric`). The factorisation is
    formed anew every ``hold`` directions (and after a failed line search), and its pairs
    forgotten then; right after a refresh the direction is the plain Gauss-Newton one.

    lambda_j = GN_DAMPING times the mean diagonal entry of block j of M + R, times a per-path
    factor within [1, BOOST_MAX] (raised where the system will not factor). The factor is a
    Levenberg-Marquardt trust rule judged on the fresh Gauss-Newton steps only, the one kind of
    step whose model is the damped system itself, and it takes effect at the next refresh:
    after a step that the line search shortened to t < 1 it grows by max(BOOST_UP, 1 / t);
    after a full step it shrinks by Nielsen's factor max(BOOST_DOWN, 1 - (2 rho - 1)^3), rho
    the actual decrease over the predicted one. (Judging every held step instead compounded
    the factor up to its limit within one hold and down again within the next, so that holds
    alternated between steps cut a hundredfold and gradient-like ones:
    docs/solver-diagnosis.md.)

    A refresh takes the generator's Jacobian at every free point (D forward-mode products a
    point, counted as JVPs) and a block-tridiagonal factorisation of (K-1) D^3 operations a
    path; each direction in between costs a block substitution and the pairs' products, so a
    longer hold trades Jacobians for iterations (GN_HOLD: docs/solver-diagnosis.md). The
    factors of all B paths stay allocated from the first refresh on
    (PathProblem.require_gauss_newton_memory counts them). Its slope is -g^T H g; half of it
    is the decrease the model predicts. A path converges only at a fresh Gauss-Newton
    direction (:meth:`confirm`): where the held model predicts a small decrease, the
    factorisation is refreshed first, and the Gauss-Newton decrement decides.
    """

    def __init__(self, solver, backend, hold=GN_HOLD, memory=GN_HOLD):
        super().__init__(solver)
        self.backend = backend
        b, n_free, d = solver.shape
        self.hold, self.memory = hold, memory
        # the adaptive factor on GN_DAMPING: a shortened step says the model was trusted too far
        self.boost = np.ones(b)
        self.start_energy = np.zeros(b)  # E where each path's current direction starts
        self.age = np.full(b, hold)  # directions since the last refresh (hold: refresh next)
        self.n_pairs = np.zeros(b, dtype=np.int64)
        self.chol = self.coupling = self.pairs_s = self.pairs_y = None

    def _allocate(self):
        b, n_free, d = self.solver.shape
        opts = dict(dtype=torch.float64, device=self.solver.device)
        self.chol = torch.zeros((b, n_free, d, d), **opts)
        self.coupling = torch.zeros((b, max(n_free - 1, 0), d, d), **opts)
        self.pairs_s = torch.zeros((b, self.memory, n_free, d), **opts)
        self.pairs_y = torch.zeros((b, self.memory, n_free, d), **opts)

    def refresh(self, rows):
        """Form and factor M + R + lambda I at the current iterates of paths ``rows``."""
        s = self.solver
        problem = s.problem
        index = s.index(rows)
        x = s.x[index]
        jtj, jtj_next = problem.jacobian_products(x)  # ForwardModeError before anything is held
        s.n_jvp[rows] += s.shape[2]
        if self.chol is None:
            self._allocate()
        full = torch.cat([problem.g0[index][:, None], s.current_decoded(rows), problem.g1[index][:, None]], dim=1)
        full = full.flatten(2).to(torch.float64)
        dist2 = (full[:, 1:] - full[:, :-1]).square().sum(dim=2)
        d_l, d2_l = realism_derivatives(s.log_ri[index], dist2, s.alpha)
        weights = torch.from_numpy(np.minimum(s.weights[rows], 1e300)).to(s.device)
        diag, off = gauss_newton_blocks(jtj, jtj_next, weights, realism_term(problem, x, d_l, d2_l))
        # Marquardt's damping, point by point: the generator's gain may differ by orders of
        # magnitude along a path (near the origin of the Kilcher model's log-radius map)
        scale = diag.diagonal(dim1=-2, dim2=-1).mean(dim=2)
        boost = torch.from_numpy(self.boost[rows]).to(s.device)[:, None]
        damping = GN_DAMPING * boost * scale + torch.finfo(torch.float64).tiny
        place = index_on(rows, s.device)
        self.chol[place], self.coupling[place], _ = factor_block_tridiagonal(diag, off, damping)
        self.age[rows] = 0
        self.n_pairs[rows] = 0

    def start(self, rows):
        stale = self.age[rows] >= self.hold
        if stale.any():
            self.refresh(rows[stale])
        s = self.solver
        place = index_on(rows, s.device)
        g = s.grad[s.index(rows)].to(torch.float64)
        p = -self._inverse_hessian_times(rows, place, self.n_pairs[rows], g)
        slope = to_host(torch.linalg.vecdot(p.flatten(1), g.flatten(1)))
        uphill = ~(slope < 0)
        if uphill.any():  # stale curvature: the plain Gauss-Newton direction of the held factors
            self.n_pairs[rows[uphill]] = 0
            mask = torch.from_numpy(uphill).to(s.device)
            p[mask] = -self._inverse_hessian_times(rows[uphill], place[mask], self.n_pairs[rows[uphill]], g[mask])
            slope[uphill] = to_host(torch.linalg.vecdot(p[mask].flatten(1), g[mask].flatten(1)))
        self.age[rows] += 1
        self.start_energy[rows] = s.energy[rows]
        s.direction[s.index(rows)] = p.to(s.x.dtype)
        return slope

    def _inverse_hessian_times(self, rows, place, n_pairs, g):
        """H g of paths ``rows`` (``place``: the same on the device) by the two-loop recursion:
        in the backend's compiled pass per path over the held factors in place where it has one
        (``compiled_lbfgs``: the CPU's), else batched over paths in torch."""
        if self.backend.compiled_lbfgs:
            out = torch.empty_like(g)
            self.backend.held_gauss_newton_directions(rows, self.chol, self.coupling, self.pairs_s, self.pairs_y,
                                                      n_pairs, g, out)
            return out
        return self._two_loop_batched(place, n_pairs, g)

    def _two_loop_batched(self, place, n_pairs, g):
        """:meth:`_inverse_hessian_times` batched over the paths at ``place`` in torch (pairs
        beyond a path's count weigh 0)."""
        count = torch.from_numpy(n_pairs).to(g.device)
        q = g.clone()
        alphas, rhos = [], []
        for k in reversed(range(int(n_pairs.max(initial=0)))):
            sk, yk = self.pairs_s[place, k], self.pairs_y[place, k]
            rho = torch.where(count > k, 1.0 / torch.linalg.vecdot(sk.flatten(1), yk.flatten(1)), 0.0)
            a = rho * torch.linalg.vecdot(sk.flatten(1), q.flatten(1))
            q = q - a[:, None, None] * yk
            alphas.append(a)
            rhos.append(rho)
        r = substitute(self.chol[place], self.coupling[place], q)
        for k, (a, rho) in enumerate(zip(reversed(alphas), reversed(rhos))):
            sk, yk = self.pairs_s[place, k], self.pairs_y[place, k]
            beta = rho * torch.linalg.vecdot(yk.flatten(1), r.flatten(1))
            r = r + (a - beta)[:, None, None] * sk
        return r

    def _judge_damping(self, rows):
        """The trust rule of the class docstring, for paths ``rows`` whose accepted step was
        along a fresh Gauss-Newton direction (energies at its start in ``start_energy``)."""
        s = self.solver
        t = s.step[rows]
        predicted = -s.slope[rows] * (t - 0.5 * t * t)  # the quadratic model's decrease at t
        with np.errstate(all="ignore"):  # predicted may underflow to 0: rho inf or NaN, judged below
            rho = (self.start_energy[rows] - s.energy[rows]) / predicted
            down = np.maximum(BOOST_DOWN, 1.0 - (2.0 * rho - 1.0) ** 3)
        factor = np.where(t < 1.0, np.maximum(BOOST_UP, 1.0 / t), np.where(rho > 0, down, BOOST_UP))
        self.boost[rows] = np.clip(self.boost[rows] * factor, 1.0, BOOST_MAX)

    def accept(self, rows, took, trial, grad):
        s = self.solver
        # (a step whose direction the support's wall cut, loop.Solver._freeze_outside, is not
        # the model's step)
        fresh = self._fresh(rows) & ~s.hit_wall[rows]
        if fresh.any():
            self._judge_damping(rows[fresh])
        new_x, new_g = self._taken(took, trial, grad)
        index = s.index(rows)
        ds = (new_x - s.x[index]).to(torch.float64)
        dy = (new_g - s.grad[index]).to(torch.float64)
        sy, yy = to_host(torch.stack([torch.linalg.vecdot(ds.flatten(1), dy.flatten(1)),
                                      torch.linalg.vecdot(dy.flatten(1), dy.flatten(1))]))  # one transfer
        good = np.isfinite(sy) & (sy > 1e-10 * yy)
        if self.memory and good.any():
            keep = rows[good]
            full_memory = self.n_pairs[keep] >= self.memory
            if full_memory.any():  # drop the oldest pair
                place = index_on(keep[full_memory], s.device)
                self.pairs_s[place] = torch.roll(self.pairs_s[place], -1, dims=1)
                self.pairs_y[place] = torch.roll(self.pairs_y[place], -1, dims=1)
                self.n_pairs[keep[full_memory]] -= 1
            slot = torch.from_numpy(self.n_pairs[keep]).to(s.device)
            place = index_on(keep, s.device)
            mask = torch.from_numpy(good).to(s.device)
            self.pairs_s[place, slot] = ds[mask]
            self.pairs_y[place, slot] = dy[mask]
            self.n_pairs[keep] += 1
        return self._copy_accepted(rows, took, trial, grad)

    def _fresh(self, rows):
        """Whether the current directions of paths ``rows`` are fresh Gauss-Newton ones: the
        first since a refresh, without pairs (age is at least 1 once a direction is formed)."""
        return (self.age[rows] == 1) & (self.n_pairs[rows] == 0)

    def confirm(self, rows, small):
        """Whether paths ``rows``, whose model predicts a small decrease (mask ``small``), may
        stop: only where the direction is a fresh Gauss-Newton one (the quasi-Newton model of
        held factors and pairs can understate what is left); the others refresh next."""
        fresh = self._fresh(rows)
        self.age[rows[small & ~fresh]] = self.hold
        return fresh

    def restart(self, rows):
        # a failed line search along a direction with pairs or an aged factorisation: retry
        # from a fresh one; from a fresh Gauss-Newton direction there is no decrease left
        retry = ~self._fresh(rows)
        self.age[rows[retry]] = self.hold
        return retry


class LBFGSThenGaussNewton(Direction):
    """L-BFGS (the cheap iterations that shape the path) until a path stalls (two small
    relative decreases) or has made ``switch_after`` iterations, then Gauss-Newton (which
    finishes the slow part, the directions of small generator gain, in tens of iterations;
    docs/solver-diagnosis.md). A path converges only in the Gauss-Newton phase, when the
    decrease the Gauss-Newton model predicts is at most ftol |E|.

    Where the generator has no forward-mode derivatives, a warning says so and every path
    stays with L-BFGS (whose convergence test then applies)."""

    def __init__(self, solver, lbfgs, switch_after=SWITCH_AFTER):
        super().__init__(solver)
        self.lbfgs = lbfgs
        self.gauss_newton = GaussNewton(solver, lbfgs.backend)
        self.switch_after = switch_after
        self.in_gauss_newton = np.zeros(solver.shape[0], dtype=bool)
        self.available = True

    def start(self, rows):
        s = self.solver
        if self.available:
            ready = (s.small_steps[rows] >= 2) | (s.iterations[rows] >= self.switch_after)
            self.in_gauss_newton[rows[ready]] = True
        late = self.in_gauss_newton[rows]
        slope = np.empty(len(rows))
        if late.any():
            try:
                slope[late] = self.gauss_newton.start(rows[late])
            except ForwardModeError as err:
                warnings.warn(f"method 'lbfgs-gn' continues with L-BFGS only: {err}", UserWarning, stacklevel=2)
                self.available = False
                self.in_gauss_newton[:] = False
                late[:] = False
        if (~late).any():
            slope[~late] = self.lbfgs.start(rows[~late])
        return slope

    def converged(self, rows, predicted, stalled):
        if not self.available:
            return super().converged(rows, predicted, stalled)
        small = self.in_gauss_newton[rows] & (predicted <= self.solver.ftol)
        return small & self.gauss_newton.confirm(rows, small)

    def restart(self, rows):
        retry = np.zeros(len(rows), dtype=bool)
        early = ~self.in_gauss_newton[rows]
        retry[early] = self.lbfgs.restart(rows[early])
        if (~early).any():
            retry[~early] = self.gauss_newton.restart(rows[~early])
        return retry

    def accept(self, rows, took, trial, grad):
        late = self.in_gauss_newton[rows]
        gmax = np.empty(len(rows))
        if (~late).any():
            gmax[~late] = self.lbfgs.accept(rows[~late], took[~late], trial, grad)
        if late.any():
            gmax[late] = self.gauss_newton.accept(rows[late], took[late], trial, grad)
        return gmax
