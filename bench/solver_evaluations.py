"""Generator evaluations: fast method ("lbfgs") against the paper's gradient descent ("gd").

For each problem, gradient descent runs until its own convergence test stops it (relative
energy decrease per iteration <= --gd-ftol), giving the energy E_gd it converges to. Then,
per path, from the energy histories and the per-iteration evaluation counts:

- ``fast_to_1pct``: path evaluations (forward passes of its K-1 free points) lbfgs needs to
  reach E <= 1.01 E_gd;
- ``gd_to_converge``: path evaluations gd spends until it stops;
- ``gd_to_1pct``: path evaluations gd needs to reach 1.01 E_gd itself (a stricter comparison);
- the same in VJPs, and the final energies of both.

Evaluation counts are deterministic (no timing): the script need not run on a quiet machine,
but it is slow (gradient descent needs thousands of iterations), so serialise it anyway::

    flock /tmp/fastgeo-bench.lock python bench/solver_evaluations.py [--n-points 22] [--quick]

Writes bench/results/solver-evaluations.json.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numba
import numpy as np
import torch

import fastgeo
from fastgeo.benchmarks import describe_machine
from fastgeo.benchmarks.interpolate import mlp, normal_endpoints
from fastgeo.priors import semicircle


def semicircle_horn_endpoints(b, d, seed, dtype=torch.float64):
    """Endpoints sampled from the first and the third component (the horns) of semicircle(d)."""
    prior = semicircle(d)
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((2, b, d))
    z0 = prior.means[0] + e[0] @ prior._chols[0].T
    z1 = prior.means[2] + e[1] @ prior._chols[2].T
    return torch.from_numpy(z0).to(dtype), torch.from_numpy(z1).to(dtype), prior


def identity(x):
    return x


def problems(quick):
    """name -> (generator, z0, z1, prior)."""
    out = {}
    z0 = torch.tensor([[4.0, 7.0]], dtype=torch.float64)
    z1 = torch.tensor([[4.0, -7.0]], dtype=torch.float64)
    out["semicircle-2d-identity"] = (identity, z0, z1, semicircle(2))
    z0, z1, prior = semicircle_horn_endpoints(2 if quick else 4, 20, seed=2)
    out["semicircle-20d-identity-horns"] = (identity, z0, z1, prior)
    z0, z1, prior = normal_endpoints(2 if quick else 8, 16, seed=3, dtype=torch.float64)
    gen = mlp(16, 64, 100, seed=4, dtype=torch.float64)
    out["mlp-16-64-64-100-standard-normal"] = (gen, z0, z1, prior)
    return out


def first_reach(history, counts, target):
    """Evaluations spent when the energy history first drops to <= target (None if never)."""
    hit = np.nonzero(history <= target)[0]
    return None if hit.size == 0 else int(counts[hit[0]])


def compare(name, gen, z0, z1, prior, n_points, gd_ftol, gd_max_iter):
    start = time.perf_counter()
    gd = fastgeo.interpolate(gen, z0, z1, prior, n_points=n_points, method="gd", ftol=gd_ftol,
                             max_iter=gd_max_iter)
    t_gd = time.perf_counter() - start
    start = time.perf_counter()
    fast = fastgeo.interpolate(gen, z0, z1, prior, n_points=n_points, ftol=1e-9)
    t_fast = time.perf_counter() - start
    plain = fastgeo.interpolate(gen, z0, z1, prior, n_points=n_points, ftol=1e-9, precondition=False,
                                max_iter=5000)
    linear = fastgeo.linear_path(gen, z0, z1, prior, n_points=n_points)
    paths = []
    for i in range(z0.shape[0]):
        e_gd = float(gd.energy[i])
        target = 1.01 * e_gd
        row = {
            "energy_linear": float(linear.energy[i]),
            "energy_gd": e_gd, "gd_status": gd.status[i], "gd_iterations": int(gd.iterations[i]),
            "energy_lbfgs": float(fast.energy[i]), "lbfgs_status": fast.status[i],
            "lbfgs_iterations": int(fast.iterations[i]),
            "energy_lbfgs_unpreconditioned": float(plain.energy[i]),
        }
        for kind in ("forward", "vjp"):
            gd_hist = getattr(gd, f"{kind}_history")[i].numpy()
            fast_hist = getattr(fast, f"{kind}_history")[i].numpy()
            plain_hist = getattr(plain, f"{kind}_history")[i].numpy()
            row[f"gd_to_converge_{kind}"] = int(gd_hist[-1])
            row[f"gd_to_1pct_{kind}"] = first_reach(gd.energy_history[i].numpy(), gd_hist, target)
            row[f"lbfgs_to_1pct_{kind}"] = first_reach(fast.energy_history[i].numpy(), fast_hist, target)
            row[f"lbfgs_unpreconditioned_to_1pct_{kind}"] = first_reach(plain.energy_history[i].numpy(),
                                                                        plain_hist, target)
            row[f"lbfgs_to_converge_{kind}"] = int(fast_hist[-1])
        f = row["lbfgs_to_1pct_forward"]
        row["ratio_gd_converge_over_lbfgs_1pct"] = None if f is None else row["gd_to_converge_forward"] / f
        row["ratio_gd_1pct_over_lbfgs_1pct"] = None if f is None else row["gd_to_1pct_forward"] / f
        paths.append(row)
    ratios = [p["ratio_gd_converge_over_lbfgs_1pct"] for p in paths]
    strict = [p["ratio_gd_1pct_over_lbfgs_1pct"] for p in paths]
    summary = {
        "problem": name, "paths": z0.shape[0], "n_points": n_points, "latent_dim": z0.shape[1],
        "points_per_evaluation": n_points - 2,
        "total_generator_points": {"gd_forward": gd.n_forward, "gd_vjp": gd.n_vjp,
                                   "lbfgs_forward": fast.n_forward, "lbfgs_vjp": fast.n_vjp,
                                   "lbfgs_unpreconditioned_forward": plain.n_forward},
        "seconds": {"gd": t_gd, "lbfgs": t_fast},
        "min_ratio_gd_converge_over_lbfgs_1pct": None if None in ratios else min(ratios),
        "min_ratio_gd_1pct_over_lbfgs_1pct": None if None in strict else min(strict),
        "lbfgs_within_1pct_of_gd": all(p["energy_lbfgs"] <= 1.01 * p["energy_gd"] for p in paths),
        "paths_detail": paths,
    }
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-points", type=int, default=22,
                    help="points per path (the paper uses 52; gd then needs about 6x more iterations)")
    ap.add_argument("--gd-ftol", type=float, default=1e-10)
    ap.add_argument("--gd-max-iter", type=int, default=200000)
    ap.add_argument("--threads", type=int, default=1, help="torch and Numba threads (default 1)")
    ap.add_argument("--problems", nargs="*", default=None)
    ap.add_argument("--quick", action="store_true", help="small sizes, to check that the script runs")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "solver-evaluations.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    # Numba's OpenMP workers spin after each kernel call; with more of them than the solver
    # needs they take cores from torch
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    n_points = 8 if args.quick else args.n_points
    results = []
    for name, (gen, z0, z1, prior) in problems(args.quick).items():
        if args.problems and name not in args.problems:
            continue
        row = compare(name, gen, z0, z1, prior, n_points, args.gd_ftol, args.gd_max_iter)
        results.append(row)
        print(f"{name}: B={row['paths']} K+1={n_points}: gd-to-converge / lbfgs-to-1% = "
              f"{row['min_ratio_gd_converge_over_lbfgs_1pct']}, gd-to-1% / lbfgs-to-1% = "
              f"{row['min_ratio_gd_1pct_over_lbfgs_1pct']} (min over paths); lbfgs within 1%: "
              f"{row['lbfgs_within_1pct_of_gd']}; gd {row['seconds']['gd']:.0f} s", flush=True)
    machine = describe_machine() | {"torch_threads": torch.get_num_threads(),
                                    "numba_threads_used": numba.get_num_threads(), "torch": torch.__version__}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump({"benchmark": "solver-evaluations", "machine": machine, "quick": args.quick,
                   "gd_ftol": args.gd_ftol, "results": results}, fh, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
