"""The demo's background compile helper (fastgeo/commands/_background.py): it compiles what
the demo needs later, it starts only where it can help, and the demo always stops it."""
import argparse
import json
import os
import subprocess
import sys
import time

import pytest

from cli_helpers import run_cli

from fastgeo.commands import _background, demo

#: a fresh process that runs the fastgeo command line under a listener of Numba's compile
#: events and prints the top-level kernels it compiled ("module.function"), as JSON
LISTENED_CLI = """
import json, sys
from numba.core import event
depth, compiled = [0], []
class Listener(event.Listener):
    def on_start(self, ev):
        depth[0] += 1
    def on_end(self, ev):
        depth[0] -= 1
        if depth[0] == 0:
            f = ev.data["dispatcher"].py_func
            compiled.append(f.__module__ + "." + f.__name__)
event.register("numba:compile", Listener())
from fastgeo.cli import main
status = main(sys.argv[1:])
print("COMPILED " + json.dumps(compiled))
sys.exit(status)
"""


def demo_args(**changes):
    args = dict(models=["semicircle", "kilcher"], pairs=2, seed=1, figures=0, n_points=12, alpha=None,
                solver="lbfgs", max_iter=5, backend="auto", out="unused", progress=False, threads=1)
    args.update(changes)
    return argparse.Namespace(**args)


def test_after_the_helper_the_demo_compiles_only_its_first_model_prior(tmp_path):
    """With an empty cache, the helper's steps for a two-model demo run to the end; then the
    demo compiles the first model's prior kernels (the helper leaves them to it: it compiles
    them at the same time) and nothing else. Listing what the demo did compile shows that the
    cache was empty and the listener hears."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), FASTGEO_BACKGROUND_COMPILE="0")
    args = demo_args()
    subprocess.run([sys.executable, "-m", _background.HELPER, json.dumps(_background.demo_steps(args))],
                   check=True, env=env, timeout=600, stdout=subprocess.DEVNULL)
    cli = ["demo", "--models", ",".join(args.models), "--pairs", str(args.pairs), "--seed", str(args.seed),
           "--n-points", str(args.n_points), "--max-iter", str(args.max_iter), "--figures", "0",
           "--out", str(tmp_path / "out"), "--no-progress"]
    proc = subprocess.run([sys.executable, "-c", LISTENED_CLI, *cli], env=env, timeout=600, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    compiled = json.loads(proc.stdout.rsplit("COMPILED ", 1)[1])
    modules = {name.rsplit(".", 1)[0] for name in compiled}
    assert modules, "the demo compiled nothing: the cache was not empty, or no compile was heard"
    assert modules <= {"fastgeo.kernels.cpu_mixture", "fastgeo.kernels.cpu_kde"}, compiled


def test_the_helper_starts_only_where_it_can_help(monkeypatch):
    monkeypatch.setenv(_background.ENV, "1")
    monkeypatch.setattr(_background.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert _background.enabled(1) and _background.enabled(2)
    assert not _background.enabled(3)  # no CPU left over
    assert not _background.enabled(None)  # the command's threads take every CPU
    assert _background.start([], 1) is None  # nothing to do
    monkeypatch.setenv(_background.ENV, "0")
    assert not _background.enabled(1)
    assert _background.start(_background.demo_steps(demo_args()), 1) is None


def test_demo_steps():
    steps = _background.demo_steps(demo_args(models=["normal", "semicircle", "kilcher"]))
    assert [name for name, _ in steps] == ["solver", "prior", "prior", "demo"]
    assert [options["model"] for _, options in steps[1:3]] == ["semicircle", "kilcher"]
    assert steps[3][1]["models"] == ["semicircle", "kilcher"]  # the first model is the command's own
    assert [name for name, _ in _background.demo_steps(demo_args(models=["kilcher"]))] == ["solver"]
    json.dumps(steps)  # the helper's command line carries them
    assert _background.demo_steps(demo_args(backend="reference")) == []  # compiles nothing


def test_stop_ends_a_running_helper(monkeypatch, tmp_path):
    monkeypatch.setenv(_background.ENV, "1")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))  # the helper's compiles stay out of the tree's cache
    monkeypatch.setattr(_background.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    helper = _background.start(_background.demo_steps(demo_args()), 1)
    assert helper is not None and helper.running()
    t = time.perf_counter()
    helper.stop()
    assert not helper.running() and time.perf_counter() - t < 10
    helper.stop()  # a second stop does nothing


class FakeHelper:
    def __init__(self, steps):
        self.steps, self.stopped = steps, False

    def stop(self):
        self.stopped = True


@pytest.fixture
def fake_helpers(monkeypatch):
    made = []

    def start(steps, threads):
        made.append(FakeHelper(steps))
        return made[-1]

    monkeypatch.setattr(_background, "start", start)
    return made


def test_the_demo_stops_its_helper_when_it_fails(fake_helpers, monkeypatch, tmp_path):
    def fail(args, stages):
        raise RuntimeError("a failure inside the demo")

    monkeypatch.setattr(demo, "_run", fail)
    with pytest.raises(RuntimeError, match="a failure inside the demo"):
        demo.run(demo_args(out=str(tmp_path)))
    assert len(fake_helpers) == 1 and fake_helpers[0].stopped


def test_the_demo_starts_its_helper_with_its_settings(fake_helpers, tmp_path):
    status, _, err = run_cli(["demo", "--models", "kilcher", "--pairs", "1", "--n-points", "5", "--max-iter", "2",
                              "--figures", "0", "--solver", "lbfgs-gn", "--out", str(tmp_path), "--progress"])
    assert status == 0
    (helper,) = fake_helpers
    assert helper.stopped
    assert helper.steps == [["solver", {"solver": "lbfgs-gn", "backend": "auto", "n_points": 5, "alpha": None}]]
    assert _background.ENV in err  # the progress says how to turn it off


#: starts a helper (its parent: this process), waits until the helper's demo step has made its
#: temporary folder, prints the helper's pid and dies without stopping it
ORPHANING = """
import glob, json, os, sys, tempfile, time
from fastgeo.commands import _background
helper = _background.start(json.loads(sys.argv[1]), 1)
print(helper.process.pid if helper else -1, flush=True)
deadline = time.time() + 120
while helper and not glob.glob(os.path.join(tempfile.gettempdir(), "fastgeo-background-*")):
    assert time.time() < deadline, "the helper never reached its demo step"
    time.sleep(0.2)
os._exit(0)
"""


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"  # a zombie has ended
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_a_helper_whose_command_died_ends_and_cleans_up(tmp_path):
    """The command killed (no chance to stop its helper): the helper notices within a second
    and ends through its SIGTERM handler, which deletes its temporary folder."""
    if _background.spare_cpus(1) < 1:
        pytest.skip("no spare CPU: no helper starts")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), TMPDIR=str(tmp_path), **{_background.ENV: "1"})
    steps = [["demo", {"models": ["kilcher"], "seed": 0, "solver": "lbfgs", "backend": "auto", "n_points": 7,
                       "alpha": None}]]
    proc = subprocess.run([sys.executable, "-c", ORPHANING, json.dumps(steps)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pid = int(proc.stdout.split()[0])
    deadline = time.time() + 30
    while not _gone(pid):
        assert time.time() < deadline, "the orphaned helper kept running"
        time.sleep(0.2)
    assert not list(tmp_path.glob("fastgeo-background-*")), "the helper left its temporary folder behind"
