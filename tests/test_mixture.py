"""The compiled Gaussian-mixture log-density (kernels/cpu_mixture.py) against the float64
formula (the reference backend), mpmath far in the tails, and central differences."""
import math

import mpmath
import numpy as np
import pytest

import fastgeo
from fastgeo.backends import get
from fastgeo.kernels import cpu_mixture, mixture
from fastgeo.priors import GaussianMixture, semicircle

REF = get("reference")
CPU = get("cpu")


def random_mixture(rng, k, d, diagonal=False, zero_weight=False, blocks=False):
    weights = rng.uniform(0.2, 1.0, k)
    if zero_weight and k > 1:
        weights[rng.integers(k)] = 0.0
    means = rng.normal(scale=3.0, size=(k, d))
    covs = np.empty((k, d, d))
    for i in range(k):
        if diagonal:
            covs[i] = np.diag(rng.uniform(0.2, 4.0, d))
        else:
            a = rng.normal(size=(d, d))
            covs[i] = a @ a.T / d + np.diag(rng.uniform(0.1, 1.0, d))
            if blocks:  # block diagonal (random cuts): rows of W_k start at their block
                cuts = (np.sort(rng.choice(np.arange(1, d), size=min(d - 1, 3), replace=False))
                        if d > 1 else [])
                label = np.searchsorted(cuts, np.arange(d), side="right")
                covs[i] *= label[:, None] == label[None, :]
    return GaussianMixture(weights, means, covs)


def params(prior):
    return prior._whiten, prior.means, prior._log_norm


def points(rng, prior, m, dtype=np.float64):
    """Rows from the bulk into the far tails (scales up to 30 standard deviations)."""
    scale = rng.uniform(0.1, 30.0, size=(m, 1)) ** rng.uniform(0.5, 1.5, size=(m, 1))
    return (prior.means[rng.integers(len(prior.weights), size=m)]
            + rng.standard_normal((m, prior.dim)) * scale).astype(dtype)


def assert_matches(z, prior, need_grad=True, rtol=1e-11):
    lp_ref, g_ref = REF.mixture_log_density(z, *params(prior), need_grad)
    lp, g = CPU.mixture_log_density(z, *params(prior), need_grad)
    assert lp.dtype == np.float64 and lp.shape == (z.shape[0],)
    scale = np.maximum(1.0, np.abs(lp_ref))
    np.testing.assert_array_less(np.abs(lp - lp_ref), rtol * scale + 1e-300)
    if need_grad:
        assert g.dtype == np.float64 and g.shape == z.shape
        gscale = np.maximum(1.0, np.abs(g_ref).max(axis=1, keepdims=True))
        bound = np.broadcast_to(1e3 * rtol * gscale + 1e-300, g.shape)
        np.testing.assert_array_less(np.abs(g - g_ref), bound)
    else:
        assert g is None


@pytest.mark.parametrize("k,d", [(1, 1), (2, 1), (3, 2), (3, 7), (5, 20), (4, 33)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("structure", ["full", "diagonal", "blocks"])
def test_kernel_matches_the_reference(rng, k, d, dtype, structure):
    prior = random_mixture(rng, k, d, diagonal=structure == "diagonal", blocks=structure == "blocks",
                           zero_weight=k > 2)
    z = points(rng, prior, 257, dtype)
    assert_matches(z, prior)
    assert_matches(z, prior, need_grad=False)
    # as the prior calls it: with the first nonzero columns it keeps
    lp, g = prior.log_density(z, True, backend=CPU)
    lp_ref, g_ref = prior.log_density(z, True, backend=REF)
    np.testing.assert_allclose(lp, lp_ref, rtol=1e-11)
    np.testing.assert_allclose(g, g_ref, rtol=1e-8, atol=1e-10 * max(1.0, float(np.abs(g_ref).max())))


def test_first_columns():
    w = np.zeros((2, 4, 4))
    w[0] = np.tril(np.ones((4, 4)))
    w[1] = np.diag([1.0, 2, 3, 4])
    w[1, 3, 1] = 0.5
    np.testing.assert_array_equal(mixture.first_columns(w), [[0, 0, 0, 0], [0, 1, 2, 1]])


@pytest.mark.parametrize("name", ["mixture_log_density", "mixture_log_density_strided",
                                  "mixture_log_density_serial", "mixture_log_density_serial_strided"])
def test_each_kernel_variant_matches_the_reference(rng, name):
    prior = random_mixture(rng, 3, 6)
    z = points(rng, prior, 300)
    kernel = getattr(cpu_mixture, name)
    out, grad = np.empty(300), np.empty((300, 6))
    whiten, means, log_norm = params(prior)
    kernel(z, whiten, mixture.first_columns(whiten), means, log_norm, 1, out, grad)
    lp_ref, g_ref = REF.mixture_log_density(z, *params(prior), True)
    np.testing.assert_allclose(out, lp_ref, rtol=1e-12)
    np.testing.assert_allclose(grad, g_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layouts(rng, dtype):
    """Non-contiguous, negative-stride, Fortran-ordered and read-only z give the same rows."""
    prior = random_mixture(rng, 3, 5)
    wide = points(rng, prior, 80, dtype)
    base = np.repeat(wide, 2, axis=1)  # columns 0, 2, 4, ... are wide's
    ro = wide.copy()
    ro.flags.writeable = False
    lp0, g0 = CPU.mixture_log_density(np.ascontiguousarray(wide), *params(prior), True)
    for z in (base[:, ::2], wide[::-1], np.asfortranarray(wide), ro, np.broadcast_to(wide[:1], (4, 5))):
        lp, g = CPU.mixture_log_density(z, *params(prior), True)
        lp_ref, g_ref = REF.mixture_log_density(z, *params(prior), True)
        np.testing.assert_allclose(lp, lp_ref, rtol=1e-12)
        np.testing.assert_allclose(g, g_ref, rtol=1e-9, atol=1e-12)
    lp, _ = CPU.mixture_log_density(wide[::-1], *params(prior), False)
    np.testing.assert_array_equal(lp, lp0[::-1])


def test_gradient_by_central_differences(rng):
    prior = random_mixture(rng, 4, 5)
    z = points(rng, prior, 20)
    _, grad = CPU.mixture_log_density(z, *params(prior), True)
    h = 1e-5
    for j in range(5):
        e = np.zeros(5)
        e[j] = h
        up, _ = CPU.mixture_log_density(z + e, *params(prior), False)
        down, _ = CPU.mixture_log_density(z - e, *params(prior), False)
        np.testing.assert_allclose(grad[:, j], (up - down) / (2 * h), rtol=1e-5,
                                   atol=1e-6 * max(1.0, float(np.abs(grad).max())))


def mp_log_density(prior, row):
    """log f and grad log f of one row in 60-digit arithmetic."""
    with mpmath.workdps(60):
        terms, pulls = [], []
        for k in range(len(prior.weights)):
            if prior.weights[k] == 0:
                continue
            w = mpmath.matrix(prior._whiten[k].tolist())
            y = w * mpmath.matrix([mpmath.mpf(float(a)) - mpmath.mpf(float(b))
                                   for a, b in zip(row, prior.means[k])])
            terms.append(mpmath.mpf(float(prior._log_norm[k])) - sum(v * v for v in y) / 2)
            pulls.append(w.T * y)
        top = max(terms)
        s = sum(mpmath.exp(t - top) for t in terms)
        lp = top + mpmath.log(s)
        grad = [-sum(mpmath.exp(t - lp) * p[j] for t, p in zip(terms, pulls)) for j in range(len(row))]
        return float(lp), np.array([float(g) for g in grad])


def test_far_tails_against_mpmath(rng):
    """Rows where every component's exp underflows (and where whole terms differ by more than
    float64's range): log f from the online log-sum-exp, exact to rounding."""
    prior = random_mixture(rng, 3, 3, zero_weight=True)
    dirs = rng.standard_normal((6, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    z = np.concatenate([dirs * r for r in (40.0, 1e3, 1e10, 1e50, 1e140)])
    lp, grad = CPU.mixture_log_density(z, *params(prior), True)
    for i, row in enumerate(z):
        want, want_grad = mp_log_density(prior, row)
        assert math.isfinite(lp[i])
        assert abs(lp[i] - want) <= 1e-13 * abs(want), (i, lp[i], want)
        np.testing.assert_allclose(grad[i], want_grad, rtol=1e-9, atol=1e-12 * np.abs(want_grad).max())


def test_rows_beyond_float64(rng):
    """|y|^2 overflows in every component: log f = -inf and gradient 0, as the formula gives;
    NaN rows give NaN."""
    prior = random_mixture(rng, 2, 3)
    z = np.array([[1e200, 0.0, 0.0], [0.0, -3e160, 1e170], [np.nan, 0.0, 0.0], [0.5, 0.5, 0.5]])
    lp, grad = CPU.mixture_log_density(z, *params(prior), True)
    assert lp[0] == lp[1] == -np.inf
    assert np.all(grad[:2] == 0.0)
    assert math.isnan(lp[2])
    assert math.isfinite(lp[3]) and np.all(np.isfinite(grad[3]))
    with np.errstate(over="ignore", invalid="ignore"):
        lp_ref, g_ref = REF.mixture_log_density(z[[0, 1, 3]], *params(prior), True)
    np.testing.assert_array_equal(lp_ref[:2], -np.inf)
    np.testing.assert_allclose(lp[3], lp_ref[2], rtol=1e-13)


def test_log_density_uses_the_chosen_backend(rng, monkeypatch):
    """ri with backend='reference' computes log f by the float64 formula; with 'cpu' by the
    kernel; both agree."""
    prior = semicircle(20, kde_samples=2000)
    z = rng.standard_normal((50, 20)) * 2
    calls = []
    for name in ("reference", "cpu"):
        backend = get(name)
        original = type(backend).mixture_log_density
        monkeypatch.setattr(type(backend), "mixture_log_density",
                            lambda self, *a, _o=original, _n=name: (calls.append(_n), _o(self, *a))[1])
    ri_ref = fastgeo.ri(z, prior, backend="reference")
    ri_cpu = fastgeo.ri(z, prior, backend="cpu")
    assert calls[0] == "reference" and calls[-1] == "cpu"
    np.testing.assert_allclose(ri_cpu, ri_ref, rtol=1e-8, atol=1e-300)
    lp_ref, g_ref = prior.log_density(z, True, backend=REF)
    lp, g = prior.log_density(z, True)
    np.testing.assert_allclose(lp, lp_ref, rtol=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=1e-9, atol=1e-12)


def test_log_ri_gradient_through_the_kernel(rng):
    prior = semicircle(4, kde_samples=2000)
    z = rng.standard_normal((30, 4)).astype(np.float32) * 2
    for name in ("reference", "cpu"):
        l, g = fastgeo.realism.log_ri_and_grad(z, prior, backend=name)
        if name == "reference":
            l_ref, g_ref = l, g
    np.testing.assert_allclose(l, l_ref, rtol=1e-5)
    np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-5)
