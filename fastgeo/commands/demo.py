"""``fastgeo demo``: the paper's experiments on the embedded generators, as a report folder.

For each embedded model (:mod:`fastgeo.models`) the demo picks endpoint pairs from
different ends of its prior (:func:`fastgeo.endpoints.far_pairs`), computes the linear,
slerp and ri-optimal paths between them (50 midpoints by default), and writes

- ``<out>/<model>/pair<k>-strips.png``: decoded images at every fifth point, linear above
  ri-optimal above slerp (the paper's Figs. 2-4);
- ``<out>/<model>/pair<k>-steps-ri.png``: consecutive decoded distances and ri along each
  path (Fig. 5);
- ``<out>/<model>/pair<k>-projection.png``: the paths in the plane of the endpoints and the
  origin (eq. 4, Fig. 6); for the semicircle also over prior samples in its first two
  coordinates, where the horseshoe shows;
- ``<out>/<model>/<method>.npz``: latents, decoded outputs, ri and log ri of every path;
- ``<out>/metrics.json``: per model, per pair, per method, and a summary per method;
- ``<out>/report.md``: the printed tables and the figures, to read in a browser or editor.
"""
from __future__ import annotations

import math
import os
import time

from . import UserError, _background
from ._common import (Stages, add_run_options, add_threads_option, check_backend, int_at_least, name_list,
                      positive_int, show_progress, threads, writable_folder)

DEFAULT_MODELS = ("semicircle", "normal", "kilcher")
DEFAULT_PAIRS = 16
DEFAULT_FIGURES = 4
#: prior samples drawn under the projection of the semicircle, and to measure how close
#: decoded prior samples come to real digits (the yardstick of the digit distance)
N_PRIOR_SAMPLES = 2000


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "demo", help="the paper's experiments on the embedded generators: figures, metrics, a table",
        description="Interpolate between endpoint pairs from different ends of each embedded model's prior "
                    "with linear, slerp and ri-optimal paths, and write the paper's figures (image strips, "
                    "decoded steps and ri along the paths, the projection of eq. 4), the paths (.npz), "
                    "metrics.json and report.md to the output folder. Prints a table per model: the mean over "
                    "pairs of the energy of eq. (3), log ri of the path, the smallest ri among the midpoints "
                    "(and the worst pair's), the decoded length, the largest decoded step over the mean step, "
                    "and how far the decoded midpoints are from the nearest real digit.")
    parser.add_argument("--models", type=name_list("fastgeo.models.specs:SPECS", "models"),
                        default=list(DEFAULT_MODELS), metavar="LIST",
                        help=f"embedded models, comma-separated (default: {','.join(DEFAULT_MODELS)}); each "
                             "comes with the prior it was trained on")
    parser.add_argument("--pairs", type=positive_int, default=DEFAULT_PAIRS, metavar="N",
                        help=f"endpoint pairs per model (default {DEFAULT_PAIRS})")
    parser.add_argument("--seed", type=int_at_least(0), default=0, metavar="N",
                        help="seed of the endpoint pairs, an integer >= 0 (default 0)")
    parser.add_argument("--figures", type=int_at_least(0), default=DEFAULT_FIGURES, metavar="N",
                        help=f"draw the figures of the first N pairs of each model (default {DEFAULT_FIGURES}; "
                             "0: none)")
    add_run_options(parser, "fastgeo-report")
    add_threads_option(parser, 1)
    parser.set_defaults(run=run)
    return parser


def digit_yardstick():
    """(function decoded -> mean distance of each path's midpoints to the nearest real digit,
    the real digits: fastgeo ships them)."""
    import numpy as np
    import torch

    from ..models.data import load_digit_images, nearest_distances

    reference = torch.from_numpy(load_digit_images())

    def distance(decoded):
        inner = decoded[:, 1:-1]
        b, m = inner.shape[:2]
        d = nearest_distances(inner.reshape(b * m, -1), reference.reshape(len(reference), -1))
        return d.numpy().reshape(b, m).mean(axis=1).astype(np.float64)

    return distance, reference


def run(args):
    check_backend(args.backend)
    if args.backend == "cuda":
        raise UserError("--backend cuda: the demo's generators run on the CPU; use auto, cpu or reference")
    writable_folder(args.out)
    stages = Stages(show_progress(args))
    helper = _background.start(_background.demo_steps(args), args.threads)
    if helper is not None:
        stages.say(f"kernels of the later steps compile in a background process ({_background.ENV}=0: off)")
    try:
        return _run(args, stages)
    finally:
        if helper is not None:
            helper.stop()


def _run(args, stages):
    import numpy as np
    import torch

    from .. import compare, models, runstore
    from ..endpoints import far_pairs
    from ..interpolation import DEFAULT_ALPHA

    start = time.perf_counter()
    out = args.out
    alpha = DEFAULT_ALPHA if args.alpha is None else args.alpha
    progress = stages.enabled
    n_figures = min(args.figures, args.pairs)
    digit_distance, digits = digit_yardstick()
    extras = {"digit_distance": digit_distance}
    extra_columns = [("digit_distance", "digit distance", "{:.3g}")]
    settings = {"models": args.models, "pairs": args.pairs, "seed": args.seed, "n_points": args.n_points,
                "alpha": alpha, "solver": args.solver, "starts": args.starts, "max_iter": args.max_iter,
                "backend": args.backend, "methods": list(compare.DEFAULT_METHODS)}
    report = {"settings": settings, "models": {}}
    md = [f"# fastgeo demo\n\n`fastgeo demo` with {args.pairs} pair(s) per model, {args.n_points - 2} midpoints, "
          f"alpha = {alpha:.3g}, seed {args.seed}.\n"]
    for number, name in enumerate(args.models, 1):
        model = models.load(name)
        folder = writable_folder(os.path.join(out, name))
        z0, z1, rule = far_pairs(model.prior, args.pairs, seed=args.seed)
        stages.say(f"[{number}/{len(args.models)}] {name}: {args.pairs} pair(s), linear, slerp and ri-optimal "
                   f"paths ({args.solver})")
        t0 = torch.as_tensor(z0, dtype=torch.float32)
        t1 = torch.as_tensor(z1, dtype=torch.float32)
        with threads(args.threads):
            results = compare.run_methods(model.generator, t0, t1, model.prior, compare.DEFAULT_METHODS,
                                          n_points=args.n_points, alpha=alpha, solver=args.solver,
                                          max_iter=args.max_iter, backend=args.backend, progress=progress,
                                          starts=args.starts)
        arrays = {m: compare.result_arrays(r) for m, r in results.items()}
        for method, arr in arrays.items():
            runstore.write_npz(os.path.join(folder, f"{method}.npz"), arr)
        per_pair = compare.pair_metrics(arrays, alpha, extras)
        summary = compare.summarize(per_pair)
        samples = model.prior.sample(N_PRIOR_SAMPLES, seed=np.random.default_rng([args.seed, 1]))
        from ..models.data import nearest_distances

        decoded = model.decode(samples[:1000])
        reference = digits.reshape(len(digits), -1)
        yardstick = float(nearest_distances(decoded.reshape(1000, -1), reference).mean())
        stages.say(f"[{number}/{len(args.models)}] {name}: figures")
        scatter = samples if name == "semicircle" else None
        figures = []
        for b in range(n_figures):
            figures += compare.pair_figures(folder, f"pair{b}", arrays, b, prior_samples=scatter,
                                            title=f"{name}")
        text = compare.table(summary, extra_columns)
        verdict = findings(summary, per_pair, yardstick)
        heading = (f"{name}: {model.description}\n{args.pairs} pair(s), {args.n_points - 2} midpoints, "
                   f"alpha = {alpha:.3g}; means over pairs; endpoints: {rule}")
        print(f"\n{heading}\n\n{text}\n")
        for line in verdict:
            print(f"  {line}")
        report["models"][name] = {
            "description": model.description, "prior": repr(model.prior), "endpoints": rule,
            "z0": z0, "z1": z1, "pairs": per_pair, "summary": summary, "findings": verdict,
            "digit_distance_of_prior_samples": yardstick,
            "seconds": {m: float(r.timings.get("total", math.nan)) for m, r in results.items()},
        }
        md.append(f"## {name}\n\n{model.description}. Endpoints: {rule}.\n\n{text}\n")
        md += [f"- {line}" for line in verdict]
        md.append("")
        md += [f"![{os.path.basename(f)}]({os.path.relpath(f, out)})\n" for f in figures]
    report["seconds"] = time.perf_counter() - start
    written = [runstore.write_json(os.path.join(out, "metrics.json"), report)]
    with open(os.path.join(out, "report.md"), "w") as fh:
        fh.write("\n".join(md) + "\n" + column_notes(extra_columns) + "\n")
    written.append(os.path.join(out, "report.md"))
    print(f"\n{column_notes(extra_columns)}\n")
    print(f"written: {', '.join(written)} and the figures and paths in {out}/<model>/ "
          f"({report['seconds']:.0f} s)")
    return 0


COLUMN_NOTES = (
    "Columns (means over pairs): energy = E of eq. (3) (lower: shorter and more realistic); log ri(path) = "
    "sum_i log rbar_i |G(x_{i+1}) - G(x_i)| (closer to 0: more realistic); min ri (midpoints) = the smallest "
    "ri(x_i) over x_1..x_{K-1}, mean (worst pair); decoded length = sum of decoded steps; max step / mean = the "
    "largest decoded step over the mean step (1: even)")
#: the legend of each extra column, by its key: printed only where the column is
EXTRA_NOTES = {
    "digit_distance": "digit distance = mean distance of the decoded midpoints to the nearest of the 1797 real "
                      "digits (two real digits: 1.03 apart on average)"}


def column_notes(extra_columns) -> str:
    """The legend of the table's columns: the standard ones and the extra columns present."""
    return "; ".join([COLUMN_NOTES] + [EXTRA_NOTES[key] for key, _, _ in extra_columns]) + "."


def findings(summary, per_pair, yardstick) -> list:
    """Sentences comparing the ri-optimal paths with the linear ones, from this run's numbers."""
    if "optimal" not in summary or "linear" not in summary:
        return []
    lin, opt = summary["linear"], summary["optimal"]
    n = len(per_pair)
    lower_e = sum(p["optimal"]["energy"] < p["linear"]["energy"] for p in per_pair)
    higher_ri = sum(p["optimal"]["min_log_ri"] > p["linear"]["min_log_ri"] for p in per_pair)
    # ri's at the far endpoint's side can differ in the fourth digit: count the clear gains apart
    doubled = sum(p["optimal"]["min_log_ri"] > p["linear"]["min_log_ri"] + math.log(2.0) for p in per_pair)
    lines = [
        f"ri-optimal against linear: energy {lin['energy']:.3g} -> {opt['energy']:.3g} (lower on {lower_e}/{n} "
        f"pairs); log ri(path) {lin['log_index']:.3g} -> {opt['log_index']:.3g}; smallest midpoint ri "
        f"{lin['min_ri']:.2g} -> {opt['min_ri']:.2g} (higher on {higher_ri}/{n} pairs, at least twice as high on "
        f"{doubled}/{n}); decoded length "
        f"{lin['decoded_length']:.3g} -> {opt['decoded_length']:.3g}.",
    ]
    if "digit_distance" in lin and yardstick is not None:
        lines.append(f"Decoded midpoints to the nearest real digit: linear {lin['digit_distance']:.3g}, ri-optimal "
                     f"{opt['digit_distance']:.3g} (decoded prior samples: {yardstick:.3g}).")
    from .. import compare

    solver = compare.solver_line(opt)
    if solver:
        lines.append(solver)
    return lines
