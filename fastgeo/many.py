"""``interpolate_many``: interpolations of many endpoint pairs on Dask, into a resumable Zarr store.

One Dask task per batch of pairs. Each worker builds the generator once and keeps it; the
prior (with its KDE table, built here first) is one key of the graph, so it reaches each worker
once. A task runs every method on its batch (fastgeo.compare.run_methods, the CLI's own code),
computes the per-pair metrics, and writes everything into the store
(:class:`fastgeo.zarrstore.ZarrStore`), the batch's completion flag last. A rerun computes only
the batches whose flag is missing.

Here the driver (the store, the client, the tasks, the results); the task itself is
:mod:`fastgeo._many_worker`, the checks of the arguments :mod:`fastgeo._many_inputs`.
"""
from __future__ import annotations

import dataclasses
import os
import time
import uuid

import numpy as np

from . import _many_worker, compare, zarrstore
from ._cluster import CONNECT_TIMEOUT, connect, sigterm_as_interrupt
from ._errors import one_line
from ._many_inputs import (_check_pairs, _interpolate_options, _pairs_kind, _pairs_token, _prepare_prior, _probe,
                           _raise_nonfinite, _resolve_generator, prior_fingerprint)
from ._many_worker import _Job, run_batch

# batch_metrics (like run_batch and prior_fingerprint) stays importable from here
batch_metrics = _many_worker.batch_metrics

DEFAULT_BATCH = 16
DEFAULT_N_POINTS = 52


@dataclasses.dataclass(frozen=True)
class FailedBatch:
    """A batch that raised: its index, its pairs ``start .. stop - 1`` and the error."""
    batch: int
    start: int
    stop: int
    error: str


@dataclasses.dataclass(frozen=True)
class ManyResult:
    """What :func:`interpolate_many` did.

    store : the Zarr store's path.
    n_pairs, n_batches : the run's size.
    done_batches : batches complete in the store now (reused ones included).
    reused_batches : batches found complete and not recomputed.
    failed : the batches that raised (:class:`FailedBatch`), with their errors.
    batch_seconds : {batch: seconds the batch's task took}, for the batches computed now.
    write_seconds : {batch: seconds of those spent writing into the store}.
    seconds : wall time of the call.
    """
    store: str
    n_pairs: int
    n_batches: int
    done_batches: int
    reused_batches: int
    failed: tuple
    batch_seconds: dict
    write_seconds: dict
    seconds: float

    @property
    def ok(self) -> bool:
        return self.done_batches == self.n_batches

    @property
    def failed_pairs(self) -> list:
        return [p for f in self.failed for p in range(f.start, f.stop)]


def interpolate_many(generator, pairs, prior, *, store, client=None, batch_size=DEFAULT_BATCH,
                     methods=("linear", "slerp", "optimal"), keep_decoded=False, dtype=None, device=None,
                     progress=None, connect_timeout=CONNECT_TIMEOUT, **interpolate_options) -> ManyResult:
    """Interpolate many endpoint pairs on Dask, writing each batch into a Zarr store as it finishes.

    generator : a ``"module:attr"`` or ``"path/to/file.py:attr"`` spec (as ``fastgeo interpolate
        --generator`` takes) or a picklable factory called without arguments; each worker
        builds it once and keeps it (on a ``dask_cuda.LocalCUDACluster`` each worker's
        ``"cuda"`` is its own GPU). It is also built once here, to check it and learn the
        shape of its outputs.
    pairs : (P, 2, D) endpoints: a numpy array (or anything numpy takes), a Dask array or a
        Zarr array (read by the workers, batch by batch).
    prior : a fastgeo prior, a torch distribution or a frozen scipy distribution.
    store : the Zarr store's path (a folder). One group per method with ``latents``
        (P, K+1, D), ``ri``, ``log_ri`` (P, K+1), ``distances`` (P, K), ``energy``,
        ``path_log_index`` (P,), for the optimal paths ``status``, ``iterations``,
        ``converged``, ``gap``, per-pair ``metrics/``, and ``decoded`` only with
        ``keep_decoded``; the settings in its attributes (see fastgeo.zarrstore).
    client : None or ``"local"`` (a LocalCluster: one single-threaded worker process per
        core), ``"local:N"``, a scheduler address ``"tcp://host:port"``, or a
        ``distributed.Client``.
    batch_size : pairs per task (and per chunk of the store).
    methods : from fastgeo.compare.METHODS.
    dtype, device : of the paths and the generator (default: the generator's parameters',
        else float32 on the CPU).
    progress : a progress bar over batches (default: when stderr is a terminal).
    interpolate_options : ``n_points`` (default 52), ``alpha``, ``method`` (the solver),
        ``max_iter``, ``ftol``, ``backend``, ... as :func:`fastgeo.interpolate` takes them.

    Returns a :class:`ManyResult`: batches done (reused ones included), failed batches with
    their pairs and errors (the other batches finish), the store. Rerunning with the same
    store computes only what is missing; a store made with other settings is refused
    (ValueError naming the differences). Raises ConnectionError when no scheduler answers at
    ``client`` within ``connect_timeout`` seconds. Ctrl-C or SIGTERM cancels the run; the
    store keeps every batch completed so far.
    """
    import sys

    t0 = time.perf_counter()
    options = _interpolate_options(dict(interpolate_options))
    n_points = int(options.pop("n_points", DEFAULT_N_POINTS))
    solver = options.pop("method", "auto")
    max_iter = options.pop("max_iter", None)
    backend = options.pop("backend", "auto")
    alpha = options.pop("alpha", None)
    if alpha is None:
        from .interpolation import DEFAULT_ALPHA

        alpha = DEFAULT_ALPHA
    methods = compare.check_methods(methods)
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if n_points < 2:
        raise ValueError(f"n_points must be at least 2, got {n_points}")
    prior = _prepare_prior(prior)
    kind, data = _pairs_kind(pairs)
    _check_pairs(kind, data, prior.dim)
    source, built = _resolve_generator(generator, dtype, device)
    first = np.asarray(data[:1, 0] if kind == "numpy" else data[:1, 0].compute(), dtype=np.float64)[0]
    out_shape = _probe(source, built, first)

    n = int(data.shape[0])
    settings = {"generator": source.name, "prior": repr(prior),
                "prior_sha256": prior_fingerprint(prior),
                "pairs": _pairs_token(kind, data), "alpha": float(alpha), "solver": solver,
                "max_iter": max_iter, "backend": backend, "device": source.device,
                "options": {k: options[k] for k in sorted(options)}, "fastgeo": _version()}
    if source.spec is not None:
        from .generators import file_digest

        settings["generator_file_sha256"] = file_digest(source.spec)
    shape = zarrstore.layout(n, n_points, prior.dim, batch_size, methods, source.dtype,
                             out_shape if keep_decoded else None)
    zs = zarrstore.ZarrStore(os.path.abspath(os.fspath(store)))
    try:
        zs.open(settings, shape)
    except zarrstore.ZarrStoreError as err:
        raise ValueError(str(err)) from None
    done = zs.done()
    missing = [i for i in range(zs.n_batches) if not done[i]]
    reused = zs.n_batches - len(missing)
    job = _Job(zs.path, zs.layout, source, methods, n_points, float(alpha), solver, max_iter, backend,
               tuple(sorted(options.items())), bool(keep_decoded))
    if progress is None:
        progress = sys.stderr is not None and sys.stderr.isatty()

    failed, seconds, writes = [], {}, {}
    if missing:
        with connect(client, connect_timeout) as c, sigterm_as_interrupt():
            if kind != "numpy":
                _raise_nonfinite(c.compute(~_finite_rows(data)).result())
            failed, seconds, writes = _run(c, zs, job, kind, data, prior, missing, progress)
    done = zs.done()
    return ManyResult(store=zs.path, n_pairs=n, n_batches=zs.n_batches, done_batches=int(done.sum()),
                      reused_batches=reused, failed=tuple(failed), batch_seconds=seconds, write_seconds=writes,
                      seconds=time.perf_counter() - t0)


def _finite_rows(data):
    import dask.array as da

    return da.isfinite(data).all(axis=(1, 2))


def _version():
    from . import __version__

    return __version__


def _blocks(kind, data, zs, missing):
    """Each missing batch's pairs: numpy slices, or the blocks of the Dask array rechunked
    to batches (the workers read them)."""
    if kind == "numpy":
        return {i: np.ascontiguousarray(data[slice(*zs.bounds(i))]) for i in missing}
    bs = zs.layout["batch_size"]
    blocks = data.rechunk((bs, 2, data.shape[2])).to_delayed().reshape(-1)
    return {i: blocks[i] for i in missing}


def _run(c, zs, job, kind, data, prior, missing, progress):
    import dask
    from distributed import as_completed

    run_id = uuid.uuid4().hex[:8]
    prior_d = dask.delayed(prior, pure=False)
    job_d = dask.delayed(job, pure=False)
    blocks = _blocks(kind, data, zs, missing)
    tasks = [dask.delayed(run_batch, pure=False)(i, blocks[i], prior_d, job_d,
                                                 dask_key_name=f"fastgeo-batch-{i}-{run_id}")
             for i in missing]
    futures = c.compute(tasks)
    index = {f.key: i for f, i in zip(futures, missing)}
    failed, seconds, writes = [], {}, {}
    bar = _bar(len(missing), progress)
    try:
        for fut in as_completed(futures):
            i = index[fut.key]
            if fut.status == "error":
                start, stop = zs.bounds(i)
                failed.append(FailedBatch(i, start, stop, one_line(fut.exception())))
            else:
                _, seconds[i], writes[i] = fut.result()
            bar.update(1)
    except BaseException:
        c.cancel(futures)
        raise
    finally:
        bar.close()
    failed.sort(key=lambda f: f.batch)
    return failed, seconds, writes


def _bar(total, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="batch", desc="interpolate_many", disable=not enabled, leave=False)


def summary_line(result: ManyResult) -> str:
    """One line for people: batches done, reused, failed pairs."""
    text = (f"{result.done_batches} of {result.n_batches} batches in {result.store} "
            f"({result.reused_batches} reused), {result.seconds:.1f} s")
    if result.failed:
        pairs = result.failed_pairs
        more = f" and {len(pairs) - 10} more" if len(pairs) > 10 else ""
        text += (f"; {len(result.failed)} batch(es) failed, pairs {', '.join(map(str, pairs[:10]))}{more}: "
                 f"{result.failed[0].error}")
    return text
