"""``fastgeo interpolate`` end to end on a generator defined here, resume after an interruption,
prior specs, and the one-line errors of bad input."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import assert_one_line, run_cli

from fastgeo import compare, priors
from fastgeo.endpoints import far_pairs
from fastgeo.priors import spec as prior_spec

ROOT = Path(__file__).resolve().parents[1]
D = 4
PRIOR = "semicircle:4"
GENERATOR = "test_cli_interpolate:TinyGenerator"  # this module, importable by pytest's rootdir rules


class TinyGenerator(torch.nn.Module):
    """A fixed random two-layer net from R^4 to 4x4 images in [0, 1]."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w1 = torch.nn.Parameter(torch.randn(D, 12, generator=g) / 2)
        self.w2 = torch.nn.Parameter(torch.randn(12, 16, generator=g) / 3)

    def forward(self, z):
        return torch.sigmoid(torch.tanh(z @ self.w1) @ self.w2).reshape(-1, 1, 4, 4)


def make_pairs(path, n, seed=0):
    z0, z1, _ = far_pairs(priors.semicircle(D), n, seed=seed)
    np.save(path, np.stack([z0, z1], axis=1))
    return path


def base_argv(pairs, out, *extra):
    return ["interpolate", "--generator", GENERATOR, "--prior", PRIOR, "--pairs", str(pairs), "--out", str(out),
            "--n-points", "12", "--max-iter", "25", "--no-progress", *extra]


# -- end to end --------------------------------------------------------------------------------------

def test_interpolate_end_to_end_in_a_fresh_process(tmp_path):
    pairs = make_pairs(tmp_path / "pairs.npy", 3)
    out = tmp_path / "results"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "fastgeo", *base_argv(pairs, out, "--figures", "1")],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # --no-progress
    assert "| optimal " in proc.stdout and "| linear " in proc.stdout
    n = 3
    for method in ("linear", "slerp", "optimal"):
        with np.load(out / f"{method}.npz") as data:
            assert data["latents"].shape == (n, 12, D)
            assert data["decoded"].shape == (n, 12, 1, 4, 4)
            assert data["ri"].shape == data["log_ri"].shape == (n, 12)
            assert np.isfinite(data["log_ri"]).all()
            # the decoded outputs are the generator's outputs at the latents
            with torch.no_grad():
                again = TinyGenerator()(torch.as_tensor(data["latents"].reshape(-1, D), dtype=torch.float32))
            np.testing.assert_allclose(data["decoded"].reshape(-1, 16), again.reshape(-1, 16).numpy(), atol=1e-5)
            # the endpoints are the user's
            np.testing.assert_allclose(data["latents"][:, [0, -1]], np.load(pairs), atol=1e-6)
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["pairs"]) == n and set(metrics["summary"]) == {"linear", "slerp", "optimal"}
    for pair in metrics["pairs"]:
        for m in pair["methods"].values():
            assert math.isfinite(m["energy"]) and math.isfinite(m["log_index"])
        # started from the linear path, the solver only lowers the energy
        assert pair["methods"]["optimal"]["energy"] <= pair["methods"]["linear"]["energy"] * (1 + 1e-6)
    # "auto" (the default) is recorded as the method that ran, per pair, in the arrays and metrics
    with np.load(out / "optimal.npz") as data:
        assert data["solver"].tolist() == ["lbfgs-gn"] * n
    assert all(pair["methods"]["optimal"]["solver"] == "lbfgs-gn" for pair in metrics["pairs"])
    assert metrics["summary"]["optimal"]["solver"] == {"lbfgs-gn": n}
    assert metrics["settings"]["solver"] == "auto" and "Solver (lbfgs-gn): " in proc.stdout
    for stem in ("strips", "steps-ri", "projection"):
        assert (out / "figures" / f"pair0-{stem}.png").is_file()
    assert not (out / "figures" / "pair1-strips.png").exists()


def test_summary_and_solver_line_name_the_methods_that_ran():
    """Per pair the method "auto" chose; the summary counts them and the solver line names them
    (each with its count where they differ); files written before ``solver`` existed lack it."""
    def pair(solver, status="converged"):
        row = {"energy": 1.0, "min_log_ri": -1.0, "status": status, "iterations": 3, "relative_gap": 1e-7}
        return {"optimal": {**row, **({"solver": solver} if solver else {})}}

    summary = compare.summarize([pair("lbfgs-gn"), pair("lbfgs", "max_iter"), pair("lbfgs-gn")])["optimal"]
    assert summary["solver"] == {"lbfgs": 1, "lbfgs-gn": 2}
    line = compare.solver_line(summary)
    assert line.startswith("Solver (lbfgs on 1, lbfgs-gn on 2): 2/3 paths converged, 1 max_iter")
    one = compare.solver_line(compare.summarize([pair("lbfgs-gn")] * 2)["optimal"])
    assert one.startswith("Solver (lbfgs-gn): 2/2 paths converged")
    old = compare.summarize([pair(None)])["optimal"]
    assert "solver" not in old and compare.solver_line(old).startswith("Solver: 1/1 paths converged")
    arrays = {"status": np.array(["converged"]), "iterations": np.array([4]), "solver": np.array(["lbfgs-gn"])}
    assert compare.solver_fields(arrays, 0) == {"status": "converged", "iterations": 4, "solver": "lbfgs-gn"}
    assert compare.solver_fields({"energy": np.ones(1)}, 0) == {}


def test_generator_from_a_file_and_a_factory(tmp_path):
    (tmp_path / "mynet.py").write_text(
        "import torch\n"
        "def make():\n"
        "    return torch.nn.Sequential(torch.nn.Linear(4, 9), torch.nn.Tanh())\n")
    pairs = make_pairs(tmp_path / "pairs.npy", 2)
    status, stdout, err = run_cli(["interpolate", "--generator", f"{tmp_path / 'mynet.py'}:make()", "--prior",
                                   "normal:4", "--pairs", str(pairs), "--out", str(tmp_path / "r"),
                                   "--methods", "linear,matched_linear", "--n-points", "6", "--no-progress"])
    assert status == 0, err
    with np.load(tmp_path / "r" / "matched_linear.npz") as data:
        assert data["decoded"].shape == (2, 6, 9)
    assert not (tmp_path / "r" / "optimal.npz").exists()


# -- resume --------------------------------------------------------------------------------------------

class Interrupt:
    """Stands in for compare.run_methods: counts calls and raises KeyboardInterrupt (Ctrl-C) on
    call number ``at`` (1-based; None: never)."""

    def __init__(self, at=None):
        self.at, self.calls, self.real = at, 0, compare.run_methods

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.real(*args, **kwargs)


def test_resume_after_an_interruption_recomputes_only_what_was_lost(tmp_path, monkeypatch):
    pairs = make_pairs(tmp_path / "pairs.npy", 5, seed=4)
    out = tmp_path / "run"
    argv = base_argv(pairs, out, "--batch-size", "2")  # 3 batches: pairs 0-1, 2-3, 4

    first = Interrupt(at=2)
    monkeypatch.setattr(compare, "run_methods", first)
    status, stdout, _ = run_cli(argv)
    assert status == 130  # interrupted in the second batch
    assert "1 of 3 batches are saved" in stdout
    saved = out / "batches" / "batch-00000.npz"
    assert saved.is_file() and not (out / "batches" / "batch-00001.npz").exists()
    assert not (out / "optimal.npz").exists()
    assert json.loads((out / "manifest.json").read_text())["complete"] is False
    stamp = saved.stat().st_mtime_ns
    stale = out / "batches" / ".tmp-killed.npz"  # what a write cut short by SIGKILL leaves
    stale.write_bytes(b"PK\x03\x04 half a file")

    second = Interrupt()
    monkeypatch.setattr(compare, "run_methods", second)
    status, stdout, err = run_cli(argv)
    assert status == 0, err
    assert second.calls == 2  # batches 2 and 3 only
    assert "resumed: 1 of 3 batches" in stdout
    assert saved.stat().st_mtime_ns == stamp  # the finished batch was not rewritten
    assert not stale.exists()
    assert json.loads((out / "manifest.json").read_text())["complete"] is True

    # the resumed results equal those of an uninterrupted run
    fresh = tmp_path / "fresh"
    status, _, err = run_cli(base_argv(pairs, fresh, "--batch-size", "2"))
    assert status == 0, err
    for method in ("linear", "slerp", "optimal"):
        a, b = np.load(out / f"{method}.npz"), np.load(fresh / f"{method}.npz")
        assert a["latents"].shape == (5, 12, D)
        np.testing.assert_allclose(a["latents"], b["latents"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(a["energy"], b["energy"], rtol=1e-6)

    # a finished run, run again, computes nothing
    third = Interrupt()
    monkeypatch.setattr(compare, "run_methods", third)
    status, stdout, _ = run_cli(argv)
    assert status == 0 and third.calls == 0 and "resumed: 3 of 3 batches" in stdout


def test_starts_reach_the_arrays_and_the_settings(tmp_path):
    """--starts N: every optimal path records the start it came from; a rerun with other starts
    is refused; without --starts the settings keep the form of runs made before it existed."""
    pairs = make_pairs(tmp_path / "pairs.npy", 3)
    out = tmp_path / "run"
    status, stdout, err = run_cli(base_argv(pairs, out, "--methods", "optimal", "--starts", "3"))
    assert status == 0, err
    with np.load(out / "optimal.npz") as data:
        assert data["start"].shape == (3,) and set(data["start"].tolist()) <= {0, 1, 2}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["starts"] == 3
    status, _, err = run_cli(base_argv(pairs, out, "--methods", "optimal", "--starts", "2"))
    assert status == 2 and "other settings" in err and "starts" in err
    status, _, err = run_cli(base_argv(pairs, tmp_path / "one", "--methods", "optimal"))
    assert status == 0, err
    assert "starts" not in json.loads((tmp_path / "one" / "metrics.json").read_text())["settings"]
    with np.load(tmp_path / "one" / "optimal.npz") as data:
        assert data["start"].tolist() == [0, 0, 0]


def test_other_settings_into_the_same_folder_are_refused(tmp_path):
    pairs = make_pairs(tmp_path / "pairs.npy", 1)
    out = tmp_path / "run"
    assert run_cli(base_argv(pairs, out, "--methods", "linear"))[0] == 0
    status, _, err = run_cli(base_argv(pairs, out, "--methods", "linear", "--alpha", "0.5"))
    assert status == 2 and len(err.strip().splitlines()) == 1 and "other settings" in err and "alpha" in err


# -- prior specs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, cls, dim", [
    ("normal:7", priors.StandardNormal, 7),
    (" Kilcher:64 ", priors.GammaNorm, 64),
    ("studentt:5,df=3", priors.StudentT, 5),
    ("cauchy:3", priors.Cauchy, 3),
    ("ball:3,radius=2", priors.UniformBall, 3),
    ("box:2,low=-2,high=3", priors.UniformBox, 2),
    ("semicircle:20", priors.GaussianMixture, 20),
])
def test_prior_specs(spec, cls, dim):
    prior = prior_spec.parse(spec)
    assert isinstance(prior, cls) and prior.dim == dim


def test_prior_spec_values_reach_the_prior():
    kil = prior_spec.parse("kilcher:64")
    # the default scale makes E|z|^2 = D, as for the embedded kilcher model
    assert kil.shape == 0.5 and kil.scale == pytest.approx(math.sqrt(64 / 0.75))
    z = prior_spec.parse("box:2,low=-2,high=3").sample(2000, seed=1)
    assert z.min() >= -2 and z.max() <= 3 and z.min() < -1.9 and z.max() > 2.9
    assert prior_spec.canonical("StudentT: 5 , df=3") == prior_spec.canonical("studentt:5,df=3.0")


@pytest.mark.parametrize("spec, words", [
    ("nosuch:4", "unknown prior"),
    ("normal", "needs a dimension"),
    ("normal:0", "positive integer"),
    ("normal:4.5", "positive integer"),
    ("studentt:4", "df="),
    ("normal:4,df=3", "unexpected"),
    ("ball:4,radius=x", "must be a number"),
    ("ball:4,radius=nan", "finite"),
    ("gaussian:4,std=0", "std"),
])
def test_bad_prior_specs(spec, words):
    with pytest.raises(ValueError, match=words):
        prior_spec.parse(spec)


# -- bad input: one line on stderr, exit status 2, no traceback --------------------------------------

def test_generator_that_does_not_import_in_a_fresh_process(tmp_path):
    pairs = make_pairs(tmp_path / "pairs.npy", 1)
    (tmp_path / "broken.py").write_text("import torch\nraise RuntimeError('no weights here')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "fastgeo", "interpolate", "--generator", "broken:G", "--prior",
                           PRIOR, "--pairs", str(pairs), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert_one_line(proc.returncode, proc.stderr, "broken", "no weights here")


def _bad_pairs(tmp_path, name, array):
    np.save(tmp_path / name, array)
    return tmp_path / name


@pytest.mark.parametrize("case", ["missing module", "missing attribute", "not callable", "bad spec", "file raises",
                                  "wrong dimension"])
def test_bad_generators(tmp_path, case):
    pairs = make_pairs(tmp_path / "pairs.npy", 1)
    (tmp_path / "raises.py").write_text("raise ImportError('cannot find libfoo')\n")
    (tmp_path / "lin.py").write_text("import torch\nG = torch.nn.Linear(7, 3)\n")
    spec, words = {
        "missing module": ("no_such_module_xyz:G", ["no_such_module_xyz"]),
        "missing attribute": ("test_cli_interpolate:Nope", ["no attribute", "Nope"]),
        "not callable": ("test_cli_interpolate:D", ["not a torch module"]),
        "bad spec": ("test_cli_interpolate", ["MODULE:ATTR"]),
        "file raises": (f"{tmp_path / 'raises.py'}:G", ["cannot find libfoo"]),
        "wrong dimension": (f"{tmp_path / 'lin.py'}:G", ["4-dimensional"]),  # a net for 7-D latents
    }[case]
    argv = ["interpolate", "--generator", spec, "--prior", PRIOR, "--pairs", str(pairs), "--out",
            str(tmp_path / "r"), "--no-progress"]
    assert_one_line(*run_cli(argv)[::2], *words)


@pytest.mark.parametrize("case", ["2-D", "three endpoints", "empty", "NaN", "inf", "strings", "missing", "npz",
                                  "dimension"])
def test_bad_pairs_files(tmp_path, case):
    good = np.load(make_pairs(tmp_path / "good.npy", 3))
    if case == "missing":
        path, words = tmp_path / "nope.npy", ["no such file"]
    elif case == "npz":
        path, words = tmp_path / "p.npz", ["several arrays"]
        np.savez(path, a=good)
    else:
        array, words = {
            "2-D": (good[:, 0], ["shape (3, 4)", "(B, 2, D)"]),
            "three endpoints": (np.concatenate([good, good[:, :1]], axis=1), ["shape (3, 3, 4)"]),
            "empty": (good[:0], ["(0, 2, 4)"]),
            "NaN": (np.where(np.arange(3)[:, None, None] == 1, np.nan, good), ["NaN or inf", "pairs 1"]),
            "inf": (np.where(np.arange(3)[:, None, None] == 2, np.inf, good), ["NaN or inf", "pairs 2"]),
            "strings": (np.array([[["a"] * 4] * 2]), ["expected real numbers"]),
            "dimension": (np.zeros((2, 2, 5)) + 1.0, ["5-dimensional"]),
        }[case]
        path = _bad_pairs(tmp_path, "bad.npy", array)
    argv = ["interpolate", "--generator", GENERATOR, "--prior", PRIOR, "--pairs", str(path), "--out",
            str(tmp_path / "r"), "--no-progress"]
    assert_one_line(*run_cli(argv)[::2], "--pairs" if case != "dimension" else "--prior", *words)


def test_unknown_prior_and_unwritable_folder(tmp_path):
    pairs = make_pairs(tmp_path / "pairs.npy", 1)
    argv = base_argv(pairs, tmp_path / "r")
    argv[argv.index("--prior") + 1] = "banana:4"
    assert_one_line(*run_cli(argv)[::2], "unknown prior", "banana")
    (tmp_path / "a-file").write_text("x")
    for out, words in ((tmp_path / "a-file", ["not a folder"]), (tmp_path / "a-file" / "sub", ["cannot write"])):
        assert_one_line(*run_cli(base_argv(pairs, out))[::2], "output folder", *words)


def test_endpoints_outside_a_bounded_support(tmp_path):
    path = _bad_pairs(tmp_path, "p.npy", np.array([[[0.0] * D, [5.0] * D]]))
    argv = base_argv(path, tmp_path / "r")
    argv[argv.index("--prior") + 1] = f"ball:{D}"
    assert_one_line(*run_cli(argv)[::2], "outside the support")


@pytest.mark.parametrize("argv", [
    ["interpolate", "--prior", "normal:4", "--pairs", "p.npy"],  # no --generator
    ["interpolate", "--generator", "m:G", "--prior", "normal:4", "--pairs", "p.npy", "--methods", "linear,zigzag"],
    ["interpolate", "--generator", "m:G", "--prior", "normal:4", "--pairs", "p.npy", "--batch-size", "0"],
    ["interpolate", "--generator", "m:G", "--prior", "normal:4", "--pairs", "p.npy", "--starts", "0"],
])
def test_bad_options(argv):
    assert_one_line(*run_cli(argv)[::2])
