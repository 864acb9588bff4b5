"""Priors from torch and scipy distributions (fastgeo.priors.from_distribution, as_prior)."""
import numpy as np
import pytest
import torch
from scipy import stats

import fastgeo
import fastgeo.compare
import fastgeo.endpoints
from fastgeo import priors
from fastgeo.priors import from_distribution
from fastgeo.priors.convert import Conversion

td = torch.distributions
DIMS = [1, 3, 6]
#: float32 results below float32's normal range (1.2e-38) are subnormal: absolute precision only
RI_ATOL = {np.float64: 0.0, np.float32: 1e-43}


def spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T + rng.uniform(0.5, 2.0) * np.eye(d)


def points(rng, d, n=40, spread=2.0):
    return rng.standard_normal((n, d)) * spread + rng.standard_normal(d)


def mahalanobis2(z, mean, cov):
    y = z - mean
    return np.einsum("md,md->m", y @ np.linalg.inv(cov), y)


def as_dtype(z, dtype):
    return z.astype(dtype)


def check_log_prob(prior, z, ref, dtype):
    """prior.log_prob(z) against the distribution's own; float32 z is compared at its own
    precision (the prior computes in float64 from the rounded z)."""
    got = prior.log_prob(as_dtype(z, dtype))
    assert got.dtype == dtype
    zr = as_dtype(z, dtype).astype(np.float64)
    want = ref(zr)
    np.testing.assert_allclose(got, want, rtol=1e-12 if dtype == np.float64 else 2e-6, atol=1e-12 if dtype == np.float64 else 1e-5)


# -- torch closed forms -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("param", ["covariance_matrix", "precision_matrix", "scale_tril"])
def test_torch_multivariate_normal(rng, d, param, dtype):
    mean, cov = rng.standard_normal(d), spd(rng, d)
    arg = {"covariance_matrix": cov, "precision_matrix": np.linalg.inv(cov), "scale_tril": np.linalg.cholesky(cov)}[param]
    dist = td.MultivariateNormal(torch.tensor(mean), **{param: torch.tensor(arg)})
    prior = from_distribution(dist)
    assert type(prior) is priors.Gaussian and prior.conversion.method == "closed form"
    assert prior.conversion.source == "torch.distributions.MultivariateNormal" and prior.conversion.device == "cpu"
    assert "method='closed form'" in repr(prior) and "MultivariateNormal" in repr(prior)
    z = points(rng, d)
    check_log_prob(prior, z, lambda x: dist.log_prob(torch.tensor(x)).numpy(), dtype)
    zc = as_dtype(z, dtype)
    want = stats.chi2.sf(mahalanobis2(zc.astype(np.float64), mean, cov), d)
    np.testing.assert_allclose(fastgeo.ri(zc, dist), want, rtol=1e-9 if dtype == np.float64 else 1e-5, atol=RI_ATOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d", DIMS)
def test_torch_independent_normal(rng, d, dtype):
    mean, sd = rng.standard_normal(d), rng.uniform(0.3, 3.0, d)
    dist = td.Independent(td.Normal(torch.tensor(mean), torch.tensor(sd)), 1)
    prior = from_distribution(dist)
    assert type(prior) is priors.Gaussian and prior.conversion.method == "closed form"
    z = points(rng, d)
    check_log_prob(prior, z, lambda x: dist.log_prob(torch.tensor(x)).numpy(), dtype)
    zc = as_dtype(z, dtype).astype(np.float64)
    want = stats.chi2.sf(np.sum(((zc - mean) / sd) ** 2, axis=1), d)
    np.testing.assert_allclose(fastgeo.ri(as_dtype(z, dtype), dist), want, rtol=1e-9 if dtype == np.float64 else 1e-5,
                               atol=RI_ATOL[dtype])


@pytest.mark.parametrize("d", DIMS)
def test_torch_standard_normals_become_standard_normal(rng, d):
    for dist in (td.Independent(td.Normal(torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)), 1),
                 td.MultivariateNormal(torch.zeros(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64))):
        prior = from_distribution(dist)
        assert type(prior) is priors.StandardNormal and prior.dim == d
        z = points(rng, d)
        np.testing.assert_allclose(prior.log_prob(z), dist.log_prob(torch.tensor(z)).numpy(), rtol=1e-12)
        np.testing.assert_allclose(fastgeo.ri(z, dist), stats.chi2.sf(np.sum(z ** 2, axis=1), d), rtol=1e-9)


def test_torch_scalar_normal_is_one_dimensional(rng):
    loc, scale = rng.standard_normal(), rng.uniform(0.5, 2)
    dist = td.Normal(torch.tensor(loc, dtype=torch.float64), torch.tensor(scale, dtype=torch.float64))
    prior = from_distribution(dist)
    assert type(prior) is priors.Gaussian and prior.dim == 1
    z = points(rng, 1)
    np.testing.assert_allclose(prior.log_prob(z), dist.log_prob(torch.tensor(z[:, 0])).numpy(), rtol=1e-12)
    np.testing.assert_allclose(fastgeo.ri(z, dist), 2 * stats.norm.sf(np.abs(z[:, 0] - loc) / scale), rtol=1e-9)


@pytest.mark.parametrize("d", DIMS)
def test_torch_uniform_box(rng, d):
    low = rng.standard_normal(d)
    high = low + rng.uniform(0.5, 3.0, d)
    dist = td.Independent(td.Uniform(torch.tensor(low), torch.tensor(high), validate_args=False), 1)
    prior = from_distribution(dist)
    assert type(prior) is priors.UniformBox and prior.conversion.method == "closed form"
    z = low + (high - low) * rng.uniform(-0.3, 1.3, (60, d))
    inside = np.all((z >= low) & (z < high), axis=1)
    assert inside.any() and (~inside).any()
    np.testing.assert_allclose(prior.log_prob(z), dist.log_prob(torch.tensor(z)).numpy(), rtol=1e-12)
    np.testing.assert_array_equal(fastgeo.ri(z, dist), inside.astype(float))


@pytest.mark.parametrize("d", [2, 4])
@pytest.mark.parametrize("components", ["mvn", "diag"])
def test_torch_mixture_same_family(rng, d, components):
    k = 3
    w = rng.uniform(0.2, 1.0, k)
    means = rng.standard_normal((k, d)) * 3
    if components == "mvn":
        covs = np.stack([spd(rng, d) for _ in range(k)])
        comp = td.MultivariateNormal(torch.tensor(means), covariance_matrix=torch.tensor(covs))
    else:
        sd = rng.uniform(0.3, 2.0, (k, d))
        comp = td.Independent(td.Normal(torch.tensor(means), torch.tensor(sd)), 1)
    dist = td.MixtureSameFamily(td.Categorical(probs=torch.tensor(w)), comp)
    prior = from_distribution(dist, kde_samples=2000)
    assert type(prior) is priors.GaussianMixture and prior.conversion.method == "kde"
    z = points(rng, d, spread=3.0)
    for dtype in (np.float64, np.float32):
        check_log_prob(prior, z, lambda x: dist.log_prob(torch.tensor(x)).numpy(), dtype)


# -- scipy closed forms -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d", DIMS)
def test_scipy_multivariate_normal(rng, d, dtype):
    mean, cov = rng.standard_normal(d), spd(rng, d)
    dist = stats.multivariate_normal(mean, cov)
    prior = from_distribution(dist)
    assert type(prior) is priors.Gaussian and prior.conversion.source == "scipy.stats.multivariate_normal"
    assert prior.conversion.device is None
    z = points(rng, d)
    check_log_prob(prior, z, lambda x: np.atleast_1d(dist.logpdf(x)), dtype)
    zc = as_dtype(z, dtype).astype(np.float64)
    np.testing.assert_allclose(fastgeo.ri(as_dtype(z, dtype), dist), stats.chi2.sf(mahalanobis2(zc, mean, cov), d),
                               rtol=1e-9 if dtype == np.float64 else 1e-5, atol=RI_ATOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d", DIMS)
def test_scipy_multivariate_t(rng, d, dtype):
    loc, shape, df = rng.standard_normal(d), spd(rng, d), rng.uniform(0.7, 12.0)
    dist = stats.multivariate_t(loc, shape, df=df)
    prior = from_distribution(dist)
    assert type(prior) is priors.StudentT and prior.conversion.method == "closed form"
    z = points(rng, d, spread=4.0)
    check_log_prob(prior, z, lambda x: np.atleast_1d(dist.logpdf(x)), dtype)
    zc = as_dtype(z, dtype).astype(np.float64)
    want = stats.f.sf(mahalanobis2(zc, loc, shape) / d, d, df)
    np.testing.assert_allclose(fastgeo.ri(as_dtype(z, dtype), dist), want, rtol=1e-8 if dtype == np.float64 else 1e-5,
                               atol=RI_ATOL[dtype])


def test_scipy_multivariate_t_standard_and_infinite_df(rng):
    d = 3
    assert repr(from_distribution(stats.multivariate_t(np.zeros(d), df=3.0))).startswith("StudentT(dim=3, df=3.0, from=")
    mean = rng.standard_normal(d)
    prior = from_distribution(stats.multivariate_t(mean, np.eye(d) * 2.0, df=np.inf))
    assert isinstance(prior, priors.Gaussian)


@pytest.mark.parametrize("d", [1, 4])
def test_scipy_uniform_box(rng, d):
    loc, scale = rng.standard_normal(d), rng.uniform(0.5, 3.0, d)
    dist = stats.uniform(loc if d > 1 else loc[0], scale if d > 1 else scale[0])
    prior = from_distribution(dist)
    assert type(prior) is priors.UniformBox and prior.dim == d
    z = loc + scale * rng.uniform(-0.3, 1.3, (60, d))
    inside = np.all((z >= loc) & (z <= loc + scale), axis=1)
    lp = prior.log_prob(z)
    np.testing.assert_allclose(lp[inside], dist.logpdf(z[inside] if d > 1 else z[inside, 0]).reshape(inside.sum(), -1).sum(1))
    assert np.all(lp[~inside] == -np.inf)
    np.testing.assert_array_equal(fastgeo.ri(z, dist), inside.astype(float))


# -- the StudentT extension ------------------------------------------------------------------

@pytest.mark.parametrize("form", ["matrix", "variances", "scalar"])
def test_student_t_with_location_and_shape(rng, form):
    d, df = 4, rng.uniform(1.0, 8.0)
    loc = rng.standard_normal(d)
    shape = {"matrix": spd(rng, d), "variances": rng.uniform(0.3, 3.0, d), "scalar": rng.uniform(0.3, 3.0)}[form]
    full = shape if form == "matrix" else np.diag(np.broadcast_to(shape, (d,)))
    prior = priors.StudentT(d, df, loc=loc, shape=shape)
    z = points(rng, d, spread=3.0)
    np.testing.assert_allclose(prior.log_prob(z), stats.multivariate_t(loc, full, df=df).logpdf(z), rtol=1e-12)
    np.testing.assert_allclose(fastgeo.ri(z, prior), stats.f.sf(mahalanobis2(z, loc, full) / d, d, df), rtol=1e-8)
    # the sampler: ri of its own samples is uniform on [0, 1]
    u = fastgeo.ri(prior.sample(4000, seed=rng), prior)
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    # not centred with identity scale: no "opposite" endpoint pairs
    assert fastgeo.endpoints.far_pairs(prior, 2)[2] == "independent prior samples"


def test_student_t_unchanged_without_location_and_shape(rng):
    prior = priors.StudentT(3, 2.5)
    assert repr(prior) == "StudentT(dim=3, df=2.5)" and prior.is_standard and repr(priors.Cauchy(2)) == "Cauchy(dim=2)"
    z = points(rng, 3)
    np.testing.assert_allclose(prior.log_prob(z), stats.multivariate_t(np.zeros(3), df=2.5).logpdf(z), rtol=1e-12)
    assert fastgeo.endpoints.far_pairs(prior, 2)[2] != "independent prior samples"


# -- the KDE route ----------------------------------------------------------------------------

def monte_carlo_ri(log_f_samples, log_f_z):
    """ri(z) = P(f(X) <= f(z)), the rank of log f(z) among the samples' log f."""
    return np.mean(log_f_samples[None, :] <= log_f_z[:, None], axis=1)


def check_kde_route(prior, z, log_f, samples, n_kde):
    """ri against Monte Carlo estimates from ``samples`` of the distribution (N of them).

    The KDE estimates G_h(log f(z)) = P(log f(X) + h e <= log f(z)), e ~ N(0, 1), h its
    bandwidth, from n_kde samples: against the Monte Carlo estimate of that, mean Phi((log f(z) -
    log f(X)) / h), the error is sampling alone: 5 standard errors sqrt(p (1 - p)) (1/sqrt(N) +
    1/sqrt(n_kde)). Against the rank ri(z) = P(f(X) <= f(z)) itself, the smoothing adds at most
    E|e| h sup g = 0.8 h sup g (g the density of log f(X), estimated by a histogram of bin h).
    """
    lf_x, lf_z = log_f(samples), log_f(z)
    h = prior.kde.bandwidth
    got = fastgeo.ri(z, prior)
    smoothed = np.mean(stats.norm.cdf((lf_z[:, None] - lf_x[None, :]) / h), axis=1)
    rank = monte_carlo_ri(lf_x, lf_z)
    for want in (smoothed, rank):
        assert np.ptp(want) > 0.5  # the points span the index's range
    se = 5 * np.sqrt(smoothed * (1 - smoothed)) * (1 / np.sqrt(len(samples)) + 1 / np.sqrt(n_kde)) + 1e-3
    assert np.all(np.abs(got - smoothed) <= se), np.max(np.abs(got - smoothed) - se)
    counts, _ = np.histogram(lf_x, bins=np.arange(lf_x.min(), lf_x.max() + h, h))
    sup_g = counts.max() / (len(lf_x) * h)
    assert np.all(np.abs(got - rank) <= se + 0.8 * h * sup_g + 1e-2), np.max(np.abs(got - rank) - se - 0.8 * h * sup_g)


@pytest.mark.parametrize("d", [1, 3])
def test_torch_kde_route(rng, d):
    loc, scale = rng.standard_normal(d), rng.uniform(0.5, 2.0, d)
    dist = td.Independent(td.Laplace(torch.tensor(loc), torch.tensor(scale)), 1)
    n_kde = 4000
    prior = from_distribution(dist, kde_samples=n_kde, kde_seed=int(rng.integers(1000)))
    assert type(prior) is priors.Custom and prior.conversion.method == "kde" and "method='kde'" in repr(prior)

    def log_f(x):
        return dist.log_prob(torch.tensor(x)).numpy()

    z = dist.sample((30,)).numpy()
    for dtype in (np.float64, np.float32):
        check_log_prob(prior, z, log_f, dtype)
    torch.manual_seed(int(rng.integers(2**31)))
    check_kde_route(prior, z, log_f, dist.sample((20000,)).numpy(), n_kde)
    # the KDE's samples come from the distribution: each coordinate against its cdf
    x = prior.sample(4000, seed=rng)
    for j in range(d):
        cdf = td.Laplace(torch.tensor(loc[j]), torch.tensor(scale[j])).cdf
        assert stats.kstest(x[:, j], lambda v: cdf(torch.tensor(v)).numpy()).pvalue > 1e-4
    # the gradient (torch autograd through log_prob) exists and is finite
    assert np.all(np.isfinite(fastgeo.grad_log_ri(z + 0.01, prior)))
    # seeded KDE: the same seed gives the same estimate
    again = from_distribution(dist, kde_samples=n_kde, kde_seed=prior.kde_seed)
    assert again is prior  # cached on the distribution object
    fresh = from_distribution(td.Independent(td.Laplace(torch.tensor(loc), torch.tensor(scale)), 1),
                              kde_samples=n_kde, kde_seed=prior.kde_seed)
    np.testing.assert_array_equal(fastgeo.ri(z, fresh), fastgeo.ri(z, prior))


@pytest.mark.parametrize("validate", [True, False])  # torch.compile turns validation off process-wide
def test_torch_kde_route_outside_the_support(rng, validate):
    conc, rate = rng.uniform(1.5, 4.0, 2), rng.uniform(0.5, 2.0, 2)
    dist = td.Independent(td.Gamma(torch.tensor(conc), torch.tensor(rate), validate_args=validate), 1)
    prior = from_distribution(dist, kde_samples=500)
    z = np.abs(rng.standard_normal((6, 2))) + 0.1
    z[::2, rng.integers(2)] *= -1  # every other row outside the support
    lp = prior.log_prob(z)
    np.testing.assert_allclose(lp[1::2], dist.log_prob(torch.tensor(z[1::2])).numpy(), rtol=1e-12)
    assert np.all(lp[::2] == -np.inf)
    r = fastgeo.ri(z, prior)
    assert np.all(r[::2] == 0) and np.all(r[1::2] > 0)
    assert np.all(fastgeo.grad_log_ri(z, prior)[::2] == 0)


def test_torch_kde_route_with_torch_inputs_and_other_mixtures(rng):
    d, k = 3, 2
    comp = td.Independent(td.Laplace(torch.tensor(rng.standard_normal((k, d)) * 2, dtype=torch.float32),
                                     torch.tensor(rng.uniform(0.5, 2.0, (k, d)), dtype=torch.float32)), 1)
    dist = td.MixtureSameFamily(td.Categorical(torch.tensor(rng.uniform(0.2, 1.0, k))), comp)
    prior = from_distribution(dist, kde_samples=1000)
    assert type(prior) is priors.Custom and prior.conversion.method == "kde"
    z = points(rng, d)
    zt = torch.tensor(z, dtype=torch.float32, requires_grad=True)
    lp = prior.log_prob(zt)
    assert lp.dtype == torch.float32
    np.testing.assert_allclose(lp.detach().numpy(), dist.log_prob(zt.detach().double()).numpy(), rtol=1e-6)
    # autograd through log ri (the KDE route's gradient: torch autograd through log_prob)
    fastgeo.log_ri(zt, dist).sum().backward()
    np.testing.assert_allclose(zt.grad.numpy(), fastgeo.grad_log_ri(zt.detach().double(), prior).numpy(), rtol=1e-5)


def test_the_kde_leaves_the_callers_torch_generator_alone(rng):
    dist = td.Independent(td.Gamma(torch.tensor(rng.uniform(1.5, 3.0, 2)), torch.ones(2, dtype=torch.float64)), 1)
    seed = int(rng.integers(2**31))
    torch.manual_seed(seed)
    want = torch.rand(3)
    torch.manual_seed(seed)
    assert from_distribution(dist, kde_samples=300).kde.n == 300
    np.testing.assert_array_equal(torch.rand(3), want)


def test_scipy_kde_route(rng):
    loc, scale = rng.standard_normal(), rng.uniform(0.5, 2.0)
    dist = stats.gumbel_r(loc, scale)
    n_kde = 4000
    prior = from_distribution(dist, kde_samples=n_kde)
    assert type(prior) is priors.Custom and prior.dim == 1 and prior.conversion.source == "scipy.stats.gumbel_r"

    def log_f(x):
        return dist.logpdf(x[:, 0])

    z = dist.rvs(size=(30, 1), random_state=rng)
    check_log_prob(prior, z, log_f, np.float64)
    check_kde_route(prior, z, log_f, dist.rvs(size=(20000, 1), random_state=rng), n_kde)
    assert stats.kstest(prior.sample(4000, seed=rng)[:, 0], dist.cdf).pvalue > 1e-4
    # the gradient by central differences against the closed form d/dz log f = (exp(-u) - 1) / scale
    u = (z[:, 0] - loc) / scale
    g = fastgeo.priors.Custom.log_density(prior, z, need_grad=True)[1][:, 0]
    np.testing.assert_allclose(g, (np.exp(-u) - 1) / scale, rtol=1e-6, atol=1e-8)


def test_as_prior_takes_the_latest_conversion(rng):
    dist = td.Independent(td.Laplace(torch.tensor(rng.standard_normal(2)), torch.ones(2, dtype=torch.float64)), 1)
    small = from_distribution(dist, kde_samples=300, kde_seed=1)
    assert priors.as_prior(dist) is small
    other = from_distribution(dist, kde_samples=400, kde_seed=1)
    assert priors.as_prior(dist) is other
    np.testing.assert_array_equal(fastgeo.ri(z := rng.standard_normal((4, 2)), dist), fastgeo.ri(z, other))
    assert from_distribution(dist, kde_samples=300, kde_seed=1) is small  # cached, and now the latest
    np.testing.assert_array_equal(fastgeo.ri(z, dist), fastgeo.ri(z, small))
    assert priors.as_prior(dist) is small and fastgeo.priors.as_prior(dist).kde.n == 300


def test_as_prior_caches_per_object(rng):
    dist = td.Independent(td.Laplace(torch.zeros(2) + 0.3, torch.ones(2)), 1)
    first = priors.as_prior(dist)
    assert priors.as_prior(dist) is first and priors.as_prior(first) is first
    fastgeo.ri(rng.standard_normal((3, 2)), dist)
    kde = first._kde
    assert kde is not None
    fastgeo.ri(rng.standard_normal((3, 2)), dist)
    assert first._kde is kde  # not redrawn


# -- the public functions take distributions -------------------------------------------------------

def test_scipy_closed_forms_take_torch_inputs_and_endpoints_take_distributions(rng):
    d = 3
    dist = stats.multivariate_normal(rng.standard_normal(d), spd(rng, d))
    z = points(rng, d)
    np.testing.assert_allclose(fastgeo.ri(torch.tensor(z), dist).numpy(), fastgeo.ri(z, dist), rtol=1e-14)
    assert type(from_distribution(stats.multivariate_normal(np.zeros(d), np.eye(d)))) is priors.StandardNormal
    comp = td.MultivariateNormal(torch.tensor(rng.standard_normal((2, d)) * 4), torch.eye(d, dtype=torch.float64))
    mix = td.MixtureSameFamily(td.Categorical(torch.tensor([0.4, 0.6], dtype=torch.float64)), comp)
    z0, z1, rule = fastgeo.endpoints.far_pairs(mix, 3, seed=int(rng.integers(100)))
    assert "mixture component" in rule and z0.shape == z1.shape == (3, d)


def test_realism_functions_take_distributions(rng):
    d = 3
    dist = td.MultivariateNormal(torch.tensor(rng.standard_normal(d)), torch.tensor(spd(rng, d)))
    prior = priors.as_prior(dist)
    z = torch.tensor(points(rng, d), requires_grad=True)
    np.testing.assert_array_equal(fastgeo.log_ri(z, dist).detach(), fastgeo.log_ri(z, prior).detach())
    np.testing.assert_array_equal(fastgeo.grad_log_ri(z, dist), fastgeo.grad_log_ri(z, prior))
    lr, g = fastgeo.log_ri_and_grad(z.detach().numpy(), dist)
    np.testing.assert_array_equal(g, fastgeo.grad_log_ri(z.detach().numpy(), prior))
    assert fastgeo.realism.index_spec(dist) is prior.index()


def test_paths_take_distributions(rng):
    d = 2
    torch.manual_seed(int(rng.integers(2**31)))
    gen = torch.nn.Sequential(torch.nn.Linear(d, 5), torch.nn.Tanh()).double().eval()
    dist = stats.multivariate_normal(rng.standard_normal(d), spd(rng, d))
    prior = priors.as_prior(dist)
    z0, z1 = torch.tensor(rng.standard_normal((2, d))), torch.tensor(rng.standard_normal((2, d)))
    a = fastgeo.linear_path(gen, z0, z1, dist, n_points=8)
    b = fastgeo.linear_path(gen, z0, z1, prior, n_points=8)
    np.testing.assert_array_equal(a.path_log_index, b.path_log_index)
    a = fastgeo.interpolate(gen, z0, z1, dist, n_points=8, max_iter=5)
    b = fastgeo.interpolate(gen, z0, z1, prior, n_points=8, max_iter=5)
    np.testing.assert_array_equal(a.path, b.path)
    out = fastgeo.compare.run_methods(gen, z0, z1, dist, methods=("optimal", "linear"), n_points=8, max_iter=5)
    np.testing.assert_array_equal(out["linear"].path_log_index, fastgeo.linear_path(gen, z0, z1, prior, n_points=8).path_log_index)
    np.testing.assert_array_equal(out["optimal"].path, a.path)


# -- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("make, error, words", [
    (lambda: "normal", TypeError, "prior must be a fastgeo.priors.Prior, a torch distribution or a frozen scipy"),
    (lambda: stats.norm, TypeError, "not a frozen scipy distribution"),
    (lambda: td.MultivariateNormal(torch.zeros(2, 3) + 0.5, torch.eye(3)), ValueError, "batch shape (2,)"),
    (lambda: td.Normal(torch.zeros(3) + 0.5, torch.ones(3)), ValueError, "batch shape (3,)"),
    (lambda: td.Independent(td.Normal(torch.zeros(2, 3) + 0.5, torch.ones(2, 3)), 2), ValueError, "event shape (2, 3)"),
    (lambda: td.Independent(td.Bernoulli(torch.full((3,), 0.3)), 1), ValueError, "discrete"),
    (lambda: td.Categorical(torch.tensor([0.3, 0.7])), ValueError, "discrete"),
    (lambda: stats.poisson(3.0), ValueError, "discrete"),
    (lambda: stats.multinomial(4, [0.3, 0.7]), ValueError, "discrete"),
    (lambda: stats.norm([0.5, 1.0], 1.0), ValueError, "batch of univariate"),
    (lambda: stats.matrix_normal(np.ones((2, 3)) * 0.5), ValueError, "event shape (D,)"),
    (lambda: td.Normal(torch.tensor([0.5, float("nan")]), torch.ones(2), validate_args=False), ValueError, "non-finite parameter loc"),
    (lambda: td.Independent(td.Laplace(torch.tensor([0.5, float("inf")]), torch.ones(2), validate_args=False), 1),
     ValueError, "non-finite parameter"),
    (lambda: stats.uniform([0.5, np.nan], 1.0), ValueError, "non-finite parameter"),
    (lambda: stats.multivariate_t([0.5, np.nan], df=3.0), ValueError, "non-finite"),
])
def test_bad_distributions_are_named(make, error, words, rng):
    with pytest.raises(error) as info:
        fastgeo.ri(rng.standard_normal((2, 3)), make())
    assert words in str(info.value)


def test_from_distribution_refuses_non_distributions():
    with pytest.raises(TypeError, match="needs a torch distribution or a frozen scipy distribution, got list"):
        from_distribution([1.0, 2.0])


def test_mixed_devices_are_refused(rng):
    # no GPU here: a converted prior that records a CUDA distribution meets CPU z
    dist = td.MultivariateNormal(torch.tensor(rng.standard_normal(2)), torch.eye(2) * 2.0)
    prior = from_distribution(dist)
    prior.conversion = Conversion(prior.conversion.source, prior.conversion.method, "cuda:0")
    z = rng.standard_normal((3, 2))
    for call in (lambda: fastgeo.ri(z, dist), lambda: prior.log_prob(z), lambda: fastgeo.log_ri(torch.tensor(z), prior)):
        with pytest.raises(ValueError, match="mixed devices: .* parameters on cuda:0 but z is (numpy|torch) on cpu"):
            call()
    gen = torch.nn.Linear(2, 3).double().eval()
    with pytest.raises(ValueError, match="mixed devices: .*z0 is torch on cpu"):
        fastgeo.linear_path(gen, torch.tensor(z[:1]), torch.tensor(z[1:2]), dist, n_points=4)
