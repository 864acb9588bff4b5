"""Priors: parameter checks, densities against scipy, and samplers that match their densities."""
import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from fastgeo.priors import (
    Cauchy, Custom, GammaNorm, Gaussian, GaussianMixture, StandardNormal, StudentT, UniformBall, UniformBox,
    semicircle,
)

# A correct sampler fails a goodness-of-fit test at this level once in a million runs; a wrong
# one, with the sample sizes below, fails it essentially always.
P_MIN = 1e-6
N_GOF = 20_000


def assert_fits(sample, cdf, what):
    p = stats.kstest(sample, cdf).pvalue
    assert p > P_MIN, f"{what}: KS p-value {p:.2e}"


# -- parameter checks --------------------------------------------------------------------------

@pytest.mark.parametrize("make, match", [
    (lambda: StandardNormal(0), "dim"),
    (lambda: StandardNormal(2.5), "dim"),
    (lambda: StandardNormal(True), "dim"),
    (lambda: Gaussian(np.zeros(3), np.array([[1, 2, 0], [0, 1, 0], [0, 0, 1.0]])), "not symmetric"),
    (lambda: Gaussian(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]])), "not positive definite"),
    (lambda: Gaussian(np.zeros(3), np.eye(2)), r"\(3, 3\)"),
    (lambda: Gaussian(np.zeros(3), -1.0), "cov"),
    (lambda: Gaussian(np.zeros(3), np.array([1.0, 0.0, 2.0])), "variances"),
    (lambda: Gaussian(np.array([0.0, np.nan]), 1.0), "mean"),
    (lambda: GammaNorm(4, shape=0.0), "shape"),
    (lambda: GammaNorm(4, shape=5.0), "shape must be <= dim"),
    (lambda: GammaNorm(4, scale=-1.0), "scale"),
    (lambda: StudentT(3, df=0.0), "df"),
    (lambda: StudentT(3, df=np.inf), "df"),
    (lambda: UniformBall(3, radius=0.0), "radius"),
    (lambda: UniformBox([0.0, 1.0], [1.0, 1.0]), "coordinate 1"),
    (lambda: UniformBox([0.0, 0.0], [1.0, 1.0, 1.0]), r"\(2,\)"),
    (lambda: GaussianMixture([0.5, -0.5], np.zeros((2, 2)), np.stack([np.eye(2)] * 2)), "weights"),
    (lambda: GaussianMixture([0.5, 0.5], np.zeros((3, 2)), np.stack([np.eye(2)] * 2)), "means"),
    (lambda: GaussianMixture([0.5, 0.5], np.zeros((2, 2)), np.stack([np.eye(2), -np.eye(2)])), r"covs\[1\]"),
    (lambda: semicircle(1), "dim >= 2"),
    (lambda: StandardNormal(3, kde_samples=1), "kde_samples"),
    (lambda: Custom(None, lambda n: None, 2), "callable"),
])
def test_bad_parameters_raise_naming_the_problem(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_sample_sizes_and_seeds():
    prior = semicircle(5)
    assert prior.sample(0).shape == (0, 5)
    np.testing.assert_array_equal(prior.sample(7, seed=3), prior.sample(7, seed=3))
    assert not np.array_equal(prior.sample(7, seed=3), prior.sample(7, seed=4))
    with pytest.raises(ValueError, match="n must be"):
        prior.sample(-1)


def test_semicircle_is_the_papers_prior():
    p = semicircle(20)
    assert p.dim == 20
    np.testing.assert_allclose(p.weights, 1 / 3)
    np.testing.assert_array_equal(p.means[:, :2], [[2, 6], [0, 0], [2, -6]])
    np.testing.assert_array_equal(p.means[:, 2:], 0)
    np.testing.assert_array_equal(p.covs[0, :2, :2], [[5, 2], [2, 2]])
    np.testing.assert_array_equal(p.covs[1, :2, :2], [[1, 0], [0, 3]])
    np.testing.assert_array_equal(p.covs[2, :2, :2], [[5, -2], [-2, 2]])
    np.testing.assert_array_equal(p.covs[:, 2:, 2:], np.broadcast_to(0.5 * np.eye(18), (3, 18, 18)))
    np.testing.assert_array_equal(p.covs[:, :2, 2:], 0)
    assert semicircle(2).covs.shape == (3, 2, 2)


# -- densities against scipy -------------------------------------------------------------------

def test_log_prob_matches_scipy(rng):
    d = 4
    z = rng.normal(size=(50, d)) * 1.5
    np.testing.assert_allclose(StandardNormal(d).log_prob(z), stats.multivariate_normal(np.zeros(d)).logpdf(z),
                               rtol=1e-12)
    t = StudentT(d, 3.5)
    np.testing.assert_allclose(t.log_prob(z), stats.multivariate_t(np.zeros(d), np.eye(d), df=3.5).logpdf(z),
                               rtol=1e-12)
    np.testing.assert_allclose(Cauchy(d).log_prob(z), stats.multivariate_t(np.zeros(d), np.eye(d), df=1).logpdf(z),
                               rtol=1e-12)
    mix = semicircle(d)
    expected = special.logsumexp(
        [np.log(w) + stats.multivariate_normal(m, c).logpdf(z) for w, m, c in zip(mix.weights, mix.means, mix.covs)],
        axis=0)
    np.testing.assert_allclose(mix.log_prob(z), expected, rtol=1e-12)
    ball = UniformBall(d, radius=1.7)
    inside = np.linalg.norm(z, axis=1) <= 1.7
    log_vol = d / 2 * math.log(math.pi) + d * math.log(1.7) - special.gammaln(d / 2 + 1)
    np.testing.assert_allclose(ball.log_prob(z), np.where(inside, -log_vol, -np.inf))
    box = UniformBox(-np.ones(d), 2 * np.ones(d))
    inside = np.all((z >= -1) & (z <= 2), axis=1)
    np.testing.assert_allclose(box.log_prob(z), np.where(inside, -d * math.log(3), -np.inf))


@pytest.mark.parametrize("dim, shape, scale", [(1, 0.5, 1.0), (2, 0.5, 2.0), (3, 2.0, 0.7)])
def test_gamma_norm_density_integrates_to_one(dim, shape, scale):
    prior = GammaNorm(dim, shape=shape, scale=scale)
    sphere = 2 * math.pi ** (dim / 2) / math.gamma(dim / 2)

    def radial_mass(r):  # f(r e) * |S^{D-1}| r^{D-1}
        z = np.zeros((1, dim))
        z[0, 0] = r
        return math.exp(prior.log_prob(z)[0]) * sphere * r ** (dim - 1)

    total, err = integrate.quad(radial_mass, 0, np.inf, limit=200)
    assert abs(total - 1) < 1e-7


# -- samplers have the distribution they claim -------------------------------------------------

def test_standard_normal_and_gaussian_samples(rng):
    d = 6
    s = StandardNormal(d).sample(N_GOF, seed=rng)
    assert_fits(np.sum(s * s, axis=1), stats.chi2(d).cdf, "|z|^2 ~ chi2")
    a = rng.normal(size=(d, d))
    cov = a @ a.T + np.eye(d)
    mean = rng.normal(size=d)
    g = Gaussian(mean, cov).sample(N_GOF, seed=rng)
    y = np.linalg.solve(np.linalg.cholesky(cov), (g - mean).T).T
    assert_fits(np.sum(y * y, axis=1), stats.chi2(d).cdf, "Mahalanobis^2 ~ chi2")
    assert_fits(y[:, 0], stats.norm.cdf, "whitened coordinate ~ N(0,1)")
    var = rng.uniform(0.5, 2, size=d)
    diag = Gaussian(mean, var).sample(N_GOF, seed=rng)
    assert_fits((diag[:, 2] - mean[2]) / math.sqrt(var[2]), stats.norm.cdf, "diagonal Gaussian coordinate")


def test_gamma_norm_samples(rng):
    d, k, theta = 7, 0.5, 1.3
    s = GammaNorm(d, k, theta).sample(N_GOF, seed=rng)
    r = np.linalg.norm(s, axis=1)
    assert_fits(r, stats.gamma(k, scale=theta).cdf, "radius ~ Gamma")
    # uniform direction: (u_1 + 1)/2 ~ Beta((D-1)/2, (D-1)/2)
    assert_fits((s[:, 0] / r + 1) / 2, stats.beta((d - 1) / 2, (d - 1) / 2).cdf, "direction uniform")


def test_student_t_samples(rng):
    d, nu = 5, 3.0
    s = StudentT(d, nu).sample(N_GOF, seed=rng)
    assert_fits(np.sum(s * s, axis=1) / d, stats.f(d, nu).cdf, "|z|^2/D ~ F(D, nu)")
    assert_fits(s[:, 1], stats.t(nu).cdf, "marginal ~ t(nu)")
    c = Cauchy(d).sample(N_GOF, seed=rng)
    assert_fits(c[:, 0], stats.cauchy.cdf, "Cauchy marginal")


def test_uniform_samples(rng):
    d, rho = 4, 2.5
    s = UniformBall(d, rho).sample(N_GOF, seed=rng)
    r = np.linalg.norm(s, axis=1)
    assert np.all(r <= rho)
    assert_fits((r / rho) ** d, stats.uniform.cdf, "(r/rho)^D ~ U(0,1)")
    low, high = rng.uniform(-2, 0, d), rng.uniform(0.5, 3, d)
    b = UniformBox(low, high).sample(N_GOF, seed=rng)
    assert_fits((b[:, 3] - low[3]) / (high[3] - low[3]), stats.uniform.cdf, "box coordinate ~ U")


def test_mixture_samples(rng):
    mix = semicircle(4)
    s = mix.sample(N_GOF, seed=rng)

    def first_coordinate_cdf(x):
        return sum(w * stats.norm(m[0], math.sqrt(c[0, 0])).cdf(x) for w, m, c in zip(mix.weights, mix.means, mix.covs))

    assert_fits(s[:, 0], first_coordinate_cdf, "semicircle first coordinate")
    assert_fits(s[:, 3] / math.sqrt(0.5), stats.norm.cdf, "semicircle extra coordinate ~ N(0, 0.5)")
    # the horseshoe: the second coordinate's components are centred at 6, 0 and -6
    weights = np.array([0.2, 0.5, 0.3])
    one_d = GaussianMixture(weights, np.array([[-3.0], [0.0], [4.0]]), np.array([[[1.0]], [[0.25]], [[2.0]]]))
    x = one_d.sample(N_GOF, seed=rng)[:, 0]
    assert_fits(x, lambda t: 0.2 * stats.norm(-3, 1).cdf(t) + 0.5 * stats.norm(0, 0.5).cdf(t)
                + 0.3 * stats.norm(4, math.sqrt(2)).cdf(t), "1-D mixture")


def test_custom_prior_uses_the_callables(rng):
    calls = []

    def sample(n, gen):
        calls.append(n)
        return gen.standard_normal((n, 3))

    prior = Custom(lambda z: stats.multivariate_normal(np.zeros(3)).logpdf(z).reshape(-1), sample, 3)
    assert prior.sample(5, seed=1).shape == (5, 3) and calls == [5]
    np.testing.assert_array_equal(prior.sample(5, seed=1), np.random.default_rng(1).standard_normal((5, 3)))
    no_rng = Custom(lambda z: np.zeros(len(z)), lambda n: np.ones((n, 2)), 2)
    assert no_rng.sample(3).shape == (3, 2)
    wrong = Custom(lambda z: np.zeros(len(z)), lambda n, g: np.ones((n, 3)), 2)
    with pytest.raises(ValueError, match="shape"):
        wrong.sample(3)


# -- the KDE every prior carries -----------------------------------------------------------------

def test_kde_is_seeded_and_inspectable():
    prior = semicircle(3)
    kde = prior.kde
    assert kde is prior.kde  # drawn once
    assert kde.n == 5000 and kde.samples.shape == (5000,) and kde.latent_samples.shape == (5000, 3)
    np.testing.assert_allclose(kde.samples, prior.log_prob(kde.latent_samples), rtol=1e-12)
    h = (4 / (3 * 5000)) ** 0.2 * np.std(kde.samples, ddof=1)
    assert kde.bandwidth == pytest.approx(h, rel=1e-14)
    assert kde.bandwidth == pytest.approx(math.sqrt(stats.gaussian_kde(kde.samples, "silverman").covariance[0, 0]),
                                          rel=1e-12)
    np.testing.assert_array_equal(semicircle(3).kde.samples, kde.samples)  # same default seed
    other = semicircle(3, kde_samples=300, kde_seed=11).kde
    assert other.n == 300 and not np.array_equal(other.samples, kde.samples[:300])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_custom_prior_non_finite_gradient_is_an_error(bad):
    """A NaN (or inf) from grad_log_prob where log_prob is finite raises, as a NaN log_prob does."""
    import fastgeo

    prior = Custom(lambda x: -0.5 * (x**2).sum(-1), lambda n, rng: rng.standard_normal((n, 4)), 4,
                   grad_log_prob=lambda x: np.where(np.arange(len(x))[:, None] == 1, bad, -x), kde_samples=200)
    z = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.raises(ValueError, match="grad_log_prob.* row 1 of z"):
        fastgeo.grad_log_ri(z, prior)
    fastgeo.grad_log_ri(z[:1], prior)  # the finite rows alone are fine

