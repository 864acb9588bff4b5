"""Tests of the CUDA kernels under Numba's CUDA simulator (no GPU needed).

NUMBA_ENABLE_CUDASIM=1 must be set before numba.cuda is first imported, so these tests run
in their own interpreter: tests/test_cuda_simulator.py starts one. A plain ``pytest`` run
does not collect them (collect_ignore_glob below), so the setting never reaches the rest of
the suite. To run them by hand::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cudasim

The simulator runs a kernel as Python, thread by thread, and hands it its arrays wrapped in
its own array type. Shared scalar functions that take arrays (the KDE's ``table_point`` and
``kde_point``, the radial kernels' ``row_radius``) are Numba CPU functions, which cannot take those wrappers: the fixture below
hands them the wrapped numpy arrays. The kernels' own logic (indexing, the two passes, the
work list, the flags) is what runs simulated; the scalar math runs compiled, as on the CPU,
and its GPU compilation is checked by tests/test_cuda_ptx.py.
"""
import os

import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    collect_ignore_glob = ["test_*.py"]


def _host(a):
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray, FakeWithinKernelCUDAArray

    if isinstance(a, FakeWithinKernelCUDAArray):
        a = a._item
    return a._ary if isinstance(a, FakeCUDAArray) else a


def _with_host_arrays(fn):
    def call(*args):
        return fn(*[_host(a) for a in args])

    return call


@pytest.fixture(autouse=True)
def scalar_functions_take_simulated_arrays(monkeypatch):
    from fastgeo.kernels import cuda_kde, cuda_mixture, cuda_radial, kde, mixture, rows

    monkeypatch.setattr(cuda_kde, "table_point", _with_host_arrays(kde.table_point))
    monkeypatch.setattr(cuda_kde, "kde_point", _with_host_arrays(kde.kde_point))
    monkeypatch.setattr(cuda_radial, "row_radius", _with_host_arrays(rows.row_radius))
    monkeypatch.setattr(cuda_mixture, "mixture_row", _with_host_arrays(mixture.mixture_row))


@pytest.fixture
def small_blocks(monkeypatch):
    """Path-energy blocks of 64 threads: tiles of 256 columns, reductions in rounds of 2
    segments, 16-thread path reductions. Small inputs then cross every boundary of the
    kernels' geometry, and the simulator (a Python thread per GPU thread) runs 4x faster."""
    from fastgeo.kernels import cuda_path

    for name, value in (("THREADS", 64), ("TILE", 256), ("SEG", 2), ("REDUCE_THREADS", 16)):
        monkeypatch.setattr(cuda_path, name, value)
