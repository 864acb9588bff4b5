"""Scalar math of the path energy (MATH.md 2 and 3): the one source of truth for its kernels.

A path of K+1 points has decoded outputs G_0 .. G_K and log realism indices l_0 .. l_K.
Segment i joins points i and i+1:

    lse_i   = logaddexp(l_i, l_{i+1})
    log a_i = log alpha + lse_i - log 2          (a_i = alpha (r_i + r_{i+1}) / 2)
    w_i     = (log a_i)^2,   d_i = |G_{i+1} - G_i|^2,   E = sum_i w_i d_i        (eq. 3)

    dE/dG_j = 2 w_{j-1} (G_j - G_{j-1}) - 2 w_j (G_{j+1} - G_j)
    dE/dl_j = sum_{i in {j-1, j}} 2 log(a_i) d_i exp(l_j - lse_i)
    log ri(path) ~ sum_i (lse_i - log 2) sqrt(d_i)                              (MATH.md 2)

Every function is an ``@njit`` function of float64 scalars using only ``math`` intrinsics,
so the CPU kernels (``cpu_path.py``) and a ``@cuda.jit`` kernel compile the same source.

Edge semantics (the limits these functions take; they never return NaN for inputs with
l_j in [-inf, +inf) and finite differences):

- a segment with d_i = 0 contributes 0 to E, to dE/dl and to log ri(path), whatever its
  weight (even an infinite one);
- a segment whose two ends have l = -inf (zero density) has log a_i = -inf and w_i = +inf:
  it contributes +inf to E when d_i > 0. Its share in dE/dl_j is taken as 1/2 for both ends
  (the softmax of two equal logits), so it contributes -inf to both ends' dE/dl.
  A point j of l_j = -inf next to a point of finite l gets share exp(-inf) = 0: no
  contribution (r_j / (r_i + r_{i+1}) -> 0 faster than log a_i grows);
- dE/dG_j where a neighbouring weight is infinite is the limit as those infinite weights
  grow together: copysign(inf, c) with c = [w_{j-1} = inf] (G_j - G_{j-1})
  - [w_j = inf] (G_{j+1} - G_j) when c != 0, and the finite-weight terms alone when c = 0.
  A weight that overflows float64 (|log a_i| > ~1e154) but is finite in log space is
  handled exactly in scaled form: the result is the correctly signed value, +-inf only if
  its magnitude overflows.
"""
import math

from numba import njit

LOG2 = math.log(2.0)
# Below this weight, 2 w_{j-1} dG_prev - 2 w_j dG_next cannot overflow for differences whose
# squares are finite (|diff| < 1.4e154), so kernels may use the plain formula.
PLAIN_COEF_MAX = 1e100

jit = njit(cache=True, nogil=True)


@jit
def log_add_exp(a, b):
    """log(exp(a) + exp(b)) without overflow or underflow; -inf when both are -inf."""
    hi = max(a, b)
    if hi == -math.inf:
        return -math.inf
    return hi + math.log1p(math.exp(-abs(a - b)))


@jit
def segment_log_a(l_i, l_next, log_alpha):
    """log a_i = log alpha + logaddexp(l_i, l_{i+1}) - log 2 (-inf when both l are -inf)."""
    return log_alpha + log_add_exp(l_i, l_next) - LOG2


@jit
def segment_energy(log_a, d):
    """w_i d_i = (log a_i)^2 d_i; 0 when d_i = 0 whatever the weight.

    Formed as log a (log a d), which overflows only where the product itself does (a weight
    of 1e320 times a d of 1e-40 is fine).
    """
    if d == 0.0:
        return 0.0
    return log_a * (log_a * d)


@jit
def log_ri_share(l_j, l_i, l_next):
    """r_j / (r_i + r_{i+1}) = exp(l_j - logaddexp(l_i, l_{i+1})) for j in {i, i+1}.

    1/2 when both ends are -inf (the softmax of two equal logits).
    """
    lse = log_add_exp(l_i, l_next)
    if lse == -math.inf:
        return 0.5
    return math.exp(l_j - lse)


@jit
def segment_dl(log_a, d, share):
    """One segment's term of dE/dl_j: 2 log(a_i) d_i share; 0 when d_i or share is 0.

    The product is formed as 2 log a (d share) so that no 0 * inf appears.
    """
    if d == 0.0 or share == 0.0:
        return 0.0
    return 2.0 * log_a * (d * share)


@jit
def segment_log_index(l_i, l_next, d):
    """(logaddexp(l_i, l_{i+1}) - log 2) |G_{i+1} - G_i|; 0 when d_i = 0."""
    if d == 0.0:
        return 0.0
    return (log_add_exp(l_i, l_next) - LOG2) * math.sqrt(d)


@jit
def point_grad_coef(log_a):
    """2 w_i = 2 (log a_i)^2, the coefficient of a segment's difference in dE/dG."""
    return 2.0 * (log_a * log_a)


@jit
def point_grad_is_plain(log_a_prev, log_a_next):
    """True when dE/dG_j = 2 w_{j-1} dprev - 2 w_j dnext may be formed plainly.

    Otherwise (an infinite or huge weight) use :func:`point_grad_safe`. For the end points
    pass 0.0 for the missing segment's log a.
    """
    return max(point_grad_coef(log_a_prev), point_grad_coef(log_a_next)) <= PLAIN_COEF_MAX


@jit
def point_grad_safe(dprev, dnext, log_a_prev, log_a_next):
    """dE/dG_j = 2 w_{j-1} dprev - 2 w_j dnext for any weights, never NaN.

    dprev = G_j - G_{j-1}, dnext = G_{j+1} - G_j (one component each); for the end points
    pass 0.0 for the missing difference and its log a. Finite log a: the value in scaled
    form 2 U (U (r_prev dprev - r_next dnext)), U = max |log a|, r = (|log a| / U)^2, exact
    up to rounding and +-inf only when it overflows. Infinite log a: the limit of the module
    docstring.
    """
    u_prev = abs(log_a_prev)
    u_next = abs(log_a_next)
    if u_prev == math.inf or u_next == math.inf:
        inf_part = 0.0
        if u_prev == math.inf:
            inf_part += dprev
            u_prev = 0.0
        if u_next == math.inf:
            inf_part -= dnext
            u_next = 0.0
        if inf_part != 0.0:
            return math.copysign(math.inf, inf_part)
    u = max(u_prev, u_next)
    if u == 0.0:
        return 0.0
    r_prev = (u_prev / u) * (u_prev / u)
    r_next = (u_next / u) * (u_next / u)
    inner = r_prev * dprev - r_next * dnext
    if inner == 0.0:
        return 0.0
    return (2.0 * u) * (u * inner)
