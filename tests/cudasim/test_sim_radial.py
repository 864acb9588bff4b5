"""The CUDA radial and box kernels, run by Numba's CUDA simulator, against the float64 reference.

Outputs are poisoned with a sentinel before every launch, so an element a kernel forgets to
write shows up. Sizes cross the block size (128 rows) and the narrow/wide switch (16).
"""
import math

import numpy as np
import pytest
from numba import cuda

from array_standins import poison_numba_outputs
from fastgeo.backends import cuda as cuda_backend
from fastgeo.backends.reference import ReferenceBackend
from fastgeo.kernels import cuda_box, cuda_launch, cuda_radial
from fastgeo.kernels import families as F

SENTINEL = -7.25e33
RTOL = {np.float32: 3e-7, np.float64: 1e-10}  # a few float32 ulps; float64 as the CPU kernels
ATOL = {np.float32: 1e-37, np.float64: 1e-300}
REF = ReferenceBackend()
WHAT = {"log_ri": cuda_radial.WHAT_LOG_RI, "ri": cuda_radial.WHAT_RI,
        "log_density": cuda_radial.WHAT_LOG_DENSITY}


def families(d):
    return [(F.CHI2, 0.0, 0.0), (F.CHI2_ERF, 0.0, 0.0), (F.GAMMA_RADIUS, 0.5, 1.3),
            (F.F_RATIO, 3.0, 0.0), (F.BALL, math.sqrt(d), 0.0)]


def points(rng, m, d, dtype):
    """Rows spread from the bulk of the prior into its tails (|y| from 0.3 to 2.2 sqrt(d))."""
    scale = rng.uniform(0.3, 2.2, size=(m, 1))
    return (rng.standard_normal((m, d)) * scale).astype(dtype)


def poisoned(shape, dtype):
    return cuda.to_device(np.full(shape, SENTINEL, dtype=dtype))


def launch_radial(y_dev, family, d, p0, p1, log_alpha, what, need_grad, dtype):
    m = y_dev.shape[0]
    out = poisoned((m,), dtype)
    grad = poisoned((m if need_grad else 0, d), dtype)
    bad = cuda.to_device(np.zeros(1, dtype=np.int32))
    cuda_radial.radial_index(y_dev, family, d, p0, p1, log_alpha, WHAT[what], out, grad, bad)
    return out.copy_to_host(), grad.copy_to_host(), int(bad.copy_to_host()[0])


def reference(y, family, d, p0, p1, log_alpha, what, need_grad, dtype):
    out, grad = REF.radial(y.astype(np.float64), family, d, p0, p1, log_alpha, what, need_grad)
    return out.astype(dtype), (None if grad is None else grad.astype(dtype))


def assert_close(actual, expected, dtype):
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=ATOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,d", [(1, 1), (37, 3), (129, 16), (45, 17), (130, 130), (33, 300)])
def test_radial_kernels_match_reference(rng, m, d, dtype):
    """Every family, log ri with its gradient: sizes on both sides of the narrow/wide switch
    and of the block size, none a multiple of 32 except where it is the edge itself."""
    y = points(rng, m, d, dtype)
    y_dev = cuda.to_device(y)
    log_alpha = math.log(rng.uniform(0.2, 1.0))
    for family, p0, p1 in families(d):
        out, grad, bad = launch_radial(y_dev, family, d, p0, p1, log_alpha, "log_ri", True, dtype)
        ref_out, ref_grad = reference(y, family, d, p0, p1, log_alpha, "log_ri", True, dtype)
        assert bad == 0
        assert_close(out, ref_out, dtype)
        assert_close(grad, ref_grad, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("what", ["ri", "log_density"])
@pytest.mark.parametrize("d", [5, 70])
def test_radial_other_outputs(rng, what, d, dtype):
    m = 41
    y = points(rng, m, d, dtype)
    y_dev = cuda.to_device(y)
    for family, p0, p1 in families(d):
        out, grad, bad = launch_radial(y_dev, family, d, p0, p1, -0.4, what, False, dtype)
        ref_out, _ = reference(y, family, d, p0, p1, -0.4, what, False, dtype)
        assert bad == 0 and grad.shape == (0, d)
        assert_close(out, ref_out, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [7, 90])
def test_radial_non_contiguous_rows(rng, d, dtype):
    """A strided device view (every other column of every third row) reads the right entries."""
    big = points(rng, 3 * 50, 2 * d, dtype)
    view = cuda.to_device(big)[::3, ::2]
    y = big[::3, ::2]
    assert not y.flags.c_contiguous
    out, grad, bad = launch_radial(view, F.CHI2, d, 0.0, 0.0, 0.0, "log_ri", True, dtype)
    ref_out, ref_grad = reference(y, F.CHI2, d, 0.0, 0.0, 0.0, "log_ri", True, dtype)
    assert bad == 0
    assert_close(out, ref_out, dtype)
    assert_close(grad, ref_grad, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [4, 50])
def test_non_finite_rows_are_marked_and_flagged(rng, d, dtype):
    m = 70
    y = points(rng, m, d, dtype)
    rows = rng.choice(m, size=3, replace=False)
    for row, value in zip(rows, (np.nan, np.inf, -np.inf)):
        y[row, rng.integers(d)] = value
    out, grad, bad = launch_radial(cuda.to_device(y), F.CHI2, d, 0.0, 0.0, 0.0, "log_ri", True, dtype)
    assert bad == 1
    assert np.all(np.isnan(out[rows])) and np.all(np.isnan(grad[rows]))
    good = np.setdiff1d(np.arange(m), rows)
    ref_out, _ = reference(y[good], F.CHI2, d, 0.0, 0.0, 0.0, "log_ri", False, dtype)
    assert_close(out[good], ref_out, dtype)


@pytest.mark.filterwarnings("ignore:.*overflow encountered:RuntimeWarning")  # the simulator's numpy
@pytest.mark.parametrize("d", [5, 40])  # the narrow and the wide kernel
def test_huge_finite_entries_are_not_errors(rng, d):
    """float64 rows whose squared norm overflows are finite inputs, not errors: their index
    comes from the radius (chi2: log ri = -inf but the gradient about -y; the heavy tails:
    finite), as in the reference; float32 rows near the float32 maximum are summed in float64
    and stay finite."""
    y = points(rng, 20, d, np.float64)
    y[3, 1] = 1e200
    y[7, :] = -3e170
    y[9, :] = 1e-170  # s underflows: the gamma radius still has its digits there
    y[11, :] = 0.0
    for family, p0, p1 in families(d):
        for what in ("log_ri", "ri", "log_density"):
            need_grad = what != "log_density"
            out, grad, bad = launch_radial(cuda.to_device(y), family, d, p0, p1, 0.0, what, need_grad, np.float64)
            ref_out, ref_grad = reference(y, family, d, p0, p1, 0.0, what, need_grad, np.float64)
            assert bad == 0
            assert_close(out, ref_out, np.float64)
            if need_grad:
                assert_close(grad, ref_grad, np.float64)
    out, grad, _ = launch_radial(cuda.to_device(y), F.CHI2, d, 0.0, 0.0, 0.0, "log_ri", True, np.float64)
    assert out[3] == -np.inf and np.all(np.isfinite(grad[3])) and grad[3, 1] == pytest.approx(-1e200, rel=1e-12)
    y32 = points(rng, 20, 40, np.float32)
    y32[4, :] = 3e38
    out, _, bad = launch_radial(cuda.to_device(y32), F.F_RATIO, 40, 3.0, 0.0, 0.0, "log_ri", False, np.float32)
    ref_out, _ = reference(y32, F.F_RATIO, 40, 3.0, 0.0, 0.0, "log_ri", False, np.float32)
    assert bad == 0 and np.isfinite(out[4])
    assert_close(out, ref_out, np.float32)


# -- box indicator ---------------------------------------------------------------------------

def launch_box(z_dev, low, high, log_alpha, exp_out, dtype):
    m = z_dev.shape[0]
    out = poisoned((m,), dtype)
    bad = cuda.to_device(np.zeros(1, dtype=np.int32))
    cuda_box.box_index(z_dev, cuda.to_device(low), cuda.to_device(high), log_alpha, exp_out, out, bad)
    return out.copy_to_host(), int(bad.copy_to_host()[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,d", [(3, 2), (129, 16), (40, 17), (33, 150)])
def test_box_kernels_match_reference(rng, m, d, dtype):
    low = -rng.uniform(0.5, 2.0, d)
    high = rng.uniform(0.5, 2.0, d)
    # about half the rows inside: most coordinates well inside, some rows pushed out in one
    z = rng.uniform(0.8, 0.95, (m, d)) * np.where(rng.random((m, d)) < 0.5, low, high)
    out_rows = rng.random(m) < 0.5
    cols = rng.integers(d, size=m)
    z[out_rows, cols[out_rows]] = 1.01 * high[cols[out_rows]]
    z = z.astype(dtype)
    view = cuda.to_device(z)
    log_alpha = math.log(0.7)
    for exp_out, what in ((0, "log_ri"), (1, "ri")):
        out, bad = launch_box(view, low, high, log_alpha, exp_out, dtype)
        assert bad == 0
        np.testing.assert_array_equal(out, REF.box(z, low, high, log_alpha, what))


@pytest.mark.parametrize("d", [3, 64])
def test_box_non_finite_and_strided(rng, d):
    low, high = -np.ones(d), np.ones(d)
    big = rng.uniform(-1.2, 1.2, (2 * 45, 3 * d))
    z = big[::2, ::3].copy()
    view = cuda.to_device(big)[::2, ::3]
    out, bad = launch_box(view, low, high, 0.0, 0, np.float64)
    assert bad == 0
    np.testing.assert_array_equal(out, REF.box(z, low, high, 0.0, "log_ri"))
    z[7, d - 1] = np.nan
    out, bad = launch_box(cuda.to_device(z), low, high, 0.0, 0, np.float64)
    assert bad == 1 and np.isnan(out[7])
    assert not np.isnan(np.delete(out, 7)).any()


# -- the backend on Numba device arrays (what torch and CuPy inputs go through) ----------------

@pytest.fixture
def poisoned_backend(monkeypatch):
    """The CUDA backend with every output it allocates pre-filled with the sentinel."""
    poison_numba_outputs(monkeypatch, lambda shape, dtype: np.full(shape, SENTINEL, dtype=dtype))
    return cuda_backend.CUDABackend()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [9, 200])
def test_backend_radial_and_box(rng, poisoned_backend, d, dtype):
    y = points(rng, 61, d, dtype)
    out, grad = poisoned_backend.radial(cuda.to_device(y), F.GAMMA_RADIUS, d, 0.5, 2.0, -0.1, "log_ri", True)
    ref_out, ref_grad = reference(y, F.GAMMA_RADIUS, d, 0.5, 2.0, -0.1, "log_ri", True, dtype)
    assert out.dtype == dtype and grad.dtype == dtype
    assert_close(out.copy_to_host(), ref_out, dtype)
    assert_close(grad.copy_to_host(), ref_grad, dtype)
    out, grad = poisoned_backend.radial(cuda.to_device(y), F.CHI2, d, 0.0, 0.0, 0.0, "ri", False)
    assert grad is None
    assert_close(out.copy_to_host(), reference(y, F.CHI2, d, 0.0, 0.0, 0.0, "ri", False, dtype)[0], dtype)
    low, high = -np.full(d, 1.5), np.full(d, 2.5)
    box = poisoned_backend.box(cuda.to_device(y), cuda.to_device(low), cuda.to_device(high), -0.2, "ri")
    np.testing.assert_array_equal(box.copy_to_host(), REF.box(y, low, high, -0.2, "ri"))


@pytest.mark.parametrize("d", [5, 40])
def test_backend_names_the_first_non_finite_entry(rng, poisoned_backend, d):
    y = points(rng, 50, d, np.float32)
    y[31, d - 2] = np.inf
    y[44, 0] = np.nan
    with pytest.raises(ValueError, match=rf"z contains NaN or inf \(first at index \(31, {d - 2}\): inf\)"):
        poisoned_backend.radial(cuda.to_device(y), F.CHI2, d, 0.0, 0.0, 0.0, "log_ri", True)
    with pytest.raises(ValueError, match=r"first at index \(31,"):
        poisoned_backend.box(cuda.to_device(y), cuda.to_device(-np.ones(d)), cuda.to_device(np.ones(d)),
                             0.0, "log_ri")


def test_empty_batch_launches_nothing(poisoned_backend):
    y = cuda.to_device(np.empty((0, 20), dtype=np.float32))
    out, grad = poisoned_backend.radial(y, F.CHI2, 20, 0.0, 0.0, 0.0, "log_ri", True)
    assert out.shape == (0,) and grad.shape == (0, 20)


def test_simulator_makes_the_backend_unavailable():
    cuda_backend.unavailable_reason.cache_clear()
    assert "NUMBA_ENABLE_CUDASIM" in cuda_backend.unavailable_reason()


def test_geometry_constants_are_consistent():
    assert cuda_launch.THREADS % cuda_launch.WARP == 0
    assert cuda_launch.WARPS * cuda_launch.WARP == cuda_launch.THREADS


def test_public_functions_refuse_numba_device_arrays_instead_of_copying_them(rng):
    """Numba device arrays are the kernels' own currency, not an input type: fastgeo names
    the fix rather than copying them to the host behind the caller's back."""
    import fastgeo
    from fastgeo import _arrays
    from fastgeo.priors import StandardNormal

    z = cuda.to_device(points(rng, 8, 3, np.float64))
    assert _arrays.kind_of(z) == _arrays.ArrayKind("numba", "cuda:0")
    with pytest.raises(TypeError, match="z is a Numba device array; pass a torch tensor or a CuPy array"):
        fastgeo.log_ri(z, StandardNormal(3))
