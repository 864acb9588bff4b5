"""Kernels compiled ahead in a background process while a command computes on another core.

A first ``fastgeo demo`` in a fresh installation spends about half its time compiling Numba
kernels, one step after another: the first model's prior, the solver's, then each further
model's prior. Most of them do not depend on what the earlier steps compute, so a helper
process runs the command's own code on tiny inputs in the order the command will need the
kernels (the solver first, on a uniform box prior whose kernel is small; then the later
models), and Numba's on-disk cache hands each kernel to the command when it gets there. Where
the command gets somewhere first, it compiles that kernel itself, as it would have without
the helper, and nothing is lost but the helper's time.

The helper starts only where a CPU is left over by the command's threads; it runs with one
thread at a lower priority, writes nothing but Numba's cache (its outputs go to a temporary
folder it deletes), and is stopped when the command ends. FASTGEO_BACKGROUND_COMPILE=0 turns
it off. Run as ``python -m fastgeo.commands._background STEPS_JSON`` it is the helper.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

ENV = "FASTGEO_BACKGROUND_COMPILE"
#: what the helper's tiny runs use: enough points for the solver's every code path
TINY_PAIRS = 1
TINY_ITERATIONS = 3
TINY_POINTS = 7


def spare_cpus(threads: int | None) -> int:
    """CPUs this process may run on beyond the ``threads`` a command uses (None: all of them)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if threads is None else max(cpus - threads, 0)


def enabled(threads: int | None) -> bool:
    """Whether a helper would start: not turned off, Numba compiling (and caching), a CPU spare."""
    if os.environ.get(ENV, "1").strip() == "0":
        return False
    import numba

    return not numba.config.DISABLE_JIT and spare_cpus(threads) >= 1


class Helper:
    """The running helper process; :meth:`stop` ends it (a context manager stops it on exit)."""

    def __init__(self, process: subprocess.Popen):
        self.process = process

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self):
        if self.process.poll() is None:
            # Numba writes each cache file under a temporary name and renames it into place,
            # so a helper stopped mid-write leaves no damaged entry behind.
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start(steps: list, threads: int | None) -> Helper | None:
    """Start a helper running ``steps`` (a list of ``[name, options]``, see :data:`STEPS`), or
    return None where it would not help (see :func:`enabled`) or there is nothing to do."""
    if not steps or not enabled(threads):
        return None
    env = dict(os.environ, **{ENV: "0"}, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", __name__, json.dumps(steps)], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Helper(process)


def demo_steps(args) -> list:
    """The helper's steps for ``fastgeo demo`` with ``args``: the solver's kernels, then the
    models after the first (the command compiles the first model's prior kernels itself)."""
    solver = {"solver": args.solver, "backend": args.backend, "n_points": args.n_points, "alpha": args.alpha}
    later = list(args.models[1:])
    steps = [["solver", solver]]
    # the later models' prior kernels before the rest of their demo: the command needs them first
    steps += [["prior", {"model": name, "backend": args.backend}] for name in later]
    if later:
        steps.append(["demo", dict(solver, models=later, seed=args.seed)])
    return steps


def solver_step(solver, backend, n_points, alpha):
    """The optimal path and the baselines of one tiny pair on a small float32 generator and a
    box prior: the path energy, log-index and solver kernels (the prior's kernel is small)."""
    import numpy as np
    import torch

    from .. import compare
    from ..interpolation import DEFAULT_ALPHA
    from ..priors import UniformBox

    dim, outputs = 4, 6
    torch.manual_seed(0)
    generator = torch.nn.Sequential(torch.nn.Linear(dim, outputs), torch.nn.Tanh()).eval()
    prior = UniformBox(-np.full(dim, 4.0), np.full(dim, 4.0))
    z0 = torch.linspace(-1.0, 1.0, dim).reshape(1, dim)
    z1 = torch.linspace(1.5, -0.5, dim).reshape(1, dim)
    results = compare.run_methods(generator, z0, z1, prior, compare.DEFAULT_METHODS, n_points=n_points,
                                  alpha=alpha, solver=solver, max_iter=TINY_ITERATIONS, backend=backend)
    arrays = {m: compare.result_arrays(r) for m, r in results.items()}
    compare.pair_metrics(arrays, DEFAULT_ALPHA if alpha is None else alpha)


def prior_step(model, backend):
    """The realism index and its gradient on a few float32 points of an embedded model's prior,
    as the demo evaluates its paths: that prior's kernels."""
    import torch

    from .. import log_ri_and_grad, models

    prior = models.load(model).prior
    z = torch.as_tensor(prior.sample(8, seed=0), dtype=torch.float32)
    log_ri_and_grad(z, prior, backend=backend)


def demo_step(models, seed, solver, backend, n_points, alpha):
    """``fastgeo demo`` itself on ``models`` with one pair, a few iterations and no figures, in
    a temporary folder: every kernel those models' part of the demo compiles."""
    import argparse
    import tempfile

    from . import demo

    with tempfile.TemporaryDirectory(prefix="fastgeo-background-") as out:
        args = argparse.Namespace(models=models, pairs=TINY_PAIRS, seed=seed, figures=0, n_points=n_points,
                                  alpha=alpha, solver=solver, max_iter=TINY_ITERATIONS, backend=backend, out=out,
                                  progress=False, threads=1)
        demo.run(args)


STEPS = {"solver": solver_step, "prior": prior_step, "demo": demo_step}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        os.nice(10)
    except (AttributeError, OSError):
        pass
    for name, options in json.loads(argv[0]):
        STEPS[name](**options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
