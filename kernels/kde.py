"""Scalar math of the KDE realism-index estimator (MATH.md 1.3), for the CPU and CUDA kernels.

The KDE of the log-density samples l_1 <= ... <= l_n with bandwidth h, at u_i = (x - l_i)/h:

    G(x) = (1/n) sum_i Phi(u_i)          (cdf)      S(x) = 1 - G(x) = (1/n) sum_i Phi(-u_i)
    g(x) = (1/(n h)) sum_i phi(u_i)      (pdf)

Samples are passed as sorted unique values ``vals`` with multiplicities ``cnts`` (float64)
and cumulative counts ``cum`` (cum[i] = number of samples below vals[i], cum[-1] = n), so ties
cost one term. Everything is a plain ``@njit`` scalar function of floats and arrays using
``math`` intrinsics only, so the same source compiles for ``@cuda.jit`` kernels.

Exact evaluation
----------------
Sums drop only terms whose total is provably below TRUNCATION (1e-17) of the sum:

- :func:`window_sums` (most table nodes): one pass over the samples within a window whose
  half-width follows from the lowest and highest samples' terms (lower bounds of n G, n S)
  and the nearest sample's phi term; outside it Phi counts as exactly 0 or 1.
- :func:`log_sum_ndtr`, :func:`log_sum_ndtr_upper`, :func:`log_sum_npdf` (near the ends of the
  samples): summed over the sorted samples outwards from the largest term; the terms still to
  come are each no larger than the last one added (they are monotone along the sorted order),
  so the loop stops when ``n * last_term <= TRUNCATION * running_sum``.
- :func:`lower_tail_sums`, :func:`upper_tail_sums` (beyond the table): the same, with every
  term scaled by the extreme sample's (log-sum-exp) and Phi = phi R from the Mills ratio's
  series, so log G is exact to rounding however far below the samples x lies (only the few
  lowest samples then matter), and log S likewise far above them.

Interpolation
-------------
Inside the tabulated range a smooth function f is evaluated from its values and first two
derivatives at uniformly spaced nodes by the quintic Hermite interpolant, stored per cell as
the Taylor-like coefficients of p(theta) = f(x_j + theta dx), 0 <= theta <= 1::

    p(theta) = f0 + d0 theta + (c0/2) theta^2 + a3 theta^3 + a4 theta^4 + a5 theta^5
    with A = f1 - f0 - d0 - c0/2, B = d1 - d0 - c0, C = c1 - c0 (d = dx f', c = dx^2 f''):
    a3 = 10 A - 4 B + C/2,   a4 = -15 A + 7 B - C,   a5 = 6 A - 3 B + C/2.

Its error is f^(6)(xi) dx^6 theta^3 (1 - theta)^3 / 720: largest mid-cell, which is where the
table builder checks every cell against the exact evaluation.
"""
import math

from numba import njit

from .codes import CDF, LOG_CDF, PDF
from .special import HALF_LOG_2PI, SQRT1_2, log_ndtr

jit = njit(cache=True, nogil=True)
#: small helpers called with constant column numbers: inlined before typing, where a call
#: would compile once for each constant (a literal int is a signature of its own)
inline = njit(cache=True, nogil=True, inline="always")

#: relative size of the terms a sum may drop (a bound on their total, relative to the sum)
TRUNCATION = 1e-17
#: Phi(u) counts as exactly 1 for u > SATURATED: 1 - Phi(8.6) = 4.0e-18 < TRUNCATION
SATURATED = 8.6
#: below this log Phi of the largest term, cdf sums are scaled (log-sum-exp) against underflow
LOG_SCALE_BELOW = -600.0
#: coefficients per interpolation cell
NCOEF = 6


# -- sorted-array search ------------------------------------------------------------------------

@jit
def count_below(a, v):
    """The number of entries of the sorted array ``a`` that are < v (binary search)."""
    lo = 0
    hi = a.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@jit
def count_not_above(a, v):
    """The number of entries of the sorted array ``a`` that are <= v (binary search)."""
    lo = 0
    hi = a.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@jit
def ndtr_pair(u):
    """(Phi(u), Phi(-u)) from one erfc, each with full relative precision where it is small."""
    c = 0.5 * math.erfc(abs(u) * SQRT1_2)
    if u < 0.0:
        return c, 1.0 - c
    return 1.0 - c, c


# -- exact sums ---------------------------------------------------------------------------------

@jit
def log_sum_ndtr(x, vals, cnts, cum, h, n):
    """log sum_i Phi((x - l_i)/h) = log(n G(x)), to rounding, for any finite x."""
    m = vals.shape[0]
    b = count_below(vals, x - SATURATED * h)
    below = cum[b]  # samples with u > SATURATED: Phi(u) = 1 to relative TRUNCATION
    if below > 0:
        s = below
        for i in range(b, m):
            t = 0.5 * math.erfc(-(x - vals[i]) / h * SQRT1_2)
            s += cnts[i] * t
            if n * t <= TRUNCATION * s:
                break
        return math.log(s)
    top = log_ndtr((x - vals[0]) / h)  # the largest term: the lowest sample
    if top == -math.inf:
        return -math.inf
    s = 0.0
    if top > LOG_SCALE_BELOW:
        for i in range(m):
            t = 0.5 * math.erfc(-(x - vals[i]) / h * SQRT1_2)
            s += cnts[i] * t
            if n * t <= TRUNCATION * s:
                break
        return math.log(s)
    for i in range(m):
        r = math.exp(log_ndtr((x - vals[i]) / h) - top)
        s += cnts[i] * r
        if n * r <= TRUNCATION * s:
            break
    return top + math.log(s)


@jit
def log_sum_ndtr_upper(x, vals, cnts, cum, h, n):
    """log sum_i Phi(-(x - l_i)/h) = log(n S(x)), to rounding, for any finite x (mirror image
    of :func:`log_sum_ndtr`: summed from the highest sample down)."""
    m = vals.shape[0]
    e = count_not_above(vals, x + SATURATED * h)
    above = n - cum[e]
    if above > 0:
        s = above
        for i in range(e - 1, -1, -1):
            t = 0.5 * math.erfc((x - vals[i]) / h * SQRT1_2)
            s += cnts[i] * t
            if n * t <= TRUNCATION * s:
                break
        return math.log(s)
    top = log_ndtr(-(x - vals[m - 1]) / h)
    if top == -math.inf:
        return -math.inf
    s = 0.0
    if top > LOG_SCALE_BELOW:
        for i in range(m - 1, -1, -1):
            t = 0.5 * math.erfc((x - vals[i]) / h * SQRT1_2)
            s += cnts[i] * t
            if n * t <= TRUNCATION * s:
                break
        return math.log(s)
    for i in range(m - 1, -1, -1):
        r = math.exp(log_ndtr(-(x - vals[i]) / h) - top)
        s += cnts[i] * r
        if n * r <= TRUNCATION * s:
            break
    return top + math.log(s)


@jit
def nearest(vals, x):
    """Index of the sample value nearest to x."""
    m = vals.shape[0]
    k = count_below(vals, x)
    if k == 0:
        return 0
    if k == m:
        return m - 1
    return k if vals[k] - x < x - vals[k - 1] else k - 1


@jit
def _npdf_moment_sums(x, vals, cnts, h, n, un, start, stop, step, s0, s1, s2, s3):
    """The running sums of w_i v_i^k (k = 0..3; w_i = cnts_i phi(u_i)/phi(un), v_i = u_i - un)
    continued over samples start, start + step, ... (before stop), in the direction in which
    the terms decrease; stops once the rest is provably negligible."""
    for i in range(start, stop, step):
        u = (x - vals[i]) / h
        v = u - un
        r = math.exp(-0.5 * v * (u + un))
        w = cnts[i] * r
        s0 += w
        s1 += w * v
        s2 += w * v * v
        s3 += w * v * v * v
        if n * r <= TRUNCATION * s0:
            break
    return s0, s1, s2, s3


@jit
def log_sum_npdf(x, vals, cnts, h, n):
    """(log sum_i phi(u_i), mean, variance and third central moment of u under the weights
    phi(u_i)), for finite x.

    Summed outwards from the nearest sample, whose term is the largest; each direction stops
    once its terms (decreasing with |u|) are provably negligible. The first entry is
    log(n h g(x)); the others give the derivatives of log g (:func:`point_derivatives`).
    """
    m = vals.shape[0]
    j = nearest(vals, x)
    un = (x - vals[j]) / h
    s0, s1, s2, s3 = _npdf_moment_sums(x, vals, cnts, h, n, un, j + 1, m, 1, cnts[j], 0.0, 0.0, 0.0)
    s0, s1, s2, s3 = _npdf_moment_sums(x, vals, cnts, h, n, un, j - 1, -1, -1, s0, s1, s2, s3)
    return (math.log(s0) - 0.5 * un * un - HALF_LOG_2PI,) + central_moments(un, s0, s1, s2, s3)


@jit
def central_moments(shift, s0, s1, s2, s3):
    """(mean, variance, third central moment) of u from the weighted sums of v = u - shift."""
    m1 = s1 / s0
    m2 = s2 / s0
    m3 = s3 / s0
    return shift + m1, m2 - m1 * m1, m3 - 3.0 * m1 * m2 + 2.0 * m1 * m1 * m1


#: the one-pass window of :func:`window_sums` is used up to this half-width (in bandwidths)
MAX_WINDOW = 16.0


@jit
def window_sums(x, vals, cnts, cum, h, n):
    """(log n G, log n S, log n h g, mean u, var u, third central moment of u) in one pass.

    The pass covers the samples within [x - W_lo h, x + W_hi h]. With d0 the distance (in h)
    to the nearest sample and G_lb = c_1 Phi(u_1), S_lb = c_m Phi(-u_m) lower bounds of n G and
    n S (the lowest and highest samples' terms), take
        W_hi^2 = 2 log(n / TRUNCATION) + max(d0^2, -2 log G_lb)   (and W_lo with S_lb).
    Outside, each phi(u) and each Phi(-|u|) <= phi(u) is below (TRUNCATION/n) min(phi(d0),
    G_lb) above the window (resp. S_lb below it), so counting Phi as exactly 0 or 1 there and
    dropping phi terms changes every sum by less than TRUNCATION relative. Returns a NaN first
    entry when a window would be wider than MAX_WINDOW (deep in a tail, where the adaptive
    sums are cheaper).
    """
    m = vals.shape[0]
    j = nearest(vals, x)
    un = (x - vals[j]) / h
    base = 2.0 * math.log(n / TRUNCATION)
    d2 = un * un
    w_hi = math.sqrt(base + max(d2, -2.0 * (math.log(cnts[0]) + log_ndtr((x - vals[0]) / h))))
    w_lo = math.sqrt(base + max(d2, -2.0 * (math.log(cnts[m - 1]) + log_ndtr((vals[m - 1] - x) / h))))
    if not (w_hi <= MAX_WINDOW and w_lo <= MAX_WINDOW):
        return math.nan, 0.0, 0.0, 0.0, 0.0, 0.0
    lo = count_below(vals, x - w_lo * h)
    hi = count_not_above(vals, x + w_hi * h)
    sg = cum[lo]
    ss = n - cum[hi]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    for i in range(lo, hi):
        u = (x - vals[i]) / h
        c = cnts[i]
        lower, upper = ndtr_pair(u)
        sg += c * lower
        ss += c * upper
        v = u - un
        r = c * math.exp(-0.5 * v * (u + un))
        s0 += r
        rv = r * v
        s1 += rv
        s2 += rv * v
        s3 += rv * v * v
    return ((math.log(sg), math.log(ss), math.log(s0) - 0.5 * d2 - HALF_LOG_2PI)
            + central_moments(un, s0, s1, s2, s3))


@jit
def exact_sums(x, vals, cnts, cum, h, n):
    """(log n G, log n S, log n h g, mean, var, third central moment of u) at a finite x."""
    r = window_sums(x, vals, cnts, cum, h, n)
    if r[0] == r[0]:
        return r
    lg = log_sum_ndtr(x, vals, cnts, cum, h, n)
    ls = log_sum_ndtr_upper(x, vals, cnts, cum, h, n)
    return (lg, ls) + log_sum_npdf(x, vals, cnts, h, n)


#: the tail sums use the asymptotic series of the Mills ratio, exact to rounding from here
#: (the table's margins keep every off-table query at least this many bandwidths out)
TAIL_FROM = 20.0


@jit
def mills_ratio(v):
    """R(v) = Phi(-v) / phi(v) for v >= TAIL_FROM, from its asymptotic series
    R(v) = (1/v) sum_k (-1)^k (2k-1)!! / v^(2k) (DLMF 7.12.1): at v = 20 the terms fall below
    1e-19 by k = 11, long before the series starts to diverge (k ~ v^2/2)."""
    inv = 1.0 / (v * v)
    term = 1.0
    total = 1.0
    for k in range(1, 12):
        term *= -(2 * k - 1) * inv
        total += term
    return total / v


@jit
def lower_tail_sums(x, vals, cnts, h, n):
    """(log n G, log n h g, mean u, g/G) for x at least TAIL_FROM h below every sample.

    There every u_i <= -TAIL_FROM, so Phi(u_i) = phi(u_i) R(-u_i), and Phi(u_i), phi(u_i) both
    decrease along the sorted samples: the sums run upwards from the lowest, each term scaled
    by the lowest's (one exp per term, no underflow), and stop when both remainders are
    provably negligible. Far below, only the lowest few samples count.
    g/G = (sum phi / sum Phi) / h, formed from the scaled sums without cancellation.
    """
    m = vals.shape[0]
    u0 = (x - vals[0]) / h
    if u0 * u0 == math.inf:  # log G and log g are below -1e308
        return -math.inf, -math.inf, u0, -u0 / h
    r0 = mills_ratio(-u0)
    sg = 0.0
    sp = 0.0
    su = 0.0
    for i in range(m):
        u = (x - vals[i]) / h
        v = u - u0
        rp = math.exp(-0.5 * v * (u + u0))  # phi(u_i) / phi(u_1)
        rg = rp * (mills_ratio(-u) / r0)    # Phi(u_i) / Phi(u_1)
        c = cnts[i]
        sg += c * rg
        sp += c * rp
        su += c * rp * v
        if n * rg <= TRUNCATION * sg and n * rp <= TRUNCATION * sp:
            break
    log_phi0 = -0.5 * u0 * u0 - HALF_LOG_2PI
    return (log_phi0 + math.log(r0 * sg), log_phi0 + math.log(sp), u0 + su / sp,
            sp / (r0 * sg) / h)


@jit
def upper_tail_sums(x, vals, cnts, h, n):
    """(log n S, log n h g, mean u) for x at least TAIL_FROM h above every sample (the mirror
    image of :func:`lower_tail_sums`)."""
    m = vals.shape[0]
    u0 = (x - vals[m - 1]) / h
    if u0 * u0 == math.inf:
        return -math.inf, -math.inf, u0
    r0 = mills_ratio(u0)
    ss = 0.0
    sp = 0.0
    su = 0.0
    for i in range(m - 1, -1, -1):
        u = (x - vals[i]) / h
        v = u - u0
        rp = math.exp(-0.5 * v * (u + u0))
        rs = rp * (mills_ratio(u) / r0)
        c = cnts[i]
        ss += c * rs
        sp += c * rp
        su += c * rp * v
        if n * rs <= TRUNCATION * ss and n * rp <= TRUNCATION * sp:
            break
    log_phi0 = -0.5 * u0 * u0 - HALF_LOG_2PI
    return log_phi0 + math.log(r0 * ss), log_phi0 + math.log(sp), u0 + su / sp


# -- derivatives at a point, from the sums ------------------------------------------------------

@jit
def log_cdf_from_log_sf(log_s):
    """log G = log(1 - S) from log S."""
    return math.log1p(-math.exp(log_s))


@jit
def point_derivatives(lg, ls, lp, mu, var, k3, h, log_n, log_nh):
    """Values and x-derivatives of log G, log S, log g from the exact sums at a point.

    Returns (log G, (log G)', (log G)'', log S, (log S)', (log S)'', log g, (log g)',
    (log g)'', (log g)'''). With g/G and g/S formed in log space:
    (log G)' = g/G,  (log G)'' = (g/G)((log g)' - g/G),  (log S)' = -g/S,
    (log S)'' = -(g/S)((log g)' + g/S); and log g = log sum exp(-u_i^2/2) + const has the
    cumulants of -u/h as derivatives: (log g)' = -mu/h, (log g)'' = (var - 1)/h^2,
    (log g)''' = -k3/h^3.
    """
    m1 = -mu / h
    hg = math.exp(lp - lg) / h
    hs = math.exp(lp - ls) / h
    return (lg - log_n, hg, hg * (m1 - hg),
            ls - log_n, -hs, -hs * (m1 + hs),
            lp - log_nh, m1, (var - 1.0) / (h * h), -k3 / (h * h * h))


# -- quintic Hermite cells ----------------------------------------------------------------------

@inline
def hermite5_coefficients(f0, f0p, f0pp, f1, f1p, f1pp, dx, coef, j, k):
    """Store in coef[j, k:k+6] the quintic matching f, f', f'' at both ends of a cell of width dx."""
    d0 = dx * f0p
    d1 = dx * f1p
    c0 = dx * dx * f0pp
    c1 = dx * dx * f1pp
    a = f1 - f0 - d0 - 0.5 * c0
    b = d1 - d0 - c0
    c = c1 - c0
    coef[j, k] = f0
    coef[j, k + 1] = d0
    coef[j, k + 2] = 0.5 * c0
    coef[j, k + 3] = 10.0 * a - 4.0 * b + 0.5 * c
    coef[j, k + 4] = -15.0 * a + 7.0 * b - c
    coef[j, k + 5] = 6.0 * a - 3.0 * b + 0.5 * c


@inline
def hermite5(coef, j, k, t):
    """The interpolant stored in coef[j, k:k+6] at fraction t of cell j."""
    return coef[j, k] + t * (coef[j, k + 1] + t * (coef[j, k + 2] + t * (coef[j, k + 3] + t * (
        coef[j, k + 4] + t * coef[j, k + 5]))))


# -- one query ----------------------------------------------------------------------------------

#: flags of a cell whose interpolant failed its check: evaluate exactly instead
EXACT_CDF, EXACT_PDF = 1, 2
#: column blocks of the coefficient table (see fastgeo.kde.KDETable)
COL_LOG_CDF, COL_CDF, COL_PDF, COL_DPDF = 0, NCOEF, 2 * NCOEF, 3 * NCOEF
TABLE_COLUMNS = 4 * NCOEF
#: what a block holds in a cell: log G, G itself, or log S = log(1 - G)
HOLDS_LOG_G, HOLDS_G, HOLDS_LOG_S = 0, 1, 2


@jit
def kde_output(what, want_grad, holds, v, lpdf, dlpdf, hazard):
    """(value, d value/dx) from v (log G, G or log S, by ``holds``), lpdf = log g,
    dlpdf = (log g)' and, where known directly (else NaN), hazard = (log G)' = g/G.

    G' = g, (log G)' = exp(log g - log G), g' = g (log g)'.
    """
    if what == CDF:
        if holds == HOLDS_LOG_G:
            value = math.exp(v)
        elif holds == HOLDS_G:
            value = v
        else:
            value = -math.expm1(v)
        return value, (math.exp(lpdf) if want_grad else 0.0)
    if what == LOG_CDF:
        if holds == HOLDS_LOG_G:
            value = v
        elif holds == HOLDS_G:
            value = math.log(v)
        else:
            value = log_cdf_from_log_sf(v)
        if not want_grad:
            return value, 0.0
        if hazard == hazard:
            return value, hazard
        if value == -math.inf:  # x - l_1 overflowed: the hazard is about -u/h = (log g)'
            return value, dlpdf
        return value, math.exp(lpdf - value)
    if what == PDF:
        value = math.exp(lpdf)
        return value, (value * dlpdf if want_grad and value > 0.0 else 0.0)
    return lpdf, dlpdf


@jit
def table_point(x, what, want_grad, x0, inv_dx, coef, flags, j_middle, j_upper):
    """(value, d value/dx, True) from the interpolants when x lies in a cell whose check passed
    for what is asked; (NaN, NaN, False) otherwise (outside the table, x not finite, or a
    flagged cell), for :func:`kde_point` to handle.

    log G comes from block COL_LOG_CDF (log G below cell j_upper, log S from it on) and G
    from block COL_CDF (log G below j_middle, G itself up to j_upper, log S from it on), so
    that the middle of the distribution needs no exp or log.
    """
    p = (x - x0) * inv_dx
    if not (p >= 0.0 and p < coef.shape[0]):  # also NaN and +-inf
        return math.nan, math.nan, False
    j = int(p)
    t = p - j
    need_pdf = what >= PDF or want_grad
    f = flags[j]
    if (what <= LOG_CDF and (f & EXACT_CDF) != 0) or (need_pdf and (f & EXACT_PDF) != 0):
        return math.nan, math.nan, False
    v = 0.0
    holds = HOLDS_LOG_G
    if what == LOG_CDF:
        v = hermite5(coef, j, COL_LOG_CDF, t)
        if j >= j_upper:
            holds = HOLDS_LOG_S
    elif what == CDF:
        v = hermite5(coef, j, COL_CDF, t)
        if j >= j_upper:
            holds = HOLDS_LOG_S
        elif j >= j_middle:
            holds = HOLDS_G
    lpdf = hermite5(coef, j, COL_PDF, t) if need_pdf else 0.0
    dlpdf = hermite5(coef, j, COL_DPDF, t) if what >= PDF and want_grad else 0.0
    value, deriv = kde_output(what, want_grad, holds, v, lpdf, dlpdf, math.nan)
    return value, deriv, True


@jit
def kde_point(x, what, want_grad, vals, cnts, cum, n, h, log_n, log_nh, x0, inv_dx, coef, flags,
              j_middle, j_upper):
    """(value, d value/dx) of the KDE's cdf, log cdf, pdf or log pdf (``what``) at any x.

    Inside the table the interpolants answer (:func:`table_point`); flagged cells and the two
    tails use the exact sums. x = -inf gives G = g = 0, x = +inf G = 1, g = 0, both with
    derivative 0; x = NaN gives (NaN, NaN), for the caller to report.
    """
    if x != x:
        return math.nan, math.nan
    if x == -math.inf or x == math.inf:
        if what == CDF:
            return (1.0 if x > 0 else 0.0), 0.0
        if what == LOG_CDF:
            return (0.0 if x > 0 else -math.inf), 0.0
        if what == PDF:
            return 0.0, 0.0
        return -math.inf, 0.0
    value, deriv, ok = table_point(x, what, want_grad, x0, inv_dx, coef, flags, j_middle, j_upper)
    if ok:
        return value, deriv
    hazard = math.nan
    if x < x0:
        lg, lp, mu, hazard = lower_tail_sums(x, vals, cnts, h, n)
        holds = HOLDS_LOG_G
        v = lg - log_n
    elif (x - x0) * inv_dx >= coef.shape[0]:
        ls, lp, mu = upper_tail_sums(x, vals, cnts, h, n)
        holds = HOLDS_LOG_S
        v = ls - log_n
    else:  # a flagged cell
        lg, ls, lp, mu, var, k3 = exact_sums(x, vals, cnts, cum, h, n)
        holds = HOLDS_LOG_G if lg <= ls else HOLDS_LOG_S
        v = (lg if lg <= ls else ls) - log_n
    return kde_output(what, want_grad, holds, v, lp - log_nh, -mu / h, hazard)
