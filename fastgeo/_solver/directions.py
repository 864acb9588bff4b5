"""Search directions: the interchangeable part of the path solver.

A direction strategy forms each path's next search direction p into ``solver.direction``
(:meth:`Direction.start`, returning the slopes g^T p), takes in the iterates the line search
accepted (:meth:`Direction.accept`, which also writes them into ``solver.x`` and
``solver.grad``), and says which paths whose line search failed may retry from a fresh start
(:meth:`Direction.restart`). :func:`fastgeo._solver.methods.choose` picks one by method and
backend:

- ``"gd"``: :class:`SteepestDescent`, p = -g (the paper's method);
- ``"lbfgs"``: L-BFGS with the path-Laplacian initial inverse Hessian H0 = gamma L_w^{-1}
  (kron I_D), two routes of the same recursion (fastgeo._solver.lbfgs): :class:`LBFGS` in
  batched torch products (GPUs, and backends without compiled kernels) and
  :class:`CompiledLBFGS`, whose accepted iterates and directions are compiled kernels of the
  backend (``Backend.compiled_lbfgs``: the CPU's, one pass per path with its pairs in cache).

The scale gamma comes from the latest curvature pair, gamma = s^T y / y^T L_w^{-1} y (before
the first pair, from the path's average gain c: gamma = 1 / (2 c), see
:mod:`fastgeo._solver.scales`). The weights L_w is formed with are kept and taken anew only
when the path's weights have moved (:class:`~fastgeo._solver.lbfgs.PathLaplacianInverse`).

``"lbfgs-gn"`` (L-BFGS, then Gauss-Newton) is :mod:`fastgeo._solver.gauss_newton`.
"""
from __future__ import annotations

import numpy as np
import torch

from .lbfgs import PairMemory, PathLaplacianInverse, index_on, to_host
from .scales import gershgorin, path_gain, preconditioner_weights


class Direction:
    """The interface (see the module docstring); ``solver`` is the round loop."""

    def __init__(self, solver):
        self.solver = solver

    def start(self, rows):
        """Write the directions of paths ``rows`` into solver.direction; return g^T p (n,)."""
        raise NotImplementedError

    def accept(self, rows, took, trial, grad):
        """Make trial[took] (gradients grad[took]; ``trial`` and ``grad`` hold a row per path
        of the round) the iterates of paths ``rows``; return max |g| of each new iterate.
        ``solver.energy[rows]`` holds their energies already, ``solver.step[rows]`` the steps
        the line search took."""
        raise NotImplementedError

    def restart(self, rows):
        """Paths ``rows`` found no decrease along their direction: the mask of those that may
        retry along a fresh one (the others stop)."""
        return np.zeros(len(rows), dtype=bool)

    def converged(self, rows, predicted, stalled):
        """The first-order test of paths ``rows`` at their fresh directions: ``predicted`` is
        the decrease their model predicts, relative to |E|, ``stalled`` whether their last two
        decreases were each at most ftol |E|. By default both must hold: a stalled energy
        alone is no sign of a minimum."""
        return stalled & (predicted <= self.solver.ftol)

    def _taken(self, took, trial, grad):
        """The rows ``took`` of the round's trial points and gradients (views if all rows)."""
        if len(took) < len(trial):
            sel = index_on(took, self.solver.device)
            return trial[sel], grad[sel]
        return trial, grad

    def _copy_accepted(self, rows, took, trial, grad):
        """The plain accept: max |g| in one transfer, then the point and gradient copied."""
        s = self.solver
        trial, grad = self._taken(took, trial, grad)
        index = s.index(rows)
        gmax = to_host(grad.reshape(len(rows), -1).abs().amax(dim=1))
        s.x[index] = trial
        s.grad[index] = grad
        return gmax


class SteepestDescent(Direction):
    """p = -g: the paper's gradient descent (with the :class:`~fastgeo._solver.steps.Halving`
    step rule)."""

    def start(self, rows):
        s = self.solver
        index = s.index(rows)
        g = s.grad[index]
        s.direction[index] = -g
        return -to_host(torch.linalg.vecdot(g.flatten(1), g.flatten(1)))

    def accept(self, rows, took, trial, grad):
        return self._copy_accepted(rows, took, trial, grad)


class LBFGS(Direction):
    """L-BFGS directions -H g by batched torch products (the route GPUs take)."""

    dense_laplacian = True  # L_w^{-1} formed and applied as a matrix (else solved with L_w)

    def __init__(self, solver, memory, precondition, backend):
        super().__init__(solver)
        b, n_free, d = solver.shape
        self.backend = backend
        self.precondition = precondition
        self.pairs = PairMemory(b, memory, n_free, d, solver.x.dtype, solver.device)
        self.laplacian = PathLaplacianInverse(b, n_free, solver.x.dtype, solver.device, dense=self.dense_laplacian)

    def start(self, rows):
        slope = self._directions(rows)
        uphill = ~(slope < 0)
        if uphill.any():  # not a descent direction (stale curvature): restart from the gradient
            self.pairs.forget(rows[uphill])
            slope[uphill] = self._directions(rows[uphill])
        return slope

    def restart(self, rows):
        # with curvature memory, forget it and retry along the preconditioned gradient;
        # without, there is no decrease left to find
        had_memory = self.pairs.n_pairs[rows] > 0
        self.pairs.forget(rows[had_memory])
        return had_memory

    def first_scale(self, rows, w):
        """gamma where no curvature pair gives one: 1 / (2 c) for H0 = gamma L_w^{-1}, or
        1 / lambda_max for H0 = gamma I."""
        gain = path_gain(self.solver, rows, w)
        return 0.5 / gain if self.precondition else 1.0 / gershgorin(w, gain)

    def accept(self, rows, took, trial, grad):
        s = self.solver
        trial, grad = self._taken(took, trial, grad)
        index = s.index(rows)
        # the per-path numbers of the new iterate, in one transfer: max |dE/dx| and the
        # products of the new curvature pair and gradient with the pair memory
        flat = grad.reshape(rows.size, -1)
        ds = (trial - s.x[index]).reshape(rows.size, -1)
        dy = flat - s.grad[index].reshape(rows.size, -1)
        stats = torch.cat([flat.abs().amax(dim=1).to(torch.float64)[:, None],
                           self.pairs.products(index, ds, dy, flat)], dim=1)
        stats = to_host(stats)
        self.pairs.remember(rows, ds, dy, stats[:, 1:])
        s.x[index] = trial
        s.grad[index] = grad
        return stats[:, 0]

    def _directions(self, rows):
        """-H g of paths ``rows`` into solver.direction; returns the slopes g^T (-H g).

        When at least half of the paths need a direction, it is formed for all of them and
        the others' discarded: that reads the pair memory in place instead of gathering it.
        """
        s = self.solver
        w = preconditioner_weights(s.weights[rows])
        b = s.shape[0]
        everyone = len(rows) < b <= 2 * len(rows)
        p, slope = self._torch_direction(np.arange(b) if everyone else rows, rows, w)
        if everyone:
            p, slope = p[index_on(rows, s.device)], slope[rows]
        s.direction[s.index(rows)] = p
        return slope

    def _torch_direction(self, rows, fresh, fresh_w):
        """(-H g, slope) for paths ``rows`` by torch products; ``fresh`` (a subset, weights
        ``fresh_w``) get their preconditioner refreshed."""
        s = self.solver
        index = s.index(rows)
        a_rows, (_, n_free, d) = len(rows), s.shape
        g = s.grad[index].reshape(a_rows, n_free * d)
        if self.precondition:
            self.laplacian.refresh(fresh, fresh_w)

        def apply_h0(q, y):
            if not self.precondition:
                return q, y
            hq = self.laplacian.apply(index, q.view(a_rows, n_free, d)).view(a_rows, -1)
            return hq, None if y is None else self.laplacian.apply(index, y.view(a_rows, n_free, d)).view(a_rows, -1)

        w = fresh_w if len(fresh) == a_rows else preconditioner_weights(s.weights[rows])  # for first_scale
        p, slope = self.pairs.direction(rows, index, g, apply_h0, lambda mask: self.first_scale(rows[mask], w[mask]))
        return p.view(a_rows, n_free, d), slope


class CompiledLBFGS(LBFGS):
    """The same L-BFGS in the backend's compiled kernels (kernels/cpu_lbfgs.py): accepting
    an iterate (its curvature pair and products) and forming the next direction are one call
    each, working through the pair memory in place one path at a time, so each path's pairs
    come from memory once per pass and stay in cache for the passes that follow."""

    dense_laplacian = False

    def accept(self, rows, took, trial, grad):
        s = self.solver
        return self.pairs.accept(self.backend, rows, took, s.x, s.grad, trial, grad)

    def _directions(self, rows):
        s = self.solver
        w = preconditioner_weights(s.weights[rows])
        if self.precondition:
            self.laplacian.refresh(rows, w)
        gamma = np.full(len(rows), np.nan)  # NaN: from the newest pair
        first = self.pairs.n_pairs[rows] == 0
        if first.any():
            gamma[first] = self.first_scale(rows[first], w[first])
        common = (s.grad, self.laplacian.weights, self.precondition)
        gamma, slope = self.pairs.directions(self.backend, rows, *common, gamma, s.direction)
        unscaled = np.isnan(gamma)
        if unscaled.any():
            again = self.first_scale(rows[unscaled], w[unscaled])
            _, slope[unscaled] = self.pairs.directions(self.backend, rows[unscaled], *common, again, s.direction)
        return slope
