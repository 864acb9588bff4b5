"""The background compile helper's process (fastgeo/commands/_background.py starts it):
``python -m fastgeo.commands._background_helper STEPS_JSON [PARENT_PID]`` runs the steps, each
the command's own code on tiny inputs, at a lower priority, and ends early (cleanly) when
stopped or when PARENT_PID is gone."""
from __future__ import annotations

import json
import os
import sys

#: the sizes of the helper's tiny runs
TINY_PAIRS = 1
TINY_ITERATIONS = 3


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
    if solver in ("auto", "lbfgs-gn"):
        held_gauss_newton_step(backend)


def held_gauss_newton_step(backend):
    """The held Gauss-Newton direction of a tiny system on the CPU backend: its kernel, which a
    tiny run's few iterations never reach (the demo's paths switch to Gauss-Newton after 150)."""
    import numpy as np
    import torch

    from .. import backends
    from .._arrays import kind_of

    n, m, d, memory = 1, 2, 2, 1
    g = torch.ones((n, m, d), dtype=torch.float64)
    try:
        cpu = backends.select(backend, kind_of(g))
    except (backends.BackendUnavailable, ValueError):  # no CPU kernels, or a backend for other devices
        return
    if not cpu.compiled_lbfgs:
        return
    chol = torch.eye(d, dtype=torch.float64).repeat(n, m, 1, 1)
    coupling = torch.zeros((n, m - 1, d, d), dtype=torch.float64)
    pairs = torch.ones((n, memory, m, d), dtype=torch.float64)
    cpu.held_gauss_newton_directions(np.arange(n), chol, coupling, pairs, pairs, np.ones(n, dtype=np.int64), g,
                                     torch.empty_like(g))


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
                                  alpha=alpha, solver=solver, starts=1, max_iter=TINY_ITERATIONS, backend=backend,
                                  out=out, progress=False, threads=1)
        demo.run(args)


STEPS = {"solver": solver_step, "prior": prior_step, "demo": demo_step}


def _exit_on_sigterm(*_):
    # SystemExit runs the cleanup (the temporary folder) that Python's default SIGTERM skips
    sys.exit(143)


def _watch_parent(parent: int):
    """End this process (cleanly, through SIGTERM) once the command that started it is gone,
    however it ended: killed, it could not stop its helper."""
    import signal
    import threading
    import time

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="fastgeo-helper-watch").start()


def main(argv=None) -> int:
    """``STEPS_JSON [PARENT_PID]``: run the steps; with PARENT_PID, end when that process does."""
    import signal

    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if len(argv) > 1:
        _watch_parent(int(argv[1]))
    try:
        os.nice(10)
    except (AttributeError, OSError):
        pass
    for name, options in json.loads(argv[0]):
        STEPS[name](**options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
