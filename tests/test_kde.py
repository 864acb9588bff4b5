"""The KDE estimator of the realism index (MATH.md 1.3): the tabulated CPU kernels against the
naive float64 sum, scipy, mpmath and the closed-form realism index.

References used here:
- the ``reference`` backend (naive O(n) sum with ``log_ndtr`` and ``logsumexp``);
- :func:`accurate`, the same naive sum arranged to keep relative precision in both tails
  (log(1 - S) above the samples, the hazard through ``erfcx``), for the relative checks where
  the plain reference itself has cancelled;
- ``scipy.stats.gaussian_kde`` and mpmath at 50 digits.
"""
import math

import mpmath
import numpy as np
import pytest
from scipy import special, stats

import fastgeo
from fastgeo.kde import KDE, LOWER_MARGIN, MIDDLE, NODES_PER_BANDWIDTH, UPPER_MARGIN
from fastgeo.priors import GaussianMixture, StandardNormal, StudentT, semicircle

WHATS = ("cdf", "log_cdf", "pdf", "log_pdf")


def accurate(l, h, x):
    """float64 naive sums kept accurate in both tails.

    Returns log G (as log(1 - S) where G > 1/2), log g, (log g)' and (log G)' = g/G; the
    hazard of each term is phi/Phi = sqrt(2/pi)/erfcx(-u/sqrt 2), which does not cancel.
    """
    x = np.asarray(x, dtype=np.float64)
    u = (x[:, None] - l[None, :]) / h
    n = l.shape[0]
    log_phi_cdf = special.log_ndtr(u)
    log_g_cdf = special.logsumexp(log_phi_cdf, axis=1) - math.log(n)
    log_cdf = log_g_cdf.copy()
    upper = log_g_cdf >= math.log(0.5)  # there log(1 - S) keeps the relative precision
    log_s = special.logsumexp(special.log_ndtr(-u[upper]), axis=1) - math.log(n)
    log_cdf[upper] = np.log1p(-np.exp(log_s))
    a = -0.5 * u * u
    log_pdf = special.logsumexp(a, axis=1) - 0.5 * math.log(2 * math.pi) - math.log(n * h)
    w = np.exp(a - a.max(axis=1, keepdims=True))
    dlog_pdf = -np.sum(w * u, axis=1) / np.sum(w, axis=1) / h
    wc = np.exp(log_phi_cdf - log_phi_cdf.max(axis=1, keepdims=True))
    with np.errstate(over="ignore"):
        term_hazard = math.sqrt(2 / math.pi) / special.erfcx(-u / math.sqrt(2))
    hazard = np.sum(wc * term_hazard, axis=1) / np.sum(wc, axis=1) / h
    return log_cdf, log_pdf, dlog_pdf, hazard


def assert_within(got, want, tol, what=""):
    """|got - want| <= tol elementwise (tol an array); report the worst offender."""
    got, want = np.broadcast_arrays(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64))
    err = np.abs(got - want)
    bad = ~(err <= tol)
    if bad.any():
        ratio = np.where(bad, err / np.broadcast_to(tol, err.shape), 0)
        i = np.unravel_index(np.nanargmax(ratio), err.shape)
        limit = np.broadcast_to(tol, err.shape)[i]
        raise AssertionError(f"{what}: {bad.sum()} of {bad.size} off; worst at {i}: got {got[i]!r}, "
                             f"want {want[i]!r}, error {err[i]:.3g} > tolerance {limit:.3g}")


def sample_sets(rng):
    """Log-density-like sample sets: light and heavy tails, several modes, ties, small n."""
    return {
        "normal": rng.standard_normal(3000),
        "heavy-tailed": rng.standard_cauchy(3000),
        "bimodal": np.concatenate([rng.standard_normal(1200), 25.0 + 0.5 * rng.standard_normal(800)]),
        "lower-tail": -rng.lognormal(0.0, 1.5, 2000),   # like log f: long lower tail, dense top
        "ties": np.round(rng.standard_normal(2000), 1),
        "n=50": rng.standard_normal(50) * 3.0 - 40.0,
        "shifted": 1e4 + 1e-3 * rng.standard_normal(1000),
    }


def queries(rng, l, h, m=1000):
    lo, hi = l.min(), l.max()
    return np.concatenate([
        rng.uniform(lo - 45 * h, hi + 25 * h, m),                 # the table, both margins
        rng.choice(l, m // 3) + rng.normal(0.0, 0.3 * h, m // 3),  # near samples
        lo - h * np.array([9.0, 39.9, 40.0, 40.1, 41.0, 60.0, 100.0, 1e3, 1e6]),
        hi + h * np.array([8.0, 19.9, 20.0, 20.1, 21.0, 30.0]),
    ])


# -- accuracy of every quantity -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["normal", "heavy-tailed", "bimodal", "lower-tail", "ties", "n=50",
                                  "shifted"])
def test_quantities_match_naive_sums(rng, name):
    l = sample_sets(rng)[name]
    kde = KDE(l)
    h = kde.bandwidth
    x = queries(rng, l, h)
    log_cdf, log_pdf, dlog_pdf, hazard = accurate(l, h, x)
    ref = fastgeo.backends.get("reference")

    cdf, dcdf = kde._evaluate(x, "cdf", "cpu", need_grad=True)
    cdf_ref, _ = ref.kde(x, kde, "cdf", False)
    np.testing.assert_allclose(cdf, cdf_ref, rtol=0, atol=1e-12)           # the naive sum
    # and relatively: the G cells (G >= 0.05) pass their check at 1e-13 absolute
    # (below float64's smallest normal a result has absolute, not relative, precision: a few of
    # its 5e-324 steps; seed 6075250620572088367 met one step at G = 4.4e-313)
    np.testing.assert_allclose(cdf, np.exp(log_cdf), rtol=3e-12, atol=4 * np.finfo(np.float64).smallest_subnormal)
    np.testing.assert_allclose(dcdf, np.exp(log_pdf), rtol=1e-10, atol=1e-300)  # (subnormals)

    got, dgot = kde._evaluate(x, "log_cdf", "cpu", need_grad=True)
    np.testing.assert_allclose(got, log_cdf, rtol=1e-11, atol=0)
    far_above = x > l.max() + 30 * h  # phi/Phi underflows in the reference there
    np.testing.assert_allclose(dgot[~far_above], hazard[~far_above], rtol=1e-10, atol=1e-300)
    lcdf_ref, _ = ref.kde(x, kde, "log_cdf", False)
    below = log_cdf < -1.0  # where the plain reference keeps its relative precision
    np.testing.assert_allclose(got[below], lcdf_ref[below], rtol=1e-9, atol=0)

    got, dgot = kde._evaluate(x, "log_pdf", "cpu", need_grad=True)
    np.testing.assert_allclose(got, log_pdf, rtol=1e-11, atol=1e-10)
    assert_within(dgot, dlog_pdf, 1e-10 * (np.abs(dlog_pdf) + 1.0 / h), "(log pdf)'")
    got, dgot = kde._evaluate(x, "pdf", "cpu", need_grad=True)
    np.testing.assert_allclose(got, np.exp(log_pdf), rtol=1e-10, atol=1e-300)
    assert_within(dgot, np.exp(log_pdf) * dlog_pdf,
                  1e-10 * np.exp(log_pdf) * (np.abs(dlog_pdf) + 1.0 / h) + 1e-300, "pdf'")


@pytest.mark.slow
@pytest.mark.parametrize("n", [50, 5000, 20000])
def test_default_sizes_against_reference_backend(rng, n):
    l = rng.standard_t(4, size=n) - 0.3 * rng.exponential(size=n) ** 2  # skewed, heavy lower tail
    kde = KDE(l)
    x = queries(rng, l, kde.bandwidth, m=400 if n > 10000 else 1000)
    for what in WHATS:
        got, dgot = kde._evaluate(x, what, "cpu", need_grad=True)
        want, dwant = kde._evaluate(x, what, "reference", need_grad=True)
        if what == "cdf":
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        else:
            # near G = 1 the plain reference has only absolute precision (see test above)
            ok = np.abs(want) > 1e-4 if what == "log_cdf" else np.ones_like(want, dtype=bool)
            np.testing.assert_allclose(got[ok], want[ok], rtol=1e-9, atol=0)
        finite = np.isfinite(dwant) & (np.abs(dwant) > 1e-200)
        if what == "log_cdf":  # relative, up to the reference's own cancellation in exp(log g - log G)
            tol = (1e-9 + 1e-15 * np.abs(want)) * np.abs(dwant)
        elif what == "cdf":
            tol = 1e-9 * np.abs(dwant)
        else:  # (log g)' and g' cross zero: relative to their scale (|(log g)'| + 1/h) (times g)
            pdf = kde.pdf(x, backend="reference")
            scale = np.abs(dwant) + (pdf if what == "pdf" else 1.0) / kde.bandwidth
            tol = 1e-9 * scale
        assert_within(dgot[finite], dwant[finite], tol[finite], what)


def test_far_below_every_sample_log_cdf_is_finite_and_exact(rng):
    l = rng.standard_normal(3000) * 2.0 - 10.0
    kde = KDE(l)
    h = kde.bandwidth
    x = l.min() - h * np.array([40.0, 1e3, 1e6, 1e9])
    got, hazard = kde._evaluate(x, "log_cdf", "cpu", need_grad=True)
    assert np.all(np.isfinite(got)) and np.all(got < -700.0)  # G itself underflows
    want, _ = kde._evaluate(x, "log_cdf", "reference")
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # mpmath at 50 digits: the lowest few samples carry all of it
    low = np.sort(l)[:20]
    with mpmath.workdps(50):
        for xi, gi, di in zip(x, got, hazard):
            terms = [mpmath.ncdf((mpmath.mpf(xi) - li) / h) for li in low]
            dens = [mpmath.npdf((mpmath.mpf(xi) - li) / h) for li in low]
            log_g = mpmath.log(mpmath.fsum(terms) / len(l))
            assert abs(gi - float(log_g)) <= 1e-14 * abs(float(log_g))
            haz = mpmath.fsum(dens) / mpmath.fsum(terms) / h
            assert abs(di - float(haz)) <= 1e-12 * float(haz)


def test_far_above_every_sample_keeps_one_minus_cdf(rng):
    l = rng.standard_normal(500)
    kde = KDE(l)
    h = kde.bandwidth
    x = l.max() + h * np.array([10.0, 25.0, 35.0])
    got = kde.log_cdf(x, backend="cpu")
    top = np.sort(l)[-50:]
    with mpmath.workdps(50):
        for xi, gi in zip(x, got):
            s = mpmath.fsum(mpmath.ncdf(-(mpmath.mpf(xi) - li) / h) for li in top) / len(l)
            want = float(mpmath.log1p(-s))
            assert want < 0 and abs(gi - want) <= 1e-12 * abs(want)
    np.testing.assert_array_equal(kde.cdf(x, backend="cpu"), 1.0)


# -- scipy's gaussian_kde -----------------------------------------------------------------------

def test_agrees_with_scipy_gaussian_kde(rng):
    l = np.concatenate([rng.normal(-5.0, 1.0, 700), rng.gamma(2.0, 1.0, 300)])
    kde = KDE(l)
    ref = stats.gaussian_kde(l, bw_method="silverman")
    assert kde.bandwidth == pytest.approx(math.sqrt(ref.covariance[0, 0]), rel=1e-13)
    x = np.concatenate([rng.uniform(l.min() - 3, l.max() + 3, 40), [l.min() - 10 * kde.bandwidth]])
    want_cdf = np.array([ref.integrate_box_1d(-np.inf, xi) for xi in x])
    np.testing.assert_allclose(kde.cdf(x, backend="cpu"), want_cdf, rtol=0, atol=1e-12)
    np.testing.assert_allclose(kde.pdf(x, backend="cpu"), ref.evaluate(x), rtol=1e-10, atol=1e-300)


# -- inputs: dtypes, shapes, layouts, infinities, NaN --------------------------------------------

@pytest.mark.parametrize("what", WHATS)
def test_float32_shapes_and_strides(rng, what):
    l = rng.standard_normal(700)
    kde = KDE(l)
    x64 = rng.uniform(l.min() - 5, l.max() + 5, size=(6, 37))
    x32 = x64.astype(np.float32)
    # float32 computes in float64 (checked against the references above) and rounds once
    want, dwant = kde._evaluate(x32.astype(np.float64), what, "cpu", need_grad=True)
    got, dgot = kde._evaluate(x32, what, "cpu", need_grad=True)
    assert got.dtype == np.float32 and dgot.dtype == np.float32 and got.shape == x32.shape
    np.testing.assert_array_equal(got, want.astype(np.float32))
    np.testing.assert_array_equal(dgot, dwant.astype(np.float32))
    strided = x64[:, ::3]  # not contiguous
    got = kde._evaluate(strided, what, "cpu")[0]
    np.testing.assert_allclose(got, kde._evaluate(np.ascontiguousarray(strided), what, "reference")[0],
                               rtol=1e-10, atol=1e-14)
    one_d = x64[0, ::2]  # a strided 1-D view goes to the kernel as it is
    np.testing.assert_allclose(kde._evaluate(one_d, what, "cpu")[0],
                               kde._evaluate(one_d.copy(), what, "reference")[0], rtol=1e-10, atol=1e-14)
    assert kde._evaluate(np.empty((0, 3)), what, "cpu")[0].shape == (0, 3)


def test_torch_input_comes_back_as_torch(rng):
    torch = pytest.importorskip("torch")
    kde = KDE(rng.standard_normal(300))
    x = torch.linspace(-3, 3, 11, dtype=torch.float64)
    got = kde.log_cdf(x, backend="cpu")
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    # near G = 1 (x = 3) the plain reference's log G has only absolute precision, a few ulps of 1
    want = kde.log_cdf(x.numpy(), backend="reference")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-11, atol=1e-15)


def test_infinities(rng):
    kde = KDE(rng.standard_normal(100))
    x = np.array([-np.inf, np.inf])
    for backend in ("cpu", "reference"):
        cdf, dcdf = kde._evaluate(x, "cdf", backend, need_grad=True)
        np.testing.assert_array_equal(cdf, [0.0, 1.0])
        log_cdf, dlog = kde._evaluate(x, "log_cdf", backend, need_grad=True)
        np.testing.assert_array_equal(log_cdf, [-np.inf, 0.0])
        pdf, dpdf = kde._evaluate(x, "pdf", backend, need_grad=True)
        np.testing.assert_array_equal(pdf, [0.0, 0.0])
        np.testing.assert_array_equal(kde.log_pdf(x, backend=backend), [-np.inf, -np.inf])
        for d in (dcdf, dlog, dpdf):
            np.testing.assert_array_equal(d, [0.0, 0.0])


def test_extreme_finite_queries(rng):
    kde = KDE(rng.standard_normal(100))
    x = np.array([-1e300, -1e150, 1e150, 1e300])
    with np.errstate(all="raise"):
        log_cdf, hazard = kde._evaluate(x, "log_cdf", "cpu", need_grad=True)
        cdf = kde.cdf(x, backend="cpu")
        log_pdf, slope = kde._evaluate(x, "log_pdf", "cpu", need_grad=True)
    # log G far below -1e308 rounds to -inf; nothing is NaN, and the hazard grows like |x|/h^2
    assert log_cdf[0] == -np.inf and log_cdf[1] < -1e299 and log_cdf[2] == log_cdf[3] == 0.0
    np.testing.assert_array_equal(cdf, [0.0, 0.0, 1.0, 1.0])
    assert hazard[0] > 1e299 and hazard[1] > 1e149 and np.all(hazard[2:] == 0.0)
    assert log_pdf[0] == log_pdf[3] == -np.inf and slope[1] > 0 > slope[2]


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_nan_query_is_an_error(backend):
    kde = KDE(np.linspace(0.0, 1.0, 50))
    with pytest.raises(ValueError, match=r"x contains NaN \(first at index \(3,\)\)"):
        kde.log_cdf(np.array([0.1, -np.inf, 0.3, np.nan, 0.5]), backend=backend)


@pytest.mark.parametrize("samples, bandwidth, error, match", [
    (np.zeros((3, 2)), "silverman", ValueError, "1-D"),
    ([1.0], "silverman", ValueError, "at least 2"),
    ([0.0, np.nan, 1.0], "silverman", ValueError, "NaN or inf"),
    ([0.0, np.inf, 1.0], "silverman", ValueError, "NaN or inf"),
    ([2.0, 2.0, 2.0], "silverman", ValueError, "all 3 samples are equal"),
    ([0.0, 1.0], 0.0, ValueError, "bandwidth must be finite and > 0"),
    ([0.0, 1.0], -0.1, ValueError, "bandwidth must be finite and > 0"),
    ([0.0, 1.0], np.inf, ValueError, "bandwidth must be finite and > 0"),
    ([0.0, 1.0], "scott", ValueError, "silverman"),
    ([0.0, 1.0], None, TypeError, "bandwidth"),
])
def test_bad_kde_parameters(samples, bandwidth, error, match):
    with pytest.raises(error, match=match):
        KDE(samples, bandwidth=bandwidth)


def test_all_equal_samples_with_explicit_bandwidth(rng):
    kde = KDE([2.0, 2.0, 2.0], bandwidth=0.5)
    x = rng.uniform(-3, 7, 50)
    np.testing.assert_allclose(kde.cdf(x, backend="cpu"), stats.norm.cdf((x - 2.0) / 0.5), rtol=3e-12,
                               atol=1e-300)


# -- the table ----------------------------------------------------------------------------------

def test_table_layout_is_documented_and_cached(rng):
    l = rng.standard_normal(1000)
    kde = KDE(l)
    table = kde.table
    assert kde.table is table  # built once
    h = kde.bandwidth
    assert h / (2 * NODES_PER_BANDWIDTH) < table.dx <= h / NODES_PER_BANDWIDTH
    assert math.log2(table.dx) == int(math.log2(table.dx))  # exact nodes
    assert table.x0 <= l.min() - LOWER_MARGIN * h < table.x0 + table.dx
    assert table.x_end >= l.max() + UPPER_MARGIN * h > table.x_end - table.dx
    assert table.coef.shape == (table.ncell, 24) and not table.coef.flags.writeable
    s = table.summary()
    assert s["cells"] == table.ncell and s["unique_samples"] == 1000
    assert s["exact_cdf_cells"] == 0  # smooth data: every cell passes its check
    # G itself is tabulated between its 5% and 95% points, logs outside
    nodes = table.x0 + table.dx * np.arange(table.ncell + 1)
    cdf = kde.cdf(nodes, backend="reference")
    assert cdf[table.j_middle - 1] < MIDDLE <= cdf[table.j_middle]
    assert cdf[table.j_upper - 1] <= 1 - MIDDLE < cdf[table.j_upper]


def test_pickles_with_its_table(rng):
    import pickle

    kde = KDE(rng.standard_normal(200))
    x = rng.uniform(-4, 4, 20)
    want = kde.log_cdf(x, backend="cpu")  # builds the table
    copy = pickle.loads(pickle.dumps(kde))
    assert copy.table.ncell == kde.table.ncell
    np.testing.assert_array_equal(copy.log_cdf(x, backend="cpu"), want)
    fresh = pickle.loads(pickle.dumps(KDE(kde.samples)))  # table not built yet: built on use
    np.testing.assert_array_equal(fresh.log_cdf(x, backend="cpu"), want)


def test_ties_are_merged(rng):
    l = np.repeat(rng.standard_normal(30), rng.integers(1, 40, 30))
    kde = KDE(l)
    assert kde.table.values.shape == (30,) and kde.table.counts.sum() == l.shape[0]
    x = queries(rng, l, kde.bandwidth, m=300)
    np.testing.assert_allclose(kde.cdf(x, backend="cpu"), kde.cdf(x, backend="reference"), rtol=0,
                               atol=1e-12)


def test_tiny_bandwidth_falls_back_to_exact_sums(rng):
    # range / h far beyond the table's cell budget: a coarser table, checked cell by cell
    l = rng.uniform(0.0, 1.0, 400)
    kde = KDE(l, bandwidth=1e-6)
    assert kde.table.ncell <= 2 ** 17
    x = np.concatenate([rng.choice(l, 200) + rng.normal(0, 2e-6, 200), rng.uniform(-1e-4, 1.0001, 200)])
    for what in WHATS:
        got = kde._evaluate(x, what, "cpu")[0]
        want = kde._evaluate(x, what, "reference")[0]
        if what == "cdf":
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300)


# -- the realism index built on it --------------------------------------------------------------

def _far_points(rng, n, dim, radius):
    z = rng.standard_normal((n, dim))
    return z * (radius / np.linalg.norm(z, axis=1, keepdims=True))


@pytest.mark.parametrize("prior", [semicircle(20), GaussianMixture(
    [0.5, 0.3, 0.2], [[0, 0, 0], [3, 1, 0], [-2, 2, 1]],
    [np.eye(3), np.diag([0.5, 2.0, 1.0]), [[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.7]]])],
    ids=["semicircle20", "mixture3d"])
def test_realism_index_cpu_matches_reference(rng, prior):
    d = prior.dim
    z = np.concatenate([prior.sample(300, seed=rng), 3.0 * rng.standard_normal((100, d)),
                        _far_points(rng, 20, d, 10 * math.sqrt(d))])
    got, grad = fastgeo.log_ri_and_grad(z, prior, backend="cpu")
    want, grad_ref = fastgeo.log_ri_and_grad(z, prior, backend="reference")
    far = slice(400, None)
    assert np.all(np.isfinite(got)) and np.all(np.exp(want[far]) == 0.0)  # ri underflows there
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # the reference's hazard exp(log g - log G) cancels: relative error about eps |log G|
    rtol = (1e-9 + 4e-16 * np.abs(want))[:, None]
    assert_within(grad, grad_ref, rtol * np.linalg.norm(grad_ref, axis=1, keepdims=True), "grad log ri")
    # and central finite differences of log ri itself
    pts = z[rng.choice(400, 8, replace=False)]
    step = 1e-5
    for j in range(d):
        e = np.zeros(d)
        e[j] = step
        up = fastgeo.log_ri(pts + e, prior, backend="cpu")
        down = fastgeo.log_ri(pts - e, prior, backend="cpu")
        fd = (up - down) / (2 * step)
        g = fastgeo.grad_log_ri(pts, prior, backend="cpu")[:, j]
        assert_within(fd, g, 1e-6 * np.abs(g) + 1e-7 * np.abs(g).max(), "finite differences")


# -- the KDE against the closed form ------------------------------------------------------------

def _dkw_epsilon(n, failure=1e-6):
    """sup |F_n - F| <= eps with probability 1 - failure (Dvoretzky-Kiefer-Wolfowitz, Massart)."""
    return math.sqrt(math.log(2.0 / failure) / (2.0 * n))


@pytest.mark.parametrize("make", [lambda s: StandardNormal(4, kde_samples=20000, kde_seed=s),
                                  lambda s: StandardNormal(12, kde_samples=20000, kde_seed=s),
                                  lambda s: StudentT(5, 3.0, kde_samples=20000, kde_seed=s)],
                         ids=["normal4", "normal12", "student5"])
def test_kde_estimator_agrees_with_closed_form(seed, make):
    """|G_W - F| <= sup|F_n - F| + (h^2/2) sup|F''| for F the cdf of L = log f(X), F_n the
    empirical cdf of the n samples and G_W = F_n * N(0, h^2) (the smoothing bias is second
    order because the kernel is symmetric; convolving with it does not increase sup|F_n - F|)."""
    prior = make(seed % 2**32)
    rng = np.random.default_rng(seed)
    z = np.concatenate([prior.sample(2000, seed=rng), 0.5 * prior.sample(200, seed=rng),
                        2.0 * prior.sample(200, seed=rng)])
    ri_kde = fastgeo.ri(z, prior, method="kde", backend="cpu")
    ri_exact = fastgeo.ri(z, prior, method="exact", backend="cpu")
    # F(l) is the exact ri of a point of log-density l: walk out along the first axis
    radius = np.linspace(0.0, 1.5 * np.sqrt(np.max(np.sum(z * z, axis=1))), 20001)
    pts = np.zeros((radius.shape[0], prior.dim))
    pts[:, 0] = radius
    log_f = prior.log_prob(pts)
    cdf = fastgeo.ri(pts, prior, method="exact", backend="reference")
    curvature = np.abs(np.gradient(np.gradient(cdf, log_f), log_f))  # |F''(l)| = |f_L'(l)|
    h = prior.kde.bandwidth
    tol = _dkw_epsilon(prior.kde.n) + 0.5 * h * h * 1.1 * curvature[1:-1].max()
    assert tol < 0.05  # the bound says something
    assert np.max(np.abs(ri_kde - ri_exact)) <= tol
