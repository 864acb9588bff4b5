"""The point realism index (MATH.md 1) against scipy, mpmath and its defining properties."""
import math

import mpmath
import numpy as np
import pytest
import scipy.linalg
from scipy import special, stats

import fastgeo
from fastgeo.priors import (
    Cauchy, Custom, GammaNorm, Gaussian, GaussianMixture, StandardNormal, StudentT, UniformBall, UniformBox,
    semicircle,
)

BACKENDS = ["cpu", "reference"]
DTYPES = [np.float32, np.float64]
# float32 results are float64 results rounded once
RTOL = {np.float32: 2e-7, np.float64: 1e-12}
# below the smallest normal number a float32 keeps fewer significant digits
ATOL = {np.float32: float(np.finfo(np.float32).tiny), np.float64: 1e-300}


def radial_points(rng, m, dim, scale_lo=0.3, scale_hi=2.0, dtype=np.float64):
    """Gaussian directions with radii spread from well inside to well outside the bulk."""
    z = rng.standard_normal((m, dim)) * rng.uniform(scale_lo, scale_hi, size=(m, 1))
    return z.astype(dtype)


def sq_norms(z):
    return np.sum(np.asarray(z, dtype=np.float64) ** 2, axis=-1)


def scipy_log_rtol(expected, rtol):
    """Per-element tolerance against scipy's log-survival functions.

    Where ri is close to 1 (|log ri| < 1e-3) scipy forms log1p(-cdf) with a prefactor
    a log x - x - lgamma(a) that cancels, so its own error grows to a few 1e-12
    (tests/test_special.py holds our values to mpmath at 1e-13 there).
    """
    return np.where(np.abs(expected) < 1e-3, np.maximum(rtol, 2e-11), rtol)


def assert_sf_close(actual, expected_log, dtype):
    """ri = exp(log ri): a relative error e of log ri is |log ri| e in ri."""
    expected = np.exp(expected_log)
    tol = RTOL[dtype] * np.maximum(1.0, np.abs(expected_log))
    err = np.abs(np.asarray(actual, np.float64) - expected.astype(dtype))
    bad = err > tol * np.abs(expected) + ATOL[dtype]
    assert not bad.any(), (actual[bad][:5], expected[bad][:5])


def assert_log_close(actual, expected, rtol):
    """Relative agreement of log values where the reference is finite; -inf where it is."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(actual[~finite], expected[~finite])
    rtol = scipy_log_rtol(expected[finite], rtol)
    err = np.abs(actual[finite] - expected[finite])
    bad = err > rtol * np.abs(expected[finite]) + 1e-300
    assert not bad.any(), (actual[finite][bad][:5], expected[finite][bad][:5])


# -- closed forms against scipy ------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [1, 2, 3, 7, 64, 512, 2049, 16384])
def test_standard_normal_is_chi2_survival(rng, backend, dtype, dim):
    m = 40 if dim > 4000 else 300
    z = radial_points(rng, m, dim, dtype=dtype)
    # two thirds within 8 standard deviations of the chi2 bulk, where the radius concentrates
    bulk = 2 * m // 3
    e = rng.standard_normal((bulk, dim))
    e *= (math.sqrt(dim) + rng.uniform(-8, 8, size=(bulk, 1)) / math.sqrt(2)) / np.linalg.norm(e, axis=1, keepdims=True)
    z[:bulk] = e.astype(dtype)
    s = sq_norms(z)
    expected = stats.chi2.logsf(s, dim)
    ok = np.isfinite(expected)  # scipy's logsf underflows to -inf in the far tail
    assert ok.mean() > 0.5
    out = fastgeo.log_ri(z, StandardNormal(dim), backend=backend)
    assert out.dtype == dtype and out.shape == (m,)
    err = np.abs(out[ok] - expected[ok].astype(dtype))
    bad = err > scipy_log_rtol(expected[ok], RTOL[dtype]) * np.abs(expected[ok]) + ATOL[dtype]
    assert not bad.any(), (out[ok][bad][:5], expected[ok][bad][:5])
    ri = fastgeo.ri(z, StandardNormal(dim), backend=backend)
    assert_sf_close(ri[ok], expected[ok], dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape, scale", [(0.5, 1.0), (0.5, 3.0), (2.0, 0.5), (7.5, 2.0)])
def test_gamma_norm_is_gamma_survival_of_radius(rng, backend, shape, scale):
    dim = 16
    prior = GammaNorm(dim, shape=shape, scale=scale)
    z = prior.sample(300, seed=rng) * rng.uniform(0.2, 4.0, size=(300, 1))
    expected = stats.gamma.logsf(np.sqrt(sq_norms(z)), shape, scale=scale)
    assert_log_close(fastgeo.log_ri(z, prior, backend=backend), expected, 1e-11)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dim, df", [(1, 1.0), (3, 2.5), (20, 1.0), (20, 7.0), (300, 4.0)])
def test_student_t_and_cauchy_are_f_survival(rng, backend, dim, df):
    prior = Cauchy(dim) if df == 1.0 and dim == 20 else StudentT(dim, df)
    z = radial_points(rng, 300, dim, 0.1, 5.0)
    expected = stats.f.logsf(sq_norms(z) / dim, dim, df)
    assert_log_close(fastgeo.log_ri(z, prior, backend=backend), expected, 1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cov_kind", ["matrix", "diagonal", "scalar"])
def test_gaussian_uses_mahalanobis_radius(rng, backend, cov_kind):
    dim = 9
    mean = rng.normal(size=dim)
    if cov_kind == "matrix":
        a = rng.normal(size=(dim, dim))
        cov = a @ a.T + 0.5 * np.eye(dim)
    elif cov_kind == "diagonal":
        cov = rng.uniform(0.2, 3.0, size=dim)
    else:
        cov = float(rng.uniform(0.2, 3.0))
    prior = Gaussian(mean, cov)
    z = mean + radial_points(rng, 200, dim, 0.2, 3.0)
    full = cov if cov_kind == "matrix" else np.diag(np.broadcast_to(cov, (dim,)))
    chol = np.linalg.cholesky(full)
    y = scipy.linalg.solve_triangular(chol, (z - mean).T, lower=True).T
    expected = stats.chi2.logsf(sq_norms(y), dim)
    assert_log_close(fastgeo.log_ri(z, prior, backend=backend), expected, 1e-11)
    np.testing.assert_allclose(prior.log_prob(z, backend=backend),
                               stats.multivariate_normal(mean, full).logpdf(z), rtol=1e-10)


def test_erf_approximation_is_the_papers_eq1_and_never_the_default(rng):
    dim = 512
    prior = StandardNormal(dim)
    z = radial_points(rng, 500, dim, 0.9, 1.1)
    r = np.sqrt(sq_norms(z))
    erf_form = 0.5 + 0.5 * special.erf(np.sqrt(dim - 0.5) - r)
    np.testing.assert_allclose(fastgeo.ri(z, prior, method="erf"), erf_form, rtol=1e-12, atol=1e-15)
    exact = fastgeo.ri(z, prior)
    np.testing.assert_array_equal(exact, fastgeo.ri(z, prior, method="exact"))
    gap = np.max(np.abs(fastgeo.ri(z, prior, method="erf") - exact))
    assert 5e-4 < gap < 5e-3  # MATH.md: off by about 2e-3 at D = 512


# -- uniform priors: indicators ----------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_uniform_priors_give_the_indicator(rng, backend):
    dim = 5
    low, high = -rng.uniform(0.5, 2, dim), rng.uniform(0.5, 2, dim)
    box = UniformBox(low, high)
    # a quarter wider than the box on every side: about a third of the points fall inside
    # (uniform on [-2.5, 2.5]^5 left a small box empty on most seeds)
    z = rng.uniform(1.25 * low, 1.25 * high, size=(400, dim))
    inside = np.all((z >= low) & (z <= high), axis=1)
    assert 0 < inside.sum() < 400
    np.testing.assert_array_equal(fastgeo.ri(z, box, backend=backend), inside.astype(float))
    np.testing.assert_array_equal(fastgeo.log_ri(z, box, alpha=0.5, backend=backend),
                                  np.where(inside, math.log(0.5), -np.inf))
    np.testing.assert_array_equal(fastgeo.grad_log_ri(z, box, backend=backend), 0.0)
    ball = UniformBall(dim, radius=2.0)
    inside = sq_norms(z) <= 4.0
    np.testing.assert_array_equal(fastgeo.ri(z, ball, backend=backend), inside.astype(float))
    # the boundary belongs to the support
    on_edge = np.array([[2.0, 0, 0, 0, 0]])
    assert fastgeo.ri(on_edge, ball, backend=backend)[0] == 1.0


# -- far from the prior's mass -----------------------------------------------------------------

def _mp_log_chi2_sf(s, dim):
    with mpmath.workdps(40):
        return float(mpmath.log(mpmath.gammainc(mpmath.mpf(dim) / 2, mpmath.mpf(s) / 2, mpmath.inf,
                                                regularized=True)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dim", [2, 20, 512, 16384])
def test_log_ri_is_finite_where_ri_underflows(rng, backend, dim):
    z = rng.standard_normal((3, dim))
    z *= 10 * math.sqrt(dim) / np.linalg.norm(z, axis=1, keepdims=True)  # |z| = 10 sqrt(D)
    out = fastgeo.log_ri(z, StandardNormal(dim), backend=backend)
    assert np.all(np.isfinite(out))
    expected = [_mp_log_chi2_sf(s, dim) for s in sq_norms(z)]
    np.testing.assert_allclose(out, expected, rtol=1e-9)
    if dim >= 20:
        assert np.all(fastgeo.ri(z, StandardNormal(dim), backend=backend) == 0.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_heavy_tailed_priors_stay_finite_far_out(rng, backend):
    dim = 30
    z = rng.standard_normal((4, dim))
    z *= 1e6 / np.linalg.norm(z, axis=1, keepdims=True)
    for prior in (Cauchy(dim), StudentT(dim, 3.0), GammaNorm(dim, 0.5, 1.0)):
        out = fastgeo.log_ri(z, prior, backend=backend)
        assert np.all(np.isfinite(out)) and np.all(out < -10), prior


# -- properties -----------------------------------------------------------------------------------

ALL_PRIORS = [
    lambda d: StandardNormal(d),
    lambda d: Gaussian(np.linspace(-1, 1, d), np.linspace(0.5, 2, d)),
    lambda d: GammaNorm(d, 0.5, 2.0),
    lambda d: StudentT(d, 4.0),
    lambda d: Cauchy(d),
    lambda d: semicircle(d, kde_samples=2000),
    lambda d: GaussianMixture([0.3, 0.7], np.stack([np.zeros(d), np.full(d, 2.0)]),
                              np.stack([np.eye(d), 0.5 * np.eye(d)]), kde_samples=2000),
]


@pytest.mark.parametrize("make_prior", ALL_PRIORS)
def test_ri_is_in_unit_interval_and_ordered_like_the_density(rng, make_prior):
    prior = make_prior(6)
    z = prior.sample(300, seed=rng) * rng.uniform(0.3, 3.0, size=(300, 1))
    r = fastgeo.ri(z, prior)
    assert np.all((r >= 0) & (r <= 1))
    order = np.argsort(prior.log_prob(z), kind="stable")
    lr = fastgeo.log_ri(z, prior)[order]
    assert np.all(np.diff(lr) >= -1e-12 * np.abs(lr[1:]))


@pytest.mark.parametrize("make_prior", ALL_PRIORS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_matches_finite_differences(rng, make_prior, backend):
    dim = 5
    prior = make_prior(dim)
    z = prior.sample(6, seed=rng) * rng.uniform(0.5, 2.0, size=(6, 1))
    g = fastgeo.grad_log_ri(z, prior, backend=backend)
    # steps relative to |z|: Kilcher's prior has a cusp at 0, sampled points can sit near it
    h = 1e-6 * np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-3)
    fd = np.empty_like(z)
    for j in range(dim):
        e = np.zeros((1, dim))
        e[0, j] = 1.0
        fd[:, j] = (fastgeo.log_ri(z + h * e, prior, backend=backend)
                    - fastgeo.log_ri(z - h * e, prior, backend=backend)) / (2 * h[:, 0])
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7 * (1 + np.abs(fd).max()))


@pytest.mark.parametrize("make_prior", ALL_PRIORS)
def test_backends_agree(rng, make_prior):
    prior = make_prior(8)
    z = prior.sample(64, seed=rng) * rng.uniform(0.3, 3.0, size=(64, 1))
    for fn in (fastgeo.log_ri, fastgeo.grad_log_ri):
        np.testing.assert_allclose(fn(z, prior, backend="cpu"), fn(z, prior, backend="reference"),
                                   rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(prior.log_prob(z, backend="cpu"), prior.log_prob(z, backend="reference"),
                               rtol=1e-12)


def test_alpha_scales_the_index(rng):
    prior = StandardNormal(10)
    z = radial_points(rng, 50, 10)
    base = fastgeo.log_ri(z, prior)
    for alpha in (1.0, 0.5, 1e-3):
        np.testing.assert_allclose(fastgeo.log_ri(z, prior, alpha=alpha), base + math.log(alpha), rtol=1e-14)
        np.testing.assert_allclose(fastgeo.ri(z, prior, alpha=alpha), alpha * np.exp(base), rtol=1e-13)
    np.testing.assert_array_equal(fastgeo.grad_log_ri(z, prior, alpha=0.3), fastgeo.grad_log_ri(z, prior))


# -- shapes, dtypes, layouts, array types --------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_shapes_of_any_rank(rng, backend):
    prior = StudentT(4, 3.0)
    z = rng.normal(size=(2, 3, 5, 4))
    out = fastgeo.log_ri(z, prior, backend=backend)
    assert out.shape == (2, 3, 5)
    np.testing.assert_array_equal(out.reshape(-1), fastgeo.log_ri(z.reshape(-1, 4), prior, backend=backend))
    assert fastgeo.grad_log_ri(z, prior, backend=backend).shape == z.shape
    single = fastgeo.log_ri(z[0, 0, 0], prior, backend=backend)
    assert np.ndim(single) == 0 and single == out[0, 0, 0]
    assert fastgeo.log_ri(np.empty((0, 4)), prior, backend=backend).shape == (0,)
    assert fastgeo.ri(np.empty((3, 0, 4), np.float32), prior, backend=backend).shape == (3, 0)
    assert fastgeo.grad_log_ri(np.empty((0, 4)), prior, backend=backend).shape == (0, 4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs(rng, backend, dtype):
    dim = 33
    base = radial_points(rng, 120, 2 * dim, dtype=dtype)
    views = {
        "strided columns": base[:, ::2],
        "strided rows": base[::3, :dim],
        "fortran": np.asfortranarray(base[:, :dim]),
        "transposed": base[:, :dim].copy().T.copy().T,  # C after round trip; checks no state leaks
        "read-only": np.broadcast_to(base[0, :dim], (5, dim)),
    }
    prior = StandardNormal(dim)
    for name, v in views.items():
        expected = stats.chi2.logsf(sq_norms(v), dim)
        out = fastgeo.log_ri(v, prior, backend=backend)
        np.testing.assert_allclose(out, expected, rtol=RTOL[dtype], err_msg=name)
        g = fastgeo.grad_log_ri(v, prior, backend=backend)
        np.testing.assert_allclose(g, fastgeo.grad_log_ri(np.ascontiguousarray(v), prior, backend=backend),
                                   rtol=1e-6 if dtype == np.float32 else 1e-11, err_msg=name)


def test_torch_in_torch_out_and_differentiable(rng):
    torch = pytest.importorskip("torch")
    prior = StandardNormal(6)
    z64 = radial_points(rng, 20, 6)
    for dtype in (torch.float32, torch.float64):
        zt = torch.tensor(z64, dtype=dtype)
        out = fastgeo.log_ri(zt, prior)
        assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.device == zt.device
        np.testing.assert_allclose(out.numpy(), fastgeo.log_ri(z64.astype(zt.numpy().dtype), prior))
    zt = torch.tensor(z64, requires_grad=True)
    r = fastgeo.ri(zt, prior, alpha=0.7)
    r.sum().backward()
    expected = 0.7 * np.exp(fastgeo.log_ri(z64, prior))[:, None] * fastgeo.grad_log_ri(z64, prior)
    np.testing.assert_allclose(zt.grad.numpy(), expected, rtol=1e-12)
    assert torch.autograd.gradcheck(lambda t: fastgeo.log_ri(t, prior), (torch.tensor(z64[:4], requires_grad=True),))
    # the KDE path and uniform priors are differentiable too
    mix = semicircle(2, kde_samples=1000)
    zm = torch.tensor(mix.sample(5, seed=rng), requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fastgeo.log_ri(t, mix), (zm,), atol=1e-6)
    # log_prob follows the same rules
    lp = prior.log_prob(zt)
    lp.sum().backward()


def test_torch_non_contiguous_and_batched(rng):
    torch = pytest.importorskip("torch")
    prior = Cauchy(5)
    z = torch.tensor(rng.normal(size=(4, 10, 3)), dtype=torch.float32).transpose(1, 2)[..., ::2]
    assert not z.is_contiguous() and z.shape == (4, 3, 5)
    out = fastgeo.log_ri(z, prior)
    np.testing.assert_allclose(out.numpy(), fastgeo.log_ri(z.contiguous().numpy(), prior), rtol=1e-7)


# -- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_inputs_raise_clear_errors(rng, backend):
    prior = StandardNormal(4)
    good = rng.normal(size=(3, 4))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\)"):
        fastgeo.log_ri(rng.normal(size=(3, 5)), prior, backend=backend)
    for bad_value in (np.nan, np.inf, -np.inf):
        z = good.copy()
        z[1, 2] = bad_value
        with pytest.raises(ValueError, match="NaN or inf"):
            fastgeo.log_ri(z, prior, backend=backend)
        with pytest.raises(ValueError, match="NaN or inf"):
            fastgeo.log_ri(z, UniformBox(-np.ones(4), np.ones(4)), backend=backend)
        with pytest.raises(ValueError, match="NaN or inf"):
            fastgeo.log_ri(z, semicircle(4, kde_samples=100), backend=backend)
    for dtype in (np.int64, np.int32, np.float16, np.complex128, bool):
        with pytest.raises(TypeError, match="float32 or float64"):
            fastgeo.log_ri(good.astype(dtype), prior, backend=backend)
    for alpha in (0.0, -0.5, 1.5, float("nan"), True):
        with pytest.raises(ValueError, match="alpha"):
            fastgeo.ri(good, prior, alpha=alpha, backend=backend)
    with pytest.raises(TypeError, match="prior"):
        fastgeo.ri(good, "normal", backend=backend)
    with pytest.raises(ValueError, match="erf"):
        fastgeo.ri(good, StudentT(4, 2.0), method="erf", backend=backend)
    with pytest.raises(ValueError, match="no closed-form"):
        fastgeo.ri(good, semicircle(4), method="exact", backend=backend)
    with pytest.raises(ValueError, match="method"):
        fastgeo.ri(good, prior, method="magic", backend=backend)


def test_unknown_and_unavailable_backends():
    z = np.ones((2, 3))
    with pytest.raises(ValueError, match="backend must be one of"):
        fastgeo.ri(z, StandardNormal(3), backend="tpu")
    if fastgeo.info()["backends"]["cuda"] is not None:
        with pytest.raises(fastgeo.BackendUnavailable, match="cuda"):
            fastgeo.ri(z, StandardNormal(3), backend="cuda")


def test_custom_prior_gradient_needs_a_gradient_source(rng):
    dim = 3
    mix = semicircle(dim)

    def log_prob_numpy(z):
        return mix.log_density(z)[0]

    custom = Custom(log_prob_numpy, lambda n, r: mix.sample(n, seed=r), dim, kde_samples=500)
    z = mix.sample(4, seed=rng)
    assert np.all(np.isfinite(fastgeo.log_ri(z, custom)))
    with pytest.raises(NotImplementedError, match="grad_log_prob"):
        fastgeo.grad_log_ri(z, custom)
    with_grad = Custom(log_prob_numpy, lambda n, r: mix.sample(n, seed=r), dim,
                       grad_log_prob=lambda z: mix.log_density(z, True)[1], kde_samples=500)
    g = fastgeo.grad_log_ri(z, with_grad)
    assert g.shape == z.shape and np.all(np.isfinite(g))


# -- far tails: where the squared norm overflows, and the reference's hazard -----------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_far_tails_stay_finite_where_the_answer_is(backend):
    """At |z| = 2e200 (|z|^2 overflows float64) the heavy-tailed and gamma-radius indices are
    finite, and chi2's gradient is about -z although its log ri is -inf (below -1.8e308)."""
    z = np.full((1, 4), 1e200)
    with mpmath.workdps(30):
        r = mpmath.mpf(2e200)
        want_t = float(mpmath.log(mpmath.betainc(1.5, 2, 0, 3 / (3 + r * r), regularized=True)))
    assert fastgeo.log_ri(z, StudentT(4, 3), backend=backend)[0] == pytest.approx(want_t, rel=1e-12)
    assert want_t == pytest.approx(-1381.07, abs=0.01)
    assert fastgeo.log_ri(z, GammaNorm(4), backend=backend)[0] == pytest.approx(-2e200, rel=1e-12)
    assert np.isfinite(fastgeo.log_ri(z, Cauchy(4), backend=backend)[0])
    lr, g = fastgeo.log_ri_and_grad(z, StandardNormal(4), backend=backend)
    assert lr[0] == -np.inf
    np.testing.assert_allclose(g, -z, rtol=1e-12)
    np.testing.assert_allclose(fastgeo.grad_log_ri(z, Gaussian(np.zeros(4), 2.0), backend=backend), -z / 2,
                               rtol=1e-12)
    with mpmath.workdps(30):  # scipy's multivariate_t.logpdf overflows there (-inf)
        want_f = float(mpmath.loggamma(3.5) - mpmath.loggamma(1.5) - 2 * mpmath.log(3 * mpmath.pi)
                       - 3.5 * mpmath.log1p(r * r / 3))
    assert StudentT(4, 3).log_prob(z)[0] == pytest.approx(want_f, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_past_the_largest_double(backend):
    """|y| beyond 1.8e308: -inf and a zero gradient (no crash); a whitening that overflows says so."""
    z = np.full((1, 4), 1e308)
    for prior in (StandardNormal(4), Cauchy(4), GammaNorm(4)):
        lr, g = fastgeo.log_ri_and_grad(z, prior, backend=backend)
        assert lr[0] == -np.inf and np.all(g == 0)
    with pytest.raises(ValueError, match="whitened point .* overflows float64"):
        fastgeo.log_ri(z, Gaussian(np.zeros(4), 0.25), backend=backend)


@pytest.mark.parametrize("m", [40, 3000])  # the serial and the parallel row kernel
@pytest.mark.parametrize("layout", ["contiguous", "strided", "reversed", "read-only"])
def test_far_rows_among_ordinary_rows(rng, m, layout):
    """Rows taken from their radius (|y|^2 overflows; tiny radii for the gamma radius) are
    computed apart from the others on the CPU (kernels/cpu_radial.py: far_rows): every row of
    a mixed batch matches the reference, values and gradients, in every layout."""
    d = 6
    z = rng.standard_normal((m, 2 * d))
    far = rng.random(m) < 12 / m  # a dozen or so: the reference takes them from mpmath
    far[rng.integers(m)] = True
    z[far] *= 10.0 ** rng.uniform(155, 300, size=(far.sum(), 1))
    tiny = ~far & (rng.random(m) < 6 / m)
    z[tiny] *= 10.0 ** rng.uniform(-300, -146, size=(tiny.sum(), 1))
    x = {"contiguous": np.ascontiguousarray(z[:, :d]), "strided": z[:, ::2], "reversed": z[::-1, :d],
         "read-only": np.ascontiguousarray(z[:, :d])}[layout]
    if layout == "read-only":
        x.flags.writeable = False
    for prior in (StandardNormal(d), StudentT(d, 3.0), Cauchy(d), GammaNorm(d, 0.5, 2.0)):
        lr, g = fastgeo.log_ri_and_grad(x, prior, backend="cpu")
        lr_ref, g_ref = fastgeo.log_ri_and_grad(np.array(x), prior, backend="reference")
        np.testing.assert_allclose(lr, lr_ref, rtol=1e-12, err_msg=repr(prior))
        np.testing.assert_allclose(g, g_ref, rtol=1e-11, atol=1e-300, err_msg=repr(prior))
        np.testing.assert_allclose(fastgeo.ri(x, prior, backend="cpu"), np.exp(lr_ref), rtol=1e-12)
        np.testing.assert_allclose(prior.log_prob(x), prior.log_prob(np.array(x)), rtol=1e-12)
    bad = np.array(x)
    bad[m // 2, 1] = np.nan
    with pytest.raises(ValueError, match=r"first at index \(%d, 1\): nan" % (m // 2)):
        fastgeo.log_ri(bad, GammaNorm(d, 0.5, 2.0), backend="cpu")


def test_the_reference_gradient_is_right_in_far_tails():
    """exp(log pdf - log sf) with two logs near -5e15 made the reference's gradient 2x too large."""
    z = np.array([[1e8, -5e7, 1e7, 0.0]])
    with mpmath.workdps(40):
        x = mpmath.fsum(mpmath.mpf(v) ** 2 for v in z[0]) / 2
        hazard = float(mpmath.exp(mpmath.log(x) - x - mpmath.log(mpmath.gammainc(2, x, mpmath.inf))))
    want = -hazard * z  # d log Q(2, |z|^2/2) / dz = -p(x)/Q(x) z
    for backend in BACKENDS:
        np.testing.assert_allclose(fastgeo.grad_log_ri(z, StandardNormal(4), backend=backend), want, rtol=1e-12)


@pytest.mark.parametrize("prior", [UniformBox([-1, -1], [1, 1]), UniformBall(2)])
def test_uniform_priors_say_why_they_have_no_kde(prior):
    with pytest.raises(ValueError, match="no KDE estimate .* indicator of the support"):
        fastgeo.log_ri(np.zeros((1, 2)), prior, method="kde")
    with pytest.raises(ValueError, match="no KDE estimate"):
        prior.kde
    assert fastgeo.log_ri(np.zeros((1, 2)), prior, method="exact")[0] == 0.0

