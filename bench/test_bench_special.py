"""Scalar special functions, one call per element, single-threaded (issue: exact and fast special.py).

Kernel: a Numba loop calling ``log_gamma_q(a, x)`` (resp. ``log_beta_i``) on 10^6 values, the
per-row cost of the realism index after its row norm (D = 2a). The realism index of a
standard normal in D = 512 reads 512 floats per evaluation, so the scalar must cost well
under reading them at memory speed on one core. References: scipy's ``stats.gamma.logsf`` /
``stats.f.logsf`` on the same array (vectorised C, but -inf where the survival function
underflows). Per-call time = min time / items. Definitions and checks:
:mod:`fastgeo.benchmarks.special_functions` (the loops against scipy where scipy keeps its
digits; scipy's results by the properties of a log survival function).
"""
import numpy as np
import pytest

from fastgeo.benchmarks import special_functions as sf

N = 1_000_000
GAMMA_CASES = sf.gamma_cases(N)


@pytest.mark.parametrize("name,a,x", GAMMA_CASES, ids=[c[0] for c in GAMMA_CASES])
@pytest.mark.parametrize("impl", ["fastgeo", "scipy"])
def test_log_gamma_q(benchmark, name, a, x, impl):
    benchmark.group = f"log_gamma_q-{name}-1e6"
    if impl == "fastgeo":
        out = np.empty_like(x)
        sf.fastgeo_log_gamma_q(a, x[:10], out[:10])  # compile / load outside the timing
        benchmark.extra_info.update(role="kernel", bytes=2 * x.nbytes, items=x.size)
        result = benchmark(sf.fastgeo_log_gamma_q, a, x, out)
        sf.check(result, sf.scipy_gamma_logsf(x[:sf.CHECK_VALUES], a))
    else:
        benchmark.extra_info.update(role="reference", items=x.size)
        sf.check_log_sf_properties(benchmark(sf.scipy_gamma_logsf, x, a), x)


@pytest.mark.parametrize("nu,dim", [(1.0, 512), (10.0, 512), (10.0, 16384), (100.0, 16384)])
@pytest.mark.parametrize("impl", ["fastgeo", "scipy"])
def test_log_beta_i_f_family(benchmark, nu, dim, impl):
    benchmark.group = f"log_beta_i-F(nu={nu:g},D={dim})-1e5"
    s = sf.f_family_radii(nu, dim, N // 10)
    if impl == "fastgeo":
        log_x, log_y = sf.f_family_log_inputs(nu, s)
        out = np.empty_like(s)
        sf.fastgeo_log_beta_i(nu / 2, dim / 2, log_x[:10], log_y[:10], out[:10])
        benchmark.extra_info.update(role="kernel", bytes=3 * s.nbytes, items=s.size)
        result = benchmark(sf.fastgeo_log_beta_i, nu / 2, dim / 2, log_x, log_y, out)
        sf.check(result, sf.scipy_f_logsf(s[:sf.CHECK_VALUES], nu, dim))
    else:
        benchmark.extra_info.update(role="reference", items=s.size)
        sf.check_log_sf_properties(benchmark(sf.scipy_f_logsf, s, nu, dim), s)
