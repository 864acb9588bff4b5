"""Standard-normal realism index on 200,000 x 512 float32 (issue: point realism index).

Kernel: ``fastgeo.ri(z, StandardNormal(512), backend="cpu")``. References: scipy's
``chi2.sf`` of the squared row norms accumulated in float64 (what the kernel computes), and
the same with the norms accumulated in float32 (faster, less exact). Limit: a plain copy of z.
Definitions and checks: :mod:`fastgeo.benchmarks.radial_ri`; each timed result is checked
once against the float64 reference after its timing.
"""
import numpy as np
import pytest

from fastgeo.benchmarks import radial_ri

M, D = 200_000, 512
GROUP = "ri-standard-normal-200000x512-f32"


@pytest.fixture(scope="module")
def z():
    return radial_ri.points(np.random.default_rng(12345), M, D)


@pytest.fixture(scope="module")
def prior():
    return radial_ri.standard_normal(D)


@pytest.fixture(scope="module")
def truth(z, prior):
    return radial_ri.reference(z, prior)


@pytest.mark.benchmark(group=GROUP)
def test_copy(copy_bench, z):
    copy_bench(z)


@pytest.mark.benchmark(group=GROUP)
def test_fastgeo_ri_cpu(benchmark, z, prior, truth):
    radial_ri.fastgeo_ri(z[:10], prior, "cpu")  # compile/load outside the timing
    benchmark.extra_info.update(role="kernel", bytes=z.nbytes + M * 4, items=M)
    radial_ri.check(benchmark(radial_ri.fastgeo_ri, z, prior, "cpu"), truth)


@pytest.mark.benchmark(group=GROUP)
def test_scipy_chi2_sf_float64_norms(benchmark, z, truth):
    benchmark.extra_info.update(role="reference")
    radial_ri.check(benchmark(radial_ri.scipy_chi2_sf, z, D), truth)


@pytest.mark.benchmark(group=GROUP)
def test_scipy_chi2_sf_float32_norms(benchmark, z, truth):
    benchmark.extra_info.update(role="reference")
    result = benchmark(radial_ri.scipy_chi2_sf, z, D, np.float32)
    radial_ri.check(result, truth, rtol=radial_ri.RTOL_FLOAT32_NORMS)
