"""Accuracy of the scalar special functions (kernels/special*.py) against mpmath and scipy.

References: mpmath at 40 digits (30+ correct), computed from the exact double inputs; scipy
where it is finite. Tolerances are relative errors of the *log* value. Two effects set the
floors that the tolerances below spell out:

- where log Q = log1p(-P) is tiny (Q near 1), P = exp(L) with |L| up to 745 can only be as
  accurate as L is absolutely: a relative error of about eps |L| = eps |log(-log Q)|. The
  tolerances add 4 eps |log|ref|| there (1.5e-13 at log Q = -1e-300, 1.5e-14 at -1e-30);
- scipy's logsf is log(sf): near 1 it is itself only good to ~1e-11 relative, so the scipy
  comparisons are tight (1e-13) only where |logsf| > 1e-3.
"""
import math
import sys

import mpmath as mp
import numpy as np
import pytest
from numba import njit
from scipy import special as sp
from scipy import stats

from fastgeo.kernels import special as S

EPS = np.finfo(np.float64).eps
SUBNORMAL_STEP = 5e-324  # the spacing of doubles below the smallest normal, 2.2e-308
mp.mp.dps = 40


# ---------------------------------------------------------------- vectorised wrappers
@njit(cache=True)
def _vec_gamma(a, x):
    out = np.empty((x.size, 3))
    for i in range(x.size):
        out[i, 0] = S.log_gamma_q(a[i], x[i])
        out[i, 1] = S.gamma_hazard(a[i], x[i])
        out[i, 2] = S.log_gamma_pdf(a[i], x[i])
    return out


@njit(cache=True)
def _vec_beta_i(a, b, log_x, log_y):
    out = np.empty(a.size)
    for i in range(a.size):
        out[i] = S.log_beta_i(a[i], b[i], log_x[i], log_y[i])
    return out


@njit(cache=True)
def _vec_beta_hazard(a, b, log_x, log_y):
    out = np.empty(a.size)
    for i in range(a.size):
        out[i] = S.beta_i_hazard(a[i], b[i], log_x[i], log_y[i])
    return out


@njit(cache=True)
def _vec_ndtr(x):
    out = np.empty((x.size, 2))
    for i in range(x.size):
        out[i, 0] = S.log_ndtr(x[i])
        out[i, 1] = S.log_ndtr_hazard(x[i])
    return out


@njit(cache=True)
def _vec_misc(x, a, b):
    out = np.empty((x.size, 6))
    for i in range(x.size):
        out[i, 0] = S.erfcx(x[i])
        out[i, 1] = S.log1pmx(a[i])
        out[i, 2] = S.expm1mx(a[i])
        out[i, 3] = S.stirling_correction(b[i])
        out[i, 4] = S.log_beta(b[i], abs(x[i]) + 1.0)
        out[i, 5] = S.log1pmx_ratio(b[i], abs(x[i]) + 1.0)
    return out


# ---------------------------------------------------------------- mpmath references
def mp_log_gamma_q(a, x):
    """log Q(a, x) to ~30 digits: log1p(-P) below the mean, log Q above."""
    a, x = mp.mpf(a), mp.mpf(x)
    if x < a or (a >= 1000 and x < 1.02 * a):
        return mp.log1p(-mp.gammainc(a, 0, x, regularized=True))
    if a >= 1000:
        # mpmath's hypergeometric evaluation does not converge here; Legendre's continued
        # fraction (checked against mpmath in test_reference_fraction) converges fast.
        return _mp_log_gamma_q_fraction(a, x)
    return mp.log(mp.gammainc(a, x, mp.inf, regularized=True))


def _mp_log_gamma_q_fraction(a, x):
    with mp.workdps(60):
        a, x = mp.mpf(a), mp.mpf(x)
        tiny = mp.mpf(10) ** -300
        b = x + 1 - a
        c, d = 1 / tiny, 1 / b
        h = d
        for i in range(1, 100000):
            an = -i * (i - a)
            b += 2
            d = an * d + b
            d = d if abs(d) > tiny else tiny
            c = b + an / c
            c = c if abs(c) > tiny else tiny
            d = 1 / d
            h *= d * c
            if abs(d * c - 1) < mp.mpf(10) ** -45:
                break
        return a * mp.log(x) - x - mp.loggamma(a) + mp.log(h)


def mp_gamma_hazard(a, x, log_q):
    return mp.exp((a - 1) * mp.log(x) - x - mp.loggamma(a) - log_q)


def mp_log_beta_i(a, b, x, y):
    """log I_x(a, b) with x + y = 1 given exactly as mpf: log I_x below the mean a/(a+b),
    log1p(-I_y(b, a)) above it."""
    if x < a / (a + b):
        return _mp_log_beta_i_lower(a, b, x, y)
    return mp.log1p(-mp.exp(_mp_log_beta_i_lower(b, a, y, x)))


def _mp_log_beta_i_lower(a, b, x, y):
    """log I_x(a, b) for x below the mean: mpmath's betainc, or where its hypergeometric
    evaluation gives up (some large a, b) the series DLMF 8.17.8 summed in 50 digits,
    I_x(a, b) = x^a y^b / (a B(a, b)) sum_n (a+b)_n / (a+1)_n x^n."""
    try:
        return mp.log(mp.betainc(a, b, 0, x, regularized=True))
    except (ValueError, mp.libmp.libhyper.NoConvergence):
        pass
    with mp.workdps(50):
        term, total = mp.mpf(1), mp.mpf(1)
        for n in range(10**7):
            term *= (a + b + n) * x / (a + 1 + n)
            total += term
            if term < total * mp.mpf(10) ** -45:
                break
        else:
            raise RuntimeError("reference series did not converge")
        return a * mp.log(x) + b * mp.log(y) - mp.log(a) - mp.log(mp.beta(a, b)) + mp.log(total)


def rel_err(got, ref):
    ref = float(ref) if not isinstance(ref, float) else ref
    return abs(got - ref) / abs(ref) if ref != 0 else abs(got)


def near_one_allowance(ref):
    """eps |log(-log Q)|: what exp(L) loses where log Q = log1p(-exp(L)) is tiny."""
    return 4 * EPS * max(0.0, -math.log(abs(ref))) if ref != 0 else 0.0


# ---------------------------------------------------------------- erf family
def test_log_ndtr_against_mpmath(rng):
    x = np.concatenate([
        -np.exp(rng.uniform(np.log(1e-3), np.log(1e5), 150)),
        rng.uniform(-5, 5, 100),
        np.exp(rng.uniform(np.log(1e-3), np.log(40.0), 100)),
        [0.0, -37.0, -36.99, 5.0, 5.0001, -1e5, 40.0],
    ])
    got = _vec_ndtr(x)
    for xi, (lp, haz) in zip(x, got):
        xm = mp.mpf(xi)
        cdf = mp.ncdf(xm)
        ref = mp.log1p(-mp.ncdf(-xm)) if xi > 0 else mp.log(cdf)
        if abs(ref) < 1e-300:  # the log itself underflows (x > 37.5)
            assert abs(lp) <= 1e-300
        else:
            assert rel_err(lp, ref) <= 1e-14, (xi, lp, ref)
        ref_h = mp.npdf(mp.mpf(xi)) / cdf
        # beyond x ~ 37.5 the hazard is subnormal and keeps only absolute precision
        assert abs(haz - ref_h) <= 1e-14 * abs(ref_h) + 1e-320, (xi, haz, ref_h)
    # scipy: the same accuracy away from 0 (for large x its log1p(-ndtr(-x)) loses ~1e-13)
    sp_ref = sp.log_ndtr(x)
    far = sp_ref < -1e-3
    np.testing.assert_allclose(got[far, 0], sp_ref[far], rtol=2e-14)
    near = (sp_ref >= -1e-3) & (sp_ref < -1e-300)
    np.testing.assert_allclose(got[near, 0], sp_ref[near], rtol=1e-12)


def test_erfcx_and_elementary_helpers(rng):
    n = 300
    x = np.concatenate([rng.uniform(-5, 30, n - 50), np.exp(rng.uniform(0, np.log(1e6), 50))])
    u = np.concatenate([rng.uniform(-0.9, 3.0, n - 100), np.exp(rng.uniform(-30, 0, 50)),
                        -np.exp(rng.uniform(-30, np.log(0.9), 50))])
    b = np.exp(rng.uniform(np.log(0.05), np.log(1e5), n))
    got = _vec_misc(x, u, b)
    for i in range(n):
        xi, ui, bi = mp.mpf(x[i]), mp.mpf(u[i]), mp.mpf(b[i])
        assert rel_err(got[i, 0], mp.exp(xi * xi) * mp.erfc(xi)) <= 4e-15, x[i]
        assert rel_err(got[i, 1], mp.log1p(ui) - ui) <= 4e-15, u[i]
        assert rel_err(got[i, 2], mp.expm1(ui) - ui) <= 4e-15, u[i]
        mu = mp.loggamma(bi) - ((bi - 0.5) * mp.log(bi) - bi + mp.log(2 * mp.pi) / 2)
        # below 10, lgamma minus Stirling's expression: a few 1e-15 absolute
        assert abs(got[i, 3] - mu) <= 2e-14 * abs(mu) + (5e-15 if b[i] < 10 else 1e-17), b[i]
        # the reference from the double the function received: abs(x) + 1 is rounded, and
        # log(lam) - lam + 1 magnifies that rounding by |1/lam - 1| / |log(lam) - lam + 1|
        # (5e-15 relative at lam = 1.04, seed 3148740614503131061)
        second = mp.mpf(abs(x[i]) + 1.0)
        lb = mp.log(mp.beta(bi, second))
        assert abs(got[i, 4] - lb) <= 1e-14 * abs(lb) + 5e-15, (b[i], x[i])
        lam = bi / second
        assert rel_err(got[i, 5], mp.log(lam) - lam + 1) <= 4e-15, (b[i], x[i])
    np.testing.assert_allclose(got[:, 0], sp.erfcx(x), rtol=1e-14)


def test_log_beta_large_arguments_keeps_digits(rng):
    # lgamma(a) + lgamma(b) - lgamma(a+b) loses about b log(b) ulps (1e-11 at b ~ 8192)
    a = np.exp(rng.uniform(np.log(0.05), np.log(1e3), 200))
    b = np.exp(rng.uniform(np.log(1e3), np.log(1e6), 200))
    for ai, bi in zip(a, b):
        ref = mp.log(mp.beta(mp.mpf(ai), mp.mpf(bi)))
        assert abs(S.log_beta(ai, bi) - ref) <= 2e-15 * abs(ref) + 1e-15, (ai, bi)
        assert S.log_beta(ai, bi) == S.log_beta(bi, ai)


# ---------------------------------------------------------------- incomplete gamma
def gamma_points(rng, n):
    """a log-uniform in [0.05, 1e5]; x in the bulk, the tails and the near-1 region."""
    a = np.exp(rng.uniform(np.log(0.05), np.log(1e5), n))
    kind = rng.integers(0, 4, n)
    lam = np.select(
        [kind == 0, kind == 1, kind == 2],
        [1 + rng.normal(0, 3, n) / np.sqrt(a),              # bulk
         np.exp(rng.uniform(np.log(1e-10), np.log(1e4), n)),  # everywhere, log-uniform
         1 + rng.normal(0, 30, n) / np.sqrt(a)],             # moderate tails
        np.exp(rng.uniform(np.log(1e-10), np.log(0.9), n)))  # below the mean: Q near 1
    lam = np.clip(lam, 1e-10, 1e4)
    return a, a * lam


def test_log_gamma_q_against_mpmath(rng):
    a, x = gamma_points(rng, 400)
    got = _vec_gamma(a, x)
    for ai, xi, (lq, haz, lpdf) in zip(a, x, got):
        ref = mp_log_gamma_q(ai, xi)
        rf = float(ref)
        tol = 1e-13 + near_one_allowance(rf)
        assert abs(lq - ref) <= tol * abs(rf) + 1e-300, (ai, xi, lq, rf)
        # the hazard p/Q = -d log Q / dx (what the gradients use)
        ref_h = mp_gamma_hazard(mp.mpf(ai), mp.mpf(xi), ref)
        if ref_h > 1e-300:
            assert rel_err(haz, ref_h) <= 1e-12, (ai, xi, haz, ref_h)
            # composed from the two logs it also holds, up to eps |log| of each
            composed = math.exp(lpdf - lq)
            assert rel_err(composed, ref_h) <= 1e-12 + 4 * EPS * (abs(lpdf) + abs(lq)), (ai, xi)
        else:
            assert 0.0 <= haz <= 1e-290


@njit(cache=True)
def _vec_gamma_both_chains(a, x):
    out = np.empty((x.size, 4))
    for i in range(x.size):
        out[i, 0], out[i, 1] = S.log_gamma_q_and_hazard(a[i], x[i])
        out[i, 2], out[i, 3] = S.log_gamma_q_hazard_if_narrow(a[i], x[i], True)
    return out


def test_the_narrow_gamma_chain(rng):
    """log_gamma_q_hazard_if_narrow (no written-out wide Temme sums): bit for bit the full
    chain below WIDE_MIN_A, and as accurate above it (the Taylor table serves the region)."""
    from fastgeo.kernels.special_gamma import WIDE_MIN_A

    a, x = gamma_points(rng, 300)
    # the region that differs: a >= WIDE_MIN_A beyond the bulk, where Temme's expansion is
    # used out to 6 standard deviations above the mean and down to eta = -0.8 below it
    a[:150] = np.exp(rng.uniform(np.log(WIDE_MIN_A), np.log(1e5), 150))
    x[:75] = a[:75] * (1 + rng.uniform(3, 6.5, 75) / np.sqrt(a[:75]))
    x[75:150] = a[75:150] * rng.uniform(0.3, 1.0, 75)
    got = _vec_gamma_both_chains(a, x)
    below = a < WIDE_MIN_A
    assert below.sum() > 40
    np.testing.assert_array_equal(got[below, 2:], got[below, :2])
    for ai, xi, (_, _, lq, haz) in zip(a[~below], x[~below], got[~below]):
        ref = mp_log_gamma_q(ai, xi)
        rf = float(ref)
        assert abs(lq - ref) <= (1e-13 + near_one_allowance(rf)) * abs(rf) + 1e-300, (ai, xi, lq, rf)
        ref_h = mp_gamma_hazard(mp.mpf(ai), mp.mpf(xi), ref)
        if ref_h > 1e-300:
            assert rel_err(haz, ref_h) <= 1e-12, (ai, xi, haz, ref_h)


def test_log_gamma_q_integer_a_against_mpmath(rng):
    """Integer a < 20 (chi-square of even dimension below 40) takes the finite sum
    Q = e^-x sum_{k<a} x^k / k! from x = max(a - sqrt(a), 1) on: both sides of that edge,
    the bulk and the far tail, log Q and the hazard against mpmath."""
    for a in range(2, 20):
        edge = max(a - math.sqrt(a), 1.0)
        x = np.concatenate([[edge, np.nextafter(edge, 0.0), np.nextafter(edge, np.inf), a - 1.0, a, a + 1.0],
                            a + rng.normal(0, 2, 12) * math.sqrt(a),
                            edge * np.exp(rng.uniform(0, math.log(1e6), 12))])
        x = x[x > 0]
        for xi in x:
            lq, haz = S.log_gamma_q_and_hazard(float(a), float(xi))
            assert (lq, haz) == (S.log_gamma_q(float(a), float(xi)), S.gamma_hazard(float(a), float(xi)))
            ref = mp_log_gamma_q(a, xi)
            assert rel_err(lq, ref) <= 1e-13 + near_one_allowance(float(ref)), (a, xi, lq, float(ref))
            assert rel_err(haz, mp_gamma_hazard(mp.mpf(a), mp.mpf(xi), ref)) <= 1e-12, (a, xi)


def test_log_gamma_q_far_upper_tail_where_scipy_underflows():
    a, x = 256.0, 12900.0
    assert stats.gamma.logsf(x, a) == -np.inf  # scipy underflows here
    ref = mp_log_gamma_q(a, x)
    assert abs(float(ref) + 11648.12) < 0.01
    got = S.log_gamma_q(a, x)
    assert rel_err(got, ref) <= 1e-15
    assert rel_err(S.gamma_hazard(a, x), mp_gamma_hazard(mp.mpf(a), mp.mpf(x), ref)) <= 1e-14
    # D = 16384: chi2 tail at 200 D
    a, x = 8192.0, 100 * 16384.0
    assert rel_err(S.log_gamma_q(a, x), mp_log_gamma_q(a, x)) <= 1e-15


def test_log_gamma_q_near_one_is_relatively_accurate(rng):
    # log Q = log1p(-P) ~ -P: points with P between 1e-40 and 1e-20 (log Q ~ -1e-30)
    for _ in range(60):
        a = math.exp(rng.uniform(math.log(0.05), math.log(1e5)))
        log_p = rng.uniform(-40, -20) * math.log(10)
        # P ~ x^a e^-x / Gamma(a+1) for small x: solve for x, then ask mpmath
        x = math.exp((log_p + math.lgamma(a + 1)) / a)
        if not (x > 0 and x < a):
            continue
        ref = mp_log_gamma_q(a, x)
        got = S.log_gamma_q(a, x)
        if abs(ref) < sys.float_info.min:  # the approximate inversion overshot: log Q is subnormal
            assert abs(got - ref) <= 1e-320, (a, x, got, ref)
            continue
        assert rel_err(got, ref) <= 1e-13 + near_one_allowance(float(ref)), (a, x, got, ref)


def test_log_gamma_q_against_scipy(rng):
    a, x = gamma_points(rng, 3000)
    got = _vec_gamma(a, x)[:, 0]
    for name, ref in [("gamma.logsf", stats.gamma.logsf(x, a)),
                      ("chi2.logsf", stats.chi2.logsf(2 * x, 2 * a))]:
        ok = (ref > -700) & (ref < 0)  # below, scipy's sf is subnormal and loses digits
        far = ok & (np.abs(ref) > 1e-3)
        near = ok & ~far
        assert far.sum() > 1000 and near.sum() > 100
        np.testing.assert_allclose(got[far], ref[far], rtol=1e-13, err_msg=name)
        # scipy's log(sf) is only good to ~1e-11 near sf = 1
        np.testing.assert_allclose(got[near], ref[near], rtol=2e-11, atol=2e-16, err_msg=name)


@pytest.mark.parametrize("dim", [1, 2, 7, 40, 512, 16384])
def test_chi2_logsf_of_samples(rng, dim):
    s = np.concatenate([rng.chisquare(dim, 300), dim * np.exp(rng.uniform(-20, 3, 100))])
    a = np.full(s.size, dim / 2.0)
    got = _vec_gamma(a, s / 2)[:, 0]
    ref = stats.chi2.logsf(s, dim)
    normal = ref > -700  # below, scipy's sf is subnormal or 0
    far = normal & (np.abs(ref) > 1e-3)
    np.testing.assert_allclose(got[far], ref[far], rtol=1e-13)
    np.testing.assert_allclose(got[normal & ~far], ref[normal & ~far], rtol=2e-11, atol=2e-16)
    assert np.isfinite(got).all() and (got[~normal] < -690).all()


def test_log_gamma_q_edge_cases():
    a_values = [1e-8, 1e-3, 0.05, 0.5, 1.0, 19.999, 20.0, 256.0, 1e5, 1e7, 1e9]
    for a in a_values:
        assert S.log_gamma_q(a, 0.0) == 0.0
        assert S.log_gamma_q(a, -1.0) == 0.0
        assert S.log_gamma_q(a, math.inf) == -math.inf
        assert S.gamma_hazard(a, math.inf) == 1.0
        assert math.isnan(S.log_gamma_q(a, math.nan))
        # x exactly a: Q(a, a) tends to 1/2 for large a (and to a(-log a - 0.577) at a -> 0)
        q = math.exp(S.log_gamma_q(a, a))
        assert 0.2 < q < 0.7 or a < 1
        ref_a = float(mp_log_gamma_q(a, a)) if a < 1e7 else None
        if ref_a is not None:
            assert rel_err(S.log_gamma_q(a, a), ref_a) <= 1e-13
        # never NaN, monotone in x, hazard finite and positive
        xs = a * np.array([1e-300, 1e-200, 1e-30, 1e-10, 0.3, 0.5, 0.9, 1.0, 1.1, 2.0, 3.0, 1e4, 1e100])
        xs = xs[np.isfinite(xs) & (xs > 0)]
        vals = _vec_gamma(np.full(xs.size, a), xs)
        assert not np.isnan(vals).any(), a
        assert (np.diff(vals[:, 0]) <= 0).all(), (a, vals[:, 0])
        assert (vals[:, 1] >= 0).all()
    assert math.isnan(S.log_gamma_q(0.0, 1.0)) and math.isnan(S.log_gamma_q(-1.0, 1.0))


def test_temme_table_matches_generator():
    """The generated table equals what kernels/tools/gen_temme.py computes (exactly)."""
    import importlib.util
    import os

    from fastgeo.kernels import special_gamma_coeffs as C

    path = os.path.join(os.path.dirname(S.__file__), "tools", "gen_temme.py")
    if not os.path.isfile(path):
        pytest.skip("the generator ships with the source tree only")
    spec = importlib.util.spec_from_file_location("gen_temme", path)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    d, g, _ = gen.temme_coefficients()
    for k in range(C.TEMME_K):
        n = (C.TEMME_OFFSET[k + 1] if k + 1 < C.TEMME_K else C.TEMME_D.size) - C.TEMME_OFFSET[k]
        np.testing.assert_array_equal(C.TEMME_D[C.TEMME_OFFSET[k]:C.TEMME_OFFSET[k] + n],
                                      [float(v) for v in d[k][:n]])
    # known values (DLMF 8.12.10): d_{0,0} = -1/3, d_{0,1} = 1/12, d_{1,0} = -1/540
    assert C.TEMME_D[0] == -1 / 3 and C.TEMME_D[1] == 1 / 12 and C.TEMME_D[C.TEMME_OFFSET[1]] == -1 / 540
    assert [str(v) for v in g[:4]] == ["1", "1/12", "1/288", "-139/51840"]


def test_written_out_temme_sums_match_the_table(rng):
    """The generated written-out sums (re-expanded, economized) equal the Taylor-table sum."""
    from fastgeo.kernels import special_gamma as G
    from fastgeo.kernels import special_gamma_coeffs as C

    last_z = C.TEMME_Z_BANDS.size - 1
    for ia in range(C.TEMME_A_BANDS.size):
        a_lo = C.TEMME_A_BANDS[ia]
        a_hi = C.TEMME_A_BANDS[ia + 1] if ia + 1 < C.TEMME_A_BANDS.size else 1e3 * a_lo
        for a in np.exp(rng.uniform(np.log(a_lo), np.log(a_hi), 3)):
            for eta in rng.uniform(-1, 1, 4) * min(1.0, C.TEMME_Z_BANDS[0] / math.sqrt(a)):
                ref = G._temme_sum_table(ia, 0, eta, eta * eta, 1 / a)
                assert abs(C.temme_bulk_sum(ia, eta, eta * eta, 1 / a) - ref) <= 2e-15, (ia, a, eta)
            if ia >= C.TEMME_WIDE_FIRST_BAND:
                for eta in rng.uniform(-1, 1, 4):
                    ref = G._temme_sum_table(ia, last_z, eta, eta * eta, 1 / a)
                    assert abs(C.temme_wide_sum(ia, eta, eta * eta, 1 / a) - ref) <= 2e-15, (ia, a, eta)


def test_references_agree_with_mpmath_builtins():
    """The 60-digit continued fraction and beta series used as references agree with
    mpmath's gammainc / betainc where those converge."""
    for a, x in [(30.0, 60.0), (256.0, 400.0), (1000.0, 1500.0), (0.5, 3.0)]:
        direct = mp.log(mp.gammainc(mp.mpf(a), mp.mpf(x), mp.inf, regularized=True))
        assert abs(_mp_log_gamma_q_fraction(a, x) / direct - 1) < 1e-30
    for a, b, x in [(0.5, 3.0, 0.01), (3.0, 0.5, 0.7), (40.0, 8192.0, 0.004), (300.0, 20.0, 0.5)]:
        a, b, x = mp.mpf(a), mp.mpf(b), mp.mpf(x)
        direct = mp.log(mp.betainc(a, b, 0, x, regularized=True))
        with mp.workdps(50):
            term, total = mp.mpf(1), mp.mpf(1)
            for n in range(10**6):
                term *= (a + b + n) * x / (a + 1 + n)
                total += term
                if term < total * mp.mpf(10) ** -45:
                    break
            series = (a * mp.log(x) + b * mp.log(1 - x) - mp.log(a) - mp.log(mp.beta(a, b))
                      + mp.log(total))
        assert abs(series / direct - 1) < 1e-30


# ---------------------------------------------------------------- incomplete beta (F family)
def f_family_points(rng, n):
    """nu in [0.1, 1000], D in [1, 16384], s in the bulk, both tails and past scipy's range."""
    nu = np.exp(rng.uniform(np.log(0.1), np.log(1000), n))
    dim = np.round(np.exp(rng.uniform(0, np.log(16384), n)))
    q = 10.0 ** rng.uniform(-300, 0, n)
    kind = rng.integers(0, 3, n)
    with np.errstate(all="ignore"):
        f = np.select([kind == 0, kind == 1], [stats.f.isf(q, dim, nu), stats.f.ppf(q, dim, nu)],
                      stats.f.isf(rng.uniform(0, 1, n), dim, nu))
        far = rng.random(n) < 0.15
        f = np.where(far, f * 10.0 ** rng.uniform(1, 30, n), f)
    f = np.where(np.isfinite(f) & (f > 0), f, 1.0)
    return nu, dim, dim * f


def f_log_inputs(nu, s):
    """log w and log(1-w), w = nu/(nu+s), each to full relative precision."""
    with np.errstate(divide="ignore", over="ignore"):
        r = s / nu
        return np.where(np.isfinite(r), -np.log1p(r), np.log(nu) - np.log(s)), -np.log1p(nu / s)


def check_log_beta_i(got, haz, a, b, x, y, rtol, where):
    """log I_x(a, b) against mpmath to rtol (plus the near-one floor), and the hazard
    x^a y^b / (B(a, b) I) to 1e-12 where it is a normal number; a, b, x, y as mpf."""
    ref = mp_log_beta_i(a, b, x, y)
    rf = float(ref)
    tol = rtol + near_one_allowance(rf)
    assert abs(got - ref) <= tol * abs(rf) + 1e-300, (*where, got, rf)
    ref_h = mp.exp(a * mp.log(x) + b * mp.log(y) - mp.log(mp.beta(a, b)) - ref)
    if ref_h > 1e-300:
        assert rel_err(haz, ref_h) <= 1e-12, (*where, haz, ref_h)


def test_log_beta_i_f_family_against_mpmath(rng):
    nu, dim, s = f_family_points(rng, 300)
    lx, ly = f_log_inputs(nu, s)
    got = _vec_beta_i(nu / 2, dim / 2, lx, ly)
    haz = _vec_beta_hazard(nu / 2, dim / 2, lx, ly)
    for i in range(nu.size):
        n_, d_, s_ = mp.mpf(nu[i]), mp.mpf(dim[i]), mp.mpf(s[i])
        a, b, x, y = n_ / 2, d_ / 2, n_ / (n_ + s_), s_ / (n_ + s_)
        # the hazard x^a y^b / (B I): -1/s times it is d log ri / ds (the gradients)
        check_log_beta_i(got[i], haz[i], a, b, x, y, 1e-12, (nu[i], dim[i], s[i]))


def test_log_beta_i_general_against_mpmath(rng):
    n = 120
    a = np.exp(rng.uniform(np.log(0.05), np.log(1e4), n))
    b = np.exp(rng.uniform(np.log(0.05), np.log(1e4), n))
    # x around the mean a/(a+b), and anywhere on a log scale on either side
    t = np.where(rng.random(n) < 0.5, rng.normal(0, 3, n), rng.uniform(-700, 700, n) / np.sqrt(a + b))
    logit = np.log(a / b) + t * np.sqrt((a + b) / (a * b))
    lx, ly = -np.logaddexp(0, -logit), -np.logaddexp(0, logit)
    got = _vec_beta_i(a, b, lx, ly)
    for i in range(n):
        # the reference takes the smaller of x, y exactly as given (the other is 1 minus it)
        if lx[i] < ly[i]:
            x = mp.exp(mp.mpf(lx[i]))
            y = 1 - x
        else:
            y = mp.exp(mp.mpf(ly[i]))
            x = 1 - y
        ref = mp_log_beta_i(mp.mpf(a[i]), mp.mpf(b[i]), x, y)
        rf = float(ref)
        tol = 1e-12 + near_one_allowance(rf)
        assert abs(got[i] - ref) <= tol * abs(rf) + 1e-300, (a[i], b[i], logit[i], got[i], rf)


def test_log_beta_i_one_shape_large_other_small_near_one(rng):
    """I_x(p, q) and its complement where p is large, q small and x near 1 (u = p (1 - x) of
    order 1 to 60): the continued fraction cancels there (h ~ p ulps; 1.8e-13 relative seen at
    p = 1403, q = 0.3, u = 3.2, seed 3148740614503131061) and the large-shape expansion in
    incomplete gamma functions takes over. Both argument orders, value and hazard, 1e-13."""
    n = 150
    p = np.exp(rng.uniform(np.log(15.0), np.log(5000.0), n))
    q = np.exp(rng.uniform(np.log(0.2), np.log(15.0), n))
    u = np.exp(rng.uniform(np.log(0.05), np.log(60.0), n))
    y = np.minimum(u / p, 0.6)
    lx, ly = np.log1p(-y), np.log(y)
    swap = rng.random(n) < 0.5  # half as I_y(q, p), the complement's side
    a, b = np.where(swap, q, p), np.where(swap, p, q)
    la, lb = np.where(swap, ly, lx), np.where(swap, lx, ly)
    got = _vec_beta_i(a, b, la, lb)
    haz = _vec_beta_hazard(a, b, la, lb)
    for i in range(n):
        ym = mp.mpf(y[i])
        xa, xb = (ym, 1 - ym) if swap[i] else (1 - ym, ym)
        check_log_beta_i(got[i], haz[i], mp.mpf(a[i]), mp.mpf(b[i]), xa, xb, 1e-13, (a[i], b[i], y[i]))


def test_log_beta_i_against_scipy_f_logsf(rng):
    nu, dim, s = f_family_points(rng, 3000)
    lx, ly = f_log_inputs(nu, s)
    got = _vec_beta_i(nu / 2, dim / 2, lx, ly)
    ref = stats.f.logsf(s / dim, dim, nu)
    # scipy's F sf loses digits (or underflows to 0) well before the smallest double for
    # large nu (seen: 8e-6 relative at logsf = -650, -inf at -651); mpmath covers that range
    ok = (ref > -500) & (ref < 0)
    far = ok & (np.abs(ref) > 1e-3)
    near = ok & ~far
    assert far.sum() > 1000
    np.testing.assert_allclose(got[far], ref[far], rtol=1e-12)
    np.testing.assert_allclose(got[near], ref[near], rtol=2e-11, atol=2e-16)
    # where scipy underflows the result stays finite (and is checked against mpmath above)
    assert np.isfinite(got).all()
    assert (got[~np.isfinite(ref)] < -500).all()


def test_log_ratio_weights(rng):
    p = np.exp(rng.uniform(-700, 700, 200))
    q = np.exp(rng.uniform(-700, 700, 200))
    for pi, qi in list(zip(p, q)) + [(1e-300, 1e300), (1.7e308, 1e-3), (2.0, 0.0), (0.0, 3.0)]:
        lw, l1w = S.log_ratio_weights(pi, qi)
        P, Q = mp.mpf(pi), mp.mpf(qi)
        for got, ref in ((lw, -mp.log1p(Q / P) if P > 0 else -mp.inf),
                         (l1w, -mp.log1p(P / Q) if Q > 0 else -mp.inf)):
            if ref == -mp.inf or ref == 0:
                assert got == ref
            else:
                # a subnormal result (|log w| < 2.2e-308, where q/p is that small) has fewer
                # digits: there one unit in its last place (5e-324) is the bound
                assert rel_err(got, ref) <= 4e-16 or abs(got - ref) <= 5e-324, (pi, qi, got, ref)


def test_log_beta_i_edge_cases(rng):
    assert S.log_beta_i(2.0, 3.0, -math.inf, 0.0) == -math.inf
    assert S.log_beta_i(2.0, 3.0, 0.0, -math.inf) == 0.0
    assert math.isnan(S.log_beta_i(2.0, 3.0, math.nan, -1.0))
    assert math.isnan(S.log_beta_i(0.0, 3.0, -1.0, -0.5))
    # I_x(a, b) + I_{1-x}(b, a) = 1, also for extreme parameters
    for _ in range(100):
        a, b = np.exp(rng.uniform(np.log(1e-3), np.log(1e6), 2))
        logit = rng.uniform(-50, 50)
        lx, ly = -np.logaddexp(0, -logit), -np.logaddexp(0, logit)
        l1, l2 = S.log_beta_i(a, b, lx, ly), S.log_beta_i(b, a, ly, lx)
        assert not (math.isnan(l1) or math.isnan(l2))
        assert abs(np.logaddexp(l1, l2)) <= 1e-13, (a, b, logit, l1, l2)
    # I_x(1, 1) = x; I_x(a, 1) = x^a
    for lx in [-1e-20, -1e-5, -0.3, -5.0, -700.0, -1e6]:
        ly = math.log(-math.expm1(lx))
        tol = 4e-15 + near_one_allowance(lx)
        assert rel_err(S.log_beta_i(1.0, 1.0, lx, ly), lx) <= tol
        assert rel_err(S.log_beta_i(3.5, 1.0, lx, ly), 3.5 * lx) <= tol


# ---------------------------------------------------------------- CUDA and the public API
def test_compiles_to_ptx():
    """The same source compiles for the GPU (PTX, no device needed)."""
    cuda = pytest.importorskip("numba.cuda")
    import numba.cuda.dispatcher as dispatcher
    from numba import float64

    class _Device:
        compute_capability = (9, 0)

    def kernel(a, x, out):
        i = cuda.grid(1)
        if i < x.size:
            out[i, 0] = S.log_gamma_q(a[i], x[i])
            out[i, 1] = S.gamma_hazard(a[i], x[i]) + S.log_gamma_pdf(a[i], x[i])
            out[i, 2] = S.log_beta_i(a[i], x[i], -x[i], -a[i]) + S.log_beta(a[i], x[i])
            out[i, 3] = S.log_ndtr(x[i]) + S.log_ndtr_hazard(x[i])

    saved = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: _Device()
    try:
        ptx, _ = cuda.compile_ptx(kernel, (float64[:], float64[:], float64[:, :]), cc=(9, 0))
    except Exception as exc:  # no NVVM / NVRTC on this machine
        text = f"{type(exc).__name__}: {exc}"
        if any(k in text for k in ("NVVM", "nvvm", "NVRTC", "nvrtc", "libdevice", "CUDA_HOME", "cudart")):
            pytest.skip(f"CUDA toolchain not available: {text[:200]}")
        raise
    finally:
        dispatcher.get_current_device = saved
    assert ".visible .entry" in ptx


@pytest.mark.parametrize("dim", [1, 7, 512, 16384])
def test_grad_log_ri_uses_accurate_hazards(rng, dim):
    """grad log ri = 2 y d log ri / ds for the chi2 and F families, against mpmath hazards,
    also where ri underflows."""
    import fastgeo
    from fastgeo.priors import StandardNormal, StudentT

    z = rng.standard_normal((40, dim)) * np.exp(rng.uniform(np.log(0.3), np.log(30.0), (40, 1)))
    s = np.einsum("ij,ij->i", z, z)
    g = fastgeo.grad_log_ri(z, StandardNormal(dim), backend="cpu")
    for i in range(0, 40, 4):
        a, x = mp.mpf(dim) / 2, mp.mpf(s[i]) / 2
        ref = -mp_gamma_hazard(a, x, mp_log_gamma_q(dim / 2, s[i] / 2))  # d log Q / dx, x = s/2
        # The kernel's s and numpy's differ by a few ulps (summation order); the hazard
        # x^(a-1) e^-x / Q amplifies a relative change of s by |d log hazard / d log x| ~ |a - 1 - x|.
        rtol = 1e-12 + 4e-15 * abs(float(a) - 1 - s[i] / 2)
        # a gradient entry below the smallest normal double has absolute precision only: the
        # kernel's product rounds there one or two subnormal steps (5e-324) away from
        # float(ref) * z (seed 7097800809027713652, dim 16384: 1.5e-323 against 1e-323)
        np.testing.assert_allclose(g[i], float(ref) * z[i], rtol=rtol, atol=4 * SUBNORMAL_STEP)
    nu = float(np.exp(rng.uniform(np.log(0.5), np.log(50))))
    g = fastgeo.grad_log_ri(z, StudentT(dim, nu), backend="cpu")
    for i in range(0, 40, 4):
        n_, d_, s_ = mp.mpf(nu), mp.mpf(dim), mp.mpf(s[i])
        a, b, x, y = n_ / 2, d_ / 2, n_ / (n_ + s_), s_ / (n_ + s_)
        log_i = mp_log_beta_i(a, b, x, y)
        ref = -2 * mp.exp(a * mp.log(x) + b * mp.log(y) - mp.log(mp.beta(a, b)) - log_i) / s_
        np.testing.assert_allclose(g[i], float(ref) * z[i], rtol=1e-11, atol=4 * SUBNORMAL_STEP)


@pytest.mark.parametrize("dim", [1, 2, 7, 512, 16384])
def test_log_ri_standard_normal_matches_chi2_logsf(rng, dim):
    import fastgeo
    from fastgeo.priors import StandardNormal

    z = rng.standard_normal((257, dim)) * rng.uniform(0.2, 2.0, (257, 1))
    got = fastgeo.log_ri(z, StandardNormal(dim), backend="cpu")
    s = np.array([math.fsum(row * row) for row in z])
    ref = stats.chi2.logsf(s, dim)
    normal = ref > -700  # below, scipy's sf is subnormal or 0
    far = normal & (np.abs(ref) > 1e-3)
    # the kernel's float64 sum of D squares is off by about sqrt(D) eps relative, which log sf
    # magnifies by its condition number s |d log sf / ds| / |log sf| (hundreds where sf is
    # close to 1 at large D: seen 1.2e-12 at D = 16384, log sf = -1.08e-3)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # rows outside `far`
        cond = s * np.exp(stats.chi2.logpdf(s, dim) - ref) / np.abs(ref)
    rtol = 1e-12 + cond * 8 * math.sqrt(dim) * np.finfo(float).eps
    assert (np.abs(got[far] - ref[far]) <= rtol[far] * np.abs(ref[far])).all(), np.max(
        np.abs(got[far] / ref[far] - 1) / rtol[far])
    np.testing.assert_allclose(got[normal & ~far], ref[normal & ~far], rtol=2e-11, atol=2e-16)
    assert np.isfinite(got).all() and (got[~normal] < -690).all()
