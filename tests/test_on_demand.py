"""Kernels compile the one signature a call needs (kernels/signatures.py: OnDemand), and the
explicit read-only signatures keep taking every layout the backend sends them."""
import numpy as np
import pytest

from fastgeo.kernels.signatures import OnDemand, reading


def _double(x, out):
    for i in range(x.shape[0]):
        out[i] = 2 * x[i]


def _kernel():
    return OnDemand(_double, lambda dt: reading(f"void({dt}[:], {dt}[::1])", 0))


def test_compiles_only_the_dtype_called():
    k = _kernel()
    x = np.arange(4, dtype=np.float32)
    out = np.empty(4, np.float32)
    k(x, out)
    assert sorted(k._by_char) == ["f"]
    assert len(k.dispatcher(np.float32).signatures) == 1
    np.testing.assert_array_equal(out, 2 * x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_read_only_strided_and_negative_stride_inputs_use_the_one_signature(dtype):
    k = _kernel()
    base = np.arange(12, dtype=dtype)
    ro = base.copy()
    ro.flags.writeable = False
    for x in (base[:6], ro[:6], base[::2], base[::-2], ro[::-2]):
        out = np.empty(6, dtype)
        k(x, out)
        np.testing.assert_array_equal(out, 2 * x)
    assert len(k.dispatcher(dtype).signatures) == 1  # nothing compiled beyond the declared one


def test_other_dtypes_are_refused():
    with pytest.raises(TypeError, match="float32, float64"):
        _kernel()(np.arange(3), np.empty(3, np.int64))


def test_importing_the_kernels_compiles_nothing():
    """The dispatchers appear on the first call; importing a kernel module builds none
    (in a fresh process: this one's other tests have called them)."""
    import subprocess
    import sys

    code = ("import fastgeo.kernels.cpu_radial as r, fastgeo.kernels.cpu_path as p, "
            "fastgeo.kernels.cpu_box as b, fastgeo.kernels.cpu_lbfgs as l, fastgeo.kernels.cpu_kde as k\n"
            "from fastgeo.kernels.signatures import OnDemand\n"
            "built = [n for m in (r, p, b, l, k) for n, o in vars(m).items() if isinstance(o, OnDemand) and o._by_char]\n"
            "built += [n for n, o in vars(r).items() if isinstance(o, r.PerFamily) and o.by_family]\n"
            "assert not built, built\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def _run_with_an_empty_cache(code, cache_dir, **env):
    """Run ``code`` in a fresh process whose Numba cache is the empty ``cache_dir``, so every
    kernel it calls compiles (and its callees' signatures show what was compiled)."""
    import os
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", code], check=True,
                   env=dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), **env))


def test_a_first_radial_call_compiles_its_family_only(tmp_path):
    """With an empty Numba cache, the first ri of a Gaussian batch compiles the incomplete
    gamma function (the chi-square family), below D = 203 without its written-out sums for
    large shapes, and nothing of the other families: not the incomplete beta function
    (Student-t), nor the normal cdf (the erf form), nor the far-row kernel when no row needs
    it; then a Gaussian in 256 dimensions compiles the wide sums, and a Student-t prior its own."""
    code = ("import numpy as np, fastgeo\n"
            "from fastgeo.kernels import cpu_radial, special, special_beta, special_gamma, special_gamma_coeffs\n"
            "z = np.random.default_rng(0).standard_normal((3000, 16))\n"
            "fastgeo.ri(z, fastgeo.priors.StandardNormal(16))\n"
            "assert special_gamma._gamma_q_core_narrow.signatures, 'the gamma chain was not compiled'\n"
            "assert not special_gamma._gamma_q_core.signatures, special_gamma._gamma_q_core.signatures\n"
            "assert not special_gamma_coeffs.temme_wide_sum.signatures\n"
            "assert not special_beta.log_beta_i.signatures, special_beta.log_beta_i.signatures\n"
            "assert not special.log_ndtr.signatures, special.log_ndtr.signatures\n"
            "assert not cpu_radial.far_rows.by_family\n"
            "kernels = list(cpu_radial.radial_index.by_family) + list(cpu_radial.radial_index_serial.by_family)\n"
            "assert kernels == [(0, False)], kernels\n"
            "fastgeo.ri(np.random.default_rng(1).standard_normal((5, 256)), fastgeo.priors.StandardNormal(256))\n"
            "assert special_gamma_coeffs.temme_wide_sum.signatures, 'D = 256 did not compile the wide sums'\n"
            "assert (0, True) in cpu_radial.radial_index_serial.by_family\n"
            "fastgeo.log_ri_and_grad(z[:5], fastgeo.priors.StudentT(16, 3.0))\n"
            "assert special_beta.log_beta_i.signatures\n")
    _run_with_an_empty_cache(code, tmp_path)


def test_a_parallel_row_loop_compiles_its_row_function_once(tmp_path):
    """Numba types a parallel loop's body twice, the second time with an unsigned index: a
    row function called with the bare index compiled twice on a first call. The mixture
    kernel passes it as int64 (one signature); checked with an empty cache."""
    code = ("import numpy as np, fastgeo\n"
            "from fastgeo.kernels import cpu_mixture, mixture\n"
            "s = fastgeo.priors.semicircle(20)\n"
            "z = s.sample(20000, seed=0)\n"
            "s.log_prob(z)\n"
            "assert cpu_mixture.mixture_log_density._by_char, 'the parallel kernel did not run'\n"
            "assert len(mixture.mixture_row.signatures) == 1, mixture.mixture_row.signatures\n")
    _run_with_an_empty_cache(code, tmp_path, NUMBA_NUM_THREADS="2")
