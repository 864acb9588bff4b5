"""Benchmarks that run in a fresh Python process (a source tree's own fastgeo, a cold Numba
cache, one thread): one way to start, time and read such a run, for the scripts in bench/."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def run_python(args, tree=None, env=None, timeout=1800):
    """Run ``python *args`` in a fresh process and return (stdout, wall seconds, the load
    average (1, 5, 15 min) just before: this machine is shared).

    tree : a source tree whose fastgeo the process imports (PYTHONPATH set to it alone, and
        the working directory), or None for this process's environment.
    env : variables to set for the process (a value None removes one).
    Raises RuntimeError with the end of the process's stderr if it fails.
    """
    full = dict(os.environ)
    if tree is not None:
        full["PYTHONPATH"] = os.path.abspath(tree)
    for key, value in (env or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = str(value)
    load = [round(v, 2) for v in os.getloadavg()]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=full,
                          cwd=None if tree is None else os.path.abspath(tree), timeout=timeout)
    seconds = time.perf_counter() - start
    if proc.returncode:
        what = "python -c <script>" if args[:1] == ["-c"] else "python " + " ".join(args[:2])
        raise RuntimeError(f"{what} ({tree or 'this tree'}): {proc.stderr[-2000:]}")
    return proc.stdout, seconds, load


def last_json(stdout: str):
    """The JSON document on the last line a child printed (its result)."""
    return json.loads(stdout.strip().splitlines()[-1])


#: one thread for the child's BLAS and Numba (the A/B scripts compare single-thread runs)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
