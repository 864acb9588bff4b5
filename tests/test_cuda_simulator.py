"""Runs tests/cudasim (the CUDA kernels under Numba's CUDA simulator) in a child interpreter.

NUMBA_ENABLE_CUDASIM is read once, when numba.cuda is first imported, and switches the whole
process to the simulator; setting it only in the child keeps it out of this process.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                    reason="numba-cuda is not installed (pip install -e '.[test]')")
def test_cuda_kernels_under_the_simulator(seed):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", FASTGEO_TEST_SEED=str(seed))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests" / "cudasim"), "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, f"simulator tests failed ({summary}):\n{proc.stdout[-8000:]}\n{proc.stderr[-2000:]}"
    assert " passed" in summary and "skipped" not in summary, summary
