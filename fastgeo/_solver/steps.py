"""Step rules: how long a step along a path's search direction is, and when a trial is good.

A step rule gives each path's first trial step along a fresh direction (:meth:`first`),
judges the trials (:meth:`accepts`) and shortens a rejected one (:meth:`shorter`); the round
loop (:mod:`fastgeo._solver.loop`) runs every path's trials together. Per-path numbers are
float64 numpy arrays on the host.
"""
from __future__ import annotations

import numpy as np

from .scales import gershgorin, path_gain, preconditioner_weights

ARMIJO = 1e-4


class StepRule:
    """The interface: ``solver`` is the round loop whose paths it measures."""

    def __init__(self, solver):
        self.solver = solver

    def first(self, rows):
        """The first trial steps (n,) of paths ``rows`` along their fresh directions."""
        raise NotImplementedError

    def accepts(self, energy, e_old, step, slope):
        """Which trials (energy, at ``step`` along directions of slope g^T p) are taken."""
        raise NotImplementedError

    def shorter(self, rows, e_trial):
        """The next, shorter trial steps of paths ``rows`` whose trial had energy ``e_trial``."""
        raise NotImplementedError


class Armijo(StepRule):
    """Backtracking from the unit step (a quasi-Newton direction's own length) until
    E(t) <= E(0) + ARMIJO t g^T p; each shorter step minimises the quadratic through E(0),
    E'(0) and E(t), kept within [0.1 t, 0.5 t]."""

    def first(self, rows):
        return np.ones(len(rows))

    def accepts(self, energy, e_old, step, slope):
        return energy <= e_old + ARMIJO * step * slope

    def shorter(self, rows, e_trial):
        s = self.solver
        t, slope = s.step[rows], s.slope[rows]
        curv = e_trial - s.energy[rows] - slope * t
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            t_quad = -slope * t * t / (2 * curv)
        t_quad = np.where(np.isfinite(t_quad), t_quad, 0.5 * t)
        return np.minimum(np.maximum(t_quad, 0.1 * t), 0.5 * t)


class Halving(StepRule):
    """The paper's gradient descent: a fixed step per path, taken whenever E does not rise,
    and halved for good when it would. Unless ``lr`` is given, the step starts at 1/lambda,
    lambda = 4 c max_j (w_{j-1} + w_j), the Gershgorin bound on the largest eigenvalue of the
    path-Laplacian model 2 c (L_w kron I) (the standard 1/L step)."""

    def __init__(self, solver, lr=None):
        super().__init__(solver)
        self.lr = np.full(solver.shape[0], np.nan if lr is None else float(lr))

    def first(self, rows):
        unset = rows[np.isnan(self.lr[rows])]
        if unset.size:
            s = self.solver
            w = preconditioner_weights(s.weights[unset])
            self.lr[unset] = 1.0 / gershgorin(w, path_gain(s, unset, w))
        return self.lr[rows]

    def accepts(self, energy, e_old, step, slope):
        return energy <= e_old

    def shorter(self, rows, e_trial):
        self.lr[rows] *= 0.5
        return self.lr[rows]
