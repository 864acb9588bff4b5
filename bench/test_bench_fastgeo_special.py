"""fastgeo.special's public functions against what users would otherwise call.

Kernels: ``fastgeo.special.chi2_logsf`` and ``log_gammaincc`` (numpy, float64, 10^5 values:
the public call with its checks, broadcasting and one Numba loop), ``f_logsf``.
References: scipy.stats ``chi2.logsf`` / ``f.logsf``, ``log(scipy.special.gammaincc)`` and
``log(torch.special.gammaincc)`` (CPU, float64) on the same values. Each timed result is
checked once: fastgeo against scipy where scipy keeps its digits (log sf > -500: scipy's
logsf is log(sf), -inf in the far tail), and finite everywhere; references by the
properties of a log survival function (<= 0, never NaN). Inputs reach the far upper tail,
where the references give -inf.

Not run for timing in CI; ``python -m pytest bench/test_bench_fastgeo_special.py
--benchmark-disable`` runs each case once with its checks.
"""
import numpy as np
import pytest
from scipy import special as sp
from scipy import stats

import fastgeo.special as S
from fastgeo.benchmarks.checks import check_close, check_that

N = 100_000
CHECK = 2000
SCIPY_FLOOR = -500.0


def _inputs(dof, seed=11):
    """x spread from the bulk of chi2(dof) far into its upper tail (up to 100 dof)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.chisquare(dof, N // 2), dof * rng.uniform(1.5, 100.0, N - N // 2)])


def _check_fastgeo(result, reference):
    check_that(np.all(np.isfinite(result)) and np.all(result <= 0.0), "fastgeo: a finite log sf everywhere")
    keep = reference[:CHECK] > SCIPY_FLOOR
    check_close("fastgeo vs scipy", result[:CHECK][keep], reference[:CHECK][keep], rtol=1e-11, atol=1e-15)


def _check_reference(result):
    result = np.asarray(result)
    check_that(not np.any(np.isnan(result)) and np.all(result <= 0.0), "reference: a log survival function")


CASES = {
    "chi2_logsf-df512": (lambda x: S.chi2_logsf(x, 512.0), lambda x: stats.chi2.logsf(x, 512.0), 512.0),
    "log_gammaincc-a2.5": (lambda x: S.log_gammaincc(2.5, x), lambda x: np.log(sp.gammaincc(2.5, x)), 5.0),
    "f_logsf-3-40": (lambda x: S.f_logsf(x, 3.0, 40.0), lambda x: stats.f.logsf(x, 3.0, 40.0), 3.0),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", ["fastgeo", "scipy"])
def test_special_logsf(benchmark, case, impl):
    ours, ref, dof = CASES[case]
    x = _inputs(dof)
    if case.startswith("log_gammaincc"):
        x = x / 2.0
    benchmark.group = f"special-{case}-1e5"
    benchmark.extra_info.update(items=x.size, bytes=2 * x.nbytes)
    if impl == "fastgeo":
        ours(x[:10])  # compile / load outside the timing
        benchmark.extra_info.update(role="kernel")
        _check_fastgeo(benchmark(ours, x), ref(x))
    else:
        benchmark.extra_info.update(role="reference")
        with np.errstate(divide="ignore"):
            _check_reference(benchmark(ref, x))


def test_torch_gammaincc(benchmark):
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(_inputs(5.0) / 2.0)
    benchmark.group = "special-log_gammaincc-a2.5-1e5"
    benchmark.extra_info.update(role="reference", items=x.numel(), bytes=2 * x.numel() * 8)
    a = torch.full_like(x, 2.5)
    _check_reference(benchmark(lambda: torch.log(torch.special.gammaincc(a, x))).numpy())
    S.log_gammaincc(2.5, x[:10])
    fg = S.log_gammaincc(2.5, x)
    check_that(isinstance(fg, torch.Tensor) and fg.dtype == torch.float64, "fastgeo keeps torch tensors")
