"""The KDE realism-index estimator (MATH.md 1.3) at n = 5000 samples of the semicircle prior.

Kernels: ``KDE.log_cdf`` / ``KDE.cdf`` on the CPU backend (tabulated quintic Hermite, exact
tail sums) over 1,000,000 queries. References: the naive float64 O(n) sums in numpy — the
log-sum-exp of ``log_ndtr`` for log G, the mean of ``ndtr`` for G, the reference backend for
log G with its derivative — on 2,000 queries (``items`` makes the throughputs comparable).
Also the one-off table build.

Queries: 80% uniform over [min l - 5h, max l + 5h], 10% below (min l - h Exp(mean 20): the
table's lower margin and beyond, where G underflows), 10% above (max l + h U(0, 30)).
"""
import numpy as np
import pytest
from scipy import special

from fastgeo import backends
from fastgeo.kde import build_table
from fastgeo.priors import semicircle

M_KERNEL = 1_000_000
M_REFERENCE = 2_000


@pytest.fixture(scope="module")
def kde():
    k = semicircle(20).kde  # n = 5000, seed 0
    k.table  # built (and compiled) outside the timings
    return k


def spread_queries(kde, m, seed=12345):
    rng = np.random.default_rng(seed)
    l, h = kde.samples, kde.bandwidth
    n_tail = m // 10
    x = np.concatenate([
        rng.uniform(l.min() - 5 * h, l.max() + 5 * h, m - 2 * n_tail),
        l.min() - h * rng.exponential(20.0, n_tail),
        l.max() + h * rng.uniform(0.0, 30.0, n_tail),
    ])
    rng.shuffle(x)
    return x


@pytest.fixture(scope="module")
def x_kernel(kde):
    return spread_queries(kde, M_KERNEL)


@pytest.fixture(scope="module")
def x_reference(kde):
    return spread_queries(kde, M_REFERENCE)


def naive_cdf(x, l, h):
    """G(x) = mean_i Phi((x - l_i)/h): the naive O(n) sum."""
    return np.mean(special.ndtr((x[:, None] - l[None, :]) / h), axis=1)


def naive_log_cdf(x, l, h):
    """log G(x) = logsumexp_i log Phi((x - l_i)/h) - log n: the naive O(n) sum, kept finite in
    the lower tail (what the reference backend computes)."""
    return special.logsumexp(special.log_ndtr((x[:, None] - l[None, :]) / h), axis=1) - np.log(l.shape[0])


@pytest.mark.benchmark(group="kde-log_cdf-n5000")
def test_log_cdf_cpu(benchmark, kde, x_kernel):
    cpu = backends.get("cpu")
    cpu.kde(x_kernel[:100], kde, "log_cdf", False)
    benchmark.extra_info.update(role="kernel", bytes=2 * x_kernel.nbytes, items=M_KERNEL)
    out, _ = benchmark(cpu.kde, x_kernel, kde, "log_cdf", False)
    assert np.all(np.isfinite(out))


@pytest.mark.benchmark(group="kde-log_cdf-n5000")
def test_log_cdf_naive_numpy(benchmark, kde, x_reference):
    benchmark.extra_info.update(role="reference", bytes=2 * x_reference.nbytes, items=M_REFERENCE)
    benchmark(naive_log_cdf, x_reference, kde.samples, kde.bandwidth)


@pytest.mark.benchmark(group="kde-cdf-n5000")
def test_cdf_cpu(benchmark, kde, x_kernel):
    cpu = backends.get("cpu")
    cpu.kde(x_kernel[:100], kde, "cdf", False)
    benchmark.extra_info.update(role="kernel", bytes=2 * x_kernel.nbytes, items=M_KERNEL)
    benchmark(cpu.kde, x_kernel, kde, "cdf", False)


@pytest.mark.benchmark(group="kde-cdf-n5000")
def test_cdf_naive_numpy(benchmark, kde, x_reference):
    benchmark.extra_info.update(role="reference", bytes=2 * x_reference.nbytes, items=M_REFERENCE)
    benchmark(naive_cdf, x_reference, kde.samples, kde.bandwidth)


@pytest.mark.benchmark(group="kde-log_cdf-with-gradient-n5000")
def test_log_cdf_and_hazard_cpu(benchmark, kde, x_kernel):
    """What the realism index's gradient calls: log G and (log G)' = g/G."""
    cpu = backends.get("cpu")
    cpu.kde(x_kernel[:100], kde, "log_cdf", True)
    benchmark.extra_info.update(role="kernel", bytes=3 * x_kernel.nbytes, items=M_KERNEL)
    benchmark(cpu.kde, x_kernel, kde, "log_cdf", True)


@pytest.mark.benchmark(group="kde-log_cdf-with-gradient-n5000")
def test_log_cdf_and_hazard_naive_numpy(benchmark, kde, x_reference):
    """The reference backend: log-sum-exp of log Phi and of log phi, hazard = exp(difference)."""
    ref = backends.get("reference")
    benchmark.extra_info.update(role="reference", bytes=3 * x_reference.nbytes, items=M_REFERENCE)
    benchmark(ref.kde, x_reference, kde, "log_cdf", True)


@pytest.mark.benchmark(group="kde-table-build-n5000")
def test_table_build(benchmark, kde):
    """The one-off cost of a KDE: exact sums at every node and mid-cell check point."""
    table = kde.table
    benchmark.extra_info.update(role="kernel", bytes=table.coef.nbytes, items=1)
    benchmark.pedantic(build_table, args=(kde.samples, kde.bandwidth), rounds=5, iterations=1)
