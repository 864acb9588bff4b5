"""``fastgeo interpolate``: linear, slerp and ri-optimal paths for a user's generator and pairs.

Reads endpoint pairs (B, 2, D) from a .npy file, computes every requested method for every
pair, batch by batch, and writes to the output folder:

- ``manifest.json``: the run's settings (written first; a rerun with other settings into the
  same folder is refused rather than mixed);
- ``batches/batch-NNNNN.npz``: each batch's paths as soon as they are computed, written to a
  temporary name and renamed, so an interrupted run loses nothing already computed and a
  rerun of the same command skips the finished batches (the folder is a
  :class:`fastgeo.runstore.RunStore`);
- ``<method>.npz`` (when all batches are done): ``latents`` (B, K+1, D), ``decoded``
  (B, K+1, ...), ``ri`` and ``log_ri`` (B, K+1), ``distances`` (B, K), ``energy`` and
  ``path_log_index`` (B,), ``seconds``; for ``optimal`` also ``status``, ``iterations``,
  ``converged``, ``gap``, ``solver`` (B,: the method that ran, "auto" resolved) and ``start``
  (B,: the start each path came from, see --starts);
- ``metrics.json``: per pair and method, and a summary per method (see fastgeo.compare);
- ``figures/pair<k>-*.png`` for the first ``--figures`` pairs.

The checks of the inputs (and the settings a rerun must match) are
:mod:`fastgeo.commands._interpolate_inputs`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from .. import runstore
from . import UserError
from ._common import (Stages, add_run_options, add_threads_option, check_backend, int_at_least, name_list,
                      positive_int, show_progress, threads, writable_folder)
from ._interpolate_inputs import (check_endpoint_density, check_generator, check_memory, load_pairs, load_prior,
                                  resolve_dtype_device, settings_of, starts_option)

DEFAULT_BATCH = 16

EPILOG = """\
generator (--generator):
  MODULE:ATTR            import MODULE (the current folder is searched first) and take ATTR
  path/to/file.py:ATTR   run that file as a module and take ATTR
  ATTR may be dotted. An nn.Module instance is used in eval mode; a class is instantiated
  without arguments; ATTR() calls a factory without arguments; any other callable is used as a
  function mapping latents (M, D) to outputs (M, ...). Its dtype and device are the
  generator's parameters' (override with --dtype, --device).

prior (--prior), NAME:D[,KEY=VALUE]...:
  normal:D                         N(0, I_D)
  gaussian:D[,mean=M][,std=S]      N(M 1, S^2 I_D)
  semicircle:D                     the paper's three-Gaussian horseshoe (D >= 2)
  kilcher:D[,shape=K][,scale=T]    |z| ~ Gamma(K, T) (default K = 1/2, T = sqrt(D/(K(K+1))))
  studentt:D,df=NU                 multivariate Student-t
  cauchy:D                         multivariate Cauchy
  ball:D[,radius=R]                uniform on a ball (default R = 1)
  box:D[,low=A][,high=B]           uniform on [A, B]^D (default -1, 1)

pairs (--pairs): a .npy array of shape (B, 2, D): pairs[b, 0] and pairs[b, 1] are the
  endpoints of path b.

Interrupted? Run the same command again: finished batches are kept and skipped.

example:
  fastgeo interpolate --generator mynet.py:G --prior normal:64 --pairs pairs.npy --out results/
"""


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "interpolate", help="linear, slerp and ri-optimal paths for your own generator and endpoint pairs",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Compute linear, slerp and ri-optimal paths between the endpoint pairs of a .npy file for "
                    "your own torch generator and latent prior. Writes each batch of results as it goes "
                    "(resumable), then <method>.npz (latents, decoded outputs, ri, log ri) and metrics.json, "
                    "and prints a table of the metrics per method.")
    parser.add_argument("--generator", required=True, metavar="SPEC",
                        help="MODULE:ATTR or path/to/file.py:ATTR (see below)")
    parser.add_argument("--prior", required=True, metavar="SPEC",
                        help="the latent prior, e.g. normal:64, semicircle:20, studentt:10,df=3 (see below)")
    parser.add_argument("--pairs", required=True, metavar="FILE.npy", help="endpoint pairs, shape (B, 2, D)")
    parser.add_argument("--methods", type=name_list("fastgeo.compare:METHODS", "methods"),
                        default=["linear", "slerp", "optimal"], metavar="LIST",
                        help="paths to compute, comma-separated, from linear, slerp, matched_linear, optimal "
                             "(default: linear,slerp,optimal)")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH, metavar="N",
                        help=f"pairs per solver call and per saved batch (default {DEFAULT_BATCH})")
    parser.add_argument("--figures", type=int_at_least(0), default=0, metavar="N",
                        help="draw the paper's figures for the first N pairs into <out>/figures (default 0)")
    parser.add_argument("--dtype", choices=["auto", "float32", "float64"], default="auto",
                        help="dtype of the latent paths (default: the generator's parameters', else float32)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="device of the paths and the generator (default: the generator's parameters', "
                             "else cpu)")
    parser.add_argument("--store", default=None, metavar="PATH.zarr",
                        help="run on Dask and write every method's arrays into this Zarr store, batch by batch "
                             "(resumable; needs fastgeo[distributed]); --out then gets metrics.json")
    parser.add_argument("--scheduler", default=None, metavar="local[:N]|ADDRESS",
                        help="with --store: a local cluster of N single-threaded worker processes (default "
                             "local: one per core) or the address of a running Dask scheduler (tcp://host:port)")
    parser.add_argument("--keep-decoded", action="store_true",
                        help="with --store: also keep the decoded outputs of every path (large)")
    add_run_options(parser, "results")
    add_threads_option(parser, None)
    parser.set_defaults(run=run)
    return parser


# -- the run ----------------------------------------------------------------------------------------

def run(args):
    if args.store is None:
        if args.scheduler is not None or args.keep_decoded:
            raise UserError("--scheduler and --keep-decoded go with --store (a Dask run into a Zarr store)")
        with threads(args.threads):
            return _run(args)
    return _run_store(args)


def _run(args):
    import torch

    from .. import compare
    from .._errors import GeneratorError
    from ..interpolation import DEFAULT_ALPHA
    from ..generators import GeneratorSpecError, load as load_generator

    start_time = time.perf_counter()
    check_backend(args.backend)
    prior, prior_canonical = load_prior(args.prior)
    pairs = load_pairs(args.pairs)
    n, _, d = pairs.shape
    if prior.dim != d:
        raise UserError(f"--prior {args.prior} is {prior.dim}-dimensional but {args.pairs} holds {d}-dimensional "
                        "endpoints")
    out = writable_folder(args.out)
    try:
        generator = load_generator(args.generator)
    except GeneratorSpecError as err:
        raise UserError(f"--generator: {err}") from None
    dtype, device = resolve_dtype_device(args, generator)
    backend = check_backend(args.backend, "cpu" if device.type == "cpu" else f"cuda:{device.index or 0}")
    out_shape, itemsize = check_generator(generator, pairs, dtype, device)
    check_memory(args, n, d, out_shape, itemsize, device)
    check_endpoint_density(pairs, prior, args.backend, dtype)
    alpha = DEFAULT_ALPHA if args.alpha is None else args.alpha
    store = runstore.RunStore(out)
    try:
        resumed = store.open(settings_of(args, prior_canonical, pairs, dtype, device, backend, alpha))
    except runstore.RunStoreError as err:
        raise UserError(str(err)) from None

    progress = show_progress(args)
    stages = Stages(progress)
    bounds = [(s, min(s + args.batch_size, n)) for s in range(0, n, args.batch_size)]
    batches, reused = [], 0
    try:
        for i, (s, e) in enumerate(bounds):
            arrays, why = store.load_batch(i, s, e, args.methods, args.n_points, d) if resumed else (None, None)
            if arrays is not None:
                reused += 1
                batches.append(arrays)
                continue
            if why is not None and why != "missing":
                print(f"batch {i + 1}/{len(bounds)}: the saved {store.batch_path(i)} cannot be used ({why}); "
                      "recomputing it", file=sys.stderr, flush=True)
            stages.say(f"batch {i + 1}/{len(bounds)} (pairs {s}..{e - 1}): {', '.join(args.methods)}")
            z0 = torch.as_tensor(pairs[s:e, 0], dtype=dtype, device=device)
            z1 = torch.as_tensor(pairs[s:e, 1], dtype=dtype, device=device)
            try:
                results = compare.run_methods(generator, z0, z1, prior, args.methods, n_points=args.n_points,
                                              alpha=alpha, solver=args.solver, max_iter=args.max_iter,
                                              backend=args.backend, progress=progress, starts=args.starts)
            except GeneratorError as err:
                raise UserError(f"--generator {args.generator}: {err} (pairs {s}..{e - 1})") from None
            arrays = {m: compare.result_arrays(r) for m, r in results.items()}
            store.save_batch(i, s, e, arrays)
            batches.append(arrays)
    except KeyboardInterrupt:
        done = len(batches)
        print(f"fastgeo interpolate: interrupted; {done} of {len(bounds)} batches are saved in "
              f"{store.batches_folder}: run the same command again to resume", flush=True)
        raise
    if reused:
        print(f"resumed: {reused} of {len(bounds)} batches were already computed in {out} and were not recomputed")

    combined = {m: runstore.concatenate([b[m] for b in batches]) for m in args.methods}
    written = [runstore.write_npz(os.path.join(out, f"{m}.npz"), arr) for m, arr in combined.items()]
    per_pair = compare.pair_metrics(combined, alpha)
    summary = compare.summarize(per_pair)
    figures = []
    if args.figures:
        folder = writable_folder(os.path.join(out, "figures"))
        scatter = prior.sample(2000, seed=0) if prior_canonical.startswith("semicircle:") else None
        for b in range(min(args.figures, n)):
            figures += compare.pair_figures(folder, f"pair{b}", combined, b, prior_samples=scatter)
    report = {"settings": store.settings, "pairs": [{"index": b, "methods": p} for b, p in enumerate(per_pair)],
              "summary": summary, "seconds": time.perf_counter() - start_time,
              "reused_batches": reused, "batches": len(bounds)}
    written.append(runstore.write_json(os.path.join(out, "metrics.json"), report))
    store.finish()
    print(f"{n} pair(s), {args.n_points - 2} midpoints, alpha = {alpha:.3g}, prior {prior_canonical}; "
          "means over pairs\n")
    print(compare.table(summary))
    solver = compare.solver_line(summary.get("optimal", {}))
    if solver:
        print("\n" + solver)
    print(f"\nwritten: {', '.join(written)}" + (f" and {len(figures)} figures in {out}/figures" if figures else ""))
    return 0


def _run_store(args):
    """--store: the same batches on Dask (fastgeo.interpolate_many), into a Zarr store; the
    per-pair metrics come from the store (computed where each batch ran) into --out."""
    from .. import compare, zarrstore
    from ..generators import GeneratorSpecError
    from ..many import interpolate_many, summary_line

    if args.figures:
        raise UserError("--figures is not available with --store (draw them from the store's arrays)")
    if args.threads is not None:
        raise UserError("--threads does not apply to --store: each Dask worker runs single-threaded")
    check_backend(args.backend)
    prior, prior_canonical = load_prior(args.prior)
    pairs = load_pairs(args.pairs)
    if prior.dim != pairs.shape[2]:
        raise UserError(f"--prior {args.prior} is {prior.dim}-dimensional but {args.pairs} holds "
                        f"{pairs.shape[2]}-dimensional endpoints")
    out = writable_folder(args.out)
    dtype = None if args.dtype == "auto" else args.dtype
    device = None if args.device == "auto" else args.device
    try:
        result = interpolate_many(args.generator, pairs, prior, store=args.store, client=args.scheduler,
                                  batch_size=args.batch_size, methods=args.methods, keep_decoded=args.keep_decoded,
                                  dtype=dtype, device=device, progress=show_progress(args), n_points=args.n_points,
                                  alpha=args.alpha, method=args.solver, max_iter=args.max_iter, backend=args.backend,
                                  **starts_option(args))
    except GeneratorSpecError as err:
        raise UserError(f"--generator: {err}") from None
    except (ValueError, TypeError, ConnectionError, ImportError) as err:
        raise UserError(" ".join(str(err).split())) from None
    print(summary_line(result))
    if not result.ok:
        pairs_failed = result.failed_pairs
        print(f"fastgeo interpolate: {len(pairs_failed)} pair(s) failed: "
              f"{', '.join(map(str, pairs_failed[:20]))}{' ...' if len(pairs_failed) > 20 else ''}; "
              "run the same command again to retry them", file=sys.stderr)
        return 1
    store = zarrstore.ZarrStore(result.store)
    per_pair = store_pair_metrics(store, args.methods)
    summary = compare.summarize(per_pair)
    settings = store.saved_settings()
    report = {"settings": {**settings, "prior_spec": prior_canonical}, "store": result.store,
              "pairs": [{"index": b, "methods": p} for b, p in enumerate(per_pair)], "summary": summary,
              "seconds": result.seconds, "reused_batches": result.reused_batches, "batches": result.n_batches}
    written = runstore.write_json(os.path.join(out, "metrics.json"), report)
    print(compare.table(summary))
    print(f"\nwritten: {result.store} and {written}")
    return 0


def store_pair_metrics(store, methods):
    """Per pair, {method: {metric: value}} from a store's metrics arrays (as compare.pair_metrics)."""
    from .. import compare

    per_method = {}
    for method in methods:
        arrays = store.read_metrics(method)
        names = [k for k in arrays if k.startswith("metrics/")]
        n = len(arrays["metrics/energy"])
        rows = [{k.partition("/")[2]: float(arrays[k][b]) for k in names} for b in range(n)]
        for b, row in enumerate(rows):
            row.update(compare.solver_fields(arrays, b))
        per_method[method] = rows
    n = len(next(iter(per_method.values())))
    return [{m: rows[b] for m, rows in per_method.items()} for b in range(n)]
