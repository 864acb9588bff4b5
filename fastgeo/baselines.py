"""Interpolations users compare with (MATH.md 5), as :class:`InterpolationResult` objects.

Each decodes its path and computes ri, the energy of eq. (3) with the given alpha and the
path log index, exactly as :func:`fastgeo.interpolate` does, so results compare like with
like. With t_i = i / K (i = 0 .. K, K + 1 = n_points):

- :func:`linear_path`: x_i = (1 - t) z0 + t z1.
- :func:`slerp_path` (White 2016): w = arccos(<z0/|z0|, z1/|z1|>),
  x_i = sin((1 - t) w) / sin w * z0 + sin(t w) / sin w * z1.
- :func:`matched_linear_path` (Agustsson et al. 2017, for N(0, I) priors):
  x_i = ((1 - t) z0 + t z1) / sqrt((1 - t)^2 + t^2).
"""
from __future__ import annotations

import time

import torch

from ._path_problem import PathProblem
from .interpolation import BASELINE_COPIES, DEFAULT_ALPHA, _finish_baseline, _setup

#: below this sin w, slerp's endpoints count as parallel (w ~ 0) or opposite (w ~ pi): the
#: arc is undetermined or 0/0, and the path falls back to linear interpolation
SLERP_PARALLEL_SIN = 1e-6


def _times(z, n_points):
    return torch.linspace(0, 1, n_points, dtype=z.dtype, device=z.device)


def linear_path(generator, z0, z1, prior, n_points=50, alpha=DEFAULT_ALPHA, backend="auto", ri_method="auto"):
    """The linear path x_i = (1 - i/K) z0 + (i/K) z1, decoded and scored (see the module doc)."""
    return _baseline("linear", _linear, generator, z0, z1, prior, n_points, alpha, backend, ri_method)


def slerp_path(generator, z0, z1, prior, n_points=50, alpha=DEFAULT_ALPHA, backend="auto", ri_method="auto"):
    """Spherical interpolation (White 2016) between z0 and z1, decoded and scored.

    w = arccos(<z0/|z0|, z1/|z1|>), x(t) = sin((1-t) w)/sin w z0 + sin(t w)/sin w z1: the norm
    and the direction change together along the great circle through z0 and z1. Where the
    endpoints are parallel, opposite (sin w < 1e-6) or one of them is 0, no unique arc exists
    and the path is linear.
    """
    return _baseline("slerp", _slerp, generator, z0, z1, prior, n_points, alpha, backend, ri_method)


def matched_linear_path(generator, z0, z1, prior, n_points=50, alpha=DEFAULT_ALPHA, backend="auto",
                        ri_method="auto"):
    """Distribution-matched linear interpolation (Agustsson et al. 2017), decoded and scored.

    x(t) = ((1 - t) z0 + t z1) / sqrt((1 - t)^2 + t^2): for independent z0, z1 ~ N(0, I)
    every x(t) is again N(0, I). For other priors it is computed all the same.
    """
    return _baseline("matched_linear", _matched, generator, z0, z1, prior, n_points, alpha, backend,
                     ri_method)


def _baseline(name, make_path, generator, z0, z1, prior, n_points, alpha, backend, ri_method):
    setup = _setup(generator, z0, z1, prior, n_points, alpha, backend, ri_method)
    start = time.perf_counter()
    problem = PathProblem(generator, setup.z0, setup.z1, setup.prior, setup.alpha, backend, ri_method)
    problem.require_memory(setup.z0.shape[0], n_points, BASELINE_COPIES[0], BASELINE_COPIES[1],
                           f"{name} paths of {setup.z0.shape[0]} pair(s) of {n_points} points")
    t = _times(setup.z0, n_points)
    path = make_path(setup.z0, setup.z1, t)
    # the formulas reproduce the endpoints only to rounding: pin them exactly
    path[:, 0], path[:, -1] = setup.z0, setup.z1
    return _finish_baseline(setup, problem, path, name, start)


def _linear(z0, z1, t):
    t = t[None, :, None]
    return (1 - t) * z0[:, None] + t * z1[:, None]


def _slerp(z0, z1, t):
    n0 = torch.linalg.vector_norm(z0, dim=1)
    n1 = torch.linalg.vector_norm(z1, dim=1)
    positive = (n0 > 0) & (n1 > 0)
    cos = (z0 * z1).sum(dim=1) / torch.where(positive, n0 * n1, torch.ones_like(n0))
    w = torch.arccos(cos.clamp(-1, 1))
    sin = torch.sin(w)
    arc = positive & (sin > SLERP_PARALLEL_SIN)
    safe_sin = torch.where(arc, sin, torch.ones_like(sin))
    tt = t[None, :]
    c0 = torch.sin((1 - tt) * w[:, None]) / safe_sin[:, None]
    c1 = torch.sin(tt * w[:, None]) / safe_sin[:, None]
    c0 = torch.where(arc[:, None], c0, 1 - tt)
    c1 = torch.where(arc[:, None], c1, tt.expand_as(c1))
    return c0[:, :, None] * z0[:, None] + c1[:, :, None] * z1[:, None]


def _matched(z0, z1, t):
    t = t[None, :, None]
    return ((1 - t) * z0[:, None] + t * z1[:, None]) / torch.sqrt((1 - t) ** 2 + t**2)
