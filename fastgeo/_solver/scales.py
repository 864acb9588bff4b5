"""The scales of the path-Laplacian model that the step rules and directions share.

Freezing the segment weights w_i and treating the generator as a local scaling by c
(J^T J ~ c I), the energy sum_i w_i |G(x_{i+1}) - G(x_i)|^2 has the Hessian
2 c (L_w kron I_D), L_w the (K-1) x (K-1) tridiagonal weighted Laplacian of the chain
(diag w_{j-1} + w_j, off-diagonal -w_j).
"""
from __future__ import annotations

import numpy as np
import torch

from .lbfgs import TINY, to_host


def preconditioner_weights(weights):
    """The segment weights w (n, K) of the path energy (numpy), made usable for L_w: a zero
    weight (alpha -> 1 where ri = 1) would make L_w singular, an infinite one (log ri below
    -1e154) would overflow it; keep them definite and finite."""
    w = np.minimum(weights, 1e300)
    return w + 1e-9 * w.max(axis=1, keepdims=True) + TINY


def path_gain(solver, rows, w):
    """The average gain c (n,) of paths ``rows`` (numpy) with preconditioner weights w.

    c = E / sum_i w_i |x_{i+1} - x_i|^2 is the scale for which 2 c (L_w kron I) is the
    energy's Hessian when G is a scaled isometry with constant ri. Needed only for a path's
    first step (or after a failed curvature estimate): one device-to-host transfer then.
    """
    s = solver
    index = s.index(rows)
    full = torch.cat([s.z0[index][:, None], s.x[index], s.z1[index][:, None]], dim=1).to(torch.float64)
    dx2 = to_host((full[:, 1:] - full[:, :-1]).square().sum(dim=2))
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = s.energy[rows] / (w * dx2).sum(axis=1)
    return np.where(np.isfinite(gain) & (gain > 0), gain, 1.0)


def gershgorin(w, gain):
    """An upper bound on the largest eigenvalue of 2 c L_w (row sums of |entries|)."""
    return 4.0 * gain * (w[:, :-1] + w[:, 1:]).max(axis=1)
