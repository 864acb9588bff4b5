"""Several interpolation methods on the same endpoint pairs, scored side by side.

The engine of ``fastgeo demo`` and ``fastgeo interpolate``: run the methods
(:func:`run_methods`), turn each result into plain arrays (:func:`result_arrays`), score every
pair (:func:`pair_metrics`), average over pairs (:func:`summarize`), print the table
(:func:`table`) and draw the paper's figures of a pair (:func:`pair_figures`).

Methods: "linear", "slerp", "matched_linear" (:mod:`fastgeo.baselines`) and "optimal"
(:func:`fastgeo.interpolate`, the ri-optimal path of eq. 3).

Metrics of one path (MATH.md 2-4; :func:`fastgeo.report.path_metrics` computes most):

- ``energy``: E of eq. (3) at the run's alpha; lower is better.
- ``log_index``: log ri(path) = sum_i log((r_i + r_{i+1}) / 2) |G(x_{i+1}) - G(x_i)| <= 0;
  closer to 0 is better (a long trip through low-ri regions costs most).
- ``min_ri``, ``min_log_ri``: the smallest ri(x_i) over the midpoints x_1 .. x_{K-1}. The
  endpoints are left out because every method shares them (over all points the minimum is
  often an endpoint's and says nothing about the path).
- ``decoded_length``: sum_i |G(x_{i+1}) - G(x_i)|; ``latent_length``: the same in latent space.
- ``max_step_over_mean``: the largest decoded step over the mean step: 1 for a path that
  moves evenly in output space, large where the output jumps.
- the solver's ``status``, ``iterations`` and ``solver`` (the method that ran, as "auto" chose
  it; optimal paths only), and any extra
  per-path numbers the caller supplies (the demo adds the distance to the nearest real digit).
"""
from __future__ import annotations

import math
import os

import numpy as np

from . import runstore as _runstore
from ._arrays import to_host

# the atomic writers live in fastgeo.runstore; kept importable from here
jsonable, write_json, write_npz = _runstore.jsonable, _runstore.write_json, _runstore.write_npz

METHODS = ("linear", "slerp", "matched_linear", "optimal")
DEFAULT_METHODS = ("linear", "slerp", "optimal")
#: (metric, column heading, format) of the printed table
COLUMNS = (
    ("energy", "energy", "{:.4g}"),
    ("log_index", "log ri(path)", "{:.3g}"),
    ("min_ri", "min ri (midpoints)", None),
    ("decoded_length", "decoded length", "{:.3g}"),
    ("max_step_over_mean", "max step / mean", "{:.3g}"),
)


def check_methods(methods) -> tuple:
    methods = tuple(methods)
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods or len(set(methods)) != len(methods):
        raise ValueError(f"methods must be distinct names from {', '.join(METHODS)}, got {', '.join(methods)}")
    return methods


def run_methods(generator, z0, z1, prior, methods=DEFAULT_METHODS, n_points=52, alpha=None, solver="auto",
                max_iter=None, backend="auto", progress=False, **interpolate_options) -> dict:
    """{method: InterpolationResult} for the pairs (z0[b], z1[b]), every method on the same pairs.

    z0, z1 : (B, D) torch tensors (or numpy arrays) in the generator's dtype.
    alpha : the scale of eq. (3); None for ``fastgeo.DEFAULT_ALPHA``. Baselines are scored
        with the same alpha, so their energies compare with the optimal path's.
    solver, max_iter : :func:`fastgeo.interpolate`'s ``method`` and ``max_iter``; any other
        keyword (``ftol``, ``memory``, ...) goes to :func:`fastgeo.interpolate` as well.
    """
    from . import baselines
    from .interpolation import DEFAULT_ALPHA, interpolate
    from .priors import as_prior

    prior = as_prior(prior)  # once: every method on the same prior (and KDE)
    alpha = DEFAULT_ALPHA if alpha is None else alpha
    out = {}
    for method in check_methods(methods):
        if method == "optimal":
            out[method] = interpolate(generator, z0, z1, prior, n_points=n_points, alpha=alpha, method=solver,
                                      max_iter=max_iter, backend=backend, progress=progress, **interpolate_options)
        else:
            baseline = getattr(baselines, f"{method}_path")
            out[method] = baseline(generator, z0, z1, prior, n_points=n_points, alpha=alpha, backend=backend)
    return out


def result_arrays(result) -> dict:
    """The arrays of a batched InterpolationResult as numpy arrays (what the .npz files hold).

    latents (B, K+1, D), decoded (B, K+1, ...), ri and log_ri (B, K+1), distances (B, K),
    energy and path_log_index (B,), seconds (the result's total time, a 0-d array); for
    the optimal path also status (B,) strings, iterations (B,), converged (B,), gap (B,),
    the solver's estimate of E - (the minimum's E), and solver (B,) strings, the method that
    ran ("auto" resolved), and start (B,), the start each path came from (see ``starts`` of
    :func:`fastgeo.interpolate`).
    """
    out = {"latents": to_host(result.path), "decoded": to_host(result.decoded), "ri": to_host(result.ri),
           "log_ri": to_host(result.log_ri), "distances": to_host(result.distances), "energy": to_host(result.energy),
           "path_log_index": to_host(result.path_log_index),
           "seconds": np.asarray(float(result.timings.get("total", float("nan"))))}
    if result.method not in ("linear", "slerp", "matched_linear"):
        out["status"] = np.asarray(result.status, dtype=str)
        out["iterations"] = to_host(result.iterations).astype(np.int64)
        out["converged"] = to_host(result.converged).astype(bool)
        out["gap"] = to_host(result.gap).astype(np.float64)
        out["solver"] = np.full(len(out["status"]), result.method)
        if result.start is not None:
            out["start"] = to_host(result.start).astype(np.int64)
    return out


def solver_fields(arrays: dict, b: int) -> dict:
    """Pair ``b``'s ``status``, ``iterations`` and ``solver`` from a method's arrays, those it has
    (none for a baseline; files written before ``solver`` existed lack it)."""
    out = {}
    if "status" in arrays:
        out["status"] = str(arrays["status"][b])
        out["iterations"] = int(arrays["iterations"][b])
    if "solver" in arrays:
        out["solver"] = str(arrays["solver"][b])
    return out


def pair_metrics(arrays_by_method: dict, alpha: float, extras: dict | None = None) -> list:
    """Per pair, {method: {metric: value}} (see the module docstring for the metrics).

    arrays_by_method : {method: result_arrays(...)} for the same B pairs.
    extras : optional {name: function(decoded (B, K+1, ...)) -> (B,) values}, added to every
        method's metrics under ``name``.
    """
    from .report import path_metrics

    per_method = {}
    for method, arr in arrays_by_method.items():
        rows = path_metrics(arr["latents"], arr["decoded"], arr["log_ri"], alpha)
        log_ri = np.asarray(arr["log_ri"], dtype=np.float64)
        inner = log_ri[:, 1:-1] if log_ri.shape[1] > 2 else log_ri
        lowest = inner.min(axis=1)
        for b, row in enumerate(rows):
            row["min_log_ri"] = float(lowest[b])
            row["min_ri"] = float(np.exp(lowest[b]))
            row.update(solver_fields(arr, b))
            if "gap" in arr:  # relative to E (absent from files written before it existed)
                row["relative_gap"] = float(arr["gap"][b] / abs(arr["energy"][b])) if arr["energy"][b] else 0.0
        for name, fn in (extras or {}).items():
            values = np.asarray(fn(arr["decoded"]), dtype=np.float64)
            for b, row in enumerate(rows):
                row[name] = float(values[b])
        per_method[method] = rows
    n = len(next(iter(per_method.values()))) if per_method else 0
    return [{method: rows[b] for method, rows in per_method.items()} for b in range(n)]


def summarize(per_pair: list) -> dict:
    """{method: summary} over pairs: the mean of every numeric metric, and for the midpoints'
    smallest ri also the worst pair's (``worst_min_ri``, ``worst_min_log_ri``); for the
    optimal path the count of each solver status, of each method that ran (``solver``) and the
    largest estimated relative gap."""
    if not per_pair:
        return {}
    out = {}
    for method in per_pair[0]:
        rows = [pair[method] for pair in per_pair]
        summary = {"pairs": len(rows)}
        for key, value in rows[0].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "n_points":
                summary[key] = float(np.mean([r[key] for r in rows]))
        summary["worst_min_log_ri"] = float(min(r["min_log_ri"] for r in rows))
        summary["worst_min_ri"] = float(math.exp(summary["worst_min_log_ri"]))
        if "status" in rows[0]:
            statuses = [r["status"] for r in rows]
            summary["status"] = {s: statuses.count(s) for s in sorted(set(statuses))}
        if "solver" in rows[0]:
            solvers = [r["solver"] for r in rows]
            summary["solver"] = {s: solvers.count(s) for s in sorted(set(solvers))}
        if "relative_gap" in rows[0]:
            summary["largest_relative_gap"] = float(max(r["relative_gap"] for r in rows))
        out[method] = summary
    return out


def solver_line(summary: dict) -> str | None:
    """One line on how the optimal paths ended: how many converged, the other statuses, and
    the largest estimated gap to the minimum relative to E (None without optimal paths)."""
    status = summary.get("status")
    if not status:
        return None
    n = sum(status.values())
    parts = [f"{status.get('converged', 0)}/{n} paths converged"]
    parts += [f"{v} {k}" for k, v in status.items() if k != "converged"]
    solvers = summary.get("solver", {})
    ran = ", ".join(s if len(solvers) == 1 else f"{s} on {c}" for s, c in solvers.items())
    line = f"Solver{f' ({ran})' if ran else ''}: " + ", ".join(parts)
    if "largest_relative_gap" in summary:
        line += f"; largest estimated gap to the minimum {summary['largest_relative_gap']:.2g} of E"
    if status.get("max_iter"):
        line += " (max_iter: stopped at the iteration limit before the convergence test held; --max-iter raises it)"
    return line + "."


def format_ri(log_ri: float) -> str:
    """ri from its log, readable when it underflows: 0.52, 3.1e-05, 1e-278."""
    if not math.isfinite(log_ri):
        return "0" if log_ri < 0 else "nan"
    if log_ri > -700:
        return f"{math.exp(log_ri):.2g}"
    return f"1e{round(log_ri / math.log(10))}"


def table(summary: dict, extra_columns=()) -> str:
    """A markdown table of :func:`summarize`'s output, one row per method.

    Numbers are means over pairs; "min ri (midpoints)" shows the mean and, in parentheses,
    the worst pair's. ``extra_columns``: more (metric, heading, format) columns.
    """
    columns = list(COLUMNS) + list(extra_columns)
    header = ["method"] + [c[1] for c in columns]
    rows = []
    for method, s in summary.items():
        cells = [method]
        for key, _, fmt in columns:
            if key == "min_ri":
                cells.append(f"{s['min_ri']:.2g} ({format_ri(s['worst_min_log_ri'])})")
            elif key not in s:
                cells.append("-")
            else:
                cells.append(fmt.format(s[key]))
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ("-" if i == 0 else ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule] + [line(r) for r in rows])


# -- figures -------------------------------------------------------------------------------------

def is_image_batch(decoded: np.ndarray) -> bool:
    """Whether decoded outputs (B, K+1, ...) are images :func:`fastgeo.report.image_strips` draws."""
    shape = decoded.shape[2:]
    return len(shape) == 2 or (len(shape) == 3 and shape[0] in (1, 3))


def _steps_ri_figure(decoded, log_ri, path, title, focus):
    from .report import distance_and_ri_plot

    shown = [m for m in focus if m in log_ri] or list(log_ri)
    lowest = min(float(np.min(log_ri[m])) for m in shown)
    use_log = lowest < math.log(1e-2)
    fig = distance_and_ri_plot(decoded, log_ri, None, log_scale=use_log, title=title)
    if use_log:
        ax = fig.axes[1]
        bottom = 1.15 * lowest / math.log(10)
        ax.set_ylim(bottom, 0.05 * -bottom)
        off = [f"{m} (down to {format_ri(float(np.min(l)))})" for m, l in log_ri.items()
               if np.min(l) / math.log(10) < bottom]
        if off:
            ax.text(0.02, 0.02, "off scale: " + ", ".join(off), transform=ax.transAxes, fontsize=7,
                    va="bottom", ha="left")
    fig.savefig(path, dpi=120)
    return os.fspath(path)


def paper_order(by_method: dict) -> dict:
    """The dict with "linear" first and "optimal" second (the paper draws linear above optimal)."""
    first = [m for m in ("linear", "optimal") if m in by_method]
    return {m: by_method[m] for m in first + [m for m in by_method if m not in first]}


def pair_figures(folder, stem, arrays_by_method: dict, b: int, *, prior_samples=None, coords=(0, 1),
                 every=5, title=None, focus=("linear", "optimal")) -> list:
    """The paper's figures of pair ``b``, written as ``<folder>/<stem>-{strips,steps-ri,projection}.png``.

    - strips (Figs. 2-4): decoded images at every ``every``-th point, one row per method in
      the dict's order (only when the outputs are images);
    - steps-ri (Fig. 5): consecutive decoded distances and ri along each path; the ri panel's
      scale fits the ``focus`` methods (slerp's ri can drop to 1e-50 on priors not centred at
      0, which would flatten the others into one line), and methods that leave it are named;
    - projection (Fig. 6): the paths in the plane of the endpoints and the origin (eq. 4),
      and over ``prior_samples`` in latent coordinates ``coords`` when those are given;
      skipped (with no error) when the endpoints are parallel and span no such plane.

    Returns the paths written.
    """
    from .report import image_strips, projection_plot

    written = []
    label = f"{title}, pair {b}" if title else f"pair {b}"
    arrays_by_method = paper_order(arrays_by_method)
    decoded = {m: a["decoded"][b] for m, a in arrays_by_method.items()}
    if all(is_image_batch(a["decoded"]) for a in arrays_by_method.values()):
        written.append(image_strips(decoded, every, os.path.join(folder, f"{stem}-strips.png"), title=label))
    log_ri = {m: a["log_ri"][b] for m, a in arrays_by_method.items()}
    written.append(_steps_ri_figure(decoded, log_ri, os.path.join(folder, f"{stem}-steps-ri.png"), label, focus))
    latents = {m: a["latents"][b] for m, a in arrays_by_method.items()}
    try:
        written.append(projection_plot(latents, os.path.join(folder, f"{stem}-projection.png"),
                                       prior_samples=prior_samples, coords=coords, title=label))
    except ValueError as err:
        if "parallel" not in str(err):
            raise
    return written
