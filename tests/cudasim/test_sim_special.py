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


def test_public_functions_on_the_gpu_path(rng, monkeypatch):
    """fastgeo.special's GPU branch end to end: torch CPU tensors pose as cuda:0 tensors
    (tests/cudasim/test_sim_torch_path.py's stand-in: outputs poisoned, zero-copy simulator
    views), so checks, broadcasting, Python scalars moved to the "device", the kernel launch
    and autograd run as on a GPU; results equal the CPU path's."""
    import torch

    import fastgeo.special as S
    from array_standins import use_array_library
    from test_sim_torch_path import SimulatedTorchCuda

    x = rng.uniform(0, 3000, (4, 1))
    df = rng.uniform(0.5, 1000, (1, 40))
    cpu = S.chi2_logsf(x, df)
    cpu_grad = np.empty_like(x)
    xt = torch.tensor(x, requires_grad=True)
    S.chi2_logsf(xt, torch.from_numpy(df)).sum().backward()
    cpu_grad[...] = xt.grad.numpy()
    cpu32 = S.f_logsf(x.ravel().astype(np.float32), 3.0, 7.0)
    use_array_library(monkeypatch, SimulatedTorchCuda())
    monkeypatch.setattr(cpu_special, "special_sf", None)  # the CPU kernel is not called from here on
    xg = torch.tensor(x, requires_grad=True)
    got = S.chi2_logsf(xg, torch.from_numpy(df))
    np.testing.assert_array_equal(got.detach().numpy(), cpu)
    got.sum().backward()
    np.testing.assert_array_equal(xg.grad.numpy(), cpu_grad)
    f32 = S.f_logsf(torch.tensor(x.ravel(), dtype=torch.float32), 3.0, 7.0)  # Python scalars on the "device"
    assert f32.dtype == torch.float32
    np.testing.assert_array_equal(f32.numpy(), cpu32)
    with pytest.raises(ValueError, match=r"b must be finite and > 0 \(first bad entry at index \(2,\)"):
        S.log_betainc_upper(torch.ones(3, dtype=torch.float64), torch.tensor([1.0, 2.0, -1.0]).double(), 0.5)
