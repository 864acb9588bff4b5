"""kde-cdf: the KDE realism-index estimator (MATH.md 1.3) of the semicircle prior's samples.

Implementations compared: ``fastgeo.KDE.cdf`` / ``log_cdf`` (and log G with its derivative,
what the realism index's gradient calls) on each backend; the naive float64 O(n) sums in
numpy: the mean of ``ndtr`` for G, the log-sum-exp of ``log_ndtr`` for log G; the one-off
table build. Reference for the check: fastgeo's float64 reference backend (the naive sums)
on the first ``CHECK_QUERIES`` queries.
"""
from __future__ import annotations

import numpy as np

from .checks import check_close
from .device import backends_for

CHECK_QUERIES = 64
#: the table's error bound for G and log G is 1e-13 max(1, |value|) (TOL_CDF in fastgeo.kde);
#: the CUDA backend's tests allow 1e-9 relative for log G (tests/gpu/test_gpu_kde_path.py)
RTOL = 1e-9
ATOL = 1e-12
#: (log G)' = g / G, checked within RTOL_HAZARD (|value| + the largest value checked): the
#: table bounds the slope of log g by 1e-11 (|value| + 1/h) (TOL_DPDF)
RTOL_HAZARD = 1e-8


def semicircle_kde(n=5000):
    """The KDE of n samples (seed 0) of the semicircle prior in 20 dimensions."""
    import fastgeo
    from fastgeo.priors import semicircle

    return fastgeo.KDE.from_prior(semicircle(20), n=n, seed=0)


def uniform_queries(kde, q, rng):
    """q queries uniform over [min l - 3h, max l + h]."""
    lo, hi = kde.samples.min() - 3 * kde.bandwidth, kde.samples.max() + kde.bandwidth
    return rng.uniform(lo, hi, q)


def spread_queries(kde, m, seed=12345):
    """m queries: 80% uniform over [min l - 5h, max l + 5h], 10% below (min l - h Exp(mean 20):
    the table's lower margin and beyond, where G underflows), 10% above (max l + h U(0, 30))."""
    rng = np.random.default_rng(seed)
    lo, hi, h = kde.samples.min(), kde.samples.max(), kde.bandwidth
    n_tail = m // 10
    x = np.concatenate([rng.uniform(lo - 5 * h, hi + 5 * h, m - 2 * n_tail),
                        lo - h * rng.exponential(20.0, n_tail), hi + h * rng.uniform(0.0, 30.0, n_tail)])
    rng.shuffle(x)
    return x


#: what fastgeo_query evaluates: G, log G, or log G with (log G)' = g/G (what the realism
#: index's gradient calls)
QUERIES = ("cdf", "log_cdf", "log_cdf_and_hazard")


def fastgeo_query(kde, x, what, backend):
    """``kde.cdf(x)``, ``kde.log_cdf(x)`` or (log G, (log G)') at x (``what``, one of QUERIES)
    on ``backend``."""
    if what == "log_cdf_and_hazard":
        return kde._evaluate(x, "log_cdf", backend, need_grad=True)
    return getattr(kde, what)(x, backend=backend)


def _chunks(x, samples):
    """Slices of the queries: at most 2M float64 temporaries at a time."""
    step = max(1, 2**21 // samples.size)
    return (slice(i, i + step) for i in range(0, x.size, step))


def naive_kde_cdf(x, samples, h):
    """G(x) = mean_i Phi((x - l_i)/h): the O(n) sum per query a user writes in numpy."""
    from scipy import special

    out = np.empty(x.shape)
    for part in _chunks(x, samples):
        out[part] = special.ndtr((x[part, None] - samples[None, :]) / h).mean(axis=1)
    return out


def naive_kde_log_cdf(x, samples, h):
    """log G(x) = logsumexp_i log Phi((x - l_i)/h) - log n: the naive O(n) sum, kept finite in
    the lower tail."""
    from scipy import special

    out = np.empty(x.shape)
    for part in _chunks(x, samples):
        out[part] = special.logsumexp(special.log_ndtr((x[part, None] - samples[None, :]) / h), axis=1)
    return out - np.log(samples.size)


def build_table(kde):
    """The one-off cost of a KDE: its interpolation table, built afresh."""
    from fastgeo.kde import build_table

    return build_table(kde.samples, kde.bandwidth)


def reference(kde, x, what):
    """float64 ``fastgeo_query`` at the first CHECK_QUERIES of host ``x`` (fastgeo's
    reference backend)."""
    return fastgeo_query(kde, np.asarray(x[:CHECK_QUERIES], dtype=np.float64), what, "reference")


def check(result, reference, what):
    """Compare ``fastgeo_query``'s result (or any implementation's of the same ``what``) with
    the reference."""
    if what == "log_cdf_and_hazard":
        check_close("KDE log cdf", result[0], reference[0], rtol=RTOL, atol=ATOL)
        check_close("KDE hazard (log cdf)'", result[1], reference[1], rtol=RTOL_HAZARD,
                    atol=RTOL_HAZARD * float(np.abs(reference[1]).max()))
    else:
        check_close(f"KDE {what}", result, reference, rtol=RTOL, atol=ATOL)


def check_table(table, kde, x, reference):
    """A built table is right when the CPU backend reading it gives the reference cdf at x."""
    import fastgeo

    fresh = fastgeo.KDE(kde.samples, kde.bandwidth)
    fresh._table = table
    check(fastgeo_query(fresh, np.asarray(x[:CHECK_QUERIES]), "cdf", "cpu"), reference, "cdf")


def bench_kde(runner, device, shape, rng):
    """Rows of kde-cdf on ``device``: a copy of x, KDE.cdf per backend, the naive numpy sum."""
    n, q = shape
    kde = semicircle_kde(n)
    host = uniform_queries(kde, q, rng)
    x = device.put(host)
    truth = reference(kde, host, "cdf")
    name = f"kde-cdf n={n} Q={q} float64"
    runner.say(f"[{name}] on {device.name}")
    runner.measure(name, "copy of x", device, "copy", lambda k: device.copier(x[:k]), q, 16,
                   check=lambda out: check_close("copy of x", out, host[:CHECK_QUERIES], rtol=0.0))
    for backend in backends_for(device.name):
        runner.measure(name, f"fastgeo.KDE.cdf (backend={backend})", device, "kernel",
                       lambda k, b=backend: (lambda: kde.cdf(x[:k], backend=b)), q, 16, scalable=True,
                       check=lambda out: check(out, truth, "cdf"))
    if device.name == "cpu":
        runner.measure(name, "naive numpy sum of ndtr", device, "reference",
                       lambda k: (lambda: naive_kde_cdf(host[:k], kde.samples, kde.bandwidth)), q, 16,
                       scalable=True, check=lambda out: check(out, truth, "cdf"))
