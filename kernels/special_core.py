"""Elementary scalar building blocks of the special functions (see special.py).

Plain ``@njit`` functions of float64 scalars using only ``math`` intrinsics, so that the same
source compiles for the CPU and inside ``@cuda.jit`` kernels (``jit`` below is the decorator
every special-function module uses). Nothing here relies on the
exact rounding of a particular sequence of operations surviving FMA contraction (NVVM
contracts by default): exact splits use ``floor`` of a power-of-two scaling, not Veltkamp.
"""
import math

from numba import njit

LOG_2PI = math.log(2.0 * math.pi)
HALF_LOG_2PI = 0.5 * LOG_2PI
SQRT1_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
EPS = 2.220446049250313e-16
TINY = 1e-300

# error_model="numpy": a division by zero gives inf / nan as in IEEE arithmetic (and as on
# the GPU) instead of raising ZeroDivisionError inside a kernel; it also drops the zero
# test Numba otherwise puts before every division.
jit = njit(cache=True, nogil=True, error_model="numpy")

_INV_FACTORIAL = tuple(1.0 / math.factorial(k) for k in range(19))


@jit
def _estrin17(u, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16):
    """c0 + c1 u + ... + c16 u^16 by Estrin's scheme: depth 5 instead of Horner's 16."""
    u2 = u * u
    u4 = u2 * u2
    u8 = u4 * u4
    q0 = (c0 + c1 * u) + (c2 + c3 * u) * u2
    q1 = (c4 + c5 * u) + (c6 + c7 * u) * u2
    q2 = (c8 + c9 * u) + (c10 + c11 * u) * u2
    q3 = (c12 + c13 * u) + (c14 + c15 * u) * u2
    return (q0 + q1 * u4) + ((q2 + q3 * u4) + c16 * u8) * u8


@jit
def log1pmx_b(u):
    """B(u) = sum_{m>=0} u^m / (2m + 3) for 0 <= u <= 1/9 (u^17/37 < 1e-17 of the leading 1/3).

    atanh(t) = t (1 + t^2 B(t^2)): the series behind log1pmx.
    """
    return _estrin17(u, 1 / 3, 1 / 5, 1 / 7, 1 / 9, 1 / 11, 1 / 13, 1 / 15, 1 / 17, 1 / 19, 1 / 21,
                     1 / 23, 1 / 25, 1 / 27, 1 / 29, 1 / 31, 1 / 33, 1 / 35)


@jit
def log1pmx(x):
    """log(1 + x) - x for x > -1, with full relative precision near 0.

    With t = x / (2 + x), log(1 + x) = 2 atanh(t) and x - 2t = x t, so

        log(1 + x) - x = t (2 t^2 B(t^2) - x),   B(u) = sum_{m>=0} u^m / (2m + 3),

    where the two terms in the bracket never cancel (their ratio is at most 1/4 for
    -1/2 <= x <= 1). Outside that interval log1p(x) - x loses at most a factor 4.
    """
    if x < -0.5 or x > 1.0:
        return math.log1p(x) - x
    t = x / (2.0 + x)
    u = t * t
    return t * (2.0 * u * log1pmx_b(u) - x)


@jit
def log1pmx_ratio(x, a):
    """log(x/a) - (x/a - 1) for x, a > 0, accurate also when x/a is tiny or huge.

    Near x = a the difference x - a is exact (Sterbenz), so (x - a)/a is correctly rounded;
    far from it log(x/a) keeps the information that 1 + (x - a)/a would lose.
    """
    if 0.5 * a <= x <= 2.0 * a:
        return log1pmx((x - a) / a)
    lam = x / a
    return math.log(lam) - (lam - 1.0)


@jit
def expm1mx(x):
    """exp(x) - 1 - x without cancellation near 0 (the Taylor series for |x| < 0.7)."""
    if abs(x) < 0.7:
        # sum_{k>=2} x^k / k! = x^2 sum_j x^j / (j+2)!; 0.7^17/19! < 1e-17 of x^2/2
        f = _INV_FACTORIAL
        s = _estrin17(x, f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12],
                      f[13], f[14], f[15], f[16], f[17], f[18])
        return s * x * x
    return math.expm1(x) - x


# coefficients of lgamma(1 + a) = sum_k c_k a^k: c_1 = -euler_gamma, c_k = (-1)^k zeta(k) / k
_LGAMMA1P = (
    -0.5772156649015329, 0.8224670334241132, -0.40068563438653143, 0.27058080842778454,
    -0.20738555102867398, 0.1695571769974082, -0.1440498967688461, 0.12550966952474304,
    -0.11133426586956469, 0.1000994575127818, -0.09095401714582904, 0.083353840546109,
    -0.0769325164113522, 0.07143294629536133, -0.06666870588242046, 0.06250095514121304,
    -0.058823978658684585, 0.055555767627403614, -0.05263167937961666, 0.05000004769810169,
    -0.047619070330142226, 0.04545455629320467,
)


@jit
def lgamma1p(a):
    """lgamma(1 + a) with full relative precision also for tiny a (DLMF 5.7.3 near 0).

    For |a| < 0.2 the Taylor series (22 terms: 0.2^23 / 23 < 5e-18 of |c_1 a|); otherwise
    lgamma(1 + a), whose argument's rounding then costs under 1e-16 absolute.
    """
    if abs(a) < 0.2:
        s = 0.0
        for k in range(len(_LGAMMA1P) - 1, -1, -1):
            s = s * a + _LGAMMA1P[k]
        return s * a
    return math.lgamma(1.0 + a)


@jit
def stirling_correction(a):
    """mu(a) = lgamma(a) - ((a - 1/2) log a - a + log(2 pi)/2) for a > 0 (DLMF 5.11.1).

    For a >= 10 the Stirling series through B_16 (next term < 2e-18 at a = 10); below, the
    difference of lgamma and the Stirling expression (absolute error a few 1e-15).
    """
    if a < 10.0:
        return math.lgamma(a) - ((a - 0.5) * math.log(a) - a + HALF_LOG_2PI)
    inv = 1.0 / a
    u = inv * inv
    return inv * (1.0 / 12.0 + u * (-1.0 / 360.0 + u * (1.0 / 1260.0 + u * (-1.0 / 1680.0 + u * (
        1.0 / 1188.0 + u * (-691.0 / 360360.0 + u * (1.0 / 156.0 + u * (-3617.0 / 122400.0))))))))


@jit
def exp_sq(x, scale):
    """exp(scale * x^2) as if x^2 were exact; scale is a power of two (+-1, -1/2).

    exp(x^2) magnifies the rounding error of x^2 by x^2 (7e-14 at x = 26). Splitting
    |x| = hi + lo with hi on a 2^-20 grid makes hi^2 exact for |x| < 64 (hi has <= 26 bits)
    and x^2 - hi^2 = lo (|x| + hi) is tiny. Beyond 64, exp(+-x^2) over/underflows anyway.
    """
    ax = abs(x)
    if ax >= 64.0:
        return math.exp(scale * (x * x))
    hi = math.floor(ax * 1048576.0) * (1.0 / 1048576.0)
    lo = ax - hi
    return math.exp(scale * (hi * hi)) * math.exp(scale * (lo * (ax + hi)))


@jit
def erfcx_asymptotic(x):
    """exp(x^2) erfc(x) for x >= 10 by its asymptotic series (DLMF 7.12.1).

    erfcx(x) = 1/(x sqrt(pi)) sum_m (-1)^m (2m-1)!! / (2x^2)^m; at x >= 10 the 20th term is
    below 1e-18. (libm's erfc loses relative precision deep in its tail: 1e-14 at x = 12,
    6e-14 at x = 24, so the product exp(x^2) erfc(x) is not used there.)
    """
    u = 0.5 / (x * x)
    s = 0.0
    for m in range(20, 0, -1):
        s = -(2 * m - 1) * u * (1.0 + s)
    return INV_SQRT_PI / x * (1.0 + s)


@jit
def erfcx(x):
    """The scaled complementary error function exp(x^2) erfc(x), finite for x > -26.6.

    x >= 10: asymptotic series; otherwise exp(x^2) (exactly split, see exp_sq) times erfc(x),
    both of which keep relative precision to a few ulps there.
    """
    if x >= 10.0:
        return erfcx_asymptotic(x)
    if x < -26.7:
        return math.inf
    return exp_sq(x, 1.0) * math.erfc(x)


@jit
def rescaled_convergents(a2, a1, q2, q1, det):
    """The last two convergents' numerators and denominators of a continued fraction (and the
    determinant a1 q2 - a2 q1), scaled by 1/|q1| when |q1| leaves [1e-100, 1e100]: they grow
    or shrink geometrically, and only their ratios matter (det scales as their square)."""
    mag = abs(q1)
    if mag > 1e100 or mag < 1e-100:
        scale = 1.0 / mag
        return a2 * scale, a1 * scale, q2 * scale, q1 * scale, det * (scale * scale)
    return a2, a1, q2, q1, det
