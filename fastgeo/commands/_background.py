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
folder it deletes, also when stopped), and is stopped when the command ends (it also ends by
itself once the command's process is gone). Two processes adding entries to one cache index
at once could mix them up; kernels/cache_lock.py serialises those writes.
FASTGEO_BACKGROUND_COMPILE=0 turns it off. The helper's steps are in
fastgeo/commands/_background_helper.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from ._common import usable_cpus

ENV = "FASTGEO_BACKGROUND_COMPILE"
#: the helper's own module (it imports the commands whose steps it runs; this one imports none)
HELPER = "fastgeo.commands._background_helper"


def spare_cpus(threads: int | None) -> int:
    """CPUs this process may run on beyond the ``threads`` a command uses (None: all of them)."""
    return 0 if threads is None else max(usable_cpus() - threads, 0)


def enabled(threads: int | None) -> bool:
    """Whether a helper would start: not turned off, Numba compiling, a CPU spare. (On a warm
    cache it still starts, and spends a few seconds of the spare CPU loading the kernels.)"""
    if os.environ.get(ENV, "1").strip() == "0":
        return False
    import numba

    return not numba.config.DISABLE_JIT and spare_cpus(threads) >= 1


class Helper:
    """The running helper process; :meth:`stop` ends it."""

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


def start(steps: list, threads: int | None) -> Helper | None:
    """Start a helper running ``steps`` (a list of ``[name, options]``, see
    ``_background_helper.STEPS``), or return None where it would not help (see :func:`enabled`)
    or there is nothing to do."""
    if not steps or not enabled(threads):
        return None
    env = dict(os.environ, **{ENV: "0"}, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", HELPER, json.dumps(steps), str(os.getpid())], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Helper(process)


def demo_steps(args) -> list:
    """The helper's steps for ``fastgeo demo`` with ``args``: the solver's kernels, then the
    models after the first (the command compiles the first model's prior kernels itself).
    No steps for the reference backend, which compiles nothing."""
    if args.backend == "reference":
        return []
    solver = {"solver": args.solver, "backend": args.backend, "n_points": args.n_points, "alpha": args.alpha}
    later = list(args.models[1:])
    steps = [["solver", solver]]
    # the later models' prior kernels before the rest of their demo: the command needs them first
    steps += [["prior", {"model": name, "backend": args.backend}] for name in later]
    if later:
        steps.append(["demo", dict(solver, models=later, seed=args.seed)])
    return steps
