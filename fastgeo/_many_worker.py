"""The worker side of :func:`fastgeo.interpolate_many`: one Dask task per batch of pairs.

:func:`run_batch` is the task (``dask.delayed(run_batch)``, pickled by this module's path): it
builds the generator once per worker process (:class:`_Generator`, kept in ``_BUILT``), runs
every method on its batch (fastgeo.compare.run_methods, the CLI's own code), computes the
per-pair metrics (:func:`batch_metrics`) and writes everything into the Zarr store, the
batch's completion flag last. The client side is :mod:`fastgeo.many`.
"""
from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np

from . import compare, zarrstore


# -- the generator, built once per worker ----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Generator:
    """Where workers get the generator: a spec (``module:attr``, ``file.py:attr``) or a
    picklable factory called without arguments; the dtype and device it runs in."""
    spec: str | None
    factory: object
    dtype: str
    device: str

    @property
    def name(self) -> str:
        if self.spec is not None:
            return self.spec
        f = self.factory
        return f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', type(f).__name__)}"

    def build(self):
        from .generators import load

        return self.prepared(load(self.spec) if self.spec is not None else self.factory())

    def prepared(self, gen):
        """``gen`` checked, and a torch module moved to the run's dtype and device, eval mode."""
        import torch

        if not callable(gen):
            raise TypeError(f"the generator factory {self.name} returned a {type(gen).__name__}, not a callable")
        if isinstance(gen, torch.nn.Module):
            gen.to(device=self.device, dtype=getattr(torch, self.dtype)).eval()
        return gen


_BUILT = {}
_BUILT_LOCK = threading.Lock()


def _worker_generator(source: _Generator):
    with _BUILT_LOCK:
        if source not in _BUILT:
            _BUILT[source] = source.build()
        return _BUILT[source]


# -- one batch, on a worker ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Job:
    """Everything a batch task needs besides its pairs and the prior."""
    store: str
    layout: dict
    generator: _Generator
    methods: tuple
    n_points: int
    alpha: float
    solver: str
    max_iter: int | None
    backend: str
    options: tuple  # sorted (name, value) pairs for fastgeo.interpolate
    keep_decoded: bool


def _worker_threads():
    """Torch and Numba threads to the worker's thread count (one by default): several
    single-threaded workers, not one worker's threads fighting another's."""
    try:
        from distributed import get_worker

        n = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        return
    import numba
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


def run_batch(i, pairs, prior, job: _Job):
    """Compute batch ``i`` (its pairs (n, 2, D)) and write it into the store; returns (i, the
    seconds it took, the seconds of those spent writing)."""
    import torch

    start = time.perf_counter()
    _worker_threads()
    pairs = np.asarray(pairs, dtype=np.float64)  # NaN and inf were refused on the client
    generator = _worker_generator(job.generator)
    dtype = getattr(torch, job.generator.dtype)
    z0 = torch.as_tensor(pairs[:, 0], dtype=dtype, device=job.generator.device)
    z1 = torch.as_tensor(pairs[:, 1], dtype=dtype, device=job.generator.device)
    results = compare.run_methods(generator, z0, z1, prior, job.methods, n_points=job.n_points, alpha=job.alpha,
                                  solver=job.solver, max_iter=job.max_iter, backend=job.backend, progress=False,
                                  **dict(job.options))
    arrays = {m: compare.result_arrays(r) for m, r in results.items()}
    metrics = batch_metrics(arrays, job.alpha)
    if not job.keep_decoded:
        for arr in arrays.values():
            arr.pop("decoded", None)
    before_write = time.perf_counter()
    zarrstore.ZarrStore.attached(job.store, job.layout).write_batch(i, arrays, metrics)
    end = time.perf_counter()
    return i, end - start, end - before_write


def batch_metrics(arrays: dict, alpha: float) -> dict:
    """{method: {metric: (n,) float64}}: fastgeo.compare.pair_metrics' numeric metrics."""
    rows = compare.pair_metrics(arrays, alpha)
    out = {}
    for method in arrays:
        names = zarrstore.METRICS + (("relative_gap",) if "gap" in arrays[method] else ())
        out[method] = {n: np.array([r[method].get(n, np.nan) for r in rows], dtype=np.float64) for n in names}
    return out
