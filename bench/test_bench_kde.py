"""The KDE realism-index estimator (MATH.md 1.3) at n = 5000 samples of the semicircle prior.

Kernels: ``KDE.log_cdf`` / ``KDE.cdf`` on the CPU backend (tabulated quintic Hermite, exact
tail sums) over 1,000,000 queries. References: the naive float64 O(n) sums in numpy — the
log-sum-exp of ``log_ndtr`` for log G, the mean of ``ndtr`` for G, the reference backend for
log G with its derivative — on 2,000 queries (``items`` makes the throughputs comparable).
Also the one-off table build. Queries: ``fastgeo.benchmarks.kde_cdf.spread_queries`` (both
tails included). Each timed result is checked once against the float64 reference backend
after its timing (:mod:`fastgeo.benchmarks.kde_cdf`).
"""
import pytest

from fastgeo.benchmarks import kde_cdf

M_KERNEL = 1_000_000
M_REFERENCE = 2_000


@pytest.fixture(scope="module")
def kde():
    k = kde_cdf.semicircle_kde(5000)
    k.table  # built (and compiled) outside the timings
    return k


def queries(kde, m):
    """m spread queries and the float64 reference of each query kind at the first of them."""
    x = kde_cdf.spread_queries(kde, m)
    return x, {what: kde_cdf.reference(kde, x, what) for what in kde_cdf.QUERIES}


@pytest.fixture(scope="module")
def for_kernel(kde):
    return queries(kde, M_KERNEL)


@pytest.fixture(scope="module")
def for_reference(kde):
    return queries(kde, M_REFERENCE)


def time_kernel(benchmark, kde, what, x, truth):
    """Time the CPU backend's ``what`` on x, then check it."""
    kde_cdf.fastgeo_query(kde, x[:100], what, "cpu")  # compile/load outside the timing
    copies = 3 if what == "log_cdf_and_hazard" else 2
    benchmark.extra_info.update(role="kernel", bytes=copies * x.nbytes, items=x.size)
    kde_cdf.check(benchmark(kde_cdf.fastgeo_query, kde, x, what, "cpu"), truth[what], what)


@pytest.mark.benchmark(group="kde-log_cdf-n5000")
def test_log_cdf_cpu(benchmark, kde, for_kernel):
    time_kernel(benchmark, kde, "log_cdf", *for_kernel)


@pytest.mark.benchmark(group="kde-log_cdf-n5000")
def test_log_cdf_naive_numpy(benchmark, kde, for_reference):
    x, truth = for_reference
    benchmark.extra_info.update(role="reference", bytes=2 * x.nbytes, items=M_REFERENCE)
    result = benchmark(kde_cdf.naive_kde_log_cdf, x, kde.samples, kde.bandwidth)
    kde_cdf.check(result, truth["log_cdf"], "log_cdf")


@pytest.mark.benchmark(group="kde-cdf-n5000")
def test_cdf_cpu(benchmark, kde, for_kernel):
    time_kernel(benchmark, kde, "cdf", *for_kernel)


@pytest.mark.benchmark(group="kde-cdf-n5000")
def test_cdf_naive_numpy(benchmark, kde, for_reference):
    x, truth = for_reference
    benchmark.extra_info.update(role="reference", bytes=2 * x.nbytes, items=M_REFERENCE)
    result = benchmark(kde_cdf.naive_kde_cdf, x, kde.samples, kde.bandwidth)
    kde_cdf.check(result, truth["cdf"], "cdf")


@pytest.mark.benchmark(group="kde-log_cdf-with-gradient-n5000")
def test_log_cdf_and_hazard_cpu(benchmark, kde, for_kernel):
    """What the realism index's gradient calls: log G and (log G)' = g/G."""
    time_kernel(benchmark, kde, "log_cdf_and_hazard", *for_kernel)


@pytest.mark.benchmark(group="kde-log_cdf-with-gradient-n5000")
def test_log_cdf_and_hazard_naive_numpy(benchmark, kde, for_reference):
    """The reference backend: log-sum-exp of log Phi and of log phi, hazard = exp(difference)."""
    x, truth = for_reference
    what = "log_cdf_and_hazard"
    benchmark.extra_info.update(role="reference", bytes=3 * x.nbytes, items=M_REFERENCE)
    kde_cdf.check(benchmark(kde_cdf.fastgeo_query, kde, x, what, "reference"), truth[what], what)


@pytest.mark.benchmark(group="kde-table-build-n5000")
def test_table_build(benchmark, kde, for_reference):
    """The one-off cost of a KDE: exact sums at every node and mid-cell check point."""
    x, truth = for_reference
    benchmark.extra_info.update(role="kernel", bytes=kde.table.coef.nbytes, items=1)
    built = benchmark.pedantic(kde_cdf.build_table, args=(kde,), rounds=5, iterations=1)
    kde_cdf.check_table(built, kde, x, truth["cdf"])
