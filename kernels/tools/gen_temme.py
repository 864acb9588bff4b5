"""Generate kernels/special_gamma_coeffs.py: the coefficients of Temme's uniform expansion.

DLMF 8.12.3-8.12.10 (Temme 1979): with lambda = x/a and eta the signed root of
``eta^2/2 = lambda - 1 - ln(lambda)`` (eta > 0 for x > a),

    Q(a, x) = erfc(eta sqrt(a/2)) / 2 + R_a(eta),
    R_a(eta) ~ exp(-a eta^2/2) / sqrt(2 pi a) * sum_k c_k(eta) a^-k,
    c_0(eta) = 1/(lambda - 1) - 1/eta,
    c_k(eta) = (1/eta) c_{k-1}'(eta) + (-1)^k g_k / (lambda - 1),

where g_k are the coefficients of Stirling's series Gamma*(a) ~ sum_k g_k a^-k (DLMF 5.11.3).
The c_k are analytic at eta = 0 (radius of convergence 2 sqrt(pi)); with the Taylor
coefficients ``c_k(eta) = sum_n d_{k,n} eta^n`` and ``1/(lambda - 1) = 1/eta + sum_n d_{0,n} eta^n``
the recursion becomes

    d_{k,n} = (n + 2) d_{k-1,n+2} + (-1)^k g_k d_{0,n},

together with the exact cancellation of the 1/eta terms, d_{k-1,1} = (-1)^(k+1) g_k, which
the script asserts. Everything is exact rational arithmetic (fractions.Fraction); only the
final tables are rounded to float64.

lambda - 1 = mu(eta) comes from the ODE  mu mu' = eta (1 + mu)  (differentiate the defining
equation), which gives the Taylor coefficients of mu in O(N^2) exact operations.

Truncation table: for every band (a >= A_BANDS[i], |eta| sqrt(a) <= Z_BANDS[j], |eta| <= 1)
the script picks, per k, the number of Taylor terms so that everything left out (the Taylor
tails and the k-terms dropped from the asymptotic sum) is below TOL in absolute value.
S = sum_k c_k a^-k enters Q through exp(-a eta^2/2) S / sqrt(2 pi a), so an absolute error
TOL in S is a relative error below about TOL * (1 + |lambda - 1|) in Q and P.

Bulk sums: for z = |eta| sqrt(a) <= Z_BANDS[0] (almost every point of a chi-square sample)
the script also writes out, per band of a, S re-expanded about the middle w_mid of the band
in w = 1/a, S = sum_j h_j(eta) (w - w_mid)^j with h_{j,n} = sum_k C(k, j) w_mid^(k-j) d_{k,n}
(exact), truncated by the same rule; within a narrow band (w - w_mid) falls much faster than
w, and a written-out sum costs one multiply-add per term where a table-driven loop costs
about three.

Run from the repository root:  python kernels/tools/gen_temme.py
"""
from __future__ import annotations

import math
import os
from fractions import Fraction

K_MAX = 16          # c_0 .. c_15: enough for a >= A_BANDS[0] at TOL
N_MAX = 64          # Taylor terms per c_k kept in the exact computation
TOL = 1e-15
A_BANDS = tuple(float(round(20.0 * 1.5 ** i, 1)) for i in range(30))  # 20 .. 2.6e6, ratio 1.5
# bands of z = |eta| sqrt(a) (about |x - a| / sqrt(a): standard deviations of Gamma(a));
# the last reaches eta = 1 for every a <= 2.6e6 * 1.5
Z_BANDS = (3.0, 5.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 2048.0)
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "special_gamma_coeffs.py")


def bernoulli(n_max):
    """B_0 .. B_n_max (B_1 = -1/2) from the recurrence sum_{j<=n} C(n+1, j) B_j = 0."""
    b = [Fraction(1)]
    for n in range(1, n_max + 1):
        b.append(-sum(math.comb(n + 1, j) * b[j] for j in range(n)) / (n + 1))
    return b


def stirling_g(k_max):
    """g_0 .. g_k_max with Gamma*(a) = exp(sum_m B_2m / (2m (2m-1) a^(2m-1))) ~ sum_k g_k a^-k."""
    bern = bernoulli(k_max + 2)
    log_coef = [Fraction(0)] * (k_max + 1)
    for m in range(1, k_max // 2 + 2):
        if 2 * m - 1 <= k_max:
            log_coef[2 * m - 1] = bern[2 * m] / (2 * m * (2 * m - 1))
    g = [Fraction(1)]
    for k in range(1, k_max + 1):  # exp of a series: k g_k = sum_j j l_j g_{k-j}
        g.append(sum(j * log_coef[j] * g[k - j] for j in range(1, k + 1)) / k)
    return g


def inverse_lambda_minus_1(n_max):
    """alpha_n with 1/(lambda - 1) = 1/eta + sum_{n>=0} alpha_n eta^n."""
    mu = [Fraction(0), Fraction(1)]
    for n in range(2, n_max + 3):
        # coefficient of eta^n in mu mu' = eta (1 + mu), solved for mu_n
        s = sum((n + 1 - i) * mu[i] * mu[n + 1 - i] for i in range(2, n))
        mu.append((mu[n - 1] - s) / (n + 1))
    h = mu[1:]  # mu / eta = 1 + h_1 eta + ...
    inv = [Fraction(1)]
    for n in range(1, n_max + 2):
        inv.append(-sum(h[j] * inv[n - j] for j in range(1, n + 1)))
    return inv[1:], mu


def temme_coefficients(k_max=K_MAX, n_max=N_MAX):
    alpha, mu = inverse_lambda_minus_1(n_max + 2 * k_max)
    g = stirling_g(k_max)
    d = [alpha]
    for k in range(1, k_max):
        prev = d[-1]
        assert prev[1] + (-1) ** k * g[k] == 0, "the 1/eta terms of c_k must cancel"
        d.append([(n + 2) * prev[n + 2] + (-1) ** k * g[k] * alpha[n] for n in range(len(prev) - 2)])
    return [row[:n_max] for row in d], g, mu


def truncation(d, a_lo, eta_hi, tol=TOL):
    """Per k, the Taylor terms needed for a >= a_lo, |eta| <= eta_hi (0: c_k not needed).

    Bound: |d_{k,n}| eta_hi^n a_lo^-k summed over everything left out, half of tol for the
    dropped k (the asymptotic tail) and half shared among the kept k (the Taylor tails).
    """
    bounds = [[abs(float(v)) * eta_hi ** n for n, v in enumerate(row)] for row in d]
    k_count = len(d)
    while k_count > 1 and sum(sum(bounds[k]) * a_lo ** -k for k in range(k_count - 1, len(d))) < tol / 2:
        k_count -= 1
    assert k_count < len(d), f"K_MAX too small for a >= {a_lo}"
    terms = []
    for k in range(k_count):
        scale = a_lo ** -k
        n = len(bounds[k])
        while n > 1 and sum(bounds[k][n - 1:]) * scale < tol / 2 / k_count:
            n -= 1
        n += n % 2  # even: the runtime sums even and odd powers as two independent chains
        assert n < len(bounds[k]), f"N_MAX too small for k={k}, eta <= {eta_hi}"
        terms.append(n)
    return terms + [0] * (len(d) - k_count)


def render(d, table):
    n_keep = [max(row[k] for band in table for row in band) for k in range(len(d))]
    while n_keep[-1] == 0:
        n_keep.pop()
    flat, offsets = [], []
    for k, n in enumerate(n_keep):
        offsets.append(len(flat))
        flat.extend(d[k][:n])
    lines = [
        "# flake8: noqa",
        '"""Coefficients of Temme\'s uniform expansion of Q(a, x) (DLMF 8.12). GENERATED, do not edit.',
        "",
        "Made by kernels/tools/gen_temme.py (exact rational arithmetic, rounded to float64 here).",
        "TEMME_D[TEMME_OFFSET[k] + n] = d_{k,n}, the Taylor coefficients c_k(eta) = sum_n d_{k,n} eta^n.",
        "TEMME_TERMS[i, j, k] = how many of them (an even number) to sum for a >= TEMME_A_BANDS[i] and",
        "|eta| sqrt(a) <= TEMME_Z_BANDS[j] (and |eta| <= 1), so that the neglected part of",
        f"sum_k c_k(eta) a^-k is below {TOL:g}; 0 where c_k is not needed.",
        f"temme_bulk_sum(ia, ...) is the same sum for z <= {Z_BANDS[0]:g}, written out per band of a;",
        f"temme_wide_sum(ia, ...) for |eta| <= 1 and a >= {WIDE_MIN_A:g}.",
        '"""',
        "import numpy as np",
        "",
        "from .special_core import jit",
        "",
        f"TEMME_K = {len(n_keep)}",
        f"TEMME_A_BANDS = np.array({list(A_BANDS)!r})",
        f"TEMME_Z_BANDS = np.array({list(Z_BANDS)!r})",
        f"TEMME_OFFSET = np.array({offsets!r}, dtype=np.int64)",
        "# fmt: off",
        "TEMME_TERMS = np.array([",
    ]
    for band in table:
        rows = ("[" + ", ".join(str(v) for v in row[:len(n_keep)]) + "]" for row in band)
        lines.append("    [" + ", ".join(rows) + "],")
    lines.append("], dtype=np.int64)")
    lines.append("TEMME_D = np.array([")
    for k, n in enumerate(n_keep):
        lines.append(f"    # c_{k}")
        vals = [repr(float(v)) for v in d[k][:n]]
        for i in range(0, len(vals), 3):
            lines.append("    " + ", ".join(vals[i:i + 3]) + ",")
    lines.append("])")
    lines.append("")
    bulk, (bulk_total, wide_total) = render_bulk(d)
    lines += bulk
    print("written-out terms per band of a: bulk", bulk_total, "wide", wide_total)
    lines.append("# fmt: on")
    lines.append("")
    return "\n".join(lines)


def _horner(coefs, var):
    """The polynomial c0 + var c1 + ... as a call 'horner_n(var, c0, c1, ...)' of a generated
    helper (render_horners) with the coefficients written exactly (repr); a constant alone.

    Numba types every arithmetic operation of a jitted function one by one, about a tenth of
    a millisecond each on a first (cold) call: the same sums written as nested expressions
    took seconds to compile. LLVM inlines the helpers, so the machine code and the numbers
    are the same as those of the nested expression (no fast-math: the same operations in the
    same order).
    """
    if len(coefs) == 1:
        return repr(float(coefs[0]))
    return f"horner_{len(coefs)}({var}, " + ", ".join(repr(float(c)) for c in coefs) + ")"


def render_horners(max_len):
    """horner_n(x, c0, ..., c_{n-1}) = c0 + x * (c1 + x * (... + x * (c_{n-1}))), n = 2..max_len."""
    lines = []
    for n in range(2, max_len + 1):
        cs = [f"c{i}" for i in range(n)]
        expr = cs[-1]
        for c in reversed(cs[:-1]):
            expr = f"{c} + x * ({expr})"
        lines += ["", "@jit", f"def horner_{n}(x, {', '.join(cs)}):", f"    return {expr}", ""]
    return lines


def reexpand(d, a_lo, a_hi):
    """Coefficients of S(eta, w) = sum_k c_k(eta) w^k re-expanded about w_mid = (1/a_lo + 1/a_hi)/2.

    Returns (w_mid, h) with h[j][n] the coefficient of eta^n (w - w_mid)^j:
    h_{j,n} = sum_{k>=j} C(k, j) w_mid^(k-j) d_{k,n}. Within a narrow band of a, powers of
    w - w_mid fall much faster than powers of w = 1/a, so fewer terms reach the tolerance.
    """
    w_mid = (Fraction(1) / Fraction(a_lo) + (Fraction(1) / Fraction(a_hi) if a_hi else Fraction(0))) / 2
    n_len = len(d[0])
    h = []
    for j in range(len(d)):
        row = []
        for n in range(n_len):
            row.append(sum(math.comb(k, j) * w_mid ** (k - j) * d[k][n]
                           for k in range(j, len(d)) if n < len(d[k])))
        h.append(row)
    return w_mid, h


def bulk_truncation(h, w_half, eta_hi, tol=TOL):
    """Per j, the (even) number of eta terms for |w - w_mid| <= w_half, |eta| <= eta_hi."""
    bounds = [[abs(float(v)) * eta_hi ** n for n, v in enumerate(row)] for row in h]
    j_count = len(h)
    while j_count > 1 and sum(sum(bounds[j]) * w_half ** j for j in range(j_count - 1, len(h))) < tol / 2:
        j_count -= 1
    terms = []
    for j in range(j_count):
        n = len(bounds[j])
        while n > 1 and sum(bounds[j][n - 1:]) * w_half ** j < tol / 2 / j_count:
            n -= 1
        n += n % 2
        assert n < len(bounds[j])
        terms.append(n)
    return terms


def economize(coefs, eta_hi, budget):
    """Chebyshev economization of sum_n coefs[n] eta^n on |eta| <= eta_hi (exact rationals).

    In the variable t = eta / eta_hi the polynomial is rewritten in Chebyshev polynomials
    T_k(t) (t^n = 2^(1-n) sum_i C(n, i) T_{n-2i}(t), the T_0 term halved), the highest T_k
    are dropped while the sum of their |coefficients| (a bound on the change for |t| <= 1)
    stays within budget, and the rest is turned back into powers of eta. Parity is kept.
    """
    h_r = Fraction(eta_hi).limit_denominator(10**6)
    if h_r < Fraction(eta_hi):
        h_r += Fraction(1, 10**6)
    q = [c * h_r ** n for n, c in enumerate(coefs)]
    cheb = [Fraction(0)] * len(q)
    for n, qn in enumerate(q):
        if qn == 0:
            continue
        for i in range(n // 2 + 1):
            k = n - 2 * i
            w = Fraction(math.comb(n, i), 2 ** (n - 1)) if n > 0 else Fraction(1)
            if k == 0 and n > 0:
                w /= 2
            cheb[k] += qn * w
    keep = len(cheb)
    dropped = 0.0
    while keep > 1 and dropped + abs(float(cheb[keep - 1])) <= budget:
        dropped += abs(float(cheb[keep - 1]))
        keep -= 1
    # back to powers of t: T_0 = 1, T_1 = t, T_{k+1} = 2 t T_k - T_{k-1}
    t_prev, t_cur = [Fraction(1)], [Fraction(0), Fraction(1)]
    out = [Fraction(0)] * keep
    for k in range(keep):
        tk = t_prev if k == 0 else t_cur
        if k >= 2:
            nxt = [Fraction(0)] + [2 * v for v in t_cur]
            for i, v in enumerate(t_prev):
                nxt[i] -= v
            t_prev, t_cur = t_cur, nxt
            tk = t_cur
        for i, v in enumerate(tk):
            out[i] += cheb[k] * v
    return [c / h_r ** n for n, c in enumerate(out)]


def economized_terms(h, w_half, eta_hi, tol=TOL):
    """Per j, the economized coefficients of h_j for |w - w_mid| <= w_half, |eta| <= eta_hi:
    Taylor-truncated far below tol, then economized with the same budget as bulk_truncation."""
    exact = bulk_truncation(h, w_half, eta_hi, tol * 1e-4)
    j_count = len(bulk_truncation(h, w_half, eta_hi, tol))
    out = []
    for j in range(j_count):
        c = economize(h[j][:exact[j]], eta_hi, tol / 2 / j_count / w_half ** j)
        # the monomial form must not trade cancellation for length
        size = sum(abs(float(v)) * eta_hi ** n for n, v in enumerate(c))
        assert size <= 4 * sum(abs(float(v)) * eta_hi ** n for n, v in enumerate(h[j][:exact[j]])) + 1e-30
        if len(c) % 2:
            c = c + [Fraction(0)]
        out.append(c)
    return out


WIDE_MIN_A = 100.0  # the written-out sums for |eta| <= 1 start at this band


def render_written_out(d, name, doc, first_band, eta_hi):
    """A function name(ia, eta, e2, inv_a): S(eta, a) written out, one branch per band of a
    from first_band on, re-expanded in 1/a about the band's middle, for |eta| <= eta_hi(a_lo).

    Loops whose lengths come from a table cost about three times the multiply-adds they
    do; written out, each term is one fused multiply-add with a constant.
    """
    lines = ["", "@jit", f"def {name}(ia, eta, e2, inv_a):", f'    """{doc}', "",
             "    Each branch is the double sum re-expanded about the middle of its band in w = 1/a,",
             "    sum_j h_j(eta) (w - w_mid)^j, with h_j(eta) split into even and odd powers of eta.",
             '    """']
    total = []
    for i in range(first_band, len(A_BANDS)):
        a_lo = A_BANDS[i]
        a_hi = A_BANDS[i + 1] if i + 1 < len(A_BANDS) else None
        w_mid, h = reexpand(d, a_lo, a_hi)
        w_half = float(Fraction(1) / Fraction(a_lo) - w_mid)
        coefs = economized_terms(h, w_half, eta_hi(a_lo))
        total.append(sum(len(c) for c in coefs))
        last = i == len(A_BANDS) - 1
        lines.append("    # last band" if last else f"    if ia == {i}:")
        ind = "    " if last else "        "
        lines.append(f"{ind}w = inv_a - {float(w_mid)!r}")
        for j in reversed(range(len(coefs))):
            c = coefs[j]
            ck = f"({_horner(c[0::2], 'e2')}) + eta * ({_horner(c[1::2], 'e2')})"
            lines.append(f"{ind}s = {ck}" if j == len(coefs) - 1 else f"{ind}s = s * w + ({ck})")
        lines.append(f"{ind}return s")
    return lines, total


def render_bulk(d):
    """temme_bulk_sum (z <= Z_BANDS[0], every band) and temme_wide_sum (|eta| <= 1, a >= 100)."""
    bulk, bulk_total = render_written_out(
        d, "temme_bulk_sum",
        f"sum_k c_k(eta) a^-k for a in band ia, |eta| sqrt(a) <= {Z_BANDS[0]:g}; e2 = eta^2, inv_a = 1/a.",
        0, lambda a_lo: min(1.0, Z_BANDS[0] / math.sqrt(a_lo)))
    first = next(i for i, a in enumerate(A_BANDS) if a >= WIDE_MIN_A)
    wide, wide_total = render_written_out(
        d, "temme_wide_sum",
        f"sum_k c_k(eta) a^-k for a in band ia >= {first}, |eta| <= 1; e2 = eta^2, inv_a = 1/a.",
        first, lambda a_lo: 1.0)
    longest = max(int(call.split("(", 1)[0]) for line in bulk + wide for call in line.split("horner_")[1:])
    lines = render_horners(longest) + bulk + ["", f"TEMME_WIDE_FIRST_BAND = {first}", ""] + wide
    return lines, (bulk_total, wide_total)


def main():
    d, _, _ = temme_coefficients()
    table = [[truncation(d, a_lo, min(1.0, z / math.sqrt(a_lo))) for z in Z_BANDS] for a_lo in A_BANDS]
    with open(OUT, "w") as fh:
        fh.write(render(d, table))
    for a_lo, band in zip(A_BANDS, table):
        print(f"a >= {a_lo:9g}: terms per z band", [sum(t) for t in band])
    print("wrote", OUT)


if __name__ == "__main__":
    main()
