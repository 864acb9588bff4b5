"""The whole GPU path of the realism functions, the path energy and ``interpolate``, end to
end, under the CUDA simulator.

torch CPU tensors pose as cuda:0 tensors. Everything then runs as on a GPU: the prior's
constants (whitening matrices, mixture parameters, the KDE's table) are moved to the "device"
as torch tensors, whitening and the mixture's log-density run in torch, the real CUDA backend
allocates outputs and scratch with torch (poisoned here) and the simulated kernels write them
in place through zero-copy views. Only the three calls that need a driver are replaced: the
device context, the stream handle and the CUDA-array-interface view.
"""
import numpy as np
import pytest
import torch
from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

import fastgeo
from array_standins import TorchPosingAsCuda, use_array_library
from fastgeo import _arrays, _evaluator, backends, priors, realism
from fastgeo.backends import cuda as cuda_backend


@pytest.fixture
def simulated_gpu(monkeypatch):
    simulate_gpu(monkeypatch)


class SimulatedTorchCuda(TorchPosingAsCuda):
    """The real CUDA backend's view of these "device" tensors: simulator arrays sharing their
    memory, and outputs allocated poisoned."""

    def numba_view(self, x):
        return FakeCUDAArray(x.detach().numpy())

    def empty(self, kind, shape, dtype):
        dtype = self.torch_dtype(dtype)
        return torch.full(shape, float("nan") if dtype.is_floating_point else -123456, dtype=dtype)


def simulate_gpu(monkeypatch):
    use_array_library(monkeypatch, SimulatedTorchCuda())
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
@pytest.mark.parametrize("m,d", [(45, 3), (130, 20)])
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
    monkeypatch.setattr(_evaluator, "chunk_rows", lambda *a: 16)
    for e, g in zip(expected, fastgeo.log_ri_and_grad(z, prior)):
        torch.testing.assert_close(g, e, rtol=1e-13, atol=1e-15)
    z[66, 2] = float("nan")
    with pytest.raises(ValueError, match=r"first at index \(66, 2\): nan"):
        fastgeo.log_ri(z, prior)


# -- KDE-based priors: the mixture's log-density in torch, then the KDE kernels --------------------

def mixture_priors(rng):
    d = 3
    a = rng.standard_normal((2, d, d))
    mix = priors.GaussianMixture([0.3, 0.7], rng.standard_normal((2, d)) * 2, a @ a.transpose(0, 2, 1) + np.eye(d),
                                 kde_samples=800)
    return [priors.semicircle(20, kde_samples=800), mix]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kde_priors_on_the_gpu_path_match_the_cpu_path(rng, simulated_gpu, dtype):
    for prior in mixture_priors(rng):
        z = (prior.sample(45, rng) * rng.uniform(0.5, 2.5, (45, 1))).astype(dtype)
        for what in ("log_ri", "ri", "log_density"):
            out, grad = realism.evaluate(torch.from_numpy(z), prior, what, 0.6, need_grad=True)
            ref_out, ref_grad = realism.evaluate(z, prior, what, 0.6, backend="cpu", need_grad=True)
            assert isinstance(out, torch.Tensor) and out.dtype == torch.from_numpy(z).dtype
            np.testing.assert_allclose(out.numpy(), ref_out, **tolerance(dtype))
            np.testing.assert_allclose(grad.numpy(), ref_grad, **tolerance(dtype), err_msg=what)
    # the mixture's parameters went to the "device" once, as float64 torch tensors
    cached = _arrays.memory._constants[prior]
    assert len(cached) == 1 and all(isinstance(t, torch.Tensor) for t in next(iter(cached.values())))


def test_kde_queries_and_errors_on_the_gpu_path(rng, simulated_gpu):
    prior = mixture_priors(rng)[1]
    kde = prior.kde
    x = torch.from_numpy(rng.uniform(kde.table.x0 - 5, kde.table.x_end + 5, (4, 33)))
    for what in ("cdf", "log_cdf", "pdf", "log_pdf"):
        got = getattr(kde, what)(x)
        assert isinstance(got, torch.Tensor) and got.shape == (4, 33)
        np.testing.assert_array_equal(got.numpy(), getattr(kde, what)(x.numpy(), backend="cpu"))
    x[2, 7] = float("nan")
    with pytest.raises(ValueError, match=r"x contains NaN \(first at index \(73,\)\)"):
        kde.cdf(x)
    z = torch.from_numpy(prior.sample(30, rng))
    z[12, 1] = float("inf")
    with pytest.raises(ValueError, match=r"z contains NaN or inf \(first at index \(12, 1\): inf\)"):
        fastgeo.log_ri(z, prior)
    with pytest.raises(ValueError, match=r"first at index \(12, 1\)"):
        prior.log_prob(z)


def test_custom_priors_on_the_gpu_path(rng, simulated_gpu):
    mix = mixture_priors(rng)[1]

    def torch_log_prob(z):
        assert isinstance(z, torch.Tensor) and z.dtype == torch.float64
        return torch.from_numpy(mix.log_density(z.detach().numpy())[0]) + 0.0 * z.sum(1)

    def torch_grad(z):
        return torch.from_numpy(mix.log_density(z.numpy(), True)[1])

    z = torch.from_numpy(mix.sample(40, rng))
    want = fastgeo.log_ri_and_grad(z.numpy(), mix, backend="cpu")
    custom = priors.Custom(lambda z: mix.log_density(z)[0], mix._sample, 3, grad_log_prob=torch_grad)
    custom._kde = mix.kde  # the same KDE: the same results expected
    for fn in (torch_log_prob, lambda z: torch_log_prob(z)):
        custom._log_prob_fn = fn
        out, grad = fastgeo.log_ri_and_grad(z, custom)
        np.testing.assert_allclose(out.numpy(), want[0], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(grad.numpy(), want[1], rtol=1e-11, atol=1e-13)
    # without grad_log_prob: torch autograd through log_prob, on the input's device
    quadratic = priors.Custom(lambda z: -0.5 * (z * z).sum(1), lambda n, r: r.standard_normal((n, 3)), 3,
                              kde_samples=300)
    out, grad = fastgeo.log_ri_and_grad(z, quadratic)
    want = fastgeo.log_ri_and_grad(z.numpy(), quadratic, backend="cpu")
    np.testing.assert_allclose(out.numpy(), want[0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grad.numpy(), want[1], rtol=1e-11, atol=1e-13)
    # a numpy-only log_prob: a TypeError that says what GPU inputs need
    numpy_only = priors.Custom(lambda z: np.asarray(-0.5 * np.sum(np.asarray(z) ** 2, axis=1)),
                               lambda n, r: r.standard_normal((n, 3)), 3, kde_samples=300)
    with pytest.raises(TypeError, match=r"log_prob returned a numpy on cpu array for a torch on cuda:0 input.*"
                                        r"same library on the same device"):
        fastgeo.log_ri(z, numpy_only)
    broken = priors.Custom(lambda z: z.numpy() + "x", lambda n, r: r.standard_normal((n, 3)), 3, kde_samples=300)
    broken._kde = quadratic.kde
    with pytest.raises(TypeError, match=r"calling log_prob on a torch on cuda:0 array failed"):
        fastgeo.log_ri(z, broken)
    def nan_above_one(z):  # NaN where z_0 > 1 (its own samples, drawn around -6, have none)
        lp = -0.5 * (z * z).sum(1)
        return torch.where(z[:, 0] > 1.0, float("nan"), lp) if isinstance(z, torch.Tensor) else lp

    nan_prior = priors.Custom(nan_above_one, lambda n, r: r.standard_normal((n, 3)) - 6.0, 3, kde_samples=300)
    z[:, 0] = torch.linspace(-1.0, 2.0, 40, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"log-density of Custom\(dim=3\) is NaN at row 27 of z"):
        fastgeo.log_ri(z, nan_prior)


def test_radial_priors_by_kde_on_the_gpu_say_what_is_missing(simulated_gpu):
    with pytest.raises(NotImplementedError, match=r"needs its log-density on the GPU.*method='auto'"):
        fastgeo.log_ri(torch.zeros(3, 4), priors.StandardNormal(4), method="kde")


# -- the path energy -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_path_energy_on_the_gpu_path(rng, simulated_gpu, small_blocks, dtype):
    base = torch.tensor(np.cumsum(rng.standard_normal((3, 7, 2, 5, 31)), axis=1), dtype=dtype)
    G = base.permute(0, 1, 2, 4, 3)  # (B, K+1, C, W, H): not contiguous
    l = torch.tensor(rng.uniform(-12, 0, (3, 7)))
    got = fastgeo.energy_and_grads(G, l, 0.4)
    want = fastgeo.energy_and_grads(G.contiguous().numpy(), l.numpy(), 0.4, backend="cpu")
    tol = dict(rtol=2.0**-23, atol=0) if dtype == torch.float32 else dict(rtol=1e-12, atol=0)
    assert [t.dtype for t in got] == [dtype, dtype, torch.float64] and got[1].shape == G.shape
    for a, b in zip(got, want):
        scale = np.abs(b).max()
        np.testing.assert_allclose(a.numpy(), b, rtol=tol["rtol"], atol=1e-12 * scale)
    np.testing.assert_allclose(fastgeo.path_log_index(G, l).numpy(),
                               fastgeo.path_log_index(G.contiguous().numpy(), l.numpy(), backend="cpu"), **tol)
    # the autograd Function: the fused gradients come back as .grad
    Gr, lr = G.detach().clone().requires_grad_(), l.clone().requires_grad_()
    fastgeo.path_energy(Gr, lr, 0.4).sum().backward()
    assert torch.equal(Gr.grad, got[1]) and torch.equal(lr.grad, got[2])
    if dtype == torch.float32:
        return
    # errors are the CPU's
    Gb = G.detach().clone()
    Gb[2, 5, 1, 30, 4] = float("nan")
    with pytest.raises(ValueError, match=r"decoded contains NaN or inf \(first at index \(2, 5, 1, 30, 4\)"):
        fastgeo.energy_and_grads(Gb, l, 0.4)
    lb = l.clone()
    lb[1, 6] = float("inf")
    with pytest.raises(ValueError, match=r"log_ri contains NaN or \+inf \(first at index \(1, 6\): inf\)"):
        fastgeo.path_log_index(G, lb)
    empty = fastgeo.energy_and_grads(G[:0], l[:0], 0.4)
    assert [t.shape for t in empty] == [(0,), G[:0].shape, (0, 7)]


# -- interpolate end to end --------------------------------------------------------------------------

def test_interpolate_runs_on_the_gpu_path(rng, small_blocks, monkeypatch):
    """fastgeo.interpolate with a semicircle prior: the KDE and path kernels do the work (the
    CUDA backend's methods are called), and no numpy-only helper sees the "device" tensors."""
    from fastgeo.priors.mixture import GaussianMixture

    prior = priors.semicircle(2, kde_samples=600)
    torch.manual_seed(0)
    gen = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 24)).double().eval()
    z0 = torch.tensor([[4.0, 5.0], [3.0, 6.5]], dtype=torch.float64)
    z1 = torch.tensor([[4.0, -5.0], [2.0, -6.0]], dtype=torch.float64)
    cpu = fastgeo.interpolate(gen, z0, z1, prior, n_points=6, max_iter=4, ftol=0.0, backend="cpu")

    simulate_gpu(monkeypatch)
    calls = []
    real = cuda_backend.CUDABackend
    for name in ("kde", "path_energy", "path_log_index"):
        method = getattr(real, name)
        monkeypatch.setattr(real, name, lambda self, *a, _m=method, _n=name: calls.append(_n) or _m(self, *a))

    real_log_density, real_check_finite = GaussianMixture.log_density, _evaluator.check_finite

    def no_device_check(x, name="z"):  # a check on device data would synchronise each call
        if isinstance(x, torch.Tensor):
            raise AssertionError(f"the evaluator checked {name} on the 'device' (a synchronisation)")
        return real_check_finite(x, name)

    monkeypatch.setattr(_evaluator, "check_finite", no_device_check)

    def device_only(self, z, need_grad=False, kind=None):
        if not (isinstance(z, torch.Tensor) and kind is not None and kind.is_cuda):
            raise AssertionError("the log-density was computed on the host, not on the 'device'")
        return real_log_density(self, z, need_grad, kind)

    monkeypatch.setattr(GaussianMixture, "log_density", device_only)
    gpu = fastgeo.interpolate(gen, z0, z1, prior, n_points=6, max_iter=4, ftol=0.0)
    assert {"kde", "path_energy", "path_log_index"} <= set(calls)
    assert isinstance(gpu.path, torch.Tensor) and gpu.iterations.tolist() == cpu.iterations.tolist()
    np.testing.assert_allclose(gpu.energy_history.numpy(), cpu.energy_history.numpy(), rtol=1e-9)
    np.testing.assert_allclose(gpu.path.numpy(), cpu.path.numpy(), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gpu.path_log_index.numpy(), cpu.path_log_index.numpy(), rtol=1e-9)
