"""The CUDA path-energy kernels, run by Numba's CUDA simulator, against the float64 reference.

Outputs and scratch are poisoned before every launch. Shapes cross the column tile (TILE
columns per block), the segment rounds of the reduction (SEG segments) and the reduction
blocks; the ``small_blocks`` fixture (conftest.py: 64 threads, tiles of 256 columns, rounds
of 2 segments) makes small inputs cross every boundary many times, and a few cases run at the
production sizes too. Tolerances are those of the CPU kernels' tests
(tests/test_path_energy.py): float64 1e-12 relative to the value (dE/dG: to the size of
its terms); float32 outputs are float64 results rounded once, so within an ulp of the
reference's rounding.
"""
import math

import numpy as np
import pytest
from numba import cuda

from array_standins import poison_numba_outputs
from fastgeo._arrays import LOG_RI_ERROR
from fastgeo.backends import cuda as cuda_backend
from fastgeo.backends.reference import ReferenceBackend
from fastgeo.kernels import cuda_path
from path_tolerance import assert_close, term_scale

SENTINEL = -7.25e33
REF = ReferenceBackend()


@pytest.fixture
def backend(monkeypatch):
    poison_numba_outputs(monkeypatch, lambda shape, dtype: np.full(shape, SENTINEL, dtype=dtype))
    return cuda_backend.CUDABackend()


def path(rng, b, k1, n, dtype, l_low=-30.0):
    G = np.cumsum(rng.standard_normal((b, k1, n)), axis=1).astype(dtype)
    return G, rng.uniform(l_low, 0.0, (b, k1))


def check_energy(backend, G, l, log_alpha, G_dev=None):
    dtype = G.dtype.type
    G_dev = cuda.to_device(G) if G_dev is None else G_dev
    l_dev = cuda.to_device(l)
    E, dG, dl = backend.path_energy(G_dev, l_dev, log_alpha, True)
    rE, rG, rl = REF.path_energy(G, l, log_alpha, True)
    assert E.dtype == dtype and dG.dtype == dtype and dl.dtype == np.float64
    assert_close(E.copy_to_host(), rE, np.abs(rE), dtype, "E")
    assert_close(dG.copy_to_host(), rG, term_scale(G, l, log_alpha), dtype, "dE/dG")
    assert_close(dl.copy_to_host(), rl, np.abs(rl), np.float64, "dE/dl")
    E2, none, dl2 = backend.path_energy(G_dev, l_dev, log_alpha, False)
    assert none is None
    np.testing.assert_array_equal(E2.copy_to_host(), E.copy_to_host())
    np.testing.assert_array_equal(dl2.copy_to_host(), dl.copy_to_host())
    index = backend.path_log_index(G_dev, l_dev)
    want = REF.path_log_index(G, l)
    assert index.dtype == dtype
    assert_close(index.copy_to_host(), want, np.abs(want), dtype, "log ri(path)")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("b,k1,n", [(1, 2, 1), (2, 6, 700), (1, 12, 37), (3, 4, 256)])
def test_small_blocks_match_reference(rng, backend, small_blocks, b, k1, n, dtype):
    """Tiles of 256 columns (n = 700: three, the last partial), 2-segment rounds (K = 11: the
    last round holds one segment), 16-thread reductions (K + 1 = 12 points: a second lap)."""
    G, l = path(rng, b, k1, n, dtype)
    check_energy(backend, G, l, math.log(rng.uniform(0.05, 0.95)))


def test_production_blocks_match_reference(rng, backend):
    """The real geometry: 1100 columns (two tiles of 1024, the second partial), K = 9 (a
    full 8-segment round and a partial one); float32, the dtype of the targets."""
    G, l = path(rng, 2, 10, 1100, np.float32)
    check_energy(backend, G, l, math.log(0.3))


def test_strided_decoded(rng, backend, small_blocks):
    base = rng.standard_normal((3, 2 * 7, 2 * 150))
    l = rng.uniform(-10, 0, (3, 7))
    view = cuda.to_device(base)[:, 1::2, ::2]  # every other point and every other column
    assert not view.is_c_contiguous()
    check_energy(backend, np.ascontiguousarray(base[:, 1::2, ::2]), l, -1.1, G_dev=view)


def test_edges_match_reference(rng, backend, small_blocks):
    """Zero-density points (l = -inf), infinite weights that cancel, segments that do not move,
    weights beyond float64 (the scaled formula) and isolated far-out points, mixed in."""
    G, l = path(rng, 5, 12, 70, np.float64)
    l[rng.uniform(size=l.shape) < 0.3] = -np.inf
    l[rng.uniform(size=l.shape) < 0.1] = -1e300
    l[3] = -1e160 * rng.uniform(1.0, 1.5, 12)  # w ~ 1e320: only the scaled form is finite
    G[3] *= 1e-20
    G[:, 4] = G[:, 5]
    l[4] = -np.inf  # every weight infinite
    G[4] = np.linspace(0.0, 1.0, 12)[:, None] * np.ones(70)  # constant speed: inner terms cancel
    check_energy(backend, G, l, math.log(0.7))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_decoded_is_named(rng, backend, small_blocks, bad):
    G, l = path(rng, 2, 5, 300, np.float32)
    G[1, 3, 257] = bad
    for call in (lambda g: backend.path_energy(g, cuda.to_device(l), -0.5, True),
                 lambda g: backend.path_log_index(g, cuda.to_device(l))):
        with pytest.raises(ValueError, match=r"decoded contains NaN or inf \(first at index \(1, 3, 257\)"):
            call(cuda.to_device(G))


@pytest.mark.filterwarnings("ignore:.*overflow encountered:RuntimeWarning")  # the simulator's numpy
def test_bad_log_ri_and_overflow(rng, backend, small_blocks):
    G, l = path(rng, 2, 5, 30, np.float64)
    for bad in (np.nan, np.inf):
        lb = l.copy()
        lb[1, 4] = bad
        message = LOG_RI_ERROR.format(index=(1, 4), value=bad)
        for call in (lambda: backend.path_energy(cuda.to_device(G), cuda.to_device(lb), -0.5, False),
                     lambda: backend.path_log_index(cuda.to_device(G), cuda.to_device(lb))):
            with pytest.raises(ValueError) as err:
                call()
            assert str(err.value) == message
    G = np.array([[[1e200], [-1e200]]])
    with pytest.raises(ValueError, match="overflows"):
        backend.path_energy(cuda.to_device(G), cuda.to_device(np.zeros((1, 2))), -0.5, True)


def test_geometry_is_consistent():
    assert cuda_path.SEG * cuda_path.WARP == cuda_path.THREADS
    assert cuda_path.TILE == cuda_path.THREADS * cuda_path.COLS
    assert cuda_path.REDUCE_THREADS & (cuda_path.REDUCE_THREADS - 1) == 0  # a power of two (tree sum)
    assert cuda_path.tiles_for(0) == 1 and cuda_path.tiles_for(cuda_path.TILE + 1) == 2
