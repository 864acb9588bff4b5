"""The whole GPU path of the realism functions, end to end, under the CUDA simulator.

torch CPU tensors pose as cuda:0 tensors. Everything then runs as on a GPU: the prior's
constants are moved to the "device" as torch tensors, whitening runs in torch, the real CUDA
backend allocates the outputs with torch (poisoned with NaN here) and the simulated kernels
write them in place through zero-copy views. Only the three calls that need a driver are
replaced: the device context, the stream handle and the CUDA-array-interface view.
"""
import contextlib

import numpy as np
import pytest
import torch
from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

import fastgeo
from fastgeo import _arrays, backends, priors, realism
from fastgeo._arrays import ArrayKind
from fastgeo.backends import cuda as cuda_backend


@pytest.fixture
def simulated_gpu(monkeypatch):
    real_kind_of = _arrays.kind_of

    def kind_of(x):
        kind = real_kind_of(x)
        return ArrayKind("torch", "cuda:0", x.device) if kind.library == "torch" else kind

    monkeypatch.setattr(_arrays, "kind_of", kind_of)
    monkeypatch.setattr(cuda_backend._Torch, "device", lambda self: contextlib.nullcontext())
    monkeypatch.setattr(cuda_backend._Torch, "stream_handle", lambda self: 0)
    monkeypatch.setattr(cuda_backend._Torch, "view", lambda self, a: FakeCUDAArray(a.detach().numpy()))
    monkeypatch.setattr(cuda_backend._Torch, "empty",
                        lambda self, shape: torch.full(shape, float("nan"), dtype=self.like.dtype))
    monkeypatch.setitem(backends._instances, "cuda", cuda_backend.CUDABackend())


def prior_set(rng, d):
    a = rng.standard_normal((d, d))
    return [priors.StandardNormal(d), priors.Gaussian(rng.standard_normal(d), a @ a.T + d * np.eye(d)),
            priors.Gaussian(np.zeros(d), rng.uniform(0.5, 2.0, d)), priors.GammaNorm(d, 0.5, 2.0),
            priors.StudentT(d, 3.0), priors.UniformBall(d, float(np.sqrt(d))),
            priors.UniformBox(-np.ones(d), 2 * np.ones(d))]


def tolerance(dtype):
    return dict(rtol=3e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,d", [(45, 3), (130, 40)])
def test_gpu_path_matches_the_cpu_path(rng, simulated_gpu, m, d, dtype):
    z = (rng.standard_normal((m, d)) * rng.uniform(0.3, 2.0, (m, 1))).astype(dtype)
    for prior in prior_set(rng, d):
        for what in ("log_ri", "ri"):
            out, grad = realism.evaluate(torch.from_numpy(z), prior, what, 0.6, need_grad=True)
            ref_out, ref_grad = realism.evaluate(z, prior, what, 0.6, backend="cpu", need_grad=True)
            assert isinstance(out, torch.Tensor) and out.dtype == torch.from_numpy(z).dtype
            np.testing.assert_allclose(out.numpy(), ref_out, **tolerance(dtype))
            np.testing.assert_allclose(grad.numpy(), ref_grad, **tolerance(dtype))
        np.testing.assert_allclose(prior.log_prob(torch.from_numpy(z)).numpy(), prior.log_prob(z, backend="cpu"),
                                   **tolerance(dtype))


def test_strided_and_batched_tensors(rng, simulated_gpu):
    big = torch.from_numpy(rng.standard_normal((60, 3 * 20)).astype(np.float32))
    z = big[::2, ::3]
    assert not z.is_contiguous()
    for prior in prior_set(rng, 20)[:4]:
        np.testing.assert_allclose(fastgeo.log_ri(z, prior).numpy(),
                                   fastgeo.log_ri(np.ascontiguousarray(z.numpy()), prior, backend="cpu"),
                                   **tolerance(np.float32))
    out = fastgeo.ri(big[:, :20].reshape(3, 20, 20), prior_set(rng, 20)[0])
    assert out.shape == (3, 20)


def test_non_finite_input_and_autograd(rng, simulated_gpu):
    prior = prior_set(rng, 6)[1]
    z = torch.from_numpy(rng.standard_normal((50, 6)))
    z[41, 4] = float("inf")
    with pytest.raises(ValueError, match=r"first at index \(41, 4\): inf"):
        fastgeo.log_ri(z, prior)
    with pytest.raises(ValueError, match=r"first at index \(41, 4\)"):
        fastgeo.ri(z, priors.UniformBox(-np.ones(6), np.ones(6)))
    z = torch.from_numpy(rng.standard_normal((50, 6))).requires_grad_(True)
    fastgeo.log_ri(z, prior).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), fastgeo.grad_log_ri(z.detach().numpy(), prior, backend="cpu"),
                               rtol=1e-11, atol=1e-13)


def test_chunks(rng, simulated_gpu, monkeypatch):
    prior = prior_set(rng, 9)[1]
    z = torch.from_numpy(rng.standard_normal((70, 9)))
    expected = fastgeo.log_ri_and_grad(z, prior)
    monkeypatch.setattr(realism, "_chunk_rows", lambda *a: 16)
    for e, g in zip(expected, fastgeo.log_ri_and_grad(z, prior)):
        torch.testing.assert_close(g, e, rtol=1e-13, atol=1e-15)
    z[66, 2] = float("nan")
    with pytest.raises(ValueError, match=r"first at index \(66, 2\): nan"):
        fastgeo.log_ri(z, prior)
