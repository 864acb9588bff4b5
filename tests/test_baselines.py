"""Baseline interpolations (MATH.md 5): linear, slerp, distribution-matched linear.

They return the same InterpolationResult as fastgeo.interpolate, with their path decoded and
scored; the path formulas are checked against independent numpy references.
"""
import numpy as np
import pytest
import torch

import fastgeo
from fastgeo.priors import StandardNormal, UniformBox, semicircle

BASELINES = [fastgeo.linear_path, fastgeo.slerp_path, fastgeo.matched_linear_path]


def identity(x):
    return x


def slerp_reference(p, q, t):
    """White (2016) slerp of one pair, float64 numpy, straight from the formula."""
    w = np.arccos(np.clip(np.dot(p / np.linalg.norm(p), q / np.linalg.norm(q)), -1, 1))
    return np.array([np.sin((1 - s) * w) / np.sin(w) * p + np.sin(s * w) / np.sin(w) * q for s in t])


def test_linear_path(rng):
    z0, z1 = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    res = fastgeo.linear_path(identity, z0, z1, StandardNormal(5), n_points=7)
    t = np.linspace(0, 1, 7)[None, :, None]
    np.testing.assert_allclose(res.path, (1 - t) * z0[:, None] + t * z1[:, None], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(res.path[:, 0], z0)
    np.testing.assert_array_equal(res.path[:, -1], z1)
    assert res.status == ("baseline",) * 3 and not res.converged.any() and (res.iterations == 0).all()


def test_slerp_matches_formula_and_keeps_endpoints(rng):
    b, d, n = 4, 6, 9
    z0, z1 = rng.standard_normal((b, d)), rng.standard_normal((b, d)) * 2
    res = fastgeo.slerp_path(identity, z0, z1, StandardNormal(d), n_points=n)
    t = np.linspace(0, 1, n)
    for i in range(b):
        np.testing.assert_allclose(res.path[i], slerp_reference(z0[i], z1[i], t), rtol=1e-12, atol=1e-12)
    # for endpoints of equal norm, slerp stays on their sphere
    z1 = z1 / np.linalg.norm(z1, axis=1, keepdims=True) * np.linalg.norm(z0, axis=1, keepdims=True)
    res = fastgeo.slerp_path(identity, z0, z1, StandardNormal(d), n_points=n)
    radius = np.linalg.norm(z0, axis=1)[:, None] * np.ones(n)
    np.testing.assert_allclose(np.linalg.norm(res.path, axis=2), radius)


@pytest.mark.parametrize("relation", ["parallel", "antiparallel", "zero", "nearly_parallel"])
def test_slerp_degenerate_pairs_fall_back_to_linear(rng, relation):
    p = rng.standard_normal(4)
    q = {"parallel": 2.5 * p, "antiparallel": -0.5 * p, "zero": np.zeros(4),
         "nearly_parallel": 3 * p + 1e-9 * rng.standard_normal(4)}[relation]
    res = fastgeo.slerp_path(identity, p, q, StandardNormal(4), n_points=6)
    assert np.isfinite(res.path).all()
    t = np.linspace(0, 1, 6)[:, None]
    np.testing.assert_allclose(res.path, (1 - t) * p + t * q, rtol=1e-7, atol=1e-7)


def test_matched_linear(rng):
    z0, z1 = rng.standard_normal((2, 8)), rng.standard_normal((2, 8))
    n = 11
    res = fastgeo.matched_linear_path(identity, z0, z1, StandardNormal(8), n_points=n)
    t = np.linspace(0, 1, n)[None, :, None]
    want = ((1 - t) * z0[:, None] + t * z1[:, None]) / np.sqrt((1 - t) ** 2 + t ** 2)
    # the rounding of a sum is relative to its terms' magnitude, not to the sum: where the two
    # terms nearly cancel, the entry itself is no scale (FASTGEO_TEST_SEED=5546626391575954232
    # gave a relative difference of 1.8e-13 at an entry 1000x smaller than its terms)
    terms = (np.abs((1 - t) * z0[:, None]) + np.abs(t * z1[:, None])) / np.sqrt((1 - t) ** 2 + t ** 2)
    assert np.all(np.abs(res.path - want) <= 1e-13 * terms)
    # its purpose (Agustsson et al.): for independent N(0, I) endpoints every point is N(0, I),
    # so midpoints keep the norm of typical samples (the linear midpoint's shrinks by sqrt 2)
    d, m = 64, 4000
    a, b = rng.standard_normal((m, d)), rng.standard_normal((m, d))
    mid = fastgeo.matched_linear_path(identity, a, b, StandardNormal(d), n_points=3).path[:, 1]
    assert abs(np.mean(np.sum(mid ** 2, axis=1)) / d - 1) < 0.02


@pytest.mark.parametrize("baseline", BASELINES)
def test_baselines_score_like_interpolate(rng, baseline):
    d, n = 3, 8
    gen = torch.nn.Sequential(torch.nn.Linear(d, 5), torch.nn.Tanh()).double().eval()
    prior = semicircle(d, kde_samples=1000)
    z0 = torch.from_numpy(rng.standard_normal((2, d)))
    z1 = torch.from_numpy(rng.standard_normal((2, d)))
    res = baseline(gen, z0, z1, prior, n_points=n, alpha=0.25)
    with torch.no_grad():
        decoded = gen(res.path.reshape(-1, d)).reshape(2, n, -1)
    torch.testing.assert_close(res.decoded, decoded)
    log_ri = fastgeo.log_ri(res.path, prior)
    torch.testing.assert_close(res.log_ri, log_ri)
    torch.testing.assert_close(res.ri, log_ri.exp())
    torch.testing.assert_close(res.energy, fastgeo.path_energy(decoded, log_ri, 0.25))
    torch.testing.assert_close(res.path_log_index, fastgeo.path_log_index(decoded, log_ri))
    torch.testing.assert_close(res.distances, (decoded[:, 1:] - decoded[:, :-1]).norm(dim=2))
    assert res.energy_history.shape == (2, 1) and res.alpha == 0.25
    assert res.n_forward == 2 * n and res.n_vjp == 0
    # the optimiser starts from the linear path and can only improve on it
    if baseline is fastgeo.linear_path:
        opt = fastgeo.interpolate(gen, z0, z1, prior, n_points=n, alpha=0.25)
        torch.testing.assert_close(opt.energy_history[:, 0], res.energy)
        assert (opt.energy <= res.energy).all()


@pytest.mark.parametrize("baseline", BASELINES)
def test_baselines_keep_type_dtype_and_shape(rng, baseline):
    z0 = torch.from_numpy(rng.standard_normal(3).astype(np.float32))
    z1 = torch.from_numpy(rng.standard_normal(3).astype(np.float32))
    res = baseline(identity, z0, z1, StandardNormal(3), n_points=5)
    assert res.path.dtype == torch.float32 and res.path.shape == (5, 3)
    assert res.ri.shape == (5,) and res.distances.shape == (4,) and res.status == "baseline"


@pytest.mark.parametrize("baseline", BASELINES)
def test_baselines_reject_bad_input(baseline):
    prior = StandardNormal(2)
    with pytest.raises(ValueError, match="n_points"):
        baseline(identity, np.zeros(2), np.ones(2), prior, n_points=1)
    with pytest.raises(ValueError, match="alpha"):
        baseline(identity, np.zeros(2), np.ones(2), prior, alpha=1.0)
    with pytest.raises(ValueError, match="same shape"):
        baseline(identity, np.zeros(2), np.ones((2, 2)), prior)
    with pytest.raises(TypeError, match="numpy"):
        baseline(identity, np.zeros(2), torch.ones(2, dtype=torch.float64), prior)


def test_baseline_through_zero_density_warns():
    # a slerp between box corners bulges out of the box: flagged, with energy +inf
    box = UniformBox([-1.0, -1.0], [1.0, 1.0])
    z0, z1 = np.array([0.95, 0.95]), np.array([0.95, -0.95])
    with pytest.warns(UserWarning, match="zero density"):
        res = fastgeo.slerp_path(identity, z0, z1, box, n_points=7)
    assert np.isinf(res.energy) and res.path_log_index == -np.inf
