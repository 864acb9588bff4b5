"""Path energy of eq. (3) and both its gradients at B = 32 paths, K = 50, N = 12288 float32.

Kernel: ``fastgeo.energy_and_grads(G, l, alpha, backend="cpu")`` (the fused pass: E, dE/dG
and dE/dl; dE/dG freshly allocated, as every call does), the same through torch autograd
(``path_energy(G, l).sum().backward()``), and the pass alone writing into a preallocated
gradient (what the kernel itself reaches, without the operating system's first-touch cost of
a fresh 80 MB array). References: torch eager autograd of the plain formula (forward +
backward, what a user would write) and the float64 numpy reference backend. Limit: a plain
copy of the decoded array (read once, write once).

Bytes counted for every kernel: decoded read once + dE/dG written once + log_ri, E, dE/dl.

Run (the results JSON the lead compares)::

    flock /tmp/fastgeo-bench.lock python -m pytest bench/test_bench_path_energy.py \
        --benchmark-enable --benchmark-min-rounds=30 --benchmark-json bench/results/path-energy-cpu.json

On a shared machine, ``bench/path_energy_interleaved.py`` times the same contenders (and a
perfect single pass, the pass on one thread, the API without the buffer pool) in interleaved
rounds, so that a burst of load cannot fall on one contender only.
"""
import math

import numpy as np
import pytest
import torch

import fastgeo
from fastgeo.backends import cpu as cpu_backend

B, K, N = 32, 50, 12288
ALPHA = 0.5
GROUP = "path-energy-32x51x12288-f32"


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(2024)
    G = rng.standard_normal((B, K + 1, N), dtype=np.float32)
    l = rng.uniform(-20.0, 0.0, (B, K + 1)).astype(np.float32)
    return G, l


def kernel_bytes(G, l):
    small = l.nbytes * 2 + B * G.itemsize  # log_ri in, dE/dl and E out
    return 2 * G.nbytes + small


def torch_eager_energy(G, l, alpha):
    """Eq. (3) written plainly in torch (float32, as the inputs)."""
    diff = (G[:, 1:] - G[:, :-1]).flatten(2)
    d = (diff * diff).sum(dim=2)
    log_a = math.log(alpha) + torch.logaddexp(l[:, :-1], l[:, 1:]) - math.log(2.0)
    return (log_a * log_a * d).sum(dim=1)


@pytest.mark.benchmark(group=GROUP)
def test_copy(copy_bench, inputs):
    copy_bench(inputs[0])


@pytest.mark.benchmark(group=GROUP)
def test_fastgeo_cpu_energy_and_grads(benchmark, inputs):
    G, l = inputs
    fastgeo.energy_and_grads(G[:2, :3, :100], l[:2, :3], ALPHA, backend="cpu")  # load kernels
    benchmark.extra_info.update(role="kernel", bytes=kernel_bytes(G, l), items=B)
    E, dG, dl = benchmark(fastgeo.energy_and_grads, G, l, ALPHA, backend="cpu")
    assert E.shape == (B,) and dG.shape == G.shape and dl.shape == l.shape


@pytest.mark.benchmark(group=GROUP)
def test_fastgeo_cpu_torch_autograd(benchmark, inputs):
    Gt = torch.from_numpy(inputs[0]).requires_grad_()
    lt = torch.from_numpy(inputs[1]).requires_grad_()

    def forward_backward():
        Gt.grad = None
        lt.grad = None
        fastgeo.path_energy(Gt, lt, ALPHA, backend="cpu").sum().backward()
        return Gt.grad

    forward_backward()
    benchmark.extra_info.update(role="kernel", bytes=kernel_bytes(*inputs), items=B)
    grad = benchmark(forward_backward)
    assert grad.shape == Gt.shape


@pytest.mark.benchmark(group=GROUP)
def test_fastgeo_cpu_pass_preallocated(benchmark, inputs):
    """The fused pass alone, into a gradient buffer reused between calls."""
    import numba

    from fastgeo.kernels.cpu_path import path_pass, segment_log_a_rows

    G, l = inputs
    l64 = l.astype(np.float64)
    log_a = np.empty((B, K))
    segment_log_a_rows(l64, math.log(ALPHA), log_a)
    block = cpu_backend.path_block(B, N, numba.get_num_threads())
    d_part = np.empty((B, -(-N // block), K))
    grad = np.empty_like(G)

    def run():
        with numba.parallel_chunksize(1):
            path_pass(G, log_a, block, True, d_part, grad)

    run()
    benchmark.extra_info.update(role="kernel", bytes=kernel_bytes(G, l), items=B)
    benchmark(run)


@pytest.mark.benchmark(group=GROUP)
def test_torch_eager_autograd(benchmark, inputs):
    Gt = torch.from_numpy(inputs[0]).requires_grad_()
    lt = torch.from_numpy(inputs[1]).requires_grad_()

    def forward_backward():
        Gt.grad = None
        lt.grad = None
        torch_eager_energy(Gt, lt, ALPHA).sum().backward()
        return Gt.grad

    forward_backward()
    benchmark.extra_info.update(role="reference")
    benchmark(forward_backward)


@pytest.mark.benchmark(group=GROUP)
def test_numpy_reference_backend(benchmark, inputs):
    G, l = inputs
    benchmark.extra_info.update(role="reference")
    benchmark.pedantic(fastgeo.energy_and_grads, args=(G, l, ALPHA), kwargs={"backend": "reference"},
                       rounds=3, iterations=1)
