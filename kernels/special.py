"""Scalar special functions: the one source of truth for the CPU and CUDA kernels.

Every function here is a plain ``@njit`` scalar function of float64 arguments that uses only
``math`` intrinsics available on both targets, so that Numba compiles the same source for the
CPU kernels and, when called from a ``@cuda.jit`` kernel, for the GPU (tables are module-level
float64 arrays, which Numba freezes into constants). Everything is in log space: the realism
index of a point far from the prior's mass is far below the smallest double, but its
logarithm is finite. Every iteration is capped; no function loops forever or returns NaN for
valid arguments.

Public API (this module; the gamma and beta families live in special_gamma / special_beta):

=============================  ==============================================================
log_ndtr(x)                    log Phi(x), standard normal cdf (DLMF 7)
log_ndtr_hazard(x)             phi(x) / Phi(x) = d/dx log Phi(x)
erfcx(x)                       exp(x^2) erfc(x)
log1pmx(x)                     log(1 + x) - x
stirling_correction(a)         lgamma(a) - ((a - 1/2) log a - a + log(2 pi)/2)
log_gamma_prefactor(a, x)      log(x^a e^-x / Gamma(a))
log_gamma_pdf(a, x)            log(x^(a-1) e^-x / Gamma(a))
log_gamma_q(a, x)              log Q(a, x), regularised upper incomplete gamma (DLMF 8.2.4)
gamma_hazard(a, x)             p(x) / Q(a, x) = -d/dx log Q(a, x)
log_gamma_q_and_hazard(a, x)   both of the above from one evaluation
log_gamma_q_hazard_if(a, x, h) the same, the hazard only if h (a run-time flag)
log_gamma_q_hazard_if_narrow(a, x, h) the same without the wide Temme sums (a < 101.2 in mind)
log_beta(a, b)                 log B(a, b)
log_beta_i(a, b, lx, ly)       log I_x(a, b), x = exp(lx), 1 - x = exp(ly) (DLMF 8.17.2)
beta_i_hazard(a, b, lx, ly)    x^a y^b / (B(a, b) I_x(a, b)) = x y d/dx log I_x(a, b)
log_beta_i_hazard(a, b, lx, ly) its log (finite where the hazard is subnormal)
log_ratio_weights(p, q)        (log(p/(p+q)), log(q/(p+q))) without cancellation
=============================  ==============================================================

Accuracy (tests/test_special.py, against mpmath at 40 digits; relative error of the log):
log_ndtr 1e-14 on [-1e5, 40]; log_gamma_q 1e-13 for a in [0.05, 1e5], x in [1e-10 a, 1e4 a]
(a few 1e-15 in the bulk), gamma_hazard 1e-12; log_beta_i (F family, nu in [0.1, 1000],
D <= 16384) 1e-12 (a few 1e-13 at worst). Where log Q = log1p(-P) is tiny, P = exp(L) is
only as accurate as L is absolutely: up to 4 eps |L| more (1.5e-13 at log Q = -1e-300).

References: DLMF 5.11 (Stirling), 7 (error functions), 8.7-8.12 (incomplete gamma: series,
continued fraction, Temme's uniform expansion), 8.17 (incomplete beta).
"""
import math

from .special_beta import (beta_i_hazard, log_beta, log_beta_front, log_beta_i, log_beta_i_hazard,
                           log_ratio_weights)
from .special_core import (
    EPS,
    HALF_LOG_2PI,
    LOG_2PI,
    SQRT1_2,
    TINY,
    erfcx,
    erfcx_asymptotic,
    exp_sq,
    expm1mx,
    jit,
    lgamma1p,
    log1pmx,
    log1pmx_ratio,
    stirling_correction,
)
from .special_gamma import (
    gamma_hazard,
    log_gamma_pdf,
    log_gamma_prefactor,
    log_gamma_q,
    log_gamma_q_and_hazard,
    log_gamma_q_hazard_if,
    log_gamma_q_hazard_if_narrow,
)

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

__all__ = [
    "EPS", "HALF_LOG_2PI", "LOG_2PI", "SQRT1_2", "TINY",
    "erfcx", "exp_sq", "expm1mx", "lgamma1p", "log1pmx", "log1pmx_ratio", "stirling_correction",
    "log_ndtr", "log_ndtr_hazard",
    "log_gamma_prefactor", "log_gamma_pdf", "log_gamma_q", "gamma_hazard", "log_gamma_q_and_hazard",
    "log_gamma_q_hazard_if", "log_gamma_q_hazard_if_narrow",
    "log_beta", "log_beta_front", "log_beta_i", "beta_i_hazard", "log_beta_i_hazard", "log_ratio_weights",
]


@jit
def log_ndtr(x):
    """log Phi(x), the log of the standard normal cdf, accurate for every x.

    With t = -x/sqrt(2), Phi(x) = erfc(t)/2 = erfcx(t) exp(-x^2/2)/2:

    - x > 5: log1p(-Phi(-x)), Phi(-x) = erfcx(x/sqrt 2) exp(-x^2/2)/2 with x^2 split exactly
      (erfc of a rounded argument would lose 2 t^2 ulps, 1e-13 at x = 37);
    - -37 < x <= 5: log(erfc(t)/2), or log1p(-erfc(-t)/2) for x > 0;
    - x <= -37: log(erfcx(t)/2) - x^2/2 (erfc(t) underflows).
    """
    if x > 5.0:
        return math.log1p(-0.5 * erfcx(x * SQRT1_2) * exp_sq(x, -0.5))
    if x > 0.0:
        return math.log1p(-0.5 * math.erfc(x * SQRT1_2))
    if x > -37.0:
        return math.log(0.5 * math.erfc(-x * SQRT1_2))
    if x == -math.inf:
        return -math.inf
    return math.log(0.5 * erfcx_asymptotic(-x * SQRT1_2)) - 0.5 * (x * x)


@jit
def log_ndtr_hazard(x):
    """phi(x)/Phi(x) = d/dx log Phi(x), finite for every finite x (about -x far below 0).

    For x < 0 it is sqrt(2/pi) / erfcx(-x/sqrt 2): erfcx varies slowly, so rounding its
    argument costs nothing (exp(-x^2/2) / Phi(x) would lose x^2 ulps).
    """
    if x < 0.0:
        return SQRT_2_OVER_PI / erfcx(-x * SQRT1_2)
    return exp_sq(x, -0.5) * (1.0 / math.sqrt(2.0 * math.pi)) / (1.0 - 0.5 * math.erfc(x * SQRT1_2))
