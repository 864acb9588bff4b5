"""Scalar math of radially decreasing priors (MATH.md 1.1): one function of s = |y|^2.

A radial prior's density depends on z only through the squared radius s = |y|^2 of the
whitened point y = W (z - mu), and decreases in s, so its realism index is the survival
function of the radius: ``ri(z) = P(S >= s)``. One kernel shape serves every family: a
row-norm reduction over D, then the scalar functions below, selected by an integer family
code. The branch on ``family`` is uniform across a launch, so it costs nothing at run time
on either target.

The functions that branch on ``family`` are inlined into their callers before typing
(``inline="always"``): where the caller's family is a constant (the CPU kernels make one kernel
per family, kernels/cpu_radial.py), Numba drops the other families' branches before it types
them, so a first call compiles its own family's special functions only (the F ratio's beta
functions are not compiled for a Gaussian prior). Where the family is a run-time value (the
CUDA kernels) every branch is compiled, as before.

Parameters: ``dim`` is D; ``p0`` and ``p1`` are the family's own (see families.py).

Far out, s = |y|^2 overflows float64 (|y| > 1.34e154) while the index still has a finite
log, or a finite gradient: :func:`kernels.rows.row_radius` then gives r = |y| by scaling, and
:func:`radial_far` the value and its r-derivative from r (the gradient with respect to y is
(d/dr) y / r). Where float64 ends, family by family, is stated in docs/MATH.md 1.1.
"""
import math

from numba import njit

from .families import BALL, CHI2, CHI2_ERF, F_RATIO, GAMMA_RADIUS, TINY_S
from .special_gamma import WIDE_MIN_A
from .special import (
    HALF_LOG_2PI,
    log_beta_i_hazard,
    gamma_hazard,
    log_beta_i,
    log_gamma_q,
    log_gamma_q_hazard_if,
    log_gamma_q_hazard_if_narrow,
    log_ndtr,
    log_ndtr_hazard,
    log_ratio_weights,
)

jit = njit(cache=True, nogil=True)
#: the functions that branch on the family (see above)
by_family = njit(cache=True, nogil=True, inline="always")

SQRT2 = math.sqrt(2.0)
SQRT_HALF = math.sqrt(0.5)


@by_family
def _gamma_argument(family, s, dim, p0, p1):
    """(a, x, c) for the gamma families, whose ri is Q(a, x(s)) with dx/ds = 1/c:
    CHI2 Q(D/2, s/2) (c = 2); GAMMA_RADIUS Q(k, r/theta), r = sqrt(s) (c = 2 r theta).
    So d log ri/ds = -(p_gamma(a; x) / Q) / c."""
    if family == CHI2:
        return 0.5 * dim, 0.5 * s, 2.0
    r = math.sqrt(s)
    return p0, r / p1, p1 * 2.0 * r


def wide_gamma(family, dim, p0) -> bool:
    """Whether the incomplete gamma function of ``family``'s index may take the written-out
    wide Temme sums (shape a >= special_gamma.WIDE_MIN_A: a chi-square radius of D >= 203
    dimensions, a gamma radius of shape k >= 101.2). A kernel made for False calls the narrow
    chain (special_gamma.log_gamma_q_hazard_if_narrow, the same numbers there), and its first
    call does not compile those sums."""
    if family == CHI2:
        return 0.5 * dim >= WIDE_MIN_A
    return family == GAMMA_RADIUS and p0 >= WIDE_MIN_A


@by_family
def _gamma_sf_hazard(a, x, want_hazard, wide):
    """(log Q(a, x), hazard if want_hazard) by the full chain, or by the narrow one unless
    ``wide`` (see wide_gamma; a constant of the CPU kernels, True in the CUDA kernels)."""
    if wide:
        return log_gamma_q_hazard_if(a, x, want_hazard)
    return log_gamma_q_hazard_if_narrow(a, x, want_hazard)


@by_family
def radial_log_sf(family, s, dim, p0, p1):
    """log ri as a function of the squared whitened radius s >= 0."""
    if family == CHI2 or family == GAMMA_RADIUS:
        a, x, _ = _gamma_argument(family, s, dim, p0, p1)
        return log_gamma_q(a, x)
    if family == CHI2_ERF:
        # 1/2 + 1/2 erf(u) = Phi(sqrt(2) u)
        return log_ndtr(SQRT2 * (math.sqrt(dim - 0.5) - math.sqrt(s)))
    if family == F_RATIO:
        if s == math.inf:
            return -math.inf
        # log w and log(1 - w), w = nu/(nu + s), each exact to rounding (log nu - log(nu + s)
        # would carry eps log(nu + s) absolute, magnified by D/2 in the result)
        log_w, log_1mw = log_ratio_weights(p0, s)
        return log_beta_i(0.5 * p0, 0.5 * dim, log_w, log_1mw)
    # BALL
    return 0.0 if s <= p0 * p0 else -math.inf


@by_family
def radial_dlog_sf(family, s, dim, p0, p1, log_sf):
    """d(log ri)/ds at s, given log_sf = radial_log_sf(...) at the same s.

    The hazards (pdf / sf) come from special.gamma_hazard, log_beta_i_hazard and
    log_ndtr_hazard, which form the ratio without subtracting two large logs
    (exp(log pdf - log sf) loses |log sf| * 1e-16 relative), finite however small ri is.
    At s = 0 the gradient of log ri with respect to z is 0 by symmetry (for cusped densities
    such as Kilcher's prior with k < 1 it is the subgradient 0); callers multiply by 2 y, so
    returning 0 there keeps 0 * inf from appearing.
    """
    if s <= 0.0 or log_sf == -math.inf or family == BALL:
        return 0.0
    if family == CHI2 or family == GAMMA_RADIUS:
        # d/ds log Q(a, x(s)) = -p_gamma(a; x) / Q * dx/ds
        a, x, c = _gamma_argument(family, s, dim, p0, p1)
        return -gamma_hazard(a, x) / c
    if family == CHI2_ERF:
        r = math.sqrt(s)
        u = SQRT2 * (math.sqrt(dim - 0.5) - r)
        # d/ds log Phi(u) = phi(u)/Phi(u) * du/ds, du/ds = -sqrt(2) / (2 r)
        return -log_ndtr_hazard(u) * SQRT2 / (2.0 * r)
    # F_RATIO: ri = I_w(a, b), w = nu/(nu+s), dw/ds = -w (1-w) / s
    log_w, log_1mw = log_ratio_weights(p0, s)
    # hazard / s in log space: near the origin the hazard carries (s / nu)^(D/2), subnormal there
    return -math.exp(log_beta_i_hazard(0.5 * p0, 0.5 * dim, log_w, log_1mw) - math.log(s))


@by_family
def radial_log_sf_and_dlog(family, s, dim, p0, p1, want_dlog, wide):
    """(radial_log_sf, radial_dlog_sf) at s; the second is 0 unless want_dlog. The gamma
    families take both from one evaluation of Q and its hazard (half the cost of two calls),
    with the run-time flag (special_gamma.log_gamma_q_hazard_if: one compiled chain serves
    the index and its gradient); the numbers are those of the two functions. ``wide``: see
    :func:`wide_gamma`."""
    if family == CHI2 or family == GAMMA_RADIUS:
        a, x, c = _gamma_argument(family, s, dim, p0, p1)
        log_sf, haz = _gamma_sf_hazard(a, x, want_dlog, wide)
        if want_dlog and s > 0.0 and log_sf != -math.inf:
            return log_sf, -haz / c
        return log_sf, 0.0
    log_sf = radial_log_sf(family, s, dim, p0, p1)
    return log_sf, (radial_dlog_sf(family, s, dim, p0, p1, log_sf) if want_dlog else 0.0)


@by_family
def radial_log_density(family, s, dim, p0, p1):
    """log f(z) of the standard (unwhitened) member of the family, as a function of s.

    Callers add log|det W| for whitened priors. CHI2_ERF shares the Gaussian density.
    """
    if family == CHI2 or family == CHI2_ERF:
        return -0.5 * s - 0.5 * dim * (2.0 * HALF_LOG_2PI)
    half_dim = 0.5 * dim
    log_sphere = math.log(2.0) + half_dim * math.log(math.pi) - math.lgamma(half_dim)
    if family == GAMMA_RADIUS:
        # R ~ Gamma(k, theta) spread uniformly over the sphere of radius R:
        # f(z) = p_R(r) / (|S^{D-1}| r^{D-1})
        r = math.sqrt(s)
        if r == 0.0:
            return math.inf if p0 < dim else -math.inf
        return (p0 - dim) * math.log(r) - r / p1 - math.lgamma(p0) - p0 * math.log(p1) - log_sphere
    if family == F_RATIO:
        nu = p0
        return (math.lgamma(0.5 * (nu + dim)) - math.lgamma(0.5 * nu)
                - half_dim * math.log(nu * math.pi) - 0.5 * (nu + dim) * math.log1p(s / nu))
    # BALL: 1 / volume inside
    if s > p0 * p0:
        return -math.inf
    return -(half_dim * math.log(math.pi) + dim * math.log(p0) - math.lgamma(half_dim + 1.0))


@by_family
def from_radius(family, s):
    """Whether a finite row's index must come from its radius by scaling (:func:`radial_far`):
    its s = |y|^2 overflowed, or underflowed for the gamma radius, whose index depends on r
    alone and keeps digits down to r = 0 (Q(k, r/theta) for a small shape k moves a lot
    between r = 1e-300 and r = 1e-145)."""
    return s == math.inf or (family == GAMMA_RADIUS and s < TINY_S)


@by_family
def radial_far(family, r, dim, p0, p1, density, want_d, wide):
    """(v, dv/dr) at a radius r whose square overflows float64 (s = r^2 > 1.8e308), for
    v = log ri, or v = log f of the standard member with ``density`` (dv/dr only with want_d
    and not density, else 0; the gradient of v with respect to y is (dv/dr) y / r; ``wide``: see
    :func:`wide_gamma`).

    chi2 and the erf form are -inf there (below -9e307) but keep a finite gradient, about
    -y; the gamma radius, the F ratio and their densities stay finite: they depend on r and
    log r, never on r^2 (log w = log nu - 2 log r and log(1 - w) = -nu / r^2 for the F ratio).
    Beyond r = 1.8e308 (|y| itself not representable) every family gives (-inf, 0). For the
    gamma radius the formulas hold at every r (no r^2 in them): tiny radii come here too.
    """
    if family == BALL or r == math.inf:
        return -math.inf, 0.0
    if density:
        if family == CHI2 or family == CHI2_ERF:
            return -(r * SQRT_HALF) * (r * SQRT_HALF) - dim * HALF_LOG_2PI, 0.0
        half_dim = 0.5 * dim
        log_sphere = math.log(2.0) + half_dim * math.log(math.pi) - math.lgamma(half_dim)
        if family == GAMMA_RADIUS:
            return (p0 - dim) * math.log(r) - r / p1 - math.lgamma(p0) - p0 * math.log(p1) - log_sphere, 0.0
        # F_RATIO: log1p(s / nu) = 2 log r - log nu (+ nu / s, below rounding)
        return (math.lgamma(0.5 * (p0 + dim)) - math.lgamma(0.5 * p0) - half_dim * math.log(p0 * math.pi)
                - 0.5 * (p0 + dim) * (2.0 * math.log(r) - math.log(p0))), 0.0
    if family == CHI2 or family == GAMMA_RADIUS:
        if family == CHI2:  # x = s / 2, finite up to r = 1.9e154; dx/dr = r
            a, x, dx = 0.5 * dim, (r * SQRT_HALF) * (r * SQRT_HALF), r
        else:  # x = r / theta
            a, x, dx = p0, r / p1, 1.0 / p1
        log_sf, haz = _gamma_sf_hazard(a, x, want_d, wide)
        return log_sf, (-haz * dx if want_d else 0.0)
    if family == CHI2_ERF:
        u = SQRT2 * (math.sqrt(dim - 0.5) - r)
        return log_ndtr(u), (-SQRT2 * log_ndtr_hazard(u) if want_d else 0.0)
    # F_RATIO: ri = I_w(nu/2, D/2), w = nu / (nu + s); d log ri/dr = 2 r d log ri/ds
    log_w = math.log(p0) - 2.0 * math.log(r)
    log_1mw = -(p0 / r) / r
    log_sf = log_beta_i(0.5 * p0, 0.5 * dim, log_w, log_1mw)
    return log_sf, (-2.0 * math.exp(log_beta_i_hazard(0.5 * p0, 0.5 * dim, log_w, log_1mw) - math.log(r))
                    if want_d else 0.0)
