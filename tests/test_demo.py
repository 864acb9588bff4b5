"""``fastgeo demo`` at a tiny size (in-process), its endpoint pairs, and its one-line errors."""
import json
import math
import sys

import numpy as np
import pytest

from cli_helpers import assert_one_line, run_cli

from fastgeo import priors
from fastgeo.endpoints import far_pairs, mixture_end_pairs, opposite_pairs

PAIRS = 3
N_POINTS = 22
METHODS = ("linear", "slerp", "optimal")
MODELS = ("semicircle", "normal", "kilcher")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One tiny demo over all three embedded models: (output folder, exit status, stdout).
    scikit-learn is hidden, as on the README's plain install (the test extra installs it)."""
    out = tmp_path_factory.mktemp("demo")
    hidden = {name: sys.modules.get(name) for name in ("sklearn", "sklearn.datasets")}
    sys.modules.update(dict.fromkeys(hidden))  # None: "import sklearn" raises ImportError
    try:
        status, stdout, _ = run_cli(["demo", "--pairs", str(PAIRS), "--n-points", str(N_POINTS), "--max-iter",
                                     "30", "--figures", "1", "--seed", "3", "--out", str(out),
                                     "--no-progress"])
    finally:  # only these two keys are put back: the modules the demo imported stay
        for name, module in hidden.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return out, status, stdout


def test_demo_writes_the_report(demo_run):
    out, status, stdout = demo_run
    assert status == 0
    report = json.loads((out / "metrics.json").read_text())
    assert list(report["models"]) == list(MODELS)
    assert report["settings"]["pairs"] == PAIRS and report["settings"]["n_points"] == N_POINTS
    for name in MODELS:
        folder = out / name
        for stem in ("strips", "steps-ri", "projection"):
            png = folder / f"pair0-{stem}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert not (folder / "pair1-strips.png").exists()  # --figures 1
        model = report["models"][name]
        assert len(model["pairs"]) == PAIRS
        for pair in model["pairs"]:
            assert set(pair) == set(METHODS)
            for metrics in pair.values():
                for key in ("energy", "log_index", "min_log_ri", "decoded_length", "max_step_over_mean"):
                    assert math.isfinite(metrics[key]), (name, key, metrics[key])
                assert metrics["energy"] >= 0 and metrics["log_index"] <= 0 and metrics["max_step_over_mean"] >= 1
        for method in METHODS:
            with np.load(folder / f"{method}.npz") as data:
                assert data["latents"].shape[:2] == (PAIRS, N_POINTS)
                assert data["decoded"].shape == (PAIRS, N_POINTS, 1, 8, 8)
                assert np.isfinite(data["log_ri"]).all() and np.isfinite(data["decoded"]).all()
                np.testing.assert_allclose(data["ri"], np.exp(data["log_ri"]), rtol=1e-6, atol=1e-300)
        # every method starts and ends at the same endpoints
        ends = [np.load(folder / f"{m}.npz")["latents"][:, [0, -1]] for m in METHODS]
        for e in ends[1:]:
            np.testing.assert_allclose(e, ends[0], rtol=0, atol=1e-5)
        # the linear path is the straight line between the endpoints (checks what the .npz holds)
        lin = np.load(folder / "linear.npz")["latents"]
        t = np.linspace(0, 1, N_POINTS)[None, :, None]
        np.testing.assert_allclose(lin, (1 - t) * lin[:, :1] + t * lin[:, -1:], atol=1e-5)
    # the printed table: one row per method, the five columns of the brief
    for heading in ("energy", "log ri(path)", "min ri (midpoints)", "decoded length", "max step / mean"):
        assert heading in stdout
    assert stdout.count("| optimal ") == len(MODELS)
    assert "report.md" in stdout and (out / "report.md").is_file()
    # the data-space measure is there without scikit-learn (the digits ship with fastgeo), and
    # every column the legend explains is in the table
    assert "digit distance" in stdout
    for name in MODELS:
        assert all(math.isfinite(p[m]["digit_distance"]) for p in report["models"][name]["pairs"] for m in METHODS)


def test_the_legend_explains_only_the_columns_present():
    from fastgeo.commands.demo import column_notes

    assert "digit distance" not in column_notes([])
    assert "digit distance" in column_notes([("digit_distance", "digit distance", "{:.3g}")])


def test_optimal_paths_avoid_the_semicircles_gap(demo_run):
    """The paper's proof of concept: the straight line between the horseshoe's tips crosses
    empty space; the ri-optimal path (even after a few iterations) keeps a higher ri."""
    out, _, _ = demo_run
    pairs = json.loads((out / "metrics.json").read_text())["models"]["semicircle"]["pairs"]
    for pair in pairs:
        assert pair["linear"]["min_ri"] < 0.2  # the gap is there
        assert pair["optimal"]["min_log_ri"] > pair["linear"]["min_log_ri"] + math.log(3.0)
        assert pair["optimal"]["energy"] < pair["linear"]["energy"]


# -- endpoint pairs ----------------------------------------------------------------------------------

def test_opposite_pairs_are_at_the_angle_with_prior_radii(rng):
    prior = priors.StandardNormal(16)
    seed = int(rng.integers(2**31))
    z0, z1 = opposite_pairs(prior, 4000, seed=seed, angle=150.0)
    cos = np.sum(z0 * z1, axis=1) / (np.linalg.norm(z0, axis=1) * np.linalg.norm(z1, axis=1))
    np.testing.assert_allclose(cos, math.cos(math.radians(150.0)), atol=1e-12)
    # |z1| is a prior radius: chi(16) has mean square 16
    from scipy import stats

    assert stats.kstest(np.sum(z1**2, axis=1), stats.chi2(16).cdf).pvalue > 1e-4
    again = opposite_pairs(prior, 4000, seed=seed, angle=150.0)
    np.testing.assert_array_equal(again[0], z0)


def test_mixture_end_pairs_sit_at_the_horseshoes_tips(rng):
    prior = priors.semicircle(20)
    z0, z1 = mixture_end_pairs(prior, 3000, seed=int(rng.integers(2**31)))
    # component 0 is centred at (2, 6), component 2 at (2, -6): the tips lie beyond them
    assert np.mean(z0[:, 1]) > 6.5 and np.mean(z1[:, 1]) < -6.5
    assert np.mean(z0[:, 0]) > 2 and np.mean(z1[:, 0]) > 2
    # the other 18 coordinates keep their N(0, 0.5) law
    np.testing.assert_allclose(np.var(z0[:, 2:], axis=0).mean(), 0.5, rtol=0.05)
    _, _, rule = far_pairs(prior, 2, seed=1)
    assert "mixture component" in rule


@pytest.mark.parametrize("prior", [priors.StandardNormal(4), priors.semicircle(4)])
def test_far_pairs_counts(prior):
    with pytest.raises(ValueError, match="non-negative integer"):
        far_pairs(prior, -1)
    z0, z1, _ = far_pairs(prior, 0)  # an empty batch is an empty result
    assert z0.shape == z1.shape == (0, 4)


# -- bad input ---------------------------------------------------------------------------------------

def test_demo_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    status, _, err = run_cli(["demo", "--models", "semicircle", "--pairs", "1", "--out", str(blocker / "sub"),
                              "--no-progress"])
    assert_one_line(status, err, "output folder")
