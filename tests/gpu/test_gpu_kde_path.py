"""The KDE and path-energy kernels on a real GPU, against the float64 reference at the CPU
kernels' tolerances: torch CUDA and CuPy in and out, poisoned outputs, sizes across the block
sizes, the caller's stream, and ``interpolate`` end to end with a small generator on cuda.
Skipped (with the reason) without a GPU; run with ``python -m pytest tests/gpu -v``.
"""
import math

import numpy as np
import pytest

import fastgeo
from fastgeo import KDE, priors, realism
from fastgeo.backends import cuda as cuda_backend
from fastgeo.backends.reference import ReferenceBackend
from path_tolerance import assert_close, term_scale

REASON = cuda_backend.unavailable_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=f"no CUDA backend: {REASON}")]

REF = ReferenceBackend()
WHATS = ("cdf", "log_cdf", "pdf", "log_pdf")
#: query kernels: blocks of 128 (cuda_launch.THREADS); path pass: tiles of 1024 columns
KDE_SIZES = (1, 127, 129, 1000, 5_003)


@pytest.fixture(scope="module")
def kde():
    """Two modes and a long lower tail: queries land in table cells, flagged cells and both tails."""
    rng = np.random.default_rng(2024)
    return KDE(np.concatenate([rng.standard_normal(3000), 9.0 + 0.3 * rng.standard_normal(1500),
                               -rng.lognormal(1.0, 1.0, 500)]))


def kde_queries(rng, kde, m):
    t, h = kde.table, kde.bandwidth
    tail = m // 8 + 1
    x = np.concatenate([rng.uniform(t.x0, t.x_end, m), rng.choice(kde.samples, m // 4 + 1),
                        t.x0 - h * rng.uniform(0.1, 1e3, tail), t.x_end + h * rng.uniform(0.1, 50, tail)])
    return rng.permutation(x)[:m]


def check_kde(got, dgot, x, kde, what):
    """The CPU kernel's tolerances against the naive float64 sums (tests/test_kde.py). float32
    outputs are float64 results rounded once: compared with the reference rounded to float32,
    within one more float32 rounding (and the smallest subnormals where they underflow)."""
    want, dwant = REF.kde(np.asarray(x, np.float64), kde, what, True)
    got, dgot = np.asarray(got, np.float64), np.asarray(dgot, np.float64)
    assert not np.isnan(got).any() and not np.isnan(dgot).any(), what  # nothing left poisoned
    rtol32, atol32 = 0.0, 0.0
    if np.asarray(x).dtype == np.float32:
        want, dwant = (a.astype(np.float32).astype(np.float64) for a in (want, dwant))
        rtol32, atol32 = 2.0**-23, 2.0**-148
    if what == "cdf":
        np.testing.assert_allclose(got, want, rtol=rtol32, atol=1e-12 + atol32)
    else:  # near G = 1 the plain reference has only absolute precision
        ok = np.abs(want) > 1e-4 if what == "log_cdf" else np.isfinite(want)
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-9 + rtol32, atol=atol32, err_msg=what)
    ok = np.isfinite(dwant) & (np.abs(dwant) > 1e-200) & (np.abs(want) > 1e-4 if what == "log_cdf" else True)
    np.testing.assert_allclose(dgot[ok], dwant[ok], rtol=1e-8 + rtol32, atol=atol32, err_msg=what + "'")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m", KDE_SIZES)
def test_kde_torch_matches_reference(rng, torch_cuda, poisoned_outputs, kde, m, dtype):
    torch = torch_cuda
    host = kde_queries(rng, kde, m).astype(dtype)
    x = torch.as_tensor(host, device="cuda")
    backend = cuda_backend.CUDABackend()
    for what in WHATS:
        out, dout = backend.kde(x, kde, what, True)
        assert out.device == x.device and out.dtype == x.dtype and dout.dtype == x.dtype
        check_kde(out.cpu().numpy(), dout.cpu().numpy(), host, kde, what)
        plain = getattr(kde, what)(x)  # the public method, no gradient
        assert isinstance(plain, torch.Tensor) and plain.device == x.device
        np.testing.assert_allclose(plain.cpu().numpy(), out.cpu().numpy(), rtol=1e-13, atol=1e-300)


def test_kde_strided_cupy_and_errors(rng, poisoned_outputs, kde):
    cupy = pytest.importorskip("cupy")
    host = kde_queries(rng, kde, 3 * 701)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        x = cupy.asarray(host)[1::3]  # strided
        out, dout = cuda_backend.CUDABackend().kde(x, kde, "log_cdf", True)
    stream.synchronize()
    assert isinstance(out, cupy.ndarray) and out.dtype == np.float64
    check_kde(out.get(), dout.get(), host[1::3], kde, "log_cdf")
    bad = cupy.asarray(host)
    bad[333] = np.nan
    with pytest.raises(ValueError, match=r"x contains NaN \(first at index \(333,\)\)"):
        kde.cdf(bad)


def test_kde_priors_on_the_gpu(rng, torch_cuda, poisoned_outputs):
    """semicircle: the mixture's log-density in torch on the GPU, then the KDE kernels."""
    torch = torch_cuda
    prior = priors.semicircle(20)
    host = prior.sample(1031, rng) * rng.uniform(0.5, 2.0, (1031, 1))
    for dtype in (torch.float64, torch.float32):
        z = torch.as_tensor(host, dtype=dtype, device="cuda")
        out, grad = realism.evaluate(z, prior, "log_ri", 0.5, need_grad=True)
        assert out.device == z.device and out.dtype == dtype and grad.dtype == dtype
        ref_out, ref_grad = realism.evaluate(z.cpu().numpy(), prior, "log_ri", 0.5, backend="reference",
                                             need_grad=True)
        rtol = 1e-5 if dtype == torch.float32 else 1e-9  # float32: the log-density is rounded first
        np.testing.assert_allclose(out.cpu().numpy(), ref_out, rtol=rtol, atol=1e-12)
        scale = rtol * np.linalg.norm(ref_grad, axis=1, keepdims=True)
        assert np.all(np.abs(grad.cpu().numpy() - ref_grad) <= scale + 1e-12)


def path(rng, b, k1, n, dtype):
    return np.cumsum(rng.standard_normal((b, k1, n)), axis=1).astype(dtype), rng.uniform(-30.0, 0.0, (b, k1))


def check_path(G_host, l_host, log_alpha, E, dG, dl, index):
    dtype = G_host.dtype.type
    rE, rG, rl = REF.path_energy(G_host, l_host, log_alpha, True)
    assert_close(E, rE, np.abs(rE), dtype, "E")
    assert_close(dG, rG, term_scale(G_host, l_host, log_alpha), dtype, "dE/dG")
    assert_close(dl, rl, np.abs(rl), np.float64, "dE/dl")
    want = REF.path_log_index(G_host, l_host)
    assert_close(index, want, np.abs(want), dtype, "log ri(path)")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("b,k1,n", [(1, 2, 1), (3, 6, 1023), (2, 51, 1025), (5, 10, 3000), (64, 51, 12288)])
def test_path_energy_torch_matches_reference(rng, torch_cuda, poisoned_outputs, b, k1, n, dtype):
    torch = torch_cuda
    G_host, l_host = path(rng, b, k1, n, dtype)
    G = torch.as_tensor(G_host, device="cuda")
    l = torch.as_tensor(l_host, device="cuda")
    alpha = rng.uniform(0.05, 0.95)
    E, dG, dl = fastgeo.energy_and_grads(G, l, alpha)
    assert E.device == G.device and E.dtype == G.dtype and dG.dtype == G.dtype and dG.shape == G.shape
    index = fastgeo.path_log_index(G, l)
    assert index.dtype == G.dtype
    check_path(G_host, l_host, math.log(alpha), E.cpu().numpy(), dG.cpu().numpy(), dl.cpu().numpy(),
               index.cpu().numpy())


def test_path_energy_strided_and_autograd(rng, torch_cuda, poisoned_outputs):
    torch = torch_cuda
    base = torch.as_tensor(rng.standard_normal((3, 14, 2 * 1500)), device="cuda")
    G = base[:, 1::2, ::2]  # every other point and every other column
    assert not G.is_contiguous()
    l_host = rng.uniform(-10, 0, (3, 7))
    l = torch.as_tensor(l_host, device="cuda")
    E, dG, dl = fastgeo.energy_and_grads(G, l, 0.4)
    G_host = np.ascontiguousarray(G.cpu().numpy())
    check_path(G_host, l_host, math.log(0.4), E.cpu().numpy(), dG.cpu().numpy(), dl.cpu().numpy(),
               fastgeo.path_log_index(G, l).cpu().numpy())
    g = G.clone().requires_grad_(True)
    lg = l.clone().requires_grad_(True)
    fastgeo.path_energy(g, lg, 0.4).sum().backward()
    torch.testing.assert_close(g.grad, dG, rtol=0, atol=0)
    torch.testing.assert_close(lg.grad, dl, rtol=0, atol=0)


def test_path_energy_cupy_on_its_stream(rng, poisoned_outputs):
    cupy = pytest.importorskip("cupy")
    G_host, l_host = path(rng, 4, 9, 2049, np.float32)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        G, l = cupy.asarray(G_host), cupy.asarray(l_host)
        E, dG, dl = fastgeo.energy_and_grads(G, l, 0.3)
        index = fastgeo.path_log_index(G, l)
    stream.synchronize()
    assert all(isinstance(a, cupy.ndarray) for a in (E, dG, dl, index))
    check_path(G_host, l_host, math.log(0.3), E.get(), dG.get(), dl.get(), index.get())


@pytest.mark.parametrize("which", ["kde", "path"])
def test_zero_copy_on_the_callers_stream(rng, torch_cuda, monkeypatch, stream_handle, kde, which):
    """Work queued on a side stream just before the call (after a delay) is seen by the kernels,
    which are launched on that very stream, reading the caller's tensor in place."""
    torch = torch_cuda
    from fastgeo.kernels import cuda_kde, cuda_path

    mod = cuda_kde if which == "kde" else cuda_path
    seen = []
    real = mod.launch_grid

    def launch_grid(kernel, blocks, threads, stream, *args):
        seen.append((stream_handle(stream), args[0]))
        return real(kernel, blocks, threads, stream, *args)

    monkeypatch.setattr(mod, "launch_grid", launch_grid)
    monkeypatch.setattr(mod, "launch", lambda kernel, rows, stream, *args: launch_grid(
        kernel, -(-rows // 128), 128, stream, *args))
    if which == "kde":
        host = kde_queries(rng, kde, 200_000)
        src = torch.as_tensor(host, device="cuda")
    else:
        G_host, l_host = path(rng, 8, 11, 4096, np.float32)
        src, l = torch.as_tensor(G_host, device="cuda"), torch.as_tensor(l_host, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(100_000_000)
        x = src * 2.0
        out = kde.cdf(x) if which == "kde" else fastgeo.path_energy(x, l, 0.5)
    side.synchronize()
    assert seen and all(h == side.cuda_stream for h, _ in seen)
    # the caller's tensor itself is read, not a copy of it
    assert any(a.__cuda_array_interface__["data"][0] == x.data_ptr() for _, a in seen)
    if which == "kde":
        want = REF.kde(2.0 * host, kde, "cdf", False)[0]
        np.testing.assert_allclose(out.cpu().numpy(), want, rtol=0, atol=1e-12)
    else:
        want = REF.path_energy((2.0 * G_host).astype(np.float32), l_host, math.log(0.5), False)[0]
        assert_close(out.cpu().numpy(), want, np.abs(want), np.float32, "E")


def test_path_errors_on_the_gpu(rng, torch_cuda):
    torch = torch_cuda
    G = torch.as_tensor(path(rng, 2, 5, 3000, np.float32)[0], device="cuda")
    l = torch.zeros(2, 5, dtype=torch.float64, device="cuda")
    G[1, 3, 2077] = float("inf")
    with pytest.raises(ValueError, match=r"decoded contains NaN or inf \(first at index \(1, 3, 2077\)"):
        fastgeo.energy_and_grads(G, l, 0.5)
    with pytest.raises(ValueError, match="cuda:0 but log_ri is on cpu"):
        fastgeo.energy_and_grads(G, l.cpu(), 0.5)
    with pytest.raises(TypeError, match="float32 or float64"):
        fastgeo.energy_and_grads(G.half(), l, 0.5)


def test_interpolate_end_to_end_on_the_gpu(rng, torch_cuda):
    """A small generator on cuda: the path, the decoded points and the energy stay on the GPU,
    and the result agrees with the same problem solved on the CPU."""
    torch = torch_cuda
    torch.manual_seed(0)
    gen = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 300))
    gen = gen.double().eval()
    prior = priors.StandardNormal(8)
    z0, z1 = (torch.as_tensor(rng.standard_normal((3, 8))) for _ in range(2))
    kwargs = dict(n_points=12, max_iter=300, progress=False)
    gpu = fastgeo.interpolate(gen.to("cuda"), z0.cuda(), z1.cuda(), prior, **kwargs)
    cpu = fastgeo.interpolate(gen.to("cpu"), z0, z1, prior, **kwargs)
    assert gpu.path.device.type == "cuda" and gpu.decoded.device.type == "cuda"
    assert torch.isfinite(gpu.energy).all()
    # the linear start is improved on, and both devices reach the same minimum (cuBLAS and the
    # CPU round differently, so the iterates differ slightly; the converged energies agree)
    assert (gpu.energy_history[:, -1] < gpu.energy_history[:, 0]).all() and bool(gpu.converged.all())
    np.testing.assert_allclose(gpu.energy.cpu().numpy(), cpu.energy.numpy(), rtol=1e-5)
    semi = priors.semicircle(2)
    w0 = torch.tensor([[4.0, 7.0]], dtype=torch.float64, device="cuda")
    w1 = torch.tensor([[4.0, -7.0]], dtype=torch.float64, device="cuda")
    res = fastgeo.interpolate(lambda z: z, w0, w1, semi, n_points=16, max_iter=50, progress=False)
    assert res.path.device.type == "cuda"
    # MATH.md 1.3: the linear path's smallest ri is about 2e-4; the optimal one bends through the middle
    t = torch.linspace(0, 1, 16, dtype=torch.float64, device="cuda")[:, None]
    assert float(res.ri.min()) > 10 * float(fastgeo.ri(w0 + t * (w1 - w0), semi).min())
