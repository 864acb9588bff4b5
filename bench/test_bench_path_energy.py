"""Path energy of eq. (3) and both its gradients at B = 32 paths, K = 50, N = 12288 float32.

Kernel: ``fastgeo.energy_and_grads(G, l, alpha, backend="cpu")`` (the fused pass: E, dE/dG
and dE/dl; dE/dG freshly allocated, as every call does), the same through torch autograd
(``path_energy(G, l)`` and its gradients), and the pass alone writing into a preallocated
gradient (what the kernel itself reaches, without the operating system's first-touch cost of
a fresh 80 MB array). References: torch eager autograd of the plain formula (forward +
backward, what a user would write) and the float64 numpy reference backend. Limit: a plain
copy of the decoded array (read once, write once). Definitions and checks:
:mod:`fastgeo.benchmarks.path_energy`; each timed result is checked once against the float64
reference backend after its timing.

Bytes counted for every kernel: decoded read once + dE/dG written once + log_ri, E, dE/dl.

Run (the results JSON the lead compares)::

    flock /tmp/fastgeo-bench.lock python -m pytest bench/test_bench_path_energy.py \
        --benchmark-enable --benchmark-min-rounds=30 --benchmark-json bench/results/path-energy-cpu.json

On a shared machine, ``bench/path_energy_interleaved.py`` times the same contenders (and a
perfect single pass, the pass on one thread, the API without the buffer pool) in interleaved
rounds, so that a burst of load cannot fall on one contender only.
"""
import numpy as np
import pytest

from fastgeo.benchmarks import path_energy as pe

B, K, N = 32, 50, 12288
ALPHA = pe.ALPHA
GROUP = "path-energy-32x51x12288-f32"


@pytest.fixture(scope="module")
def inputs():
    return pe.noise_inputs(np.random.default_rng(2024), B, K, N)


@pytest.fixture(scope="module")
def truth(inputs):
    return pe.reference(*inputs, ALPHA)


def kernel_bytes(G, l):
    small = l.nbytes * 2 + B * G.itemsize  # log_ri in, dE/dl and E out
    return 2 * G.nbytes + small


@pytest.mark.benchmark(group=GROUP)
def test_copy(copy_bench, inputs):
    copy_bench(inputs[0])


@pytest.mark.benchmark(group=GROUP)
def test_fastgeo_cpu_energy_and_grads(benchmark, inputs, truth):
    G, l = inputs
    pe.fastgeo_energy_and_grads(G[:2, :3, :100], l[:2, :3], ALPHA, "cpu")  # load kernels
    benchmark.extra_info.update(role="kernel", bytes=kernel_bytes(G, l), items=B)
    pe.check(benchmark(pe.fastgeo_energy_and_grads, G, l, ALPHA, "cpu"), truth)


@pytest.mark.benchmark(group=GROUP)
def test_fastgeo_cpu_torch_autograd(benchmark, inputs, truth):
    leaves = pe.torch_leaves(*inputs)
    pe.fastgeo_autograd(*leaves, ALPHA)
    benchmark.extra_info.update(role="kernel", bytes=kernel_bytes(*inputs), items=B)
    pe.check(benchmark(pe.fastgeo_autograd, *leaves, ALPHA), truth)


@pytest.mark.benchmark(group=GROUP)
def test_fastgeo_cpu_pass_preallocated(benchmark, inputs, truth):
    """The fused pass alone, into a gradient buffer reused between calls."""
    run = pe.preallocated_pass(*inputs, ALPHA)
    run()
    benchmark.extra_info.update(role="kernel", bytes=kernel_bytes(*inputs), items=B)
    pe.check(benchmark(run), truth)


@pytest.mark.benchmark(group=GROUP)
def test_torch_eager_autograd(benchmark, inputs, truth):
    leaves = pe.torch_leaves(*inputs)
    pe.torch_eager_energy_and_grads(*leaves, ALPHA)
    benchmark.extra_info.update(role="reference")
    pe.check(benchmark(pe.torch_eager_energy_and_grads, *leaves, ALPHA), truth)


@pytest.mark.benchmark(group=GROUP)
def test_numpy_reference_backend(benchmark, inputs, truth):
    G, l = inputs
    benchmark.extra_info.update(role="reference")
    result = benchmark.pedantic(pe.fastgeo_energy_and_grads, args=(G, l, ALPHA, "reference"), rounds=3,
                                iterations=1)
    pe.check(result, truth)
