"""The CUDA kernel of fastgeo.special (kernels/cuda_special.py), run by Numba's CUDA simulator,
against the CPU kernel: the same scalar function, so the results are identical. Outputs are
poisoned first, so an element the kernel forgets shows up; sizes cross the block size."""
import numpy as np
import pytest
from numba import cuda

from fastgeo.kernels import cpu_special, cuda_special
from fastgeo.kernels.special_sf import BETA_UPPER, F_RATIO, GAMMA

SENTINEL = -7.25e33


def inputs(rng, code, n):
    if code == GAMMA:  # a, t: both tails and the bulk, t < 0 and 0 included
        a = np.exp(rng.uniform(np.log(0.05), np.log(1e4), n))
        t = a * np.exp(rng.uniform(np.log(1e-6), np.log(1e3), n))
        t[:3] = [-1.0, 0.0, np.inf][:n]
        return a, t, t
    if code == F_RATIO:  # x, dfn, dfd
        x = np.exp(rng.uniform(np.log(1e-6), np.log(1e6), n))
        x[:3] = [-1.0, 0.0, np.inf][:n]
        return x, np.exp(rng.uniform(np.log(0.3), np.log(1e3), n)), np.exp(rng.uniform(np.log(0.3), np.log(1e3), n))
    x = rng.uniform(0, 1, n)  # a, b, x
    x[:2] = [0.0, 1.0][:n]
    return np.exp(rng.uniform(np.log(0.2), np.log(500), n)), np.exp(rng.uniform(np.log(0.2), np.log(500), n)), x


@pytest.mark.parametrize("code", [GAMMA, F_RATIO, BETA_UPPER])
@pytest.mark.parametrize("n,want_grad", [(1, True), (37, False), (130, True)])
def test_cuda_special_matches_the_cpu_kernel(rng, code, n, want_grad):
    p = inputs(rng, code, n)
    out, grad = np.empty(n), np.empty(n if want_grad else 0)
    cpu_special.special_sf(code, *p, out, grad)
    d_out = cuda.to_device(np.full(n, SENTINEL))
    d_grad = cuda.to_device(np.full(n if want_grad else 0, SENTINEL))
    cuda_special.launch_special(code, *[cuda.to_device(a) for a in p], d_out, d_grad)
    np.testing.assert_array_equal(d_out.copy_to_host(), out)
    np.testing.assert_array_equal(d_grad.copy_to_host(), grad)
