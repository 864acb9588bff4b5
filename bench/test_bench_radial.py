"""Standard-normal realism index on 200,000 x 512 float32 (issue: point realism index).

Kernel: ``fastgeo.ri(z, StandardNormal(512), backend="cpu")``. References: scipy's
``chi2.sf`` of the squared row norms accumulated in float64 (what the kernel computes), and
the same with the norms accumulated in float32 (faster, less exact). Limit: a plain copy of z.
"""
import numpy as np
import pytest
from scipy import stats

import fastgeo
from fastgeo.priors import StandardNormal

M, D = 200_000, 512


@pytest.fixture(scope="module")
def z():
    return np.random.default_rng(12345).standard_normal((M, D), dtype=np.float32)


@pytest.fixture(scope="module")
def prior():
    return StandardNormal(D)


GROUP = "ri-standard-normal-200000x512-f32"


@pytest.mark.benchmark(group=GROUP)
def test_copy(copy_bench, z):
    copy_bench(z)


@pytest.mark.benchmark(group=GROUP)
def test_fastgeo_ri_cpu(benchmark, z, prior):
    fastgeo.ri(z[:10], prior, backend="cpu")  # compile/load outside the timing
    benchmark.extra_info.update(role="kernel", bytes=z.nbytes + M * 4, items=M)
    out = benchmark(fastgeo.ri, z, prior, backend="cpu")
    assert out.shape == (M,)


@pytest.mark.benchmark(group=GROUP)
def test_scipy_chi2_sf_float64_norms(benchmark, z):
    benchmark.extra_info.update(role="reference")
    benchmark(lambda: stats.chi2.sf(np.einsum("ij,ij->i", z, z, dtype=np.float64), D))


@pytest.mark.benchmark(group=GROUP)
def test_scipy_chi2_sf_float32_norms(benchmark, z):
    benchmark.extra_info.update(role="reference")
    benchmark(lambda: stats.chi2.sf(np.einsum("ij,ij->i", z, z), D))
