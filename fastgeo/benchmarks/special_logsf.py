"""fastgeo.special's public log survival functions against what users would otherwise call
(``bench/test_bench_fastgeo_special.py``).

Kernels: ``fastgeo.special.chi2_logsf``, ``log_gammaincc`` and ``f_logsf`` on ``N`` float64
values (the public call with its checks, broadcasting and one Numba loop). References
(:data:`CASES`): scipy.stats ``chi2.logsf`` / ``f.logsf``, ``log(scipy.special.gammaincc)``, and
``log(torch.special.gammaincc)`` on the CPU. Inputs (:func:`inputs`) reach the far upper tail,
where the references give -inf.

Checks, on the first ``CHECK`` values: fastgeo against scipy where scipy keeps its digits
(log sf > ``SCIPY_FLOOR``: scipy's logsf is log(sf), -inf in the far tail), and finite
everywhere (:func:`check_fastgeo`); references by the properties of a log survival function,
at most 0 and never NaN (:func:`check_reference`).
"""
from __future__ import annotations

import numpy as np
from scipy import special as sp
from scipy import stats

from .. import special as S
from .checks import check_close, check_that

N = 100_000
CHECK = 2000
SCIPY_FLOOR = -500.0
RTOL = 1e-11
ATOL = 1e-15


def inputs(dof, seed=11):
    """x spread from the bulk of chi2(dof) far into its upper tail (up to 100 dof)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.chisquare(dof, N // 2), dof * rng.uniform(1.5, 100.0, N - N // 2)])


def check_fastgeo(result, reference):
    """WrongResult unless fastgeo's log sf is finite and <= 0 everywhere and equals scipy's
    where scipy keeps its digits."""
    check_that(np.all(np.isfinite(result)) and np.all(result <= 0.0), "fastgeo: a finite log sf everywhere")
    keep = reference[:CHECK] > SCIPY_FLOOR
    check_close("fastgeo vs scipy", result[:CHECK][keep], reference[:CHECK][keep], rtol=RTOL, atol=ATOL)


def check_reference(result):
    """WrongResult unless a reference's result is a log survival function (<= 0, never NaN)."""
    result = np.asarray(result)
    check_that(not np.any(np.isnan(result)) and np.all(result <= 0.0), "reference: a log survival function")


#: {case: (fastgeo's function of x, the scipy reference of x, the dof of its inputs)}
CASES = {
    "chi2_logsf-df512": (lambda x: S.chi2_logsf(x, 512.0), lambda x: stats.chi2.logsf(x, 512.0), 512.0),
    "log_gammaincc-a2.5": (lambda x: S.log_gammaincc(2.5, x), lambda x: np.log(sp.gammaincc(2.5, x)), 5.0),
    "f_logsf-3-40": (lambda x: S.f_logsf(x, 3.0, 40.0), lambda x: stats.f.logsf(x, 3.0, 40.0), 3.0),
}


def case_inputs(case):
    """The inputs of ``case``: :func:`inputs` of its dof (halved for log_gammaincc, whose x is
    chi2(2a)/2)."""
    x = inputs(CASES[case][2])
    return x / 2.0 if case.startswith("log_gammaincc") else x


def torch_log_gammaincc(a, x):
    """log(torch.special.gammaincc(a, x)) of torch tensors."""
    import torch

    return torch.log(torch.special.gammaincc(a, x))
