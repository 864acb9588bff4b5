"""The CUDA backend on a real GPU: torch and CuPy in, the same out, on the caller's device and
stream, against the float64 reference. Skipped (with the reason) without a GPU.

Run on a GPU machine with ``python -m pytest tests/gpu -m gpu -v``.
"""
import math

import numpy as np
import pytest

import fastgeo
from fastgeo import _evaluator, priors, realism
from fastgeo.backends import cuda as cuda_backend

REASON = cuda_backend.unavailable_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=f"no CUDA backend: {REASON}")]

torch = pytest.importorskip("torch")
RTOL = {torch.float32: 3e-7, torch.float64: 1e-10}


def needs_torch_cuda():
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here (a CPU build of torch?)")


def prior_set(rng, d):
    a = rng.standard_normal((d, d))
    return [priors.StandardNormal(d), priors.Gaussian(rng.standard_normal(d), a @ a.T + d * np.eye(d)),
            priors.Gaussian(np.zeros(d), rng.uniform(0.5, 2.0, d)), priors.GammaNorm(d, 0.5, 2.0),
            priors.StudentT(d, 3.0), priors.UniformBall(d, math.sqrt(d)),
            priors.UniformBox(-np.ones(d), 2 * np.ones(d))]


def check_against_reference(z, prior, what, alpha=0.6):
    """The float64 reference on the same values (it whitens in float64 and rounds y to z's dtype
    as the GPU path does; cuBLAS and numpy may round the whitening product differently, so
    whitened float32 priors get a looser tolerance)."""
    out, grad = realism.evaluate(z, prior, what, alpha, need_grad=True)
    assert out.device == z.device and grad.device == z.device
    assert out.dtype == z.dtype and grad.dtype == z.dtype
    host = z.detach().cpu().numpy()
    ref_out, ref_grad = realism.evaluate(host, prior, what, alpha, "reference", need_grad=True)
    spec = prior.index()
    whitened = getattr(spec, "whiten", None) is not None or getattr(spec, "loc", None) is not None
    rtol = 1e-5 if whitened and z.dtype == torch.float32 else RTOL[z.dtype]
    np.testing.assert_allclose(out.cpu().numpy(), ref_out, rtol=rtol, atol=1e-30)
    np.testing.assert_allclose(grad.cpu().numpy(), ref_grad, rtol=rtol,
                               atol=rtol * float(np.max(np.abs(ref_grad), initial=1e-30)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,d", [(1, 2), (127, 16), (129, 17), (5_000, 64), (3_001, 512), (257, 1_000)])
def test_torch_in_torch_out_matches_reference(rng, poisoned_outputs, m, d, dtype):
    needs_torch_cuda()
    dt = getattr(torch, dtype)
    z = torch.as_tensor(rng.standard_normal((m, d)) * rng.uniform(0.3, 2.0, (m, 1)), dtype=dt, device="cuda")
    for prior in prior_set(rng, d):
        for what in ("log_ri", "ri"):
            check_against_reference(z, prior, what)
        lp = prior.log_prob(z)
        np.testing.assert_allclose(lp.cpu().numpy(), prior.log_prob(z.cpu().numpy(), backend="reference"),
                                   rtol=1e-5 if dt == torch.float32 else 1e-10, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_non_contiguous_and_batched_inputs(rng, poisoned_outputs, dtype):
    needs_torch_cuda()
    big = torch.as_tensor(rng.standard_normal((300, 2 * 70)), dtype=getattr(torch, dtype), device="cuda")
    z = big[::3, ::2]  # strided rows and columns
    assert not z.is_contiguous()
    for prior in prior_set(rng, 70)[:3]:
        check_against_reference(z, prior, "log_ri")
    batched = big[:, :70].reshape(6, 50, 70)
    out = fastgeo.log_ri(batched, prior_set(rng, 70)[0])
    assert out.shape == (6, 50)


def test_runs_on_the_callers_stream(rng, monkeypatch, stream_handle):
    """The kernel runs on torch's current stream: the result reflects work queued on that stream
    just before (a delay makes a launch on another stream read stale data), and the launcher
    is given that very stream."""
    needs_torch_cuda()
    from fastgeo.kernels import cuda_radial

    seen = []
    real_launch = cuda_radial.launch

    def launch(kernel, rows, stream, *args):
        seen.append(stream_handle(stream))
        return real_launch(kernel, rows, stream, *args)

    monkeypatch.setattr(cuda_radial, "launch", launch)
    prior = priors.StandardNormal(256)
    host = rng.standard_normal((20_000, 256)).astype(np.float32)
    src = torch.as_tensor(host, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(100_000_000)
        z = src * 2.0
        out = fastgeo.log_ri(z, prior)
    side.synchronize()
    np.testing.assert_allclose(out.cpu().numpy(), fastgeo.log_ri(2.0 * host, prior, backend="cpu"), rtol=3e-7)
    assert seen and seen[-1] == side.cuda_stream


def test_autograd_on_gpu(rng):
    needs_torch_cuda()
    prior = prior_set(rng, 33)[1]
    z = torch.as_tensor(rng.standard_normal((64, 33)), device="cuda").requires_grad_(True)
    fastgeo.log_ri(z, prior).sum().backward()
    assert z.grad.device == z.device
    np.testing.assert_allclose(z.grad.cpu().numpy(), fastgeo.grad_log_ri(z.detach().cpu().numpy(), prior),
                               rtol=1e-10, atol=1e-14)


def test_bad_inputs(rng):
    needs_torch_cuda()
    prior = priors.StandardNormal(40)
    z = torch.as_tensor(rng.standard_normal((300, 40)), device="cuda")
    z[211, 7] = float("nan")
    with pytest.raises(ValueError, match=r"first at index \(211, 7\)"):
        fastgeo.log_ri(z, prior)
    with pytest.raises(ValueError, match="runs on the CPU"):
        fastgeo.log_ri(z, prior, backend="cpu")
    with pytest.raises(TypeError, match="float32 or float64"):
        fastgeo.log_ri(z.half(), prior)
    with pytest.raises(ValueError, match="cuda:0 but log_ri is on cpu"):
        fastgeo.energy_and_grads(torch.zeros(2, 4, 3, device="cuda"), torch.zeros(2, 4), 0.5)
    if torch.cuda.device_count() > 1:
        with pytest.raises(ValueError, match="cuda:0 but log_ri is on cuda:1"):
            fastgeo.energy_and_grads(torch.zeros(2, 4, 3, device="cuda:0"), torch.zeros(2, 4, device="cuda:1"), 0.5)


def test_second_gpu(rng):
    needs_torch_cuda()
    if torch.cuda.device_count() < 2:
        pytest.skip("one GPU")
    z = torch.as_tensor(rng.standard_normal((500, 30)), device="cuda:1")
    prior = prior_set(rng, 30)[1]
    out = fastgeo.log_ri(z, prior)
    assert out.device == z.device
    np.testing.assert_allclose(out.cpu().numpy(), fastgeo.log_ri(z.cpu().numpy(), prior), rtol=1e-10)


def test_chunks_on_gpu(rng, monkeypatch):
    needs_torch_cuda()
    prior = prior_set(rng, 20)[1]
    z = torch.as_tensor(rng.standard_normal((1000, 20)), device="cuda")
    expected = fastgeo.log_ri_and_grad(z, prior)
    monkeypatch.setattr(_evaluator, "chunk_rows", lambda *a: 97)
    got = fastgeo.log_ri_and_grad(z, prior)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-13, atol=1e-15)


def test_large_batch_agrees_with_cpu(rng):
    needs_torch_cuda()
    prior = priors.StandardNormal(64)
    host = rng.standard_normal((1 << 20 | 3, 64)).astype(np.float32)
    out = fastgeo.log_ri(torch.as_tensor(host, device="cuda"), prior)
    np.testing.assert_allclose(out.cpu().numpy(), fastgeo.log_ri(host, prior, backend="cpu"), rtol=3e-7)


def test_cupy_in_cupy_out(rng):
    cupy = pytest.importorskip("cupy")
    prior = prior_set(rng, 50)[1]
    host = rng.standard_normal((777, 50))
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        z = cupy.asarray(host)
        out, grad = fastgeo.log_ri_and_grad(z, prior)
        box = fastgeo.ri(z, priors.UniformBox(-np.ones(50), np.ones(50)))
    stream.synchronize()
    assert isinstance(out, cupy.ndarray) and isinstance(grad, cupy.ndarray) and isinstance(box, cupy.ndarray)
    ref_out, ref_grad = fastgeo.log_ri_and_grad(host, prior, backend="reference")
    np.testing.assert_allclose(out.get(), ref_out, rtol=1e-10)
    np.testing.assert_allclose(grad.get(), ref_grad, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(box.get(), fastgeo.ri(host, priors.UniformBox(-np.ones(50), np.ones(50))))
