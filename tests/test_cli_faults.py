"""``fastgeo interpolate`` under faults and mistakes.

- Fault injection of the resumable run: a run killed (SIGKILL) mid-way, batches truncated
  and bit-flipped on disk, a setting changed; every rerun either refuses (one line, exit 2)
  or ends with results equal, bit for bit, to an uninterrupted run.
- A table of user mistakes: each exits with status 2 and one line naming the culprit;
  fastgeo's own bugs keep their traceback.
"""
import json
import os
import signal
import subprocess
import struct
import sys
import time
import zipfile

import numpy as np
import pytest
import torch

from cli_helpers import assert_one_line, run_cli
from test_cli_interpolate import D, ROOT, TinyGenerator, base_argv, make_pairs

from fastgeo import cli, compare

HERE = "test_cli_faults"
METHODS = ("linear", "slerp", "optimal")


class SlowGenerator(TinyGenerator):
    """TinyGenerator, taking its time when FASTGEO_TEST_SLOW is set (so that a run can be
    killed while it works on its second batch)."""

    def forward(self, z):
        if os.environ.get("FASTGEO_TEST_SLOW"):
            time.sleep(0.02)
        return super().forward(z)


def argv(pairs, out, *extra):
    """The fault tests' command: SlowGenerator (slow only where FASTGEO_TEST_SLOW is set),
    three batches, one thread."""
    return [a if a != "test_cli_interpolate:TinyGenerator" else f"{HERE}:SlowGenerator"
            for a in base_argv(pairs, out, "--batch-size", "2", "--threads", "1", *extra)]


def assert_same_results(a, b):
    for method in METHODS:
        with np.load(a / f"{method}.npz") as x, np.load(b / f"{method}.npz") as y:
            assert sorted(x.files) == sorted(y.files)
            for key in x.files:
                if key != "seconds":  # the one thing that differs between two runs
                    nan_ok = x[key].dtype.kind == "f"
                    assert np.array_equal(x[key], y[key], equal_nan=nan_ok), (method, key)


def middle_of_the_largest_array(path):
    """The offset of the middle byte of an .npz file's largest array's stored bytes (a flip in a
    zip header's date or version fields damages no number, and rightly goes unnoticed)."""
    with zipfile.ZipFile(path) as z:
        info = max(z.infolist(), key=lambda i: i.compress_size)
    raw = path.read_bytes()
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len + info.compress_size // 2


def test_killed_damaged_and_changed_runs_end_bit_for_bit_as_an_uninterrupted_one(tmp_path):
    pairs = make_pairs(tmp_path / "pairs.npy", 5, seed=7)
    fresh, out = tmp_path / "fresh", tmp_path / "run"
    status, _, err = run_cli(argv(pairs, fresh))
    assert status == 0, err

    # killed while it works on its second batch (a real SIGKILL: no handler runs)
    env = dict(os.environ, FASTGEO_TEST_SLOW="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH")]))
    proc = subprocess.Popen([sys.executable, "-m", "fastgeo", *argv(pairs, out)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = out / "batches" / "batch-00000.npz"
    deadline = time.monotonic() + 240
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert first.exists(), proc.stderr.read().decode()
    assert not (out / "optimal.npz").exists()

    # the rerun keeps the saved batch and ends with the uninterrupted run's numbers
    status, stdout, err = run_cli(argv(pairs, out))
    assert status == 0, err
    assert "resumed: 1 of 3 batches" in stdout
    assert_same_results(out, fresh)

    # a truncated batch, then a bit flipped in the middle of another: each is recomputed and said so
    batch = out / "batches" / "batch-00001.npz"
    with open(batch, "r+b") as fh:
        fh.truncate(1000)
    status, stdout, err = run_cli(argv(pairs, out))
    assert status == 0, err
    assert "batch-00001.npz cannot be used (unreadable" in err and "recomputing it" in err
    assert "resumed: 2 of 3 batches" in stdout
    assert_same_results(out, fresh)
    data = bytearray(first.read_bytes())
    data[middle_of_the_largest_array(first)] ^= 0x10
    first.write_bytes(bytes(data))
    status, stdout, err = run_cli(argv(pairs, out))
    assert status == 0, err
    assert "batch-00000.npz cannot be used" in err and "resumed: 2 of 3 batches" in stdout
    assert_same_results(out, fresh)

    # a batch of other pairs where this one should be (a file copied by hand)
    (out / "batches" / "batch-00002.npz").write_bytes((out / "batches" / "batch-00000.npz").read_bytes())
    status, stdout, err = run_cli(argv(pairs, out))
    assert status == 0, err
    assert "batch-00002.npz cannot be used (it holds pairs 0..1)" in err
    assert_same_results(out, fresh)

    # another setting a batch depends on is refused, not mixed in: an option, or the environment
    # variable that changes what --backend auto picks
    for extra, name in ((["--backend", "reference"], "backend"), (["--alpha", "0.2"], "alpha")):
        status, _, err = run_cli(argv(pairs, out, *extra))
        assert_one_line(status, err, "other settings", name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASTGEO_BACKEND", "reference")
        status, _, err = run_cli(argv(pairs, out))
        assert_one_line(status, err, "other settings", "backend: 'reference' now, 'cpu' there")
        mp.setenv("FASTGEO_BACKEND", "bogus")
        status, _, err = run_cli(argv(pairs, out))
        assert_one_line(status, err, "FASTGEO_BACKEND", "bogus")
    settings = json.loads((out / "manifest.json").read_text())["settings"]
    assert settings["backend"] == "cpu" and settings["device"] == "cpu"

    # a damaged manifest: refused with one line, never a traceback
    manifest = out / "manifest.json"
    for text in ('{"settings": null}', '{"settings": [1]}', '{"sett', ""):
        manifest.write_text(text)
        status, _, err = run_cli(argv(pairs, out))
        assert_one_line(status, err, "manifest.json", "not a fastgeo manifest")


# -- user mistakes: exit 2, one line naming the culprit -------------------------------------------

class LateBoom(TinyGenerator):
    """Works for its first calls (the check, the baselines and the solver's first rounds), then
    raises inside the solver."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, z):
        self.calls += 1
        if self.calls > 9:
            raise RuntimeError("later boom")
        return super().forward(z)


class BackwardFails(TinyGenerator):
    """A forward pass that works and a graph that does not reach the latents: the vector-Jacobian
    product raises (inside torch.autograd.grad, not in the generator's forward)."""

    def forward(self, z):
        return super().forward(z.detach())


class Detached(TinyGenerator):
    """Outputs cut off from autograd (fine for linear paths, not for the solver)."""

    def forward(self, z):
        return super().forward(z).detach()


class IntegerValued(TinyGenerator):
    """Integer outputs, but only for batches of more than one point."""

    def forward(self, z):
        out = super().forward(z)
        return out if len(z) == 1 else (out * 10).long()


class WrongBatchOnLargerBatches(TinyGenerator):
    """Drops a row of its output once a batch has more than 4 points."""

    def forward(self, z):
        out = super().forward(z)
        return out if len(z) <= 4 else out[:-1]


@pytest.mark.parametrize("generator,words", [
    ("LateBoom", ["--generator", "LateBoom", "raised RuntimeError: later boom"]),
    ("BackwardFails", ["--generator", "BackwardFails", "backward pass", "RuntimeError"]),
    ("Detached", ["--generator", "Detached", "does not depend on its input"]),
    ("IntegerValued", ["--generator", "IntegerValued", "floating-point"]),
    ("WrongBatchOnLargerBatches", ["--generator", "WrongBatchOnLargerBatches", "returned shape"]),
])
def test_generators_that_fail_late(tmp_path, generator, words):
    pairs = make_pairs(tmp_path / "pairs.npy", 2)
    args = [a if a != "test_cli_interpolate:TinyGenerator" else f"{HERE}:{generator}"
            for a in base_argv(pairs, tmp_path / "out")]
    status, _, err = run_cli(args)
    assert_one_line(status, err, *words)


@pytest.mark.parametrize("extra,words", [
    (["--threads", "100000"], ["--threads", "at most"]),
    (["--threads", "0"], ["--threads"]),
    (["--n-points", "1000000000000"], ["--n-points 1000000000000", "needs at least", "memory available"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--starts", "1000000000000"], ["needs at least", "memory available"]),  # every start is held
])
def test_interpolate_mistakes(tmp_path, extra, words):
    pairs = make_pairs(tmp_path / "pairs.npy", 3)
    status, _, err = run_cli(base_argv(pairs, tmp_path / "out", *extra))
    assert_one_line(status, err, *words)
    assert not (tmp_path / "out" / "manifest.json").exists()  # refused before anything was written


@pytest.mark.parametrize("argv,words", [
    (["demo", "--seed", "-1"], ["--seed", "-1"]),
    (["demo", "--threads", "100000"], ["--threads", "at most"]),
    (["demo", "--n-points", "2"], ["--n-points"]),
    (["demo", "--n-points", "1000000000000", "--pairs", "2", "--models", "normal"],
     ["needs at least", "memory"]),
])
def test_demo_mistakes(argv, words):
    status, _, err = run_cli(argv)
    assert_one_line(status, err, *words)


def test_fastgeo_bugs_keep_their_traceback(tmp_path, monkeypatch):
    """A ValueError from fastgeo's own code is a bug: it is raised, not turned into one line."""
    pairs = make_pairs(tmp_path / "pairs.npy", 1)

    def broken(*args, **kwargs):
        raise ValueError("a bug in fastgeo")

    monkeypatch.setattr(compare, "pair_metrics", broken)
    with pytest.raises(ValueError, match="a bug in fastgeo"):
        cli.main(base_argv(pairs, tmp_path / "out"))


def test_the_api_names_the_generator_and_the_shape_it_expects():
    import fastgeo
    from fastgeo import GeneratorError
    from fastgeo.priors import StandardNormal

    G = TinyGenerator().double().eval()
    z = torch.randn(3, D, dtype=torch.float64)
    with pytest.raises(GeneratorError, match=r"returned shape \(\d+,\) for a batch .*\(M, \.\.\.\)"):
        fastgeo.interpolate(lambda x: G(x).flatten(1).sum(1), z, -z, StandardNormal(D), n_points=6)
    late = LateBoom().double().eval()
    with pytest.raises(GeneratorError, match="raised RuntimeError: later boom") as info:
        fastgeo.interpolate(late, z, -z, StandardNormal(D), n_points=6)
    assert isinstance(info.value.__cause__, RuntimeError)  # the generator's own error, kept
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)  # as before


def test_endpoint_nan_error_names_the_paths():
    import fastgeo
    from fastgeo.priors import StandardNormal

    G = TinyGenerator().double().eval()
    z0, z1 = torch.randn(3, D, dtype=torch.float64), torch.randn(3, D, dtype=torch.float64)

    def nan_at_second_z1(x):
        out = G(x).clone()
        out[(x - z1[1]).abs().sum(1) == 0] = float("nan")
        return out

    for fn in (fastgeo.linear_path, fastgeo.interpolate):
        with pytest.raises(ValueError, match=r"path\(s\) \[1\]"):
            fn(nan_at_second_z1, z0, z1, StandardNormal(D), n_points=5)


def test_api_refuses_paths_that_cannot_fit_in_memory():
    import fastgeo
    from fastgeo.priors import StandardNormal

    G = TinyGenerator().double().eval()
    z = torch.randn(2, D, dtype=torch.float64)
    for fn in (fastgeo.interpolate, fastgeo.linear_path, fastgeo.slerp_path):
        with pytest.raises(MemoryError, match="needs at least .* memory available"):
            fn(G, z, -z, StandardNormal(D), n_points=10**11)
