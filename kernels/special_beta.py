"""Beta function and regularised incomplete beta function in log space (DLMF 5.12, 8.17).

    I_x(a, b) = 1/B(a, b) int_0^x t^(a-1) (1-t)^(b-1) dt,   I_x(a, b) = 1 - I_{1-x}(b, a).

``log_beta_i(a, b, log_x, log_y)`` takes both log x and log y = log(1 - x), so that callers
form them without cancellation (the F / Student-t family passes log nu - log(nu + s) and
log s - log(nu + s)); it stays finite where I_x underflows.

Method: the continued fraction of DLMF 8.17.22 (modified Lentz, capped) on the side where it
converges fast, x < (a+1)/(a+b+2); otherwise 1 - I_y(b, a) through log1p. The front factor
x^a y^b / B(a, b) is formed in Stirling form (see log_beta_front), which does not cancel for
large a or b. Where one shape is large, the other small and the large shape's argument near 1,
the fraction cancels (about the large shape in ulps); there the expansion in incomplete gamma
functions of _log_beta_i_large_shape takes over.
"""
import math
from fractions import Fraction

import numpy as np

from .special_core import EPS, HALF_LOG_2PI, expm1mx, jit, log1pmx, rescaled_convergents, stirling_correction
from .special_gamma import log_gamma_q_and_hazard

MAX_TERMS = 5000  # caps the continued fraction (it needs O(sqrt(min(a, b))) terms)
ILL_CONDITIONED = 50.0  # fraction values h = 1/F above this also try the other side


def _bernoulli_even(n):
    """B_2, B_4, ..., B_2n as Fractions (Akiyama-Tanigawa)."""
    out, a = [], []
    for m in range(2 * n + 1):
        a.append(Fraction(1, m + 1))
        for j in range(m, 0, -1):
            a[j - 1] = j * (a[j - 1] - a[j])
        if m >= 2 and m % 2 == 0:
            out.append(a[0])
    return out


def _large_shape_coefficients(n):
    """C[k, j] with p_k(alpha) = sum_j C[k, j] alpha^j the coefficients of
    (sinh(s/2) / (s/2))^alpha = sum_k p_k s^(2k), from log(sinh(y)/y) = sum_k B_2k (2y)^2k /
    (2k (2k)!) and n p_n = alpha sum_{k<=n} k l_k p_(n-k) (exp of a series), exactly."""
    ell = [Fraction(0)] + [b / (2 * k * Fraction(math.factorial(2 * k)))
                           for k, b in enumerate(_bernoulli_even(n), start=1)]
    polys = [[Fraction(1)]]
    for m in range(1, n + 1):
        acc = [Fraction(0)] * (m + 1)
        for k in range(1, m + 1):
            for j, c in enumerate(polys[m - k]):
                acc[j + 1] += k * ell[k] * c / m
        polys.append(acc)
    table = np.zeros((n + 1, n + 1))
    for m, poly in enumerate(polys):
        table[m, :len(poly)] = [float(c) for c in poly]
    return table


LARGE_SHAPE_TERMS = 12
LARGE_SHAPE_C = _large_shape_coefficients(LARGE_SHAPE_TERMS)


@jit
def log_ratio_weights(p, q):
    """(log(p/(p+q)), log(q/(p+q))) for p, q >= 0, each exact to rounding.

    -log1p(q/p) and -log1p(p/q): no cancellation however unequal p and q are (log p -
    log(p + q) carries eps |log(p + q)| absolute); for q/p beyond the largest double,
    log p - log q. The F family's index is I_w(nu/2, D/2) with (log w, log(1-w)) =
    log_ratio_weights(nu, s).
    """
    r = q / p
    first = -math.log1p(r) if r < math.inf else math.log(p) - math.log(q)
    r = p / q
    second = -math.log1p(r) if r < math.inf else math.log(q) - math.log(p)
    return first, second


@jit
def log_beta(a, b):
    """log B(a, b) = lgamma(a) + lgamma(b) - lgamma(a + b) for a, b > 0, without cancellation.

    With a <= b and mu the Stirling correction (lgamma(z) = (z - 1/2) log z - z + log(2 pi)/2
    + mu(z)):

    - b >= 10, a >= 10:  log(2 pi)/2 + (a - 1/2) log(a/(a+b)) - (b - 1/2) log1p(a/b)
      - log(a+b)/2 + mu(a) + mu(b) - mu(a+b);
    - b >= 10 > a:        lgamma(a) - (b - 1/2) log1p(a/b) - a log(a+b) + a + mu(b) - mu(a+b);
    - both < 10:          lgamma(a) + lgamma(b) - lgamma(a+b) (all terms moderate).

    The naive form loses about b log b ulps (1e-11 absolute at b = 8192).
    """
    if a > b:
        a, b = b, a
    if b < 10.0:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    c = a + b
    corr = stirling_correction(b) - stirling_correction(c)
    if a < 10.0:
        return math.lgamma(a) - (b - 0.5) * math.log1p(a / b) - a * math.log(c) + a + corr
    return (HALF_LOG_2PI + (a - 0.5) * math.log(a / c) - (b - 0.5) * math.log1p(a / b)
            - 0.5 * math.log(c) + stirling_correction(a) + corr)


@jit
def log_beta_front(a, b, log_x, log_y):
    """log(x^a y^b / B(a, b)) with y = 1 - x, from log x and log y.

    With x0 = a/(a+b), y0 = b/(a+b), l_a = log(x/x0), l_b = log(y/y0) and Stirling's formula
    for the three gammas (mu: Stirling correction),

        log(x^a y^b / B(a, b)) = a l_a + b l_b + log(ab / (2 pi (a+b)))/2 + mu(a+b) - mu(a) - mu(b).

    Near the mode (|l_a|, |l_b| < 1) a l_a and b l_b cancel to first order (for large a, b
    a log x + b log y - log B(a, b) loses (a+b) ulps); there the identity
    a (e^l_a - 1) + b (e^l_b - 1) = (a+b)(x + y - 1) = 0 turns the sum into
    -a expm1mx(l_a) - b expm1mx(l_b), expm1mx(t) = e^t - 1 - t, two terms of one sign.
    Farther out a l_a + b l_b cancels by at most a factor ~5 and is the better-conditioned
    form (e^l_a magnifies the rounding of l_a).
    """
    c = a + b
    if a <= b:
        log_x0 = math.log(a / c)
        log_y0 = -math.log1p(a / b)
    else:
        log_x0 = -math.log1p(b / a)
        log_y0 = math.log(b / c)
    la = log_x - log_x0
    lb = log_y - log_y0
    if abs(la) < 1.0 and abs(lb) < 1.0:
        core = -a * expm1mx(la) - b * expm1mx(lb)
    else:
        core = a * la + b * lb
    return (core + 0.5 * (math.log(a * b / c) - 2.0 * HALF_LOG_2PI)
            + stirling_correction(c) - stirling_correction(a) - stirling_correction(b))


@jit
def _large_shape_applies(p, q, log_t):
    """Whether _log_beta_i_large_shape is the method for I_t(p, q): p >= 15 with q <= 5, or
    p >= 300 with q <= 15 (where its asymptotic series was measured accurate against
    mpmath), -log t <= 1 (its series converges fast) and u = T (-log t) >= q (I_t is not
    close to 1, where log I_t would come from cancelling terms)."""
    if not (p >= 15.0 and q <= (15.0 if p >= 300.0 else 5.0) and -log_t <= 1.0):
        return False
    return (p + 0.5 * (q - 1.0)) * -log_t >= q


@jit
def _log_beta_i_large_shape(p, q, log_t):
    """log I_t(p, q) for a large p and a moderate q, t close enough to 1 (-log t <= 1).

    With t = e^-xi, T = p + (q - 1)/2, u = T xi and s = -log of the integration variable,
    (1 - e^-s)^(q-1) = s^(q-1) e^-((q-1) s/2) (sinh(s/2)/(s/2))^(q-1) turns the integral
    into gamma functions (the expansion behind DiDonato & Morris's BGRAT):

        I_t(p, q) = Gamma(p+q) / (Gamma(p) T^q) sum_n p_n Gamma(q+2n, u) / (Gamma(q) T^2n),

    p_n the coefficients of (sinh(s/2)/(s/2))^(q-1) in s^2n (LARGE_SHAPE_C). Written as
    log G + log Q(q, u) + log1p(sum_{n>=1} p_n R_n), R_n = Gamma(q+2n, u)/(Gamma(q, u) T^2n)
    from Gamma(s+2, u) = s(s+1) Gamma(s, u) + u^s e^-u (s + 1 + u):

        R_(n+1) = ((q+2n)(q+2n+1) R_n + xi^2n (q+2n+1+u) u p(u)/Q(q, u)) / T^2,

    p(u)/Q the gamma hazard; log G = log Gamma(p+q) - log Gamma(p) - q log T in Stirling form,
    p log1pmx(q/p) - log1p(q/p)/2 + q log1p((q+1)/(2T)) + mu(p+q) - mu(p), which does not
    cancel. Where the continued fraction cancels (one shape small, the other large, the
    argument near 1: h ~ p ulps lost), this keeps the few ulps of Q(q, u).
    """
    xi = -log_t
    big_t = p + 0.5 * (q - 1.0)
    u = big_t * xi
    log_q, haz = log_gamma_q_and_hazard(q, u)
    log_g = (p * log1pmx(q / p) - 0.5 * math.log1p(q / p) + q * math.log1p(0.5 * (q + 1.0) / big_t)
             + stirling_correction(p + q) - stirling_correction(p))
    alpha = q - 1.0
    inv_t2 = 1.0 / (big_t * big_t)
    xi2 = xi * xi
    r = 1.0
    xi_pow = 1.0
    u_haz = u * haz
    total = 0.0
    for n in range(LARGE_SHAPE_TERMS):
        s = q + 2.0 * n
        r = (s * (s + 1.0) * r + xi_pow * (s + 1.0 + u) * u_haz) * inv_t2
        xi_pow *= xi2
        coef = 0.0
        for j in range(n + 1, 0, -1):
            coef = coef * alpha + LARGE_SHAPE_C[n + 1, j]
        term = coef * alpha * r
        total += term
        if abs(term) <= 0.25 * EPS * abs(1.0 + total):
            break
    return log_g + log_q + math.log1p(total)


@jit
def _beta_fraction(a, b, x):
    """I_x(a, b) / (x^a (1-x)^b / (a B(a, b))) by the continued fraction DLMF 8.17.22.

    1/F, F = 1 + d_1/(1 + d_2/(1 + ...)) with d_{2m+1} = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1)),
    d_{2m} = m (b-m) x / ((a+2m-1)(a+2m)). F is summed by the forward recurrences of its
    convergents A_n / B_n (two steps per loop): the dependent chain is one multiply-add per
    step, the divisions that form d_n are off it. Returns (1/F, whether it converged).
    """
    apb = a + b
    d1 = -apb * x / (a + 1.0)
    a2, a1 = 1.0, 1.0 + d1  # A_{n-2}, A_{n-1} (A_{-1} = A_0 = 1)
    q2, q1 = 1.0, 1.0  # B_{n-2}, B_{n-1} (B_{-1} = 0, B_0 = 1)
    # D_n = A_n B_{n-1} - A_{n-1} B_n = -d_n D_{n-1} (D_0 = -1), and F_n - F_{n-1} =
    # D_n / (B_n B_{n-1}): |D_n| <= eps |A_n B_{n-1}| tests convergence without a division.
    det = d1
    converged = False
    for m in range(1, MAX_TERMS):
        p0 = a + 2.0 * m
        r = x / ((p0 - 1.0) * p0 * (p0 + 1.0))  # one division for the pair of steps
        d_even = m * (b - m) * (p0 + 1.0) * r
        a2, a1 = a1, a1 + d_even * a2
        q2, q1 = q1, q1 + d_even * q2
        d_odd = -(a + m) * (apb + m) * (p0 - 1.0) * r
        a2, a1 = a1, a1 + d_odd * a2
        q2, q1 = q1, q1 + d_odd * q2
        det = det * (d_even * d_odd)
        if abs(det) <= EPS * abs(a1 * q2):
            converged = True
            break
        a2, a1, q2, q1, det = rescaled_convergents(a2, a1, q2, q1, det)
    return q1 / a1, converged


@jit
def _beta_i_core(a, b, log_x, log_y, want_hazard):
    """(log I_x(a, b), log(x^a y^b / (B(a, b) I_x(a, b)))); the second only if want_hazard.

    The hazard comes back as its log: far into the upper tail (x -> 1) x^a y^b / B is
    subnormal or 0 while the hazard divided by y, which callers want, is an ordinary number.

    The fraction's value h = 1/F measures its own conditioning: F = 1 + d_1/(1 + ...) is
    small (h large) only by cancellation, which costs about h ulps. That happens on the
    side the convergence rule picks when one shape is small and the other large (for the
    F family: nu of order 1, D/2 in the thousands, h ~ D/2); there the fraction of the other
    side, whose first shape is the small one, is well conditioned a little past its own
    switch point. So where h > ILL_CONDITIONED that side is evaluated too (where measured
    safe: first shape <= 2 and argument within twice its switch point, or <= 10 and 1.5
    times) and kept
    if its h and its error estimate are smaller: eps h / |log I| directly,
    eps h J / ((1 - J) |log(1 - J)|) through the complement J = I_y(b, a).
    """
    if log_x != log_x or log_y != log_y or not (a > 0.0) or not (b > 0.0):
        return math.nan, math.nan
    if log_x == -math.inf:
        return -math.inf, (math.inf if want_hazard else 0.0)
    if log_y == -math.inf:
        return 0.0, -math.inf
    front = log_beta_front(a, b, log_x, log_y)
    if _large_shape_applies(a, b, log_x):
        log_i = _log_beta_i_large_shape(a, b, log_x)
        return log_i, (front - log_i if want_hazard else 0.0)
    if _large_shape_applies(b, a, log_y):
        log_i = math.log1p(-math.exp(_log_beta_i_large_shape(b, a, log_y)))
        return log_i, (front - log_i if want_hazard else 0.0)
    x = math.exp(log_x)
    y = math.exp(log_y)
    direct = x < (a + 1.0) / (a + b + 2.0)
    log_i, err, h, haz_num = _beta_i_side(a, b, log_x, log_y, front, direct)
    if not (h <= ILL_CONDITIONED):
        # the other side's fraction, with first shape p and argument t, is trusted only a
        # little past its own switch point t_s and for a small p (measured: p <= 2 up to
        # 2 t_s, p <= 10 up to 1.5 t_s; beyond, it can settle on a wrong value)
        p, t = (b, y) if direct else (a, x)
        t_s = (p + 1.0) / (a + b + 2.0)
        if (p <= 2.0 and t <= 2.0 * t_s) or (p <= 10.0 and t <= 1.5 * t_s):
            log_i2, err2, h2, haz_num2 = _beta_i_side(a, b, log_x, log_y, front, not direct)
            if h2 < h and err2 < err:
                log_i, haz_num = log_i2, haz_num2
    return log_i, (haz_num if want_hazard else 0.0)


@jit
def _beta_i_side(a, b, log_x, log_y, front, direct):
    """(log I, error estimate / eps, fraction value h, log(front / I)) from one side:
    I_x(a, b) = front h / a directly, or 1 - J with J = I_y(b, a) = front h / b."""
    if direct:
        h, ok = _beta_fraction(a, b, math.exp(log_x))
        if not (ok and h > 0.0):
            return math.nan, math.inf, math.inf, math.nan
        log_i = front - math.log(a) + math.log(h)
        err = max(h, 1.0) / abs(log_i) if log_i != 0.0 else math.inf
        return log_i, err, h, math.log(a / h)  # front / I = a / h: no difference of large logs
    h, ok = _beta_fraction(b, a, math.exp(log_y))
    if not (ok and h > 0.0):
        return math.nan, math.inf, math.inf, math.nan
    j = math.exp(front - math.log(b) + math.log(h))
    log_i = math.log1p(-j)
    err = max(h, 1.0) * j / ((1.0 - j) * abs(log_i)) if log_i != 0.0 else max(h, 1.0)
    return log_i, err, h, front - math.log1p(-j)


@jit
def log_beta_i(a, b, log_x, log_y):
    """log I_x(a, b), the log regularised incomplete beta function, with y = 1 - x.

    Both log x and log(1 - x) are passed so that callers can form them without cancellation
    (for the F family, log w = -log1p(s/nu) and log(1 - w) = -log1p(nu/s) are exact to
    rounding; log nu - log(nu + s) would carry an absolute error eps |log(nu + s)|, which
    b = D/2 magnifies).
    """
    return _beta_i_core(a, b, log_x, log_y, False)[0]


@jit
def beta_i_hazard(a, b, log_x, log_y):
    """x^a y^b / (B(a, b) I_x(a, b)) = x y d/dx log I_x(a, b), with y = 1 - x.

    For the F / Student-t index ri(s) = I_w(nu/2, D/2), w = nu/(nu + s):
    d log ri / ds = -beta_i_hazard(nu/2, D/2, log w, log(1 - w)) / s. Formed without the
    difference of two large logs, so it stays accurate where I_x underflows.
    """
    return math.exp(_beta_i_core(a, b, log_x, log_y, True)[1])


@jit
def log_beta_i_hazard(a, b, log_x, log_y):
    """log of :func:`beta_i_hazard`: finite where the hazard itself is subnormal or 0 (x near 1,
    y^b below 1e-308), so that callers can divide by y in log space (the F family near the
    origin: d log ri / ds = -exp(log_beta_i_hazard(...) - log s))."""
    return _beta_i_core(a, b, log_x, log_y, True)[1]
