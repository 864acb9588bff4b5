"""GPU dispatch without a GPU: availability messages, backend choice, errors, and the
library-agnostic realism path (run here on torch CPU tensors posing as CUDA tensors)."""
import importlib.util
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import fastgeo
from array_standins import TorchPosingAsCuda, use_array_library
from fastgeo import _arrays, _evaluator, backends, priors, realism
from fastgeo._arrays import ArrayKind
from fastgeo.backends import cuda as cuda_backend
from fastgeo.backends.base import Backend
from fastgeo.backends.cpu import CPUBackend

HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None


# -- import and info ------------------------------------------------------------------------

def test_import_and_info_emit_no_warnings():
    """On a machine without a GPU, fastgeo imports and reports itself without a warning."""
    proc = subprocess.run([sys.executable, "-W", "error", "-c", "import fastgeo; print(fastgeo.info())"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "cuda" in proc.stdout and "auto picks" in proc.stdout


def test_cpu_work_does_not_touch_the_gpu_stack():
    """CPU inputs never import numba.cuda (slow, and it probes the driver)."""
    code = ("import sys, numpy as np, fastgeo; "
            "fastgeo.log_ri_and_grad(np.ones((3, 4)), fastgeo.priors.Gaussian(np.zeros(4), 2.0)); "
            "fastgeo.ri(np.ones((3, 4)), fastgeo.priors.UniformBox(-np.ones(4), np.ones(4))); "
            "print(sorted(m for m in sys.modules if m.startswith(('numba.cuda', 'numba_cuda', 'cupy'))))")
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_info_reports_the_cuda_reason():
    facts = fastgeo.info()
    assert facts["backends"]["cuda"] == cuda_backend.unavailable_reason()
    line = next(s for s in str(facts).splitlines() if s.strip().startswith("cuda"))
    assert ("available" in line) if facts["backends"]["cuda"] is None else facts["backends"]["cuda"] in line


# -- unavailable_reason says what is missing -------------------------------------------------

@pytest.fixture
def fresh_reason():
    cuda_backend.unavailable_reason.cache_clear()
    yield cuda_backend.unavailable_reason
    cuda_backend.unavailable_reason.cache_clear()


def test_reason_without_numba_cuda(monkeypatch, fresh_reason):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numba_cuda" else real(name, *a))
    reason = fresh_reason()
    assert reason.startswith("numba-cuda is not installed")
    assert "fastgeo[gpu-cu12]" in reason and "fastgeo[gpu-cu13]" in reason


@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed")
def test_reason_without_driver_or_gpu(monkeypatch, fresh_reason):
    from numba.cuda.cudadrv import driver as drv

    def no_driver():
        raise drv.CudaSupportError("Error at driver init: \n\nCUDA driver library cannot be found.\n:")

    monkeypatch.setattr(drv.driver, "get_device_count", no_driver, raising=False)
    assert fresh_reason() == ("no usable CUDA driver (is an NVIDIA driver installed?): "
                              "CUDA driver library cannot be found.")
    fresh_reason.cache_clear()
    monkeypatch.setattr(drv.driver, "get_device_count", lambda: 0, raising=False)
    assert fresh_reason().startswith("no CUDA GPU found")


@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed")
def test_reason_without_compiler(monkeypatch, fresh_reason):
    from numba.cuda.cudadrv import driver as drv
    from numba.cuda.cudadrv import nvvm

    monkeypatch.setattr(drv.driver, "get_device_count", lambda: 1, raising=False)
    monkeypatch.setattr(nvvm, "is_available", lambda: False)
    reason = fresh_reason()
    assert reason.startswith("NVVM (libnvvm, the CUDA compiler library) was not found")
    assert "gpu-cu12" in reason


# -- choosing a backend ---------------------------------------------------------------------

GPU = ArrayKind("torch", "cuda:0")


def test_auto_picks_by_device():
    assert backends.auto_choice("cpu") == "cpu"
    assert backends.auto_choice("cuda:1") == "cuda"


@pytest.mark.parametrize("name", ["cpu", "reference"])
def test_cpu_backends_refuse_gpu_inputs(name):
    with pytest.raises(ValueError, match=r"runs on the CPU but the input is a torch on cuda:0.*\.cpu\(\)"):
        backends.select(name, GPU)


def test_cuda_backend_refuses_cpu_inputs(monkeypatch):
    monkeypatch.setitem(backends._instances, "cuda", cuda_backend.CUDABackend())
    with pytest.raises(ValueError, match="runs on the GPU but the input is a numpy on cpu"):
        backends.select("cuda", ArrayKind("numpy", "cpu"))


def test_gpu_input_without_cuda_backend_says_what_to_install(monkeypatch):
    monkeypatch.setattr(cuda_backend, "unavailable_reason", lambda: "numba-cuda is not installed; install X")
    monkeypatch.delitem(backends._instances, "cuda", raising=False)
    with pytest.raises(fastgeo.BackendUnavailable,
                       match=r"torch on cuda:0 array, which needs the 'cuda' backend.*install X.*\.cpu\(\)"):
        backends.select("auto", GPU)


def test_non_cuda_accelerators_are_refused():
    with pytest.raises(ValueError, match="mps:0.*CUDA GPUs only"):
        backends.select("auto", ArrayKind("torch", "mps:0"))


def test_unsupported_dtype_names_the_fix():
    with pytest.raises(TypeError, match=r"float32 or float64, got torch.float16.*\.float\(\)"):
        fastgeo.log_ri(torch.zeros(3, 4, dtype=torch.float16), priors.StandardNormal(4))


def test_what_still_does_not_run_on_gpu_inputs():
    request = _evaluator.Request.make
    _evaluator._check_gpu_support(request(priors.semicircle(2), "log_ri", need_grad=True))  # supported
    _evaluator._check_gpu_support(request(priors.StandardNormal(3), "log_density"))  # supported
    with pytest.raises(NotImplementedError, match="gradient of log_prob.*not run on GPU inputs yet"):
        _evaluator._check_gpu_support(request(priors.StandardNormal(3), "log_density", need_grad=True))
    # the KDE estimator needs the prior's log-density on the GPU: mixtures and Custom have one
    gpu = ArrayKind("torch", "cuda:0")
    for prior in (priors.StandardNormal(3), priors.UniformBox(-np.ones(3), np.ones(3))):
        with pytest.raises(NotImplementedError, match=r"needs its log-density on the GPU.*\.cpu\(\)"):
            prior.log_density(torch.zeros(2, 3), False, gpu)


def test_what_codes_agree_with_the_cpu_kernels():
    from fastgeo.kernels import cpu_radial, cuda_radial

    assert cuda_backend._WHAT == {"log_ri": 0, "ri": 1, "log_density": 2}
    for name, code in cuda_backend._WHAT.items():
        attr = "WHAT_" + name.upper()
        assert getattr(cuda_radial, attr) == getattr(cpu_radial, attr) == code


# -- the realism path in the input's library -------------------------------------------------

class TorchCPUasCUDA(Backend):
    """Stands in for the CUDA backend: takes and returns torch tensors, computes on the CPU."""

    name = "cuda"
    devices = ("cuda",)

    def __init__(self):
        self.cpu = CPUBackend()
        self.calls = []

    def radial(self, y, family, dim, p0, p1, log_alpha, what, need_grad):
        assert isinstance(y, torch.Tensor)
        self.calls.append(y.shape[0])
        out, grad = self.cpu.radial(y.numpy(), family, dim, p0, p1, log_alpha, what, need_grad)
        return torch.from_numpy(out), (None if grad is None else torch.from_numpy(grad))

    def box(self, z, low, high, log_alpha, what):
        assert isinstance(z, torch.Tensor) and isinstance(low, torch.Tensor)
        self.calls.append(z.shape[0])
        return torch.from_numpy(self.cpu.box(z.numpy(), low.numpy(), high.numpy(), log_alpha, what))

    def kde(self, x, kde, what, need_grad):
        assert isinstance(x, torch.Tensor)
        self.calls.append(x.shape[0])
        out, deriv = self.cpu.kde(x.numpy(), kde, what, need_grad)
        return torch.from_numpy(out), (None if deriv is None else torch.from_numpy(deriv))

    def path_energy(self, G3, l, log_alpha, need_grads):
        assert isinstance(G3, torch.Tensor) and isinstance(l, torch.Tensor) and l.is_contiguous()
        self.calls.append(G3.shape[0])
        # the CUDA backend checks log_ri in its kernels: the caller must not have synced for it
        from fastgeo.path import _log_ri_rows

        _log_ri_rows(l.numpy())
        return tuple(None if a is None else torch.from_numpy(a)
                     for a in self.cpu.path_energy(G3.numpy(), l.numpy(), log_alpha, need_grads))

    def path_log_index(self, G3, l):
        from fastgeo.path import _log_ri_rows

        _log_ri_rows(l.numpy())
        self.calls.append(G3.shape[0])
        return torch.from_numpy(self.cpu.path_log_index(G3.numpy(), l.numpy()))


@pytest.fixture
def torch_as_gpu(monkeypatch):
    """torch CPU tensors are reported as living on cuda:0, and the 'cuda' backend is the
    stand-in above: the GPU code path of the realism functions runs, with torch operations."""
    use_array_library(monkeypatch, TorchPosingAsCuda())
    fake = TorchCPUasCUDA()
    monkeypatch.setitem(backends._instances, "cuda", fake)
    return fake


def gaussian_priors(rng, d):
    a = rng.standard_normal((d, d))
    return [priors.Gaussian(rng.standard_normal(d), a @ a.T + d * np.eye(d)),   # full covariance
            priors.Gaussian(rng.standard_normal(d), rng.uniform(0.5, 2.0, d)),  # diagonal
            priors.Gaussian(np.zeros(d), a @ a.T + np.eye(d)),                   # no mean
            priors.StandardNormal(d), priors.StudentT(d, 4.0)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_path_matches_numpy(rng, torch_as_gpu, dtype):
    d = 6
    z = (rng.standard_normal((4, 9, d)) * 1.5).astype(dtype)
    tol = dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for prior in gaussian_priors(rng, d) + [priors.UniformBox(-np.ones(d), 1.5 * np.ones(d))]:
        for what in ("log_ri", "ri"):
            out, grad = realism.evaluate(torch.from_numpy(z), prior, what, 0.7, need_grad=True)
            ref_out, ref_grad = realism.evaluate(z, prior, what, 0.7, backend="cpu", need_grad=True)
            assert isinstance(out, torch.Tensor) and out.dtype == torch.from_numpy(z).dtype
            assert out.shape == (4, 9) and grad.shape == z.shape
            np.testing.assert_allclose(out.numpy(), ref_out, **tol)
            np.testing.assert_allclose(grad.numpy(), ref_grad, **tol)
        lp = prior.log_prob(torch.from_numpy(z))
        np.testing.assert_allclose(lp.numpy(), prior.log_prob(z, backend="cpu"), **tol)
    assert torch_as_gpu.calls  # the stand-in backend did the work


def test_gpu_path_autograd_and_empty(rng, torch_as_gpu):
    prior = gaussian_priors(rng, 5)[0]
    z = torch.from_numpy(rng.standard_normal((7, 5))).requires_grad_(True)
    fastgeo.log_ri(z, prior).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), fastgeo.grad_log_ri(z.detach().numpy(), prior), rtol=1e-12)
    empty = fastgeo.ri(torch.zeros((0, 3, 5), dtype=torch.float32), prior)
    assert isinstance(empty, torch.Tensor) and empty.shape == (0, 3) and empty.dtype == torch.float32


def test_prior_constants_move_once_per_device(rng, torch_as_gpu):
    prior = gaussian_priors(rng, 4)[0]
    spec = prior.index()
    z = torch.from_numpy(rng.standard_normal((5, 4)))
    fastgeo.log_ri(z, prior)
    fastgeo.log_ri(z, prior)
    cached = _arrays.memory._constants[spec]
    assert len(cached) == 1
    (loc, w), = cached.values()
    assert isinstance(w, torch.Tensor) and w.dtype == torch.float64
    np.testing.assert_array_equal(w.numpy(), spec.whiten)


def test_kde_priors_and_path_energy_on_the_gpu_path(rng, torch_as_gpu):
    """The library-agnostic code around the KDE and path backends: the mixture's log-density
    in torch, the KDE on its values, the path energy's checks and outputs in torch."""
    prior = priors.semicircle(4, kde_samples=500)
    host = prior.sample(25, rng) * 1.5
    tolerances = {torch.float64: dict(rtol=1e-11, atol=1e-13), torch.float32: dict(rtol=2e-6, atol=1e-6)}
    for dtype, tol in tolerances.items():
        z = torch.from_numpy(host).to(dtype)
        for what in ("log_ri", "ri", "log_density"):
            del torch_as_gpu.calls[:]
            out, grad = realism.evaluate(z, prior, what, 0.5, need_grad=True)
            ref_out, ref_grad = realism.evaluate(z.numpy(), prior, what, 0.5, backend="cpu", need_grad=True)
            assert isinstance(out, torch.Tensor) and isinstance(grad, torch.Tensor)
            assert out.dtype == dtype and grad.dtype == dtype and grad.shape == z.shape
            assert torch_as_gpu.calls == ([] if what == "log_density" else [25])  # the KDE ran on "cuda"
            np.testing.assert_allclose(out.numpy(), ref_out, **tol)
            np.testing.assert_allclose(grad.numpy(), ref_grad, **tol)
    x = torch.from_numpy(rng.uniform(-20, 5, 33)).float()
    del torch_as_gpu.calls[:]
    cdf = prior.kde.cdf(x)
    assert isinstance(cdf, torch.Tensor) and cdf.dtype == torch.float32 and torch_as_gpu.calls == [33]
    np.testing.assert_array_equal(cdf.numpy(), prior.kde.cdf(x.numpy(), backend="cpu"))
    G = torch.from_numpy(rng.standard_normal((3, 5, 2, 7)))
    l = torch.from_numpy(rng.uniform(-9, 0, (3, 5))).float()
    for g in (G, G.float()):
        del torch_as_gpu.calls[:]
        got = fastgeo.energy_and_grads(g, l, 0.3)
        want = fastgeo.energy_and_grads(g.numpy(), l.numpy(), 0.3, backend="cpu")
        assert torch_as_gpu.calls == [3]
        assert all(isinstance(t, torch.Tensor) for t in got)
        assert got[0].dtype == g.dtype and got[1].dtype == g.dtype and got[1].shape == G.shape
        assert got[2].dtype == torch.float32  # dE/dl in log_ri's dtype
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a.numpy(), b)
    np.testing.assert_array_equal(fastgeo.path_log_index(G, l).numpy(),
                                  fastgeo.path_log_index(G.numpy(), l.numpy()))
    empty = fastgeo.energy_and_grads(G[:0], l[:0], 0.3)
    assert all(isinstance(t, torch.Tensor) for t in empty) and empty[1].shape == (0, 5, 2, 7)
    with pytest.raises(ValueError, match="runs on the CPU"):
        prior.kde.cdf(torch.zeros(5), backend="cpu")


def test_kde_and_path_inputs_that_the_gpu_route_refuses(rng, torch_as_gpu):
    G = torch.from_numpy(rng.standard_normal((2, 4, 3)))
    l = rng.uniform(-5, 0, (2, 4))
    with pytest.raises(TypeError, match="decoded is a torch array but log_ri is a numpy array"):
        fastgeo.energy_and_grads(G, l, 0.5)
    with pytest.raises(TypeError, match=r"float32 or float64, got torch.float16.*\.float\(\)"):
        fastgeo.energy_and_grads(G.half(), torch.from_numpy(l), 0.5)
    with pytest.raises(TypeError, match=r"float32 or float64, got torch.bfloat16.*\.float\(\)"):
        priors.semicircle(2, kde_samples=300).kde.cdf(torch.zeros(4, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match=r"log_ri contains NaN"):
        fastgeo.energy_and_grads(G, torch.full((2, 4), float("nan"), dtype=torch.float64), 0.5)
    assert torch_as_gpu.calls == [2]  # the NaN was found by the backend (the CUDA one checks on the device)


def test_path_energy_on_two_gpus_raises(rng, monkeypatch):
    """decoded on cuda:0 and log_ri on cuda:1: named, never moved."""
    class TwoGPUs(TorchPosingAsCuda):
        def kind(self, x):
            dev = "cuda:1" if x.dtype == torch.float64 and x.ndim == 2 else "cuda:0"
            return ArrayKind("torch", dev, x.device)

    use_array_library(monkeypatch, TwoGPUs())
    with pytest.raises(ValueError, match="cuda:0 but log_ri is on cuda:1"):
        fastgeo.energy_and_grads(torch.zeros(2, 4, 3), torch.zeros(2, 4, dtype=torch.float64), 0.5)


# -- chunks: huge batches are processed, not refused ------------------------------------------

@pytest.mark.parametrize("rows", [1, 7, 64])
def test_chunked_results_equal_one_call(rng, monkeypatch, rows):
    d = 5
    z = rng.standard_normal((150, d)) * 1.3
    prior = gaussian_priors(rng, d)[0]
    box = priors.UniformBox(-np.ones(d), np.ones(d))
    expected = [realism.evaluate(z, p, w, 0.5, "cpu", need_grad=True) for p in (prior, box) for w in ("log_ri", "ri")]
    monkeypatch.setattr(_evaluator, "chunk_rows", lambda *a: rows)
    got = [realism.evaluate(z, p, w, 0.5, "cpu", need_grad=True) for p in (prior, box) for w in ("log_ri", "ri")]
    for i, ((e_out, e_grad), (g_out, g_grad)) in enumerate(zip(expected, got)):
        if i < 2:  # whitened: BLAS may round the matrix product differently for fewer rows
            np.testing.assert_allclose(g_out, e_out, rtol=1e-14, atol=0)
            np.testing.assert_allclose(g_grad, e_grad, rtol=1e-13, atol=1e-15)
        else:
            np.testing.assert_array_equal(g_out, e_out)
            np.testing.assert_array_equal(g_grad, e_grad)


def test_chunked_error_names_the_global_index(rng, monkeypatch):
    z = rng.standard_normal((40, 3))
    z[33, 1] = np.inf
    monkeypatch.setattr(_evaluator, "chunk_rows", lambda *a: 8)
    with pytest.raises(ValueError, match=r"first at index \(33, 1\): inf"):
        fastgeo.log_ri(z, priors.StandardNormal(3), backend="cpu")


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_non_finite_error_names_the_entry_of_z_not_of_the_whitened_rows(rng, backend):
    """With a full covariance, an inf in z spreads over its whitened row; the error still
    names z's entry (and no RuntimeWarning escapes the whitening)."""
    prior = gaussian_priors(rng, 6)[0]
    z = rng.standard_normal((50, 6))
    z[41, 4] = np.inf
    with pytest.raises(ValueError, match=r"first at index \(41, 4\): inf"):
        fastgeo.log_ri(z, prior, backend=backend)


def test_out_of_memory_halves_the_chunk(rng, monkeypatch):
    cpu = backends.get("cpu")
    real_radial = cpu.radial
    sizes = []

    def radial(y, *args):
        sizes.append(y.shape[0])
        if y.shape[0] > 16:
            raise MemoryError("pretend the device is full")
        return real_radial(y, *args)

    z = rng.standard_normal((100, 4))
    prior = priors.Gaussian(np.ones(4), 2.0)
    expected = fastgeo.log_ri_and_grad(z, prior, backend="cpu")
    monkeypatch.setattr(cpu, "radial", radial)
    out, grad = fastgeo.log_ri_and_grad(z, prior, backend="cpu")
    np.testing.assert_array_equal(out, expected[0])
    np.testing.assert_array_equal(grad, expected[1])
    assert sizes == [100, 50, 25] + [12] * 8 + [4]  # halved until a chunk fits, then kept


def test_chunk_rows_fit_the_free_memory(monkeypatch):
    z = np.ones((1000, 10), dtype=np.float32)
    spec = priors.StandardNormal(10).index()
    monkeypatch.setattr(_evaluator, "free_bytes", lambda kind: 2 * 44 * 100)  # room for 100 rows
    assert _evaluator.chunk_rows(GPU, z, spec, False) == 100
    monkeypatch.setattr(_evaluator, "free_bytes", lambda kind: None)
    assert _evaluator.chunk_rows(GPU, z, spec, False) == 1000
    assert _arrays.free_bytes(ArrayKind("numpy", "cpu")) is None


def test_is_out_of_memory():
    from fastgeo._arrays import is_out_of_memory

    class OutOfMemoryError(RuntimeError):
        pass

    assert is_out_of_memory(MemoryError()) and is_out_of_memory(OutOfMemoryError("x"))
    assert is_out_of_memory(RuntimeError("[2] Call to cuMemAlloc results in CUDA_ERROR_OUT_OF_MEMORY"))
    assert not is_out_of_memory(ValueError("z contains NaN"))


# -- the GPU benchmark script runs anywhere ----------------------------------------------------

def test_gpu_bench_without_a_gpu_reports_every_target_owed(tmp_path, monkeypatch):
    import importlib.util
    import json
    from pathlib import Path

    monkeypatch.setattr(cuda_backend, "unavailable_reason", lambda: "no CUDA GPU found (test)")
    monkeypatch.delitem(backends._instances, "cuda", raising=False)
    script = Path(__file__).resolve().parents[1] / "bench" / "gpu_bench.py"
    spec = importlib.util.spec_from_file_location("gpu_bench", script)
    gpu_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_bench)
    assert gpu_bench.main(["--no-cpu", "--out", str(tmp_path)]) == 0
    (written,) = tmp_path.glob("*/bench.json")
    result = json.loads(written.read_text())
    reason = "no CUDA backend: no CUDA GPU found (test)"
    cuda = result["device_descriptions"]["cuda"]
    assert cuda == {"kind": "cuda", "available": False, "description": reason}
    assert len(result["targets"]) == len(gpu_bench.TARGETS) == 4
    assert all(t.startswith("OWED") and t.endswith(f"({reason})") for t in result["targets"])
    # the interpolate target is judged by the solver overhead of its row
    row = dict(benchmark="interpolate DCGAN-64x64x3 ngf=64 B=256", implementation="fastgeo.interpolate",
               device="cuda", role="kernel", seconds=2.0, items_per_s=128.0, speedup={}, note="")
    for overhead, verdict in ((0.08, "PASS"), (0.2, "FAIL")):
        rows = [{**row, "extra": {"solver_overhead_fraction": overhead}}]
        lines = gpu_bench.check_targets({"size": "full", "rows": rows})
        assert lines[-1].startswith(verdict) and f"solver overhead {100 * overhead:.1f}%" in lines[-1]


def test_interpolate_benchmark_measures_the_solver_overhead():
    from fastgeo import benchmarks

    result = benchmarks.run(size="tiny", only=["interpolate"], devices=["cpu"], repeats=1, progress=False)
    (row,) = result["rows"]
    assert row["items"] == 2 and row["seconds"] > 0, row["note"]
    t = row["extra"]["timings_s"]
    generator = t["generator_forward"] + t["generator_vjp"]
    assert 0 < generator < t["total"]
    assert row["extra"]["solver_overhead_fraction"] == pytest.approx(1 - generator / t["total"])
    assert result["device_descriptions"]["cpu"]["kind"] == "cpu"
