"""Scalar special functions: the one source of truth for the CPU and CUDA kernels.

Every function here is a plain ``@njit`` scalar function of float64 arguments that uses only
``math`` intrinsics available on both targets, so that Numba compiles the same source for the
CPU kernels and, when called from a ``@cuda.jit`` kernel, for the GPU. Everything is in log
space: the realism index of a point far from the prior's mass is far below the smallest
double, but its logarithm is finite.

References: DLMF 7 (error functions), 8 (incomplete gamma), 8.17 (incomplete beta).
"""
import math

from numba import njit

LOG_2PI = math.log(2.0 * math.pi)
HALF_LOG_2PI = 0.5 * LOG_2PI
SQRT1_2 = 1.0 / math.sqrt(2.0)
EPS = 2.220446049250313e-16
TINY = 1e-300

jit = njit(cache=True, nogil=True)


@jit
def log_ndtr(x):
    """log Phi(x), the log of the standard normal cdf, accurate for every finite x.

    Above -20, ``erfc`` keeps full relative precision; below it, the asymptotic series
    ``Phi(x) = phi(x)/|x| * sum_k (-1)^k (2k-1)!! / x^(2k)`` does (DLMF 7.12.1), whose
    tenth term at |x| = 20 is below 1e-17.
    """
    if x > 0.0:
        return math.log1p(-0.5 * math.erfc(x * SQRT1_2))
    if x > -20.0:
        return math.log(0.5 * math.erfc(-x * SQRT1_2))
    if x == -math.inf:
        return -math.inf
    x2 = x * x
    inv = 1.0 / x2
    term = 1.0
    total = 1.0
    for k in range(1, 12):
        term *= -(2 * k - 1) * inv
        total += term
    return -0.5 * x2 - math.log(-x) - HALF_LOG_2PI + math.log(total)


@jit
def log_ndtr_hazard(x):
    """phi(x)/Phi(x) = d/dx log Phi(x), finite for every finite x (about -x far below 0)."""
    return math.exp(-0.5 * x * x - HALF_LOG_2PI - log_ndtr(x))


@jit
def log1pmx(x):
    """log(1 + x) - x without cancellation near 0 (for x > -1)."""
    if abs(x) < 0.1:
        # sum_{k>=2} (-1)^(k+1) x^k / k by Horner; 0.1^18/18 is below 1e-16 of x^2/2.
        total = 0.0
        for k in range(18, 1, -1):
            total = total * x + (1.0 if k % 2 == 1 else -1.0) / k
        return total * x * x
    return math.log1p(x) - x


@jit
def stirling_correction(a):
    """lgamma(a) - ((a - 1/2) log a - a + log(2 pi)/2), for a > 0 (DLMF 5.11.1)."""
    if a < 10.0:
        return math.lgamma(a) - ((a - 0.5) * math.log(a) - a + HALF_LOG_2PI)
    inv = 1.0 / a
    inv2 = inv * inv
    return inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 * (
        1.0 / 1680.0 - inv2 * (1.0 / 1188.0)))))


@jit
def log_gamma_prefactor(a, x):
    """log(x^a e^-x / Gamma(a)), written so that large a and x near a do not cancel."""
    if x == 0.0:
        return -math.inf
    if a < 10.0:
        return a * math.log(x) - x - math.lgamma(a)
    # a log x - x - lgamma(a) = a (log(x/a) - x/a + 1) + log(a / 2 pi)/2 - stirling(a)
    return a * log1pmx((x - a) / a) + 0.5 * math.log(a) - HALF_LOG_2PI - stirling_correction(a)


@jit
def _gamma_p_series(a, x, log_pre):
    # P(a, x) = x^a e^-x / Gamma(a+1) * sum_n x^n / ((a+1)...(a+n))  (DLMF 8.11.4)
    term = 1.0
    total = 1.0
    n = 1.0
    while n < 100000.0:
        term *= x / (a + n)
        total += term
        if term < total * EPS:
            break
        n += 1.0
    return math.exp(log_pre - math.log(a)) * total


@jit
def _gamma_q_cf_log(a, x):
    # log of the continued fraction for Q(a, x) / (x^a e^-x / Gamma(a)) (DLMF 8.9.2),
    # evaluated by the modified Lentz method.
    b = x + 1.0 - a
    c = 1.0 / TINY
    d = 1.0 / b
    h = d
    i = 1.0
    while i < 100000.0:
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < TINY:
            d = TINY
        c = b + an / c
        if abs(c) < TINY:
            c = TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < EPS:
            break
        i += 1.0
    return math.log(h)


@jit
def log_gamma_q(a, x):
    """log Q(a, x), the log of the regularised upper incomplete gamma function."""
    if x <= 0.0:
        return 0.0
    if x == math.inf:
        return -math.inf
    log_pre = log_gamma_prefactor(a, x)
    if x < a + 1.0:
        return math.log1p(-_gamma_p_series(a, x, log_pre))
    return log_pre + _gamma_q_cf_log(a, x)


@jit
def log_gamma_pdf(a, x):
    """log of the Gamma(a, 1) density x^(a-1) e^-x / Gamma(a) at x > 0."""
    return log_gamma_prefactor(a, x) - math.log(x)


@jit
def log_beta(a, b):
    """log B(a, b) = lgamma(a) + lgamma(b) - lgamma(a + b)."""
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


@jit
def _beta_cf(a, b, x):
    # Continued fraction for I_x(a, b) (DLMF 8.17.22), modified Lentz method.
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < TINY:
        d = TINY
    d = 1.0 / d
    h = d
    m = 1.0
    while m < 100000.0:
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < TINY:
            d = TINY
        c = 1.0 + aa / c
        if abs(c) < TINY:
            c = TINY
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < TINY:
            d = TINY
        c = 1.0 + aa / c
        if abs(c) < TINY:
            c = TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < EPS:
            break
        m += 1.0
    return h


@jit
def log_beta_i(a, b, log_x, log_y):
    """log I_x(a, b), the log regularised incomplete beta function, with y = 1 - x.

    Both log x and log(1 - x) are passed so that callers can form them without cancellation.
    """
    if log_x == -math.inf:
        return -math.inf
    if log_y == -math.inf:
        return 0.0
    x = math.exp(log_x)
    y = math.exp(log_y)
    log_front = a * log_x + b * log_y - log_beta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        return log_front + math.log(_beta_cf(a, b, x)) - math.log(a)
    # I_x(a, b) = 1 - I_y(b, a)
    return math.log1p(-math.exp(log_front + math.log(_beta_cf(b, a, y)) - math.log(b)))
