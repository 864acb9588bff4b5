"""How fast each solver gets within 1e-3 and 1e-4 of the best energy known, on the demo models.

For each embedded model (the first ``--pairs`` of ``far_pairs(prior, 16, seed=0)``, 52 points,
float64, one thread) it runs, one after the other in one process:

- ``lbfgs-gn`` (L-BFGS, then Gauss-Newton) with its default settings but ``--gn-iter``
  iterations at most;
- today's ``lbfgs`` with ``ftol = 0`` for ``--lbfgs-iter`` iterations;
- a hand-written ``torch.optim.LBFGS`` (strong Wolfe line search, history 10) over eq. (3)
  through fastgeo's differentiable ``log_ri`` and ``path_energy``, all paths as one problem,
  for ``--torch-seconds`` seconds;

and writes, per model and method, the final energies, the time at which every path was within
1e-3 and 1e-4 (relative) of the best energy any run reached for it (null: never), the
solver's statuses and estimated gaps, and the gaps the estimates should be compared with.
Then, on a DCGAN-size generator (64x64x3 outputs, D = 100), the cost split of one
Gauss-Newton direction against one L-BFGS iteration.

Run: ``python bench/solver_optimum.py --out bench/results/solver-optimum.json``.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

import fastgeo
from fastgeo import models
from fastgeo.benchmarks import describe_machine, save_json
from fastgeo.endpoints import far_pairs
from fastgeo.interpolation import DEFAULT_ALPHA

K1 = 52


def time_to(energies, seconds, best, tol):
    """The first time (from a (B, T) energy trace and its (B, T) or (T,) times) at which every
    path was within ``tol`` (relative) of ``best`` (B,); None if never."""
    within = energies <= best[:, None] * (1 + tol)
    seconds = np.broadcast_to(seconds, energies.shape)
    first = np.where(within.any(axis=1), within.argmax(axis=1), -1)
    if (first < 0).any():
        return None
    return float(seconds[np.arange(len(first)), first].max())


def run_fastgeo(generator, z0, z1, prior, method, **kw):
    start = time.perf_counter()
    res = fastgeo.interpolate(generator, z0, z1, prior, n_points=K1, method=method, progress=False, **kw)
    total = time.perf_counter() - start
    setup = total - res.timings["iterations"]["total"]  # endpoints' decode and the results
    trace = res.energy_history.numpy()
    seconds = res.timings["iterations"]["seconds_history"] + setup
    return res, trace, seconds, total


def run_torch_lbfgs(generator, z0, z1, prior, seconds_limit):
    """torch.optim.LBFGS over eq. (3): what a user would write with fastgeo's differentiable
    functions. Energies of every path after each outer step, with their times."""
    k = K1 - 1
    t = torch.arange(1, k, dtype=z0.dtype) / k
    x = ((1 - t)[None, :, None] * z0[:, None] + t[None, :, None] * z1[:, None]).requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=20, history_size=10, line_search_fn="strong_wolfe",
                            tolerance_grad=0.0, tolerance_change=0.0)
    last = {}

    def energies():
        full = torch.cat([z0[:, None], x, z1[:, None]], dim=1)
        decoded = generator(full.reshape(-1, full.shape[2])).reshape(full.shape[0], K1, -1)
        log_ri = fastgeo.log_ri(full, prior)
        return fastgeo.path_energy(decoded, log_ri, DEFAULT_ALPHA)

    def closure():
        opt.zero_grad()
        e = energies()
        last["e"] = e.detach().clone()
        total = e.sum()
        total.backward()
        return total

    trace, times = [], []
    start = time.perf_counter()
    with torch.no_grad():
        trace.append(energies().numpy().copy())
    times.append(time.perf_counter() - start)
    while time.perf_counter() - start < seconds_limit:
        opt.step(closure)
        with torch.no_grad():
            trace.append(energies().numpy().copy())
        times.append(time.perf_counter() - start)
    return np.stack(trace, axis=1), np.array(times)


def warm_up(generator, z0, z1, prior):
    """A short run of each fastgeo method on two pairs (lbfgs-gn into its Gauss-Newton phase),
    so that no timed run pays for loading or compiling this model's kernels (the first timed
    run used to)."""
    from fastgeo._solver.gauss_newton import SWITCH_AFTER

    for method, iterations in (("lbfgs-gn", SWITCH_AFTER + 20), ("lbfgs", 5)):
        fastgeo.interpolate(generator, z0[:2], z1[:2], prior, n_points=K1, method=method, progress=False,
                            max_iter=iterations)


def model_run(name, pairs, args):
    model = models.load(name)
    generator = model.generator.to(torch.float64)
    z0, z1, _ = far_pairs(model.prior, 16, seed=0)
    z0, z1 = torch.from_numpy(z0[:pairs]), torch.from_numpy(z1[:pairs])
    warm_up(generator, z0, z1, model.prior)
    runs = {}
    res, trace, seconds, total = run_fastgeo(generator, z0, z1, model.prior, "lbfgs-gn", max_iter=args.gn_iter)
    runs["lbfgs-gn"] = dict(trace=trace, seconds=seconds, total=total, status=list(res.status),
                            gap=res.gap.numpy(), iterations=res.iterations.tolist(), n_jvp=res.n_jvp,
                            n_forward=res.n_forward, n_vjp=res.n_vjp)
    print(name, "lbfgs-gn", f"{total:.1f}s", np.round(res.energy.numpy(), 5), flush=True)
    res, trace, seconds, total = run_fastgeo(generator, z0, z1, model.prior, "lbfgs", ftol=0,
                                             max_iter=args.lbfgs_iter)
    default = fastgeo.interpolate(generator, z0, z1, model.prior, n_points=K1, method="lbfgs", progress=False)
    runs["lbfgs"] = dict(trace=trace, seconds=seconds, total=total, status=list(res.status),
                         gap=res.gap.numpy(), iterations=res.iterations.tolist(), n_jvp=0,
                         n_forward=res.n_forward, n_vjp=res.n_vjp,
                         default_energy=default.energy.numpy(), default_gap=default.gap.numpy(),
                         default_seconds=default.timings["total"], default_status=list(default.status))
    print(name, "lbfgs", f"{total:.1f}s", np.round(res.energy.numpy(), 5), flush=True)
    trace, seconds = run_torch_lbfgs(generator, z0, z1, model.prior, args.torch_seconds)
    runs["torch.optim.LBFGS"] = dict(trace=trace, seconds=seconds, total=float(seconds[-1]))
    print(name, "torch.optim.LBFGS", f"{seconds[-1]:.1f}s", np.round(trace[:, -1], 5), flush=True)
    best = np.min([r["trace"].min(axis=1) for r in runs.values()], axis=0)
    out = {"pairs": pairs, "best_energy": best.tolist(), "methods": {}}
    for method, r in runs.items():
        final = r["trace"][:, -1]
        row = {"seconds_run": r["total"], "final_energy": final.tolist(),
               "final_relative_above_best": (final / best - 1).tolist(),
               "seconds_to_1e-3": time_to(r["trace"], r["seconds"], best, 1e-3),
               "seconds_to_1e-4": time_to(r["trace"], r["seconds"], best, 1e-4)}
        for key in ("status", "iterations", "n_jvp", "n_forward", "n_vjp", "default_seconds", "default_status"):
            if key in r:
                row[key] = r[key]
        if "gap" in r:
            row["estimated_gap_relative"] = (r["gap"] / final).tolist()
        if "default_energy" in r:
            e = r["default_energy"]
            row["default_500_iterations"] = {
                "energy_relative_above_best": (e / best - 1).tolist(),
                "estimated_gap_relative": (r["default_gap"] / e).tolist()}
        out["methods"][method] = row
    new, old = out["methods"]["lbfgs-gn"], out["methods"]["lbfgs"]
    for tol in ("1e-3", "1e-4"):
        a, b = new[f"seconds_to_{tol}"], old[f"seconds_to_{tol}"]
        out[f"speedup_to_{tol}_lbfgs_over_lbfgs_gn"] = None if a is None or b is None else b / a
    return out


def dcgan_split(n_points):
    """One Gauss-Newton direction and one L-BFGS iteration on a DCGAN-size generator: where
    the time goes (one path, float32)."""
    from fastgeo._path_problem import PathProblem
    from fastgeo.models.dcgan import dcgan
    from fastgeo.priors import StandardNormal

    g = dcgan()
    prior = StandardNormal(100)
    gen = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(1, 100, generator=gen), torch.randn(1, 100, generator=gen)
    problem = PathProblem(g, z0, z1, prior, DEFAULT_ALPHA)
    t = torch.arange(1, n_points - 1, dtype=z0.dtype) / (n_points - 1)
    x = (1 - t)[None, :, None] * z0[:, None] + t[None, :, None] * z1[:, None]
    problem.evaluate(None, x).gradient()  # warm up
    problem.jacobian_products(x[:, :2])
    out = {"n_points": n_points, "free_points": n_points - 2, "D": 100, "outputs": 12288, "dtype": "float32"}
    start = time.perf_counter()
    ev = problem.evaluate(None, x)
    mid = time.perf_counter()
    ev.gradient()
    out["lbfgs_iteration_forward_s"] = mid - start
    out["lbfgs_iteration_vjp_s"] = time.perf_counter() - mid
    start = time.perf_counter()
    jtj, jtj_next = problem.jacobian_products(x)
    out["gn_jacobian_products_s"] = time.perf_counter() - start
    start = time.perf_counter()
    grad_l, hess_l = problem.log_ri_hessian(x)
    out["gn_realism_hessian_s"] = time.perf_counter() - start
    from fastgeo._solver.metric import gauss_newton_blocks, realism_blocks, solve_block_tridiagonal

    d_l = torch.zeros((1, n_points - 2), dtype=torch.float64)
    start = time.perf_counter()
    r = realism_blocks(d_l, d_l + 1.0, grad_l, hess_l)
    diag, off = gauss_newton_blocks(jtj, jtj_next, torch.ones((1, n_points - 1), dtype=torch.float64), r)
    scale = diag.diagonal(dim1=-2, dim2=-1).mean(dim=2)
    solve_block_tridiagonal(diag, off, torch.randn(1, n_points - 2, 100, dtype=torch.float64), 1e-6 * scale)
    out["gn_blocks_and_solve_s"] = time.perf_counter() - start
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="normal,semicircle,kilcher")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--gn-iter", type=int, default=3000)
    parser.add_argument("--lbfgs-iter", type=int, default=8000)
    parser.add_argument("--torch-seconds", type=float, default=60.0)
    parser.add_argument("--dcgan-points", type=int, default=12)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = {"machine": describe_machine(), "threads": 1, "dtype": "float64", "n_points": K1,
              "settings": vars(args), "models": {}}
    for name in args.models.split(","):
        result["models"][name] = model_run(name, args.pairs, args)
        save_json(result, args.out)
    result["dcgan_cost_split"] = dcgan_split(args.dcgan_points)
    save_json(result, args.out)
    print(json.dumps({m: {k: v for k, v in r.items() if k.startswith("speedup")} for m, r in result["models"].items()}))
    print(json.dumps(result["dcgan_cost_split"]))


if __name__ == "__main__":
    main()
