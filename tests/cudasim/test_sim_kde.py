"""The CUDA KDE query kernels, run by Numba's CUDA simulator, against the CPU kernel and the
float64 reference.

Under the simulator the shared scalar math (kernels/kde.py) runs compiled for the CPU (see
conftest.py), so the CUDA kernels must give bit for bit the CPU kernel's results: what is
tested here is their own logic -- the table pass, the work list of the queries it cannot
answer, the exact pass over that list, strides, dtypes, flags. Outputs and scratch are
poisoned before every launch. Sizes cross the block size (128 queries).
"""
import numpy as np
import pytest
from numba import cuda

from array_standins import poison_numba_outputs
from fastgeo import KDE, _arrays
from fastgeo.backends import cuda as cuda_backend
from fastgeo.backends.cpu import CPUBackend
from fastgeo.backends.reference import ReferenceBackend
from fastgeo.kernels import cuda_kde

SENTINEL = -7.25e33
WHATS = ("cdf", "log_cdf", "pdf", "log_pdf")
CPU = CPUBackend()
REF = ReferenceBackend()


@pytest.fixture
def backend(monkeypatch):
    """The CUDA backend with every array it allocates poisoned (outputs and the work list)."""
    def fill(shape, dtype):
        return np.full(shape, SENTINEL if np.dtype(dtype).kind == "f" else -123456, dtype=dtype)

    poison_numba_outputs(monkeypatch, fill)
    return cuda_backend.CUDABackend()


@pytest.fixture(scope="module")
def kde():
    """A lumpy sample set (two modes, a long lower tail) with some flagged cells."""
    rng = np.random.default_rng(12345)
    l = np.concatenate([rng.standard_normal(250), 9.0 + 0.3 * rng.standard_normal(100),
                        -rng.lognormal(1.0, 1.0, 50)])
    k = KDE(l)
    assert k.table.summary()["exact_pdf_cells"] > 0  # the exact pass has cells to do
    return k


def queries(rng, kde, m):
    """Queries everywhere: the table, near samples, both tails far out, and +-inf."""
    t, h = kde.table, kde.bandwidth
    x = np.concatenate([rng.uniform(t.x0, t.x_end, m), rng.choice(kde.samples, m // 4),
                        t.x0 - h * rng.uniform(0.1, 1e3, m // 8), t.x_end + h * rng.uniform(0.1, 50, m // 8),
                        [-np.inf, np.inf]])
    return rng.permutation(x)[:m]


def run(backend, x_dev, kde, what, need_grad):
    out, dout = backend.kde(x_dev, kde, what, need_grad)
    return out.copy_to_host(), (None if dout is None else dout.copy_to_host())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [1, 129, 300])
def test_queries_match_the_cpu_kernel(rng, backend, kde, m, dtype):
    x = queries(rng, kde, m).astype(dtype)
    x_dev = cuda.to_device(x)
    for what in WHATS:
        for need_grad in (True, False):
            out, dout = run(backend, x_dev, kde, what, need_grad)
            want, dwant = CPU.kde(x, kde, what, need_grad)
            assert out.dtype == dtype
            np.testing.assert_array_equal(out, want, err_msg=what)
            if need_grad:
                np.testing.assert_array_equal(dout, dwant, err_msg=what)
            else:
                assert dout is None


def test_cdf_matches_the_naive_sum(rng, backend, kde):
    x = queries(rng, kde, 200)
    out, dout = run(backend, cuda.to_device(x), kde, "cdf", True)
    want, dwant = REF.kde(x, kde, "cdf", True)
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dout, dwant, rtol=1e-10, atol=1e-300)


def test_strided_queries(rng, backend, kde):
    big = queries(rng, kde, 3 * 70)
    view = cuda.to_device(big)[1::3]
    x = big[1::3]
    for what in ("log_cdf", "pdf"):
        out, dout = run(backend, view, kde, what, True)
        want, dwant = CPU.kde(np.ascontiguousarray(x), kde, what, True)
        np.testing.assert_array_equal(out, want)
        np.testing.assert_array_equal(dout, dwant)


def launch(kde, x, what, need_grad):
    """Both passes on a bare launch; returns (out, dout, work-list length, NaN flag)."""
    t = kde.table
    m = x.shape[0]
    out = cuda.to_device(np.full(m, SENTINEL))
    dout = cuda.to_device(np.full(m if need_grad else 0, SENTINEL))
    todo = cuda.to_device(np.full(m, -1, dtype=np.int32))
    count, bad = (cuda.to_device(np.zeros(1, dtype=np.int32)) for _ in range(2))
    cuda_kde.kde_query(cuda.to_device(x), cuda_backend._KDE_WHAT[what], int(need_grad), cuda.to_device(t.values),
                       cuda.to_device(t.counts), cuda.to_device(t.cumulative), float(t.n), t.bandwidth,
                       np.log(t.n), np.log(t.n * t.bandwidth), t.x0, 1.0 / t.dx, cuda.to_device(t.coef),
                       cuda.to_device(t.flags), t.j_middle, t.j_upper, out, dout, todo, count, bad)
    return out.copy_to_host(), dout.copy_to_host(), int(count.copy_to_host()[0]), int(bad.copy_to_host()[0])


def test_work_list_holds_exactly_what_the_table_cannot_answer(rng, kde, monkeypatch):
    """All queries in the tails: every one goes to the exact pass, which a single block walks
    (a grid-stride loop); queries in unflagged cells: an empty list."""
    t, h = kde.table, kde.bandwidth
    tails = np.concatenate([t.x0 - h * rng.uniform(0.1, 100, 150), t.x_end + h * rng.uniform(0.1, 30, 110)])
    monkeypatch.setattr(cuda_kde, "EXACT_BLOCKS", 1)
    out, dout, count, bad = launch(kde, tails, "log_cdf", True)
    assert count == tails.size and bad == 0
    want, dwant = CPU.kde(tails, kde, "log_cdf", True)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(dout, dwant)
    cells = np.flatnonzero(t.flags == 0)
    inside = t.x0 + t.dx * (rng.choice(cells, 140) + rng.uniform(0.05, 0.95, 140))
    out, _, count, bad = launch(kde, inside, "log_pdf", False)
    assert count == 0 and bad == 0
    np.testing.assert_array_equal(out, CPU.kde(inside, kde, "log_pdf", False)[0])


def test_nan_queries_are_flagged_and_named(rng, backend, kde):
    x = queries(rng, kde, 140)
    x[[17, 133]] = np.nan
    out, _, _, bad = launch(kde, x, "cdf", False)
    assert bad == 1 and np.isnan(out[[17, 133]]).all()
    assert not np.isnan(np.delete(out, [17, 133])).any()
    with pytest.raises(ValueError, match=r"x contains NaN \(first at index \(17,\)\)"):
        backend.kde(cuda.to_device(x), kde, "log_cdf", True)


def test_empty_queries_and_the_table_copied_once(backend, kde):
    out, dout = backend.kde(cuda.to_device(np.empty(0)), kde, "cdf", True)
    assert out.shape == (0,) and dout.shape == (0,)
    backend.kde(cuda.to_device(np.zeros(3)), kde, "pdf", False)
    cached = _arrays.memory._constants[kde.table]
    key = ("numba", "cuda:0", cuda_backend.KDE_TABLE)
    assert list(cached) == [key]
    np.testing.assert_array_equal(cached[key][3].copy_to_host(), kde.table.coef)
