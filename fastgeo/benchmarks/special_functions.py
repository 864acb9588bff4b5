"""Scalar special functions, one call per element, single-threaded: the per-row cost of the
realism index after its row norm.

Implementations compared: a Numba loop calling ``log_gamma_q(a, x)`` (the chi2 family) or
``log_beta_i(a, b, log x, log y)`` (the F family) per element; scipy's vectorised
``stats.gamma.logsf`` / ``stats.f.logsf`` on the same values (-inf where the survival function
underflows). Checks, on the first ``CHECK_VALUES`` values: the loops against scipy in float64
where scipy keeps its digits (log sf > ``SCIPY_FLOOR``); scipy itself, the float64 reference,
by what a log survival function must be: at most 0, never NaN, non-increasing in x.

Importing this module imports Numba (``import fastgeo.benchmarks`` does not).
"""
from __future__ import annotations

import os

import numpy as np
from numba import njit

from fastgeo.kernels import special as S
from fastgeo.kernels.cache_freshness import refresh

from .checks import check_close, check_that, to_host

refresh(os.path.dirname(os.path.abspath(__file__)))  # this folder's cached loops call the kernels

CHECK_VALUES = 1000
#: scipy's F sf loses digits before it underflows (8e-6 relative at log sf = -650 for large nu)
SCIPY_FLOOR = -500.0
RTOL = 2e-11
ATOL = 2e-16


@njit(cache=True, nogil=True)
def log_gamma_q_loop(a, x, out):
    """out[i] = log Q(a, x[i]), one scalar call per element."""
    for i in range(x.size):
        out[i] = S.log_gamma_q(a, x[i])


@njit(cache=True, nogil=True)
def log_beta_i_loop(a, b, log_x, log_y, out):
    """out[i] = log I_x[i](a, b) from log x[i] and log(1 - x[i]), one scalar call per element."""
    for i in range(log_x.size):
        out[i] = S.log_beta_i(a, b, log_x[i], log_y[i])


def gamma_cases(n, seed=2024):
    """(name, a, x) of log Q(a, x): the bulk of chi2(2a)/2 for several a, and both tails."""
    rng = np.random.default_rng(seed)
    cases = [(f"a{a:g}-bulk", a, rng.chisquare(2 * a, n) / 2) for a in (20.0, 256.0, 8192.0)]
    cases.append(("a256-uppertail", 256.0, 256.0 * rng.uniform(1.5, 50.0, n)))
    cases.append(("a256-lowertail", 256.0, 256.0 * rng.uniform(1e-3, 0.7, n)))
    cases.append(("a0.5-bulk", 0.5, rng.chisquare(1, n) / 2))
    cases.append(("a4-bulk", 4.0, rng.chisquare(8, n) / 2))
    return cases


def f_family_radii(nu, dim, n, seed=7):
    """n squared radii s = D F of the F(D, nu) family."""
    from scipy import stats

    return dim * stats.f.rvs(dim, nu, size=n, random_state=np.random.default_rng(seed))


def f_family_log_inputs(nu, s):
    """(log x, log(1 - x)) of x = nu / (nu + s), each without cancellation."""
    return -np.log1p(s / nu), -np.log1p(nu / s)


def fastgeo_log_gamma_q(a, x, out):
    log_gamma_q_loop(a, x, out)
    return out


def fastgeo_log_beta_i(a, b, log_x, log_y, out):
    log_beta_i_loop(a, b, log_x, log_y, out)
    return out


def scipy_gamma_logsf(x, a):
    from scipy import stats

    return stats.gamma.logsf(x, a)


def scipy_f_logsf(s, nu, dim):
    """log sf of F(D, nu) at s / D: the same value as log I_x(nu/2, D/2), x = nu / (nu + s)."""
    from scipy import stats

    return stats.f.logsf(s / dim, dim, nu)


def check(result, reference):
    """A loop's log sf against scipy's (``reference``: the first CHECK_VALUES values) where scipy
    keeps its digits; finite everywhere checked."""
    got = to_host(result[:len(reference)])
    check_that(np.all(np.isfinite(got)), "log sf: not finite where it must be")
    keep = reference > SCIPY_FLOOR
    check_close("log sf", got[keep], reference[keep], rtol=RTOL, atol=ATOL)


def check_log_sf_properties(result, x):
    """What any log survival function is, on the first CHECK_VALUES values: at most 0, never
    NaN, non-increasing in x (``x``: the arguments, in the order of ``result``)."""
    got = to_host(result[:CHECK_VALUES])
    order = np.argsort(x[:len(got)], kind="stable")
    check_that(not np.isnan(got).any(), "log sf: NaN")
    check_that(np.all(got <= 0.0), f"log sf: positive values, up to {got.max()!r}")
    with np.errstate(invalid="ignore"):  # -inf - -inf where the sf underflows
        steps = np.diff(got[order])
    check_that(np.all((steps <= 0.0) | np.isnan(steps)), "log sf: increases with x")
