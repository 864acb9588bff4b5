"""fastgeo.special's public functions against what users would otherwise call.

Kernels: ``fastgeo.special.chi2_logsf`` and ``log_gammaincc`` (numpy, float64, 10^5 values:
the public call with its checks, broadcasting and one Numba loop), ``f_logsf``.
References: scipy.stats ``chi2.logsf`` / ``f.logsf``, ``log(scipy.special.gammaincc)`` and
``log(torch.special.gammaincc)`` (CPU, float64) on the same values. Each timed result is
checked once: fastgeo against scipy where scipy keeps its digits (log sf > -500: scipy's
logsf is log(sf), -inf in the far tail), and finite everywhere; references by the
properties of a log survival function (<= 0, never NaN). Inputs reach the far upper tail,
where the references give -inf.

Definitions and checks: :mod:`fastgeo.benchmarks.special_logsf`. Not run for timing in CI;
``python -m pytest bench/test_bench_fastgeo_special.py --benchmark-disable`` runs each case
once with its checks.
"""
import numpy as np
import pytest

import fastgeo.special as S
from fastgeo.benchmarks import special_logsf as sl
from fastgeo.benchmarks.checks import check_that


@pytest.mark.parametrize("case", list(sl.CASES))
@pytest.mark.parametrize("impl", ["fastgeo", "scipy"])
def test_special_logsf(benchmark, case, impl):
    ours, ref, _ = sl.CASES[case]
    x = sl.case_inputs(case)
    benchmark.group = f"special-{case}-1e5"
    benchmark.extra_info.update(items=x.size, bytes=2 * x.nbytes)
    if impl == "fastgeo":
        ours(x[:10])  # compile / load outside the timing
        benchmark.extra_info.update(role="kernel")
        sl.check_fastgeo(benchmark(ours, x), ref(x))
    else:
        benchmark.extra_info.update(role="reference")
        with np.errstate(divide="ignore"):
            sl.check_reference(benchmark(ref, x))


def test_torch_gammaincc(benchmark):
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(sl.case_inputs("log_gammaincc-a2.5"))
    benchmark.group = "special-log_gammaincc-a2.5-1e5"
    benchmark.extra_info.update(role="reference", items=x.numel(), bytes=2 * x.numel() * 8)
    a = torch.full_like(x, 2.5)
    sl.check_reference(benchmark(sl.torch_log_gammaincc, a, x).numpy())
    S.log_gammaincc(2.5, x[:10])
    fg = S.log_gammaincc(2.5, x)
    check_that(isinstance(fg, torch.Tensor) and fg.dtype == torch.float64, "fastgeo keeps torch tensors")
