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
Definitions and checks: :mod:`fastgeo.benchmarks.mixture`. Run::

    python -m pytest bench/test_bench_mixture.py --benchmark-enable \
        --benchmark-json bench/results/mixture-cpu.json
"""
import pytest

import fastgeo
from fastgeo.backends import get
from fastgeo.benchmarks import mixture as mx


@pytest.fixture(scope="module")
def prior():
    return mx.semicircle_prior()  # samples drawn, table built and compiled outside the timings


@pytest.fixture(scope="module")
def points(prior):
    return mx.points(prior)


@pytest.fixture(scope="module")
def truth(prior, points):
    return mx.reference(prior, points)


@pytest.mark.benchmark(group="ri-semicircle20")
def test_ri_cpu(benchmark, prior, points, truth):
    fastgeo.ri(points[:100], prior, backend="cpu")  # compile/load outside the timing
    benchmark.extra_info.update(role="kernel", bytes=points.nbytes + 8 * mx.M_KERNEL, items=mx.M_KERNEL)
    mx.check(benchmark(fastgeo.ri, points, prior, backend="cpu"), truth)


@pytest.mark.benchmark(group="ri-semicircle20")
def test_ri_numpy_log_density(benchmark, prior, points, truth):
    benchmark.extra_info.update(role="reference", bytes=points.nbytes + 8 * mx.M_KERNEL, items=mx.M_KERNEL)
    mx.check(benchmark(mx.ri_numpy_log_density, points, prior), truth)


@pytest.mark.benchmark(group="ri-semicircle20")
def test_ri_naive_kde_sum(benchmark, prior, points, truth):
    z = points[:mx.M_NAIVE]
    benchmark.extra_info.update(role="reference", bytes=z.nbytes + 8 * mx.M_NAIVE, items=mx.M_NAIVE)
    mx.check(benchmark(mx.ri_naive, z, prior), truth[:mx.M_NAIVE])


@pytest.fixture(scope="module")
def density_truth(prior, points):
    return mx.density_reference(prior, points)


@pytest.mark.benchmark(group="log-density-semicircle20")
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_log_density(benchmark, prior, points, density_truth, backend):
    """The compiled kernel ("cpu") against the float64 numpy formula ("reference")."""
    role = "kernel" if backend == "cpu" else "reference"
    benchmark.extra_info.update(role=role, bytes=points.nbytes + 8 * mx.M_KERNEL, items=mx.M_KERNEL)
    mx.check_density(benchmark(prior.log_density, points, False, backend=get(backend)), density_truth)


@pytest.mark.benchmark(group="log-density-grad-semicircle20")
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_log_density_and_grad(benchmark, prior, points, density_truth, backend):
    role = "kernel" if backend == "cpu" else "reference"
    benchmark.extra_info.update(role=role, bytes=2 * points.nbytes + 8 * mx.M_KERNEL, items=mx.M_KERNEL)
    mx.check_density(benchmark(prior.log_density, points, True, backend=get(backend)), density_truth)
