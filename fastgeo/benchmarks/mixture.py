"""The realism index of the semicircle prior (a 3-component Gaussian mixture in 20 dimensions;
MATH.md 1.3) end to end on the CPU, and its log-density alone (``bench/test_bench_mixture.py``).

Kernel: ``fastgeo.ri(z, semicircle(20), backend="cpu")``: the compiled one-pass mixture
log-density (kernels/cpu_mixture.py) then the KDE table lookup, over ``M_KERNEL`` points.
References: :func:`ri_numpy_log_density` (the same KDE lookup after the mixture's log-density
by the float64 numpy formula, the reference backend's ``mixture_log_density``) on the same
points; :func:`ri_naive` (the numpy log-density and the naive float64 O(n) KDE sum) on
``M_NAIVE`` points. The log-density alone: the CPU backend's compiled kernel against the
reference backend's numpy formula.

Checks, on the first ``CHECK_ROWS`` points: ri against the float64 reference backend's ``ri``
(:func:`reference`, :func:`check`); log f and grad log f against the numpy formula
(:func:`density_reference`, :func:`check_density`).
"""
from __future__ import annotations

import numpy as np

from ..backends import get
from .checks import check_close
from .kde_cdf import naive_kde_cdf

M_KERNEL = 200_000
M_NAIVE = 2_000
CHECK_ROWS = 2_000
RTOL = 1e-6
ATOL = 1e-300
RTOL_DENSITY = 1e-12
RTOL_GRAD = 1e-9
ATOL_GRAD = 1e-12


def semicircle_prior(dim=20):
    """The semicircle prior with its KDE samples drawn and its table built (outside the timings)."""
    from ..priors import semicircle

    prior = semicircle(dim)
    prior.kde.table  # noqa: B018 - builds and caches the table
    return prior


def points(prior, m=M_KERNEL):
    """m prior samples, every other one scaled by U(0.5, 2) (a path's interior is often off the
    prior's bulk)."""
    rng = np.random.default_rng(20241204)
    z = prior.sample(m, seed=7)
    z[::2] *= rng.uniform(0.5, 2.0, size=(z[::2].shape[0], 1))
    return z


def ri_numpy_log_density(z, prior):
    """ri with the mixture's log-density by the numpy formula, then the CPU KDE lookup."""
    lp, _ = prior.log_density(z, backend=get("reference"))
    out, _ = get("cpu").kde(lp, prior.kde, "log_cdf", False)
    return np.exp(out)


def ri_naive(z, prior):
    """ri by the numpy log-density and the naive float64 KDE sum."""
    lp, _ = prior.log_density(z, backend=get("reference"))
    return naive_kde_cdf(lp, prior.kde.samples, prior.kde.bandwidth)


def reference(prior, z):
    """The float64 reference backend's ri at the first ``CHECK_ROWS`` points of z."""
    from .. import ri

    return ri(z[:CHECK_ROWS], prior, backend="reference")


def check(result, reference):
    """WrongResult unless ri's leading rows equal the reference's."""
    check_close("ri", result, reference, rtol=RTOL, atol=ATOL)


def density_reference(prior, z):
    """float64 (log f, grad log f) at the first ``CHECK_ROWS`` points of z (the numpy formula)."""
    return prior.log_density(z[:CHECK_ROWS], True, backend=get("reference"))


def check_density(result, reference):
    """WrongResult unless log f (and grad log f, when computed) equal the reference's."""
    lp, grad = result
    check_close("log density", lp, reference[0], rtol=RTOL_DENSITY)
    if grad is not None:
        check_close("grad log density", grad, reference[1], rtol=RTOL_GRAD, atol=ATOL_GRAD)
