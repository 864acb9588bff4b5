"""``interpolate_many``: interpolations of many endpoint pairs on Dask, into a resumable Zarr store.

One Dask task per batch of pairs. Each worker builds the generator once and keeps it; the
prior (with its KDE table, built here first) is one key of the graph, so it reaches each worker
once. A task runs every method on its batch (fastgeo.compare.run_methods, the CLI's own code),
computes the per-pair metrics, and writes everything into the store
(:class:`fastgeo.zarrstore.ZarrStore`), the batch's completion flag last. A rerun computes only
the batches whose flag is missing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os
import pickle
import threading
import time
import uuid

import numpy as np

from . import compare, zarrstore
from ._cluster import CONNECT_TIMEOUT, connect, sigterm_as_interrupt
from ._errors import one_line

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


# -- the client side -------------------------------------------------------------------------------

def _pairs_kind(pairs):
    """("dask" | "zarr" | "numpy", the pairs as a Dask array or a numpy array)."""
    mod = type(pairs).__module__ or ""
    if mod.startswith("dask."):
        return "dask", pairs
    if mod.startswith("zarr."):
        import dask.array as da

        return "zarr", da.from_zarr(pairs)
    from ._arrays import to_host

    try:
        arr = to_host(pairs) if not isinstance(pairs, np.ndarray) else pairs
    except TypeError:
        arr = np.asarray(pairs)
    return "numpy", np.asarray(arr)


def _check_pairs(kind, pairs, dim):
    if pairs.ndim != 3 or pairs.shape[1] != 2 or pairs.shape[0] < 1 or pairs.shape[2] < 1:
        raise ValueError(f"pairs must have shape (P, 2, D) with P >= 1, got {tuple(pairs.shape)}")
    if pairs.shape[2] != dim:
        raise ValueError(f"pairs hold {pairs.shape[2]}-dimensional endpoints but the prior is {dim}-dimensional")
    if np.dtype(pairs.dtype).kind not in "fiu":
        raise TypeError(f"pairs must be real numbers, got {pairs.dtype}")
    if kind == "numpy":
        _raise_nonfinite(~np.isfinite(pairs).all(axis=(1, 2)))


def listed_pairs(bad) -> str:
    """The pairs flagged in ``bad`` (a boolean (P,) array) for a message, the first five and a
    count of the rest ("3, 7, 8, 9, 12 and 4 more"); "" when none is (also the CLI's --pairs)."""
    idx = np.flatnonzero(bad)
    if not len(idx):
        return ""
    more = f" and {len(idx) - 5} more" if len(idx) > 5 else ""
    return f"{', '.join(map(str, idx[:5]))}{more}"


def _raise_nonfinite(bad):
    listed = listed_pairs(bad)
    if listed:
        raise ValueError(f"pairs {listed} contain NaN or inf")


def _pairs_token(kind, pairs):
    if kind == "numpy":
        return hashlib.sha256(np.ascontiguousarray(pairs).tobytes()).hexdigest()
    from dask.base import tokenize

    return f"{kind}:{tokenize(pairs)}"


def _prepare_prior(prior):
    """The fastgeo prior, with its KDE table built here when its index needs it (so workers
    never build it: the table pickles along)."""
    from ._specs import Estimated
    from .priors import as_prior

    prior = as_prior(prior)
    if isinstance(prior.index(), Estimated):
        prior.kde.table  # noqa: B018 - builds and caches the table
    return prior


def prior_fingerprint(prior) -> str:
    """sha256 of what the prior's numbers depend on: its public attributes (the private ones
    are caches derived from them, some built on first use), a KDE as its samples and
    bandwidth (its table is derived from them, and records its own build time)."""
    from .kde import KDE

    state = {}
    for key, value in sorted(vars(prior).items()):
        if key.startswith("_"):
            continue
        if isinstance(value, KDE):
            value = (hashlib.sha256(np.ascontiguousarray(value.samples).tobytes()).hexdigest(), value.bandwidth)
        state[key] = value
    return hashlib.sha256(pickle.dumps((type(prior).__module__, type(prior).__qualname__, state))).hexdigest()


def _probe(source: _Generator, gen, first_point):
    """The shape of one decoded output of ``gen`` (the generator as built here, a check)."""
    import torch

    gen = source.prepared(gen)
    z = torch.as_tensor(first_point[None], dtype=getattr(torch, source.dtype), device=source.device)
    with torch.no_grad():
        out = gen(z)
    if not isinstance(out, torch.Tensor) or out.ndim < 2 or out.shape[0] != 1:
        raise ValueError(f"the generator {source.name} must map (M, D) latents to (M, ...) tensors; it mapped "
                         f"(1, {z.shape[1]}) to {type(out).__name__} {tuple(getattr(out, 'shape', ()))}")
    return tuple(out.shape[1:])


def _resolve_generator(generator, dtype, device):
    """(where workers get the generator, the generator built here once)."""
    import torch

    from .generators import dtype_and_device, load

    if isinstance(generator, str):
        from .generators import is_file_spec

        where, sep, attr = generator.rpartition(":")
        # workers in other folders (or on other nodes sharing the file system) find the file,
        # and a relative and an absolute spec of one file are the same run
        spec, factory = (f"{os.path.abspath(where)}:{attr}" if sep and is_file_spec(where) else generator), None
        built = load(spec)
    elif callable(generator):
        spec, factory = None, generator
        try:
            pickle.dumps(generator)
        except Exception as err:
            raise TypeError(f"the generator factory must pickle (workers build the generator from it): "
                            f"{one_line(err)}") from None
        built = generator()
    else:
        raise TypeError("generator must be a 'module:attr' / 'file.py:attr' spec or a picklable factory, "
                        f"got {type(generator).__name__}")
    g_dtype, g_device = dtype_and_device(built) if isinstance(built, torch.nn.Module) else (None, None)
    dtype = str(dtype or g_dtype or torch.float32).replace("torch.", "")
    device = str(device or g_device or "cpu")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return _Generator(spec, factory, dtype, device), built


def _interpolate_options(options):
    from .interpolation import interpolate

    allowed = set(inspect.signature(interpolate).parameters) - {"generator", "z0", "z1", "prior", "init",
                                                                "progress"}
    bad = sorted(set(options) - allowed)
    if bad:
        raise TypeError(f"interpolate_many got options fastgeo.interpolate does not take: {', '.join(bad)}")
    return options


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
    solver = options.pop("method", "lbfgs")
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
