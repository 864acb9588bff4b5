"""The realism index of the semicircle prior (a 3-component Gaussian mixture in 20
dimensions; MATH.md 1.3) end to end on the CPU, and its log-density alone.

Kernel: ``fastgeo.ri(z, semicircle(20), backend="cpu")``: the compiled one-pass mixture
log-density (kernels/cpu_mixture.py) then the KDE table lookup, over 200,000 points.
References:

- "numpy log-density": the same KDE lookup after the mixture's log-density by the float64
  numpy formula (the reference backend's ``mixture_log_density``: the path before the
  compiled kernel), on the same 200,000 points;
- "naive": the numpy log-density and the naive float64 O(n) KDE sum
  (``fastgeo.benchmarks.kde_cdf.naive_kde_cdf``, n = 5000 samples), on 2,000 points
  (``items`` makes the throughputs comparable).

Each timed result is checked once against the float64 reference backend's ``ri``.
Run::

    python -m pytest bench/test_bench_mixture.py --benchmark-enable \
        --benchmark-json bench/results/mixture-cpu.json
"""
import numpy as np
import pytest

import fastgeo
from fastgeo.backends import get
from fastgeo.benchmarks import kde_cdf
from fastgeo.priors import semicircle

M_KERNEL = 200_000
M_NAIVE = 2_000
CHECK_ROWS = 2_000


@pytest.fixture(scope="module")
def prior():
    p = semicircle(20)
    p.kde.table  # samples drawn, table built and compiled outside the timings
    return p


@pytest.fixture(scope="module")
def points(prior):
    """Prior samples and wider points (a path's interior is often off the prior's bulk)."""
    rng = np.random.default_rng(20241204)
    z = prior.sample(M_KERNEL, seed=7)
    z[::2] *= rng.uniform(0.5, 2.0, size=(z[::2].shape[0], 1))
    return z


@pytest.fixture(scope="module")
def truth(prior, points):
    return fastgeo.ri(points[:CHECK_ROWS], prior, backend="reference")


def check(result, truth):
    np.testing.assert_allclose(result[:CHECK_ROWS], truth, rtol=1e-6, atol=1e-300)


def ri_numpy_log_density(z, prior):
    """ri with the mixture's log-density by the numpy formula, then the CPU KDE lookup."""
    lp, _ = prior.log_density(z, backend=get("reference"))
    out, _ = get("cpu").kde(lp, prior.kde, "log_cdf", False)
    return np.exp(out)


def ri_naive(z, prior):
    lp, _ = prior.log_density(z, backend=get("reference"))
    return kde_cdf.naive_kde_cdf(lp, prior.kde.samples, prior.kde.bandwidth)


@pytest.mark.benchmark(group="ri-semicircle20")
def test_ri_cpu(benchmark, prior, points, truth):
    fastgeo.ri(points[:100], prior, backend="cpu")  # compile/load outside the timing
    benchmark.extra_info.update(role="kernel", bytes=points.nbytes + 8 * M_KERNEL, items=M_KERNEL)
    check(benchmark(fastgeo.ri, points, prior, backend="cpu"), truth)


@pytest.mark.benchmark(group="ri-semicircle20")
def test_ri_numpy_log_density(benchmark, prior, points, truth):
    benchmark.extra_info.update(role="reference", bytes=points.nbytes + 8 * M_KERNEL, items=M_KERNEL)
    check(benchmark(ri_numpy_log_density, points, prior), truth)


@pytest.mark.benchmark(group="ri-semicircle20")
def test_ri_naive_kde_sum(benchmark, prior, points, truth):
    z = points[:M_NAIVE]
    benchmark.extra_info.update(role="reference", bytes=z.nbytes + 8 * M_NAIVE, items=M_NAIVE)
    check(benchmark(ri_naive, z, prior), truth[:M_NAIVE])


@pytest.fixture(scope="module")
def density_truth(prior, points):
    """float64 log f and grad log f at the first CHECK_ROWS points (the numpy formula)."""
    return prior.log_density(points[:CHECK_ROWS], True, backend=get("reference"))


def check_density(result, truth):
    lp, grad = result
    np.testing.assert_allclose(lp[:CHECK_ROWS], truth[0], rtol=1e-12)
    if grad is not None:
        np.testing.assert_allclose(grad[:CHECK_ROWS], truth[1], rtol=1e-9, atol=1e-12)


@pytest.mark.benchmark(group="log-density-semicircle20")
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_log_density(benchmark, prior, points, density_truth, backend):
    """The compiled kernel ("cpu") against the float64 numpy formula ("reference")."""
    role = "kernel" if backend == "cpu" else "reference"
    benchmark.extra_info.update(role=role, bytes=points.nbytes + 8 * M_KERNEL, items=M_KERNEL)
    check_density(benchmark(prior.log_density, points, False, backend=get(backend)), density_truth)


@pytest.mark.benchmark(group="log-density-grad-semicircle20")
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_log_density_and_grad(benchmark, prior, points, density_truth, backend):
    role = "kernel" if backend == "cpu" else "reference"
    benchmark.extra_info.update(role=role, bytes=2 * points.nbytes + 8 * M_KERNEL, items=M_KERNEL)
    check_density(benchmark(prior.log_density, points, True, backend=get(backend)), density_truth)
