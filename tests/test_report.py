"""Path metrics and figures (fastgeo.report): analytic cases, invariants, bad input."""
import math

import numpy as np
import pytest
import torch

import fastgeo
from fastgeo.report import (distance_and_ri_plot, image_grid, image_strips, path_metrics,
                            project_onto_endpoints, projection_plot, step_distances, strip_indices)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    from matplotlib.image import imread

    with open(path, "rb") as fh:
        assert fh.read(8) == PNG_SIGNATURE
    pixels = imread(path)
    assert pixels.shape[0] > 50 and pixels.shape[1] > 50
    assert pixels[..., :3].std() > 0.01  # something is drawn: not a blank canvas


# -- projection (paper eq. 4) ---------------------------------------------------------------

@pytest.mark.parametrize("dim", [2, 7, 20])
def test_projection_recovers_coefficients_and_ignores_orthogonal_part(rng, dim):
    x0, xK = rng.standard_normal(dim), rng.standard_normal(dim)
    ab = rng.uniform(-3, 3, size=(13, 2))
    points = ab[:, :1] * x0 + ab[:, 1:] * xK
    if dim > 2:
        q, _ = np.linalg.qr(np.stack([x0, xK], axis=1), mode="complete")
        orth = rng.standard_normal((13, dim - 2)) @ q[:, 2:].T * 5.0  # orthogonal to span(x0, xK)
        points = points + orth
    latent = np.vstack([x0, points, xK])
    coef = project_onto_endpoints(latent)
    np.testing.assert_allclose(coef[1:-1], ab, rtol=0, atol=1e-10)
    np.testing.assert_allclose(coef[0], [1, 0], atol=1e-12)
    np.testing.assert_allclose(coef[-1], [0, 1], atol=1e-12)
    # torch input, explicit endpoints: the same numbers
    np.testing.assert_allclose(project_onto_endpoints(torch.from_numpy(latent), x0, xK), coef, atol=1e-12)


def test_projection_of_linear_path_lies_on_the_segment(rng):
    x0, xK = rng.standard_normal(5), rng.standard_normal(5)
    t = np.linspace(0, 1, 11)[:, None]
    coef = project_onto_endpoints((1 - t) * x0 + t * xK)
    np.testing.assert_allclose(coef, np.hstack([1 - t, t]), atol=1e-12)


def test_projection_rejects_parallel_or_zero_endpoints(rng):
    x0 = rng.standard_normal(4)
    with pytest.raises(ValueError, match="parallel"):
        project_onto_endpoints(np.vstack([x0, 0.3 * x0, -2 * x0]))
    with pytest.raises(ValueError, match="parallel"):
        project_onto_endpoints(np.vstack([x0, x0, np.zeros(4)]))
    with pytest.raises(ValueError, match="shape"):
        project_onto_endpoints(x0)
    with pytest.raises(ValueError, match="NaN"):
        project_onto_endpoints(np.vstack([x0, [np.nan] * 4, -x0 + 1]))


# -- path metrics --------------------------------------------------------------------------

def test_metrics_of_straight_evenly_spaced_path_under_linear_generator(rng):
    d, n, k = 6, 30, 40
    A = rng.standard_normal((n, d))
    x0, xK = rng.standard_normal(d), rng.standard_normal(d)
    t = np.linspace(0, 1, k + 1)[:, None]
    latent = (1 - t) * x0 + t * xK
    decoded = latent @ A.T
    log_ri = -rng.uniform(0, 3, size=k + 1)
    m = path_metrics(latent, decoded, log_ri, alpha=0.5)
    assert m["max_step_over_mean"] == pytest.approx(1.0, abs=1e-12)
    assert m["decoded_length"] == pytest.approx(np.linalg.norm(A @ (xK - x0)), rel=1e-12)
    assert m["latent_length"] == pytest.approx(np.linalg.norm(xK - x0), rel=1e-12)
    assert m["min_log_ri"] == log_ri.min()
    assert m["min_ri"] == pytest.approx(math.exp(log_ri.min()), rel=1e-15)
    assert m["n_points"] == k + 1
    np.testing.assert_allclose(step_distances(decoded), np.full(k, np.linalg.norm(A @ (xK - x0)) / k),
                               rtol=1e-12)


def test_metrics_on_a_hand_computed_tiny_path():
    decoded = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 5.0]])  # steps 5 and 1
    latent = np.array([[0.0], [1.0], [3.0]])
    ri = np.array([0.5, 0.25, 1.0])
    alpha = 0.5
    a0, a1 = alpha * (0.5 + 0.25) / 2, alpha * (0.25 + 1.0) / 2
    m = path_metrics(latent, decoded, np.log(ri), alpha)
    assert m["energy"] == pytest.approx(math.log(a0) ** 2 * 25 + math.log(a1) ** 2 * 1, rel=1e-14)
    assert m["log_index"] == pytest.approx(math.log(0.375) * 5 + math.log(0.625) * 1, rel=1e-14)
    assert m["decoded_length"] == pytest.approx(6.0, rel=1e-15)
    assert m["latent_length"] == pytest.approx(3.0, rel=1e-15)
    assert m["max_step_over_mean"] == pytest.approx(5.0 / 3.0, rel=1e-14)
    assert m["min_ri"] == pytest.approx(0.25, rel=1e-15)


def test_metrics_batch_torch_and_far_points(rng):
    b, k, d = 3, 9, 4
    latent = rng.standard_normal((b, k + 1, d))
    decoded = rng.random((b, k + 1, 1, 3, 3))
    log_ri = -rng.uniform(0, 5, size=(b, k + 1))
    log_ri[1, 4] = -2000.0  # ri underflows to 0; its log does not
    batch = path_metrics(latent, decoded, log_ri, 0.3)
    assert isinstance(batch, list) and len(batch) == b
    for i in range(b):
        single = path_metrics(latent[i], decoded[i], log_ri[i], 0.3)
        assert single == pytest.approx(batch[i], rel=1e-12)
        assert single["energy"] == pytest.approx(
            float(fastgeo.path_energy(decoded[i][None], log_ri[i][None], 0.3)[0]), rel=1e-12)
    assert batch[1]["min_ri"] == 0.0 and batch[1]["min_log_ri"] == -2000.0
    as_torch = path_metrics(torch.from_numpy(latent), torch.from_numpy(decoded).float(),
                            torch.from_numpy(log_ri), 0.3)
    for got, want in zip(as_torch, batch):
        assert got == pytest.approx(want, rel=1e-5)


def test_metrics_of_a_path_that_does_not_move():
    m = path_metrics(np.zeros((4, 2)), np.ones((4, 5)), np.zeros(4), 0.5)
    assert m["decoded_length"] == 0.0 and m["max_step_over_mean"] == 1.0 and m["energy"] == 0.0


def test_metrics_reject_bad_input(rng):
    latent, decoded, log_ri = rng.standard_normal((5, 2)), rng.random((5, 8)), np.zeros(5)
    with pytest.raises(ValueError, match="disagree"):
        path_metrics(latent[:4], decoded, log_ri, 0.5)
    with pytest.raises(ValueError, match="at least 2 points"):
        path_metrics(latent[:1], decoded[:1], log_ri[:1], 0.5)
    with pytest.raises(ValueError, match="expected one path"):
        path_metrics(latent, decoded, log_ri[None, None], 0.5)
    bad = latent.copy()
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="latent contains NaN or inf"):
        path_metrics(bad, decoded, log_ri, 0.5)
    with pytest.raises(ValueError, match="log_ri contains NaN"):
        path_metrics(latent, decoded, np.array([0, np.nan, 0, 0, 0.0]), 0.5)
    with pytest.raises(ValueError, match="alpha"):
        path_metrics(latent, decoded, log_ri, 1.0)


# -- figures ----------------------------------------------------------------------------------

def test_strip_indices():
    assert strip_indices(51, 5) == list(range(0, 51, 5))
    assert strip_indices(50, 5) == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 49]
    assert strip_indices(2, 5) == [0, 1]
    with pytest.raises(ValueError, match="every"):
        strip_indices(10, 0)


def test_image_strips_layout_and_file(rng, tmp_path):
    paths = {"linear": rng.random((51, 1, 8, 8)), "optimal": torch.rand(51, 8, 8, dtype=torch.float64)}
    fig = image_strips(paths, every=5)
    assert len(fig.axes) == 2 * 11  # two rows, points 0, 5, .., 50
    assert fig.axes[0].get_ylabel() == "linear" and fig.axes[11].get_ylabel() == "optimal"
    out = image_strips({"rgb": rng.random((11, 3, 6, 6)) * 4}, every=2, path=tmp_path / "strips.png")
    assert out == str(tmp_path / "strips.png")
    assert_png(out)


def test_image_strips_reject_bad_shapes(rng):
    with pytest.raises(ValueError, match=r"\(K\+1, H, W\)"):
        image_strips({"a": rng.random((11, 2, 8, 8))})
    with pytest.raises(ValueError, match=r"\(K\+1, H, W\)"):
        image_strips({"a": rng.random((11, 64))})
    with pytest.raises(ValueError, match="same number and shape"):
        image_strips({"a": rng.random((11, 8, 8)), "b": rng.random((12, 8, 8))})
    with pytest.raises(ValueError, match="NaN"):
        image_strips({"a": np.full((3, 8, 8), np.nan)})
    with pytest.raises(TypeError, match="dict"):
        image_strips(rng.random((11, 8, 8)))
    with pytest.raises(ValueError, match="every"):
        image_strips({"a": rng.random((11, 8, 8))}, every=-1)


def test_distance_and_ri_plot(rng, tmp_path):
    decoded = {"linear": rng.random((21, 1, 8, 8)), "optimal": rng.random((21, 1, 8, 8))}
    log_ri = {"linear": -rng.uniform(0, 40, 21), "optimal": -rng.uniform(0, 0.5, 21)}
    assert_png(distance_and_ri_plot(decoded, log_ri, tmp_path / "d.png", title="t"))
    fig = distance_and_ri_plot(decoded, log_ri)  # ri down to e^-40: log scale
    assert "log" in fig.axes[1].get_ylabel()
    steps = fig.axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(steps, step_distances(decoded["linear"]), rtol=1e-12)
    fig = distance_and_ri_plot(decoded, {k: np.maximum(v, -0.1) for k, v in log_ri.items()})
    assert "log" not in fig.axes[1].get_ylabel()
    log_ri["linear"][3] = -np.inf  # zero density: a gap, not an error
    assert_png(distance_and_ri_plot(decoded, log_ri, tmp_path / "gap.png", log_scale=True))


def test_distance_and_ri_plot_rejects_bad_input(rng):
    decoded = {"linear": rng.random((21, 8, 8))}
    with pytest.raises(ValueError, match="different methods"):
        distance_and_ri_plot(decoded, {"optimal": np.zeros(21)})
    with pytest.raises(ValueError, match=r"\(K\+1,\)"):
        distance_and_ri_plot(decoded, {"linear": np.zeros(20)})
    with pytest.raises(ValueError, match="NaN"):
        distance_and_ri_plot(decoded, {"linear": np.full(21, np.nan)})
    with pytest.raises(ValueError, match="log_scale"):
        distance_and_ri_plot(decoded, {"linear": np.zeros(21)}, log_scale="yes")


def test_projection_plot(rng, tmp_path):
    prior = fastgeo.priors.semicircle(20)
    ends = prior.sample(2, seed=rng)
    t = np.linspace(0, 1, 51)[:, None]
    linear = (1 - t) * ends[0] + t * ends[1]
    bent = linear + np.sin(np.pi * t) * rng.standard_normal(20)
    paths = {"linear": linear, "optimal": torch.from_numpy(bent)}
    fig = projection_plot(paths)
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_xdata(), 1 - t[:, 0], atol=1e-10)  # a of the linear path
    out = projection_plot(paths, tmp_path / "p.png", prior_samples=prior.sample(500, seed=rng), title="x")
    assert_png(out)
    assert len(projection_plot(paths, prior_samples=prior.sample(50, seed=rng), coords=(2, 5)).axes) == 2


def test_projection_plot_rejects_bad_input(rng):
    a = rng.standard_normal((11, 4))
    b = a.copy()
    b[-1] += 1.0
    with pytest.raises(ValueError, match="endpoints"):
        projection_plot({"linear": a, "optimal": b})
    with pytest.raises(ValueError, match="latent dimension"):
        projection_plot({"linear": a, "optimal": rng.standard_normal((11, 5))})
    with pytest.raises(ValueError, match=r"\(K\+1, D\)"):
        projection_plot({"linear": a[:, :, None]})
    with pytest.raises(ValueError, match="prior_samples"):
        projection_plot({"linear": a}, prior_samples=rng.standard_normal((10, 3)))
    with pytest.raises(ValueError, match="coords"):
        projection_plot({"linear": a}, prior_samples=rng.standard_normal((10, 4)), coords=(0, 4))
    with pytest.raises(TypeError, match="path"):
        projection_plot({"linear": a}, path=3)


def test_image_grid(rng, tmp_path):
    assert_png(image_grid(rng.random((23, 1, 8, 8)), tmp_path / "g.png", ncols=10, title="g"))
    assert_png(image_grid(torch.rand(4, 3, 8, 8), tmp_path / "rgb.png"))
    with pytest.raises(ValueError, match="shape"):
        image_grid(rng.random((0, 8, 8)))
    with pytest.raises(ValueError, match="ncols"):
        image_grid(rng.random((4, 8, 8)), ncols=0)
