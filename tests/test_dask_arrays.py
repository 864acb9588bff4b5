"""Dask arrays in, Dask arrays out: ri, log_ri, grad_log_ri and log_ri_and_grad build a lazy
graph whose blocks equal the in-memory call bit for bit, with the prior in it once."""
import io
import pickle
import subprocess
import sys

import dask
import dask.array as da
import numpy as np
import pytest

import fastgeo
from fastgeo import _dask, priors

D = 4


def laplace(d, **options):
    """A KDE-estimated Custom prior: prod_i exp(-|z_i|) / 2, with its gradient."""
    return priors.Custom(lambda z: -np.abs(z).sum(axis=1) - d * np.log(2.0), lambda n, r: r.laplace(size=(n, d)),
                         d, grad_log_prob=lambda z: -np.sign(z), **options)


def full_gaussian(d):
    a = np.linspace(-1, 1, d * d).reshape(d, d)
    return priors.Gaussian(np.linspace(-0.5, 0.5, d), a @ a.T + np.eye(d))


PRIORS = {
    "standard normal": lambda: priors.StandardNormal(D),
    "gaussian diagonal": lambda: priors.Gaussian(np.linspace(-0.5, 0.5, D), np.linspace(0.5, 2, D)),
    "gaussian full covariance": lambda: full_gaussian(D),
    "student t": lambda: priors.StudentT(D, 3.0),
    "cauchy": lambda: priors.Cauchy(D),
    "gamma radius": lambda: priors.GammaNorm(D, 0.5, 2.0),
    "uniform ball": lambda: priors.UniformBall(D, radius=2.0),
    "uniform box": lambda: priors.UniformBox(-np.ones(D), np.linspace(0.5, 2, D)),
    "semicircle": lambda: priors.semicircle(D, kde_samples=600),
    "custom kde": lambda: laplace(D, kde_samples=600),
}

#: (shape, chunks): even, uneven and >2-D chunkings; the last axis always whole
CHUNKINGS = [((30, D), (10, D)), ((29, D), ((7, 13, 2, 7), D)), ((5, 6, D), ((2, 3), (1, 4, 1), D)),
             ((2, 3, 4, D), (1, 2, (3, 1), D))]


def points(rng, shape, dtype):
    """Points spread over the bulk and the tails (and both sides of the uniform supports)."""
    return (rng.standard_normal(shape) * rng.uniform(0.3, 2.0, shape[:-1] + (1,))).astype(dtype)


#: whitened by a full matrix: BLAS rounds a matrix product differently for different row counts
#: (a 1-row block takes gemv), so a block of fewer rows may differ from the whole in its last bits,
#: as the evaluator's own GPU chunks do (fastgeo._evaluator._compute_rows)
MATRIX_WHITENED = {"gaussian full covariance"}


def assert_same(lazy, want, chunks, exact=True):
    assert isinstance(lazy, da.Array) and lazy.chunks == chunks
    assert type(lazy._meta) is np.ndarray and lazy.dtype == want.dtype
    got = lazy.compute(scheduler="sync")
    assert got.dtype == want.dtype
    if exact:
        np.testing.assert_array_equal(got, want, strict=True)
    else:
        eps = np.finfo(want.dtype).eps
        np.testing.assert_allclose(got, want, rtol=64 * eps, atol=64 * eps * float(np.abs(want).max()), strict=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(PRIORS))
def test_every_prior_equals_the_in_memory_call_bit_for_bit(rng, name, dtype):
    prior, exact = PRIORS[name](), name not in MATRIX_WHITENED
    for shape, chunks in CHUNKINGS:
        z = points(rng, shape, dtype)
        dz = da.from_array(z, chunks=chunks)
        rows, points_ = dz.chunks[:-1], dz.chunks
        assert_same(fastgeo.ri(dz, prior, alpha=0.37), fastgeo.ri(z, prior, alpha=0.37), rows, exact)
        assert_same(fastgeo.log_ri(dz, prior), fastgeo.log_ri(z, prior), rows, exact)
        assert_same(fastgeo.grad_log_ri(dz, prior, alpha=0.5), fastgeo.grad_log_ri(z, prior, alpha=0.5), points_, exact)
        lazy = fastgeo.log_ri_and_grad(dz, prior)
        want = fastgeo.log_ri_and_grad(z, prior)
        assert isinstance(lazy, tuple) and len(lazy) == 2
        assert_same(lazy[0], want[0], rows, exact)
        assert_same(lazy[1], want[1], points_, exact)


@pytest.mark.parametrize("method, backend", [("kde", "auto"), ("erf", "cpu"), ("exact", "reference"),
                                             ("kde", "reference")])
def test_method_and_backend_are_passed_through(rng, method, backend):
    prior = priors.Gaussian(rng.standard_normal(D), rng.uniform(0.5, 2, D), kde_samples=500)
    z = points(rng, (23, D), np.float64)
    dz = da.from_array(z, chunks=((5, 11, 7), D))
    for fn in (fastgeo.ri, fastgeo.log_ri, fastgeo.grad_log_ri):
        chunks = dz.chunks if fn is fastgeo.grad_log_ri else dz.chunks[:-1]
        assert_same(fn(dz, prior, method=method, backend=backend), fn(z, prior, method=method, backend=backend), chunks)
    # the methods differ: the arguments did reach the blocks
    if method != "exact":
        exact = fastgeo.log_ri(dz, prior, method="exact").compute()
        assert not np.array_equal(fastgeo.log_ri(dz, prior, method=method, backend=backend).compute(), exact)


def test_one_point_and_no_points(rng):
    prior = priors.StudentT(D, 3.0)
    z = points(rng, (D,), np.float64)
    got = fastgeo.log_ri(da.from_array(z), prior)
    assert got.shape == () and got.compute() == fastgeo.log_ri(z, prior)
    none = da.from_array(np.empty((0, D), np.float32), chunks=(5, D))
    out, grad = dask.compute(*fastgeo.log_ri_and_grad(none, prior))
    assert out.shape == (0,) and grad.shape == (0, D) and out.dtype == grad.dtype == np.float32


def test_a_zarr_store_read_lazily(rng, tmp_path):
    """The common source of arrays too large for memory: blocks read from disk per task."""
    z = points(rng, (50, 3, D), np.float32)
    da.from_array(z, chunks=(8, 3, D)).to_zarr(str(tmp_path / "z.zarr"))
    stored = da.from_zarr(str(tmp_path / "z.zarr"))
    prior = laplace(D, kde_samples=500)
    assert_same(fastgeo.log_ri(stored, prior, alpha=0.8), fastgeo.log_ri(z, prior, alpha=0.8), stored.chunks[:-1])


# -- checks at graph-build time ---------------------------------------------------------------

def test_a_split_last_axis_says_how_to_rechunk(rng):
    dz = da.from_array(points(rng, (10, D), np.float64), chunks=(5, 2))
    for fn in (fastgeo.ri, fastgeo.log_ri, fastgeo.grad_log_ri, fastgeo.log_ri_and_grad):
        with pytest.raises(ValueError, match=r"split into 2 chunks.*z\.rechunk\(\{-1: -1\}\)"):
            fn(dz, priors.StandardNormal(D))
    np.testing.assert_array_equal(fastgeo.ri(dz.rechunk({-1: -1}), priors.StandardNormal(D)).compute(),
                                  fastgeo.ri(dz.compute(), priors.StandardNormal(D)))


def test_bad_arguments_fail_before_anything_is_computed(rng, monkeypatch):
    calls = []
    real = _dask.compute
    monkeypatch.setattr(_dask, "compute", lambda block, request: calls.append(block.shape) or real(block, request))
    dz = da.from_array(points(rng, (10, D), np.float64), chunks=(5, D))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\) for this 3-dimensional prior, got shape \(10, 4\)"):
        fastgeo.ri(dz, priors.StandardNormal(3))
    with pytest.raises(TypeError, match="z must be float32 or float64, got int64"):
        fastgeo.log_ri(dz.astype(np.int64), priors.StandardNormal(D))
    with pytest.raises(ValueError, match="alpha must be a number in"):
        fastgeo.ri(dz, priors.StandardNormal(D), alpha=2.0)
    with pytest.raises(ValueError, match="method must be one of"):
        fastgeo.log_ri(dz, priors.StandardNormal(D), method="nope")
    with pytest.raises(ValueError, match="erf approximation"):
        fastgeo.log_ri(dz, priors.StudentT(D, 3.0), method="erf")
    with pytest.raises(ValueError):
        fastgeo.log_ri(dz, priors.StandardNormal(D), backend="nope")
    with pytest.raises(ValueError, match="must have shape"):
        fastgeo.ri(da.from_array(np.float64(1.5)), priors.StandardNormal(D))
    assert all(shape[0] == 0 for shape in calls)  # only the empty block of the checks ran


# -- one set of tasks, the prior in the graph once ------------------------------------------------------

def test_log_ri_and_grad_compute_each_block_once(rng, monkeypatch):
    calls = []
    real = _dask.compute
    prior = priors.semicircle(D, kde_samples=500)
    dz = da.from_array(points(rng, (40, D), np.float64), chunks=(7, D))
    monkeypatch.setattr(_dask, "compute", lambda block, request: calls.append(block.shape) or real(block, request))
    out, grad = fastgeo.log_ri_and_grad(dz, prior)
    assert len(calls) == 1  # the empty block of the checks
    dask.compute(out, grad, scheduler="sync")
    assert sorted(calls[1:]) == sorted((c, D) for c in dz.chunks[0])


class _Spy(pickle.Pickler):
    """Pickles a graph value, noting whether the prior is inside it."""

    def __init__(self, target):
        super().__init__(io.BytesIO())
        self.target, self.seen = target, False

    def persistent_id(self, obj):
        if obj is self.target:
            self.seen = True
            return "prior"
        return None


def holds(value, target):
    spy = _Spy(target)
    spy.dump(value)
    return spy.seen


def graph_of(*arrays):
    return {key: value for a in arrays for key, value in dict(a.__dask_graph__()).items()}


@pytest.mark.parametrize("name", ["custom kde", "gaussian full covariance"])
def test_the_prior_is_one_key_of_the_graph_and_its_kde_table_is_built_first(rng, name):
    prior = PRIORS[name]()
    dz = da.from_array(points(rng, (60, 2, D), np.float32), chunks=(4, 1, D))
    assert dz.npartitions == 30
    for graph in (graph_of(fastgeo.ri(dz, prior)), graph_of(*fastgeo.log_ri_and_grad(dz, prior))):
        holders = [key for key, value in graph.items() if holds(value, prior)]
        assert len(holders) == 1, holders
    if name == "custom kde":  # built on the client, so that it travels with the prior
        assert prior._kde is not None and prior._kde._table is not None


def test_import_fastgeo_does_not_import_dask():
    code = ("import sys, numpy as np, fastgeo; fastgeo.ri(np.ones((2, 3)), fastgeo.priors.StandardNormal(3)); "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')]")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- a distributed cluster: the prior reaches each worker once ---------------------------------------

LOADS = []


class CountedLaplace(priors.Prior):
    """A KDE-estimated prior that notes each unpickling, and whether its KDE table came along."""

    def _sample(self, n, rng):
        return rng.laplace(size=(n, self.dim))

    def log_density(self, z, need_grad=False, kind=priors.base.CPU):
        return -np.abs(z).sum(axis=1) - self.dim * np.log(2.0), (-np.sign(z) if need_grad else None)

    def __setstate__(self, state):
        self.__dict__.update(state)
        LOADS.append(self._kde is not None and self._kde._table is not None)


def loads_here():
    return list(LOADS)


def test_each_worker_receives_the_prior_once_with_its_table(rng):
    import distributed  # here, not at the top: the other tests start no cluster

    prior = CountedLaplace(D, kde_samples=400)
    z = points(rng, (64, D), np.float64)
    dz = da.from_array(z, chunks=(4, D))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  scheduler_port=0) as cluster, distributed.Client(cluster) as client:
        out, grad = fastgeo.log_ri_and_grad(dz, prior)
        got_out, got_grad = client.compute([out, grad], sync=True)
        loads = client.run(loads_here)
    want_out, want_grad = fastgeo.log_ri_and_grad(z, prior)
    np.testing.assert_array_equal(got_out, want_out, strict=True)
    np.testing.assert_array_equal(got_grad, want_grad, strict=True)
    per_worker = [len(v) for v in loads.values()]
    assert 1 <= sum(per_worker) and max(per_worker) == 1, loads
    assert all(all(v) for v in loads.values()), loads  # never without its table
