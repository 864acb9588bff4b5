"""Tests of the CUDA kernels under Numba's CUDA simulator (no GPU needed).

NUMBA_ENABLE_CUDASIM=1 must be set before numba.cuda is first imported, so these tests run
in their own interpreter: tests/test_cuda_simulator.py starts one. A plain ``pytest`` run
does not collect them (collect_ignore_glob below), so the setting never reaches the rest of
the suite. To run them by hand::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cudasim
"""
import os

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    collect_ignore_glob = ["test_*.py"]
