"""Regularised incomplete gamma function in log space, and the Gamma density (DLMF 8).

    Q(a, x) = Gamma(a, x) / Gamma(a) = 1/Gamma(a) int_x^inf t^(a-1) e^-t dt,   P = 1 - Q.

``log_gamma_q(a, x)`` = log Q(a, x) for a > 0, x >= 0, finite wherever Q > 0 (also far below
the smallest double) and relatively accurate where Q is close to 1 (log Q = log1p(-P)).
``gamma_hazard(a, x)`` = p(x)/Q(a, x) = -d/dx log Q, with p the Gamma(a, 1) density.

Regions (lambda = x/a; eta the signed root of eta^2/2 = lambda - 1 - ln(lambda); z = |eta|
sqrt(a), about |x - a| / sqrt(a), the distance from the mean in standard deviations):

- a >= 20, Temme's uniform expansion (DLMF 8.12.3-8.12.10) in the bulk z <= 3, and beyond it
  up to |eta| = 1 wherever that is faster than the alternatives (_temme_is_fastest):

      Q = erfc(y)/2 + exp(-y^2) S / sqrt(2 pi a),   P = erfc(-y)/2 - exp(-y^2) S / sqrt(2 pi a),
      y = eta sqrt(a/2),  y^2 = a (lambda - 1 - log(lambda)),  S = sum_k c_k(eta) a^-k.

  The c_k come from their Taylor coefficients d_{k,n}, generated in exact arithmetic by
  kernels/tools/gen_temme.py (special_gamma_coeffs.py), with as many terms per band of a and
  z as keep the neglected part of S below 1e-15; in the bulk the sums are written out, per
  band of a, re-expanded about the band's middle in 1/a. For x >= a we evaluate Q (past
  y = 26 in log space, through erfcx), for x < a P, and log Q = log1p(-P).
- integer 2 <= a < 20 and x >= max(a - sqrt(a), 1): the finite sum Q = e^-x sum_{k<a} x^k/k!
  (DLMF 8.4.10), as p(x) r with p the Gamma(a, 1) density and r a sum of a positive terms;
  there Q < 0.85, so log Q keeps its relative precision, and the hazard is 1/r. (Chi-square
  priors of even dimension below 40 land here for most points: a few multiply-adds instead of
  the dozens of divisions of the series or the continued fraction.)
- a < 1 and x < 1.5: Q = (1 - x^a/Gamma(1+a)) + x^a a T/Gamma(1+a) (DLMF 8.7.1), which keeps
  the relative precision of a small Q (Q ~ a E1(x) as a -> 0).
- otherwise below the transition (x < a; x < a + 1 for a < 20) the power series of P
  (DLMF 8.11.4) and log1p(-P); above it Legendre's continued fraction for Q (DLMF 8.9.2),
  log Q = log(x^a e^-x / Gamma(a)) + log(fraction). Both converge geometrically there (at
  most about 100 terms); every loop is capped.

The prefactor x^a e^-x / Gamma(a) is formed as exp(a (log lambda - lambda + 1) + log(a/2 pi)/2
- mu(a)) for a >= 10, so that large a near x = a does not cancel (mu: Stirling correction).
"""
import math

from .special_core import (
    EPS,
    HALF_LOG_2PI,
    SQRT1_2,
    erfcx,
    erfcx_asymptotic,
    jit,
    lgamma1p,
    log1pmx_b,
    log1pmx_ratio,
    rescaled_convergents,
    stirling_correction,
)
from .special_gamma_coeffs import (
    TEMME_A_BANDS,
    TEMME_D,
    TEMME_K,
    TEMME_OFFSET,
    TEMME_TERMS,
    TEMME_WIDE_FIRST_BAND,
    TEMME_Z_BANDS,
    temme_bulk_sum,
    temme_wide_sum,
)

TEMME_MIN_A = 20.0
TEMME_MAX_HALF_ETA2 = 0.5  # |eta| <= 1
SQRT2 = math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
MAX_TERMS = 1000  # caps the series and the continued fraction (never reached for valid input)

WIDE_MIN_A = float(TEMME_A_BANDS[TEMME_WIDE_FIRST_BAND])  # temme_wide_sum exists from here on
assert TEMME_A_BANDS[0] == TEMME_MIN_A


@jit
def _log_prefactor_large_a(a, lm):
    """log(x^a e^-x / Gamma(a)) for a >= 10, given lm = log(x/a) - x/a + 1."""
    return a * lm + 0.5 * math.log(a) - HALF_LOG_2PI - stirling_correction(a)


@jit
def log_gamma_prefactor(a, x):
    """log(x^a e^-x / Gamma(a)), written so that large a and x near a do not cancel."""
    if x == 0.0:
        return -math.inf
    if x == math.inf:
        return -math.inf
    if a < 10.0:
        return a * math.log(x) - x - math.lgamma(a)
    return _log_prefactor_large_a(a, log1pmx_ratio(x, a))


@jit
def log_gamma_pdf(a, x):
    """log of the Gamma(a, 1) density x^(a-1) e^-x / Gamma(a) at x > 0."""
    return log_gamma_prefactor(a, x) - math.log(x)


def _temme_sum_for(wide):
    """_temme_sum, or without ``wide`` _temme_sum_narrow, which never calls the written-out
    sums for |eta| <= 1 beyond the bulk (temme_wide_sum, which exists from a >= WIDE_MIN_A):
    the Taylor table gives that region instead, as accurately and more slowly. Below
    WIDE_MIN_A the two are the same function. ``wide`` is a closure constant (Numba's cache
    keys on it), so the narrow chain (_temme_narrow, _gamma_q_core_narrow) drops the branch
    before typing and a kernel that calls it does not compile the wide sums."""

    def temme_sum(eta, a, z, inv_a):
        """S = sum_k c_k(eta) a^-k for a >= 20, |eta| <= 1, z = |eta| sqrt(a), inv_a = 1/a.

        The number of terms comes from the band of a and z (special_gamma_coeffs): in the bulk
        z <= 3 for almost every point, so the loop lengths repeat from call to call.
        """
        lo = 0
        hi = TEMME_A_BANDS.size - 1
        while lo < hi:  # the last band with TEMME_A_BANDS[band] <= a
            mid = (lo + hi + 1) >> 1
            if TEMME_A_BANDS[mid] <= a:
                lo = mid
            else:
                hi = mid - 1
        ia = lo
        e2 = eta * eta
        if z <= TEMME_Z_BANDS[0]:
            return temme_bulk_sum(ia, eta, e2, inv_a)  # the same sum, written out
        if wide and ia >= TEMME_WIDE_FIRST_BAND:  # wide: a constant, settled before typing
            return temme_wide_sum(ia, eta, e2, inv_a)  # written out for |eta| <= 1
        je = 1
        while je + 1 < TEMME_Z_BANDS.size and z > TEMME_Z_BANDS[je]:
            je += 1
        return _temme_sum_table(ia, je, eta, e2, inv_a)

    return jit(temme_sum)


_temme_sum = _temme_sum_for(True)
_temme_sum_narrow = _temme_sum_for(False)


@jit
def _temme_sum_table(ia, je, eta, e2, inv_a):
    """S from the Taylor table, TEMME_TERMS[ia, je, k] terms of each c_k (any band)."""
    # Horner in 1/a over k, and for each c_k two chains (even and odd powers of eta) to
    # halve the latency of the longest dependency chain.
    s = 0.0
    for k in range(TEMME_K - 1, -1, -1):
        off = TEMME_OFFSET[k]
        c_even = 0.0
        c_odd = 0.0
        for m in range((TEMME_TERMS[ia, je, k] >> 1) - 1, -1, -1):
            c_even = c_even * e2 + TEMME_D[off + 2 * m]
            c_odd = c_odd * e2 + TEMME_D[off + 2 * m + 1]
        s = s * inv_a + (c_even + eta * c_odd)
    return s


@jit
def _gamma_p_series(a, x):
    """sum_n x^n / ((a+1)...(a+n)), so that P(a, x) = x^a e^-x / Gamma(a+1) * sum (DLMF 8.11.4).

    Two terms per step with one division, r = x / ((a+n+1)(a+n+2)): t_{n+1} = t_n r (a+n+2),
    t_{n+2} = t_n r x. The terms decrease for x < a + 1, so stopping on the second is safe.
    """
    term = 1.0
    total = 1.0
    n = 0.0
    for _ in range(MAX_TERMS // 2):
        r = x / ((a + n + 1.0) * (a + n + 2.0))
        t1 = term * r * (a + n + 2.0)
        term = term * r * x
        total += t1 + term
        n += 2.0
        if term < total * EPS:
            break
    return total


@jit
def _gamma_q_fraction(a, x):
    """Q(a, x) / (x^a e^-x / Gamma(a)) by Legendre's continued fraction (DLMF 8.9.2).

    1/K, K = b_0 + a_1/(b_1 + a_2/(b_2 + ...)), b_n = x + 2n + 1 - a, a_n = n (a - n); for
    x >= a + 1 (or x > a with a >= 20) every b_n is positive. Written K = b_0 F with
    F = 1 + alpha_1/(1 + alpha_2/(1 + ...)), alpha_n = a_n / (b_{n-1} b_n), and F summed by
    the forward recurrences of its convergents A_n / B_n: the dependent chain is one
    multiply-add per step (Lentz's method puts two divisions on it).
    """
    b0 = x + 1.0 - a
    b_prev = b0
    a2, a1 = 1.0, 1.0  # A_{n-2}, A_{n-1}
    q2, q1 = 0.0, 1.0  # B_{n-2}, B_{n-1}
    # D_n = A_n B_{n-1} - A_{n-1} B_n = -alpha_n D_{n-1} (D_0 = -1), F_n - F_{n-1} =
    # D_n / (B_n B_{n-1}): |D_n| <= eps |A_n B_{n-1}| tests convergence without a division.
    det = -1.0
    for n in range(1, MAX_TERMS):
        b_n = b_prev + 2.0
        alpha = n * (a - n) / (b_prev * b_n)
        b_prev = b_n
        a2, a1 = a1, a1 + alpha * a2
        q2, q1 = q1, q1 + alpha * q2
        det = -alpha * det
        if abs(det) <= EPS * abs(a1 * q2):
            break
        a2, a1, q2, q1, det = rescaled_convergents(a2, a1, q2, q1, det)
    f = a1 / q1
    return 1.0 / (b0 * f)


def _temme_for(wide):
    """_temme (wide) or _temme_narrow (see _temme_sum_for)."""

    def temme(a, x, eta, y2, want_hazard):
        """(log Q, hazard) by Temme's expansion, given eta (|eta| <= 1) and y2 = a eta^2 / 2.

        With v = erfc(|y|)/2 + sign(x - a) exp(-y^2) S / sqrt(2 pi a), y = eta sqrt(a/2):
        Q = v above the mean and P = v below it.
        """
        up = x >= a
        ra = math.sqrt(a)
        inv_ra = 1.0 / ra
        ay = abs(eta) * (ra * SQRT1_2)
        k = INV_SQRT_2PI * inv_ra
        if wide:
            s = _temme_sum(eta, a, SQRT2 * ay, inv_ra * inv_ra) * k
        else:
            s = _temme_sum_narrow(eta, a, SQRT2 * ay, inv_ra * inv_ra) * k
        haz = 0.0
        if ay < 26.0:
            e = math.exp(-y2)
            if up:
                log_q = math.log(0.5 * math.erfc(ay) + e * s)
                if want_hazard:
                    # p(x) / Q with p(x) = exp(-y^2) sqrt(a / 2 pi) exp(-mu(a)) / x and
                    # Q = exp(-y^2) (erfcx(|y|)/2 + S/sqrt(2 pi a)): exp(-y^2) cancels exactly
                    haz = (a * k) * math.exp(-stirling_correction(a)) / (x * (0.5 * erfcx(ay) + s))
            else:
                p = 0.5 * math.erfc(ay) - e * s
                log_q = math.log1p(-p)
                if want_hazard:
                    haz = e * (a * k) * math.exp(-stirling_correction(a)) / (x * (1.0 - p))
            return log_q, haz
        # erfc(|y|) < 1e-295: scale by exp(y^2)
        if up:
            scaled = 0.5 * erfcx_asymptotic(ay) + s
            if want_hazard:
                haz = (a * k) * math.exp(-stirling_correction(a)) / (x * scaled)
            return math.log(scaled) - y2, haz
        p = math.exp(-y2) * (0.5 * erfcx_asymptotic(ay) - s)
        if want_hazard:
            haz = math.exp(_log_prefactor_large_a(a, -y2 / a)) / x
        return math.log1p(-p), haz

    return jit(temme)


_temme = _temme_for(True)
_temme_narrow = _temme_for(False)


@jit
def _small_a(a, x, want_hazard):
    """(log Q, hazard) for a < 1, 0 < x < 1.5, where Q itself may be small (Q(a, x) ~ a E1(x)
    as a -> 0) so that 1 - P would cancel. From gamma(a, x) = x^a (1/a - T) (DLMF 8.7.1),

        P = u (1 - a T),   Q = (1 - u) + u a T,   u = x^a / Gamma(1 + a),
        T = sum_{n>=1} (-1)^(n+1) x^n / (n! (n + a)),

    with 1 - u = -expm1(a log x - lgamma1p(a)) exact to rounding. log1p(-P) where P < 1/2.
    """
    log_u = a * math.log(x) - lgamma1p(a)
    u = math.exp(log_u)
    term = 1.0
    t_sum = 0.0
    for n in range(1, 60):  # x^n / n! < 1e-17 by n = 35 for x < 1.5
        term *= -x / n
        delta = term / (n + a)
        t_sum -= delta
        if abs(delta) < EPS * abs(t_sum):
            break
    p = u * (1.0 - a * t_sum)
    if p < 0.5:
        log_q = math.log1p(-p)
        q = 1.0 - p
    else:
        q = -math.expm1(log_u) + u * a * t_sum
        log_q = math.log(q)
    haz = 0.0
    if want_hazard:
        haz = math.exp(log_gamma_prefactor(a, x)) / (x * q)
    return log_q, haz


@jit
def _integer_a(a, x, want_hazard):
    """(log Q, hazard) for integer 2 <= a < 20 and x >= max(a - sqrt(a), 1) (DLMF 8.4.10):

        Q(a, x) = e^-x sum_{k<a} x^k / k! = p(x) r,   r = 1 + c_1 (1 + c_2 (1 + ... (1 + c_{a-1}))),

    c_i = (a - i)/x, p(x) = x^(a-1) e^-x / Gamma(a). r sums positive terms (a few ulps), so
    log Q = log p + log r to a few ulps of |log p| + 1, relative to |log Q| > 0.16 here; the
    hazard p/Q is 1/r.
    """
    inv_x = 1.0 / x
    r = 1.0
    for i in range(int(a) - 1, 0, -1):
        r = 1.0 + ((a - i) * inv_x) * r
    if a < 10.0:
        log_p = (a - 1.0) * math.log(x) - x - math.lgamma(a)
    else:
        log_p = _log_prefactor_large_a(a, log1pmx_ratio(x, a)) - math.log(x)
    return log_p + math.log(r), (1.0 / r if want_hazard else 0.0)


@jit
def _temme_is_fastest(a, up, y2):
    """Whether Temme's expansion beats the series / continued fraction at a >= 20, given
    y2 = a eta^2 / 2 (z = |eta| sqrt(a) = sqrt(2 y2), about |x - a| / sqrt(a)).

    Measured crossovers: in the bulk (z <= 3, written-out sums) always; beyond it only where
    the written-out sums for |eta| <= 1 exist (a >= WIDE_MIN_A): above the mean up to z = 6
    (the fraction needs O(sqrt(a)/z) steps), below it down to eta = -0.65, or -0.8 for
    a >= 4000 (the series needs O(1/log(1/lambda)) steps, many near lambda = 1).
    """
    if y2 <= 4.5:
        return True
    if a < WIDE_MIN_A or y2 > TEMME_MAX_HALF_ETA2 * a:
        return False
    if up:
        return y2 <= 18.0
    return y2 <= (0.32 if a >= 4000.0 else 0.21) * a


def _gamma_q_core_for(wide):
    """_gamma_q_core (wide) or _gamma_q_core_narrow (see _temme_sum_for)."""

    def gamma_q_core(a, x, want_hazard):
        """(log Q(a, x), p(x)/Q(a, x)); the hazard only if want_hazard (else 0)."""
        if not (a > 0.0) or x != x:
            return math.nan, math.nan
        if x <= 0.0:
            if not want_hazard:
                return 0.0, 0.0
            return 0.0, (math.inf if a < 1.0 else (1.0 if a == 1.0 else 0.0))
        if x == math.inf:
            return -math.inf, 1.0
        haz = 0.0
        if a < TEMME_MIN_A and a >= 2.0 and a == math.floor(a) and x >= max(a - math.sqrt(a), 1.0):
            return _integer_a(a, x, want_hazard)
        if a >= TEMME_MIN_A:
            d = x - a  # exact for a/2 <= x <= 2a
            up = d > 0.0
            t = d / (x + a)
            temme = False
            eta = y2 = 0.0
            if abs(t) <= 1.0 / 3.0:
                # lambda - 1 - log(lambda) = 2 t^2 g2 with t = (x-a)/(x+a), g2 = 1/(1-t) - t B(t^2)
                # (see log1pmx); 1/(1-t) = (x+a)/(2a). Fewer dependent steps than log1pmx_ratio.
                u = t * t
                g2 = (x + a) * (0.5 / a) - t * log1pmx_b(u)
                y2 = 2.0 * a * u * g2
                temme = _temme_is_fastest(a, up, y2)
                eta = 2.0 * t * math.sqrt(g2)
            elif not up:
                y2 = -a * log1pmx_ratio(x, a)
                temme = _temme_is_fastest(a, up, y2)
                eta = -math.sqrt(2.0 * y2 / a)
            if temme:
                if wide:  # a closure constant (see _temme_sum_for)
                    return _temme(a, x, eta, y2, want_hazard)
                return _temme_narrow(a, x, eta, y2, want_hazard)
        elif a < 1.0 and x < 1.5:
            return _small_a(a, x, want_hazard)
        else:
            up = x >= a + 1.0
        log_pre = log_gamma_prefactor(a, x)
        if up:
            h = _gamma_q_fraction(a, x)
            if want_hazard:
                haz = 1.0 / (x * h)
            return log_pre + math.log(h), haz
        p = math.exp(log_pre - math.log(a)) * _gamma_p_series(a, x)
        if p > 1.0:  # rounding at tiny a; Q is then below the accuracy of P anyway
            p = 1.0
        if want_hazard:
            haz = math.exp(log_pre) / (x * (1.0 - p))
        return math.log1p(-p), haz

    return jit(gamma_q_core)


_gamma_q_core = _gamma_q_core_for(True)
_gamma_q_core_narrow = _gamma_q_core_for(False)


@jit
def log_gamma_q(a, x):
    """log Q(a, x), the log of the regularised upper incomplete gamma function (a > 0)."""
    return _gamma_q_core(a, x, False)[0]


@jit
def log_gamma_q_and_hazard(a, x):
    """(log Q(a, x), p(x)/Q(a, x)) from one evaluation: the same two numbers as
    :func:`log_gamma_q` and :func:`gamma_hazard`, at the cost of one of them."""
    return _gamma_q_core(a, x, True)


@jit
def log_gamma_q_hazard_if(a, x, want_hazard):
    """(log Q(a, x), p(x)/Q(a, x) if want_hazard else 0): :func:`log_gamma_q_and_hazard` with
    the hazard chosen at run time. A kernel that serves both (the radial index with and
    without its gradient) calls this with its run-time flag, so that Numba compiles the chain
    once instead of once for each constant (a literal True or False is a signature of its
    own)."""
    return _gamma_q_core(a, x, want_hazard)


@jit
def log_gamma_q_hazard_if_narrow(a, x, want_hazard):
    """:func:`log_gamma_q_hazard_if` without the written-out wide Temme sums (see
    _temme_sum_for): the same numbers for a < WIDE_MIN_A, as accurate and slower beyond the
    bulk above it. For kernels whose a is known to be below WIDE_MIN_A, which then do not
    compile those sums."""
    return _gamma_q_core_narrow(a, x, want_hazard)


@jit
def gamma_hazard(a, x):
    """p(x) / Q(a, x) = -d/dx log Q(a, x), with p the Gamma(a, 1) density (a > 0, x >= 0).

    Formed from the same pieces as log Q, so it stays accurate where Q underflows (there it
    tends to 1 - (a-1)/x). ``-exp(log_gamma_pdf - log_gamma_q)`` is the same function but
    loses about |log Q| * 1e-16 (relative) to the difference of two large logs.
    """
    return _gamma_q_core(a, x, True)[1]
