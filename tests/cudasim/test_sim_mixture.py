"""The CUDA Gaussian-mixture kernel (kernels/cuda_mixture.py), run by Numba's CUDA simulator,
against the CPU kernel and the float64 reference.

Under the simulator the shared scalar function (kernels/mixture.py's ``mixture_row``) runs
compiled for the CPU on the simulated arrays' host memory (conftest.py), so the CUDA kernel
must give bit for bit the CPU kernel's results: what is tested here is the launch, the row
indexing, strides, dtypes and outputs (poisoned before every launch). Sizes cross the block
size (128 rows).
"""
import numpy as np
import pytest
from numba import cuda

from array_standins import poison_numba_outputs
from fastgeo.backends import cuda as cuda_backend
from fastgeo.backends.cpu import CPUBackend
from fastgeo.backends.reference import ReferenceBackend
from fastgeo.kernels import mixture
from fastgeo.priors import GaussianMixture

SENTINEL = -7.25e33
CPU = CPUBackend()
REF = ReferenceBackend()


@pytest.fixture
def backend(monkeypatch):
    poison_numba_outputs(monkeypatch, lambda shape, dtype: np.full(shape, SENTINEL, dtype=dtype))
    return cuda_backend.CUDABackend()


def prior(rng, k, d):
    weights = rng.uniform(0.2, 1.0, k)
    weights[0] = 0.0 if k > 2 else weights[0]
    covs = np.empty((k, d, d))
    for i in range(k):
        a = rng.normal(size=(d, d))
        covs[i] = a @ a.T / d + np.eye(d) * 0.3
    return GaussianMixture(weights, rng.normal(scale=3.0, size=(k, d)), covs)


def on_device(p):
    return [cuda.to_device(a) for a in (p._whiten, p.means, p._log_norm)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,d", [(1, 1, 1), (129, 3, 4), (200, 4, 20)])
def test_kernel_matches_the_cpu_kernel(rng, backend, m, k, d, dtype):
    p = prior(rng, k, d)
    z = (rng.standard_normal((m, d)) * rng.uniform(0.1, 20.0, (m, 1))).astype(dtype)
    for need_grad in (True, False):
        lp, grad = backend.mixture_log_density(cuda.to_device(z), *on_device(p), need_grad)
        want, gwant = CPU.mixture_log_density(z, p._whiten, p.means, p._log_norm, need_grad)
        np.testing.assert_array_equal(lp.copy_to_host(), want)
        if need_grad:
            np.testing.assert_array_equal(grad.copy_to_host(), gwant)
            ref, gref = REF.mixture_log_density(z, p._whiten, p.means, p._log_norm, True)
            np.testing.assert_allclose(lp.copy_to_host(), ref, rtol=1e-11)
            np.testing.assert_allclose(grad.copy_to_host(), gref, rtol=1e-8, atol=1e-10)
        else:
            assert grad is None


def test_strided_and_far_rows(rng, backend):
    p = prior(rng, 3, 3)
    p._whiten[1, 2, :2] = 0.0  # a row of W_1 that starts at its diagonal
    big = rng.standard_normal((70, 6)) * 5
    big[3] = [1e200, 0, 0, 0, 0, 0]  # beyond float64: -inf, gradient 0
    big[5] = [1e50, -1e50, 0, 0, 0, 0]  # every exp underflows; the log-sum-exp does not
    view = cuda.to_device(big)[:, ::2]
    first = cuda.to_device(mixture.first_columns(p._whiten))
    lp, grad = backend.mixture_log_density(view, *on_device(p), True, first)
    assert mixture.first_columns(p._whiten)[1, 2] == 2
    want, gwant = CPU.mixture_log_density(big[:, ::2], p._whiten, p.means, p._log_norm, True)
    np.testing.assert_array_equal(lp.copy_to_host(), want)
    np.testing.assert_array_equal(grad.copy_to_host(), gwant)
    assert want[3] == -np.inf and np.all(gwant[3] == 0) and np.isfinite(want[5])
