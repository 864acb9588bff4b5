"""Log survival functions of the chi-square, Gamma and F distributions, and log(1 - I_x(a, b)),
each with its derivative in x: the scalar functions behind :mod:`fastgeo.special`.

Each returns ``(log S, d/dx log S)`` from one evaluation of :mod:`.special_gamma` /
:mod:`.special_beta` (the functions the realism index uses). The derivative is -pdf/S formed
by the hazard of those modules, without the difference of two large logs, so it stays
accurate where S underflows (there -exp(log pdf - log S) loses |log S| ulps).

- ``gamma_sf_and_dlog(a, t)``: log Q(a, t) and -p(t)/Q(a, t) (p the Gamma(a, 1) density);
  t < 0 lies below the support: (0, 0).
- ``f_sf_and_dlog(x, dfn, dfd)``: S(x) = I_w(dfd/2, dfn/2), w = dfd/(dfd + dfn x)
  (DLMF 8.17.2 and the F cdf); log w = -log1p(r), log(1 - w) = -log1p(1/r), r = dfn x/dfd,
  both without cancellation; d/dx log S = -H/x with H = w^a y^b / (B(a, b) I_w(a, b)),
  a = dfd/2, b = dfn/2 (special_beta.beta_i_hazard), in log space. x < 0: (0, 0).
- ``beta_upper_and_dlog(a, b, x)``: log(1 - I_x(a, b)) = log I_{1-x}(b, a), with
  log(1 - x) = log1p(-x) and log x; d/dx = -H/(x (1 - x)), H the hazard of I_{1-x}(b, a).
"""
import math

from .special_beta import _beta_i_core, log_beta
from .special_core import jit
from .special_gamma import log_gamma_q_and_hazard


@jit
def _density_at_zero(a, log_scale):
    """The density at 0 of a law whose density is ~ c t^(a-1) there, log c = log_scale:
    inf for a < 1, c for a = 1, 0 for a > 1."""
    if a < 1.0:
        return math.inf
    if a == 1.0:
        return math.exp(log_scale)
    return 0.0


@jit
def gamma_sf_and_dlog(a, t):
    """(log Q(a, t), d/dt log Q(a, t) = -p(t)/Q(a, t)) for a > 0 (t < 0: (0, 0); t = inf:
    (-inf, -1), the limit of the hazard)."""
    if t < 0.0:
        return 0.0, 0.0
    log_q, haz = log_gamma_q_and_hazard(a, t)
    return log_q, -haz


@jit
def f_sf_and_dlog(x, dfn, dfd):
    """(log S(x), d/dx log S(x)) of the F(dfn, dfd) distribution, S(x) = P(F > x)."""
    if x != x:
        return math.nan, math.nan
    if x <= 0.0:
        if x < 0.0:
            return 0.0, 0.0
        # the F density at 0 is ~ (dfn/dfd)^(dfn/2) x^(dfn/2 - 1) / B(dfn/2, dfd/2)
        b = 0.5 * dfn
        return 0.0, -_density_at_zero(b, b * math.log(dfn / dfd) - log_beta(b, 0.5 * dfd))
    if x == math.inf:
        return -math.inf, 0.0
    r = dfn * x / dfd
    log_w = -math.log1p(r)
    log_y = -math.log1p(1.0 / r)
    log_s, log_h = _beta_i_core(0.5 * dfd, 0.5 * dfn, log_w, log_y, True)
    return log_s, -math.exp(log_h - math.log(x))


@jit
def beta_upper_and_dlog(a, b, x):
    """(log(1 - I_x(a, b)), its derivative in x) for 0 <= x <= 1."""
    if x != x:
        return math.nan, math.nan
    if x <= 0.0:
        return 0.0, -_density_at_zero(a, -log_beta(a, b))
    log_s, log_h = _beta_i_core(b, a, math.log1p(-x), math.log(x), True)
    return log_s, -math.exp(log_h - math.log(x) - math.log1p(-x))


#: which function sf_and_dlog evaluates (the kernels take it as an argument)
GAMMA, F_RATIO, BETA_UPPER = 0, 1, 2


@jit
def sf_and_dlog(code, p0, p1, p2):
    """gamma_sf_and_dlog(p0, p1) (code GAMMA), f_sf_and_dlog(p0, p1, p2) (F_RATIO) or
    beta_upper_and_dlog(p0, p1, p2) (BETA_UPPER): one entry point for the kernels."""
    if code == GAMMA:
        return gamma_sf_and_dlog(p0, p1)
    if code == F_RATIO:
        return f_sf_and_dlog(p0, p1, p2)
    return beta_upper_and_dlog(p0, p1, p2)
