"""Where "lbfgs-gn" should switch from L-BFGS to Gauss-Newton: time and minima by switch point.

For each demo model and switch point (the L-BFGS iterations before the Gauss-Newton phase,
``fastgeo._solver.gauss_newton.SWITCH_AFTER``), a fresh process solves ``--pairs`` pairs of
``far_pairs(prior, pairs, seed=--seed)`` (52 points, float32, one thread, max_iter 3000; a
seed other than the demo's 0, so that the choice is not fitted to the demo's pairs) once to
compile and once timed, and prints a JSON line; the lines are then compared per model against
the last switch point given: how many paths each run leaves above the other's minimum by more
than 1e-3 and 1e-4, and the geometric mean of the energies' ratio.

    python bench/solver_switch_point.py --switch 100,150,300 --json bench/results/<name>.json
    python bench/solver_switch_point.py --from-lines runs.jsonl --json ...   (summarise only)
"""
import argparse
import json

import numpy as np

from fastgeo.benchmarks import ONE_THREAD, describe_machine, last_json, run_python, save_json

CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
import numba; numba.set_num_threads(1)
import fastgeo
from fastgeo import models
from fastgeo.endpoints import far_pairs
from fastgeo._solver import gauss_newton
name, switch, max_iter, pairs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
gauss_newton.LBFGSThenGaussNewton.__init__.__defaults__ = (switch,)
m = models.load(name)
z0, z1, _ = far_pairs(m.prior, pairs, seed=seed)
z0, z1 = torch.from_numpy(z0).float(), torch.from_numpy(z1).float()
def solve(n=pairs, it=max_iter):
    return fastgeo.interpolate(m.generator, z0[:n], z1[:n], m.prior, n_points=52, method="lbfgs-gn",
                               progress=False, max_iter=it)
solve(2, 320)
t = time.perf_counter(); r = solve(); sec = time.perf_counter() - t
print(json.dumps({"model": name, "switch": switch, "seconds": sec, "energy": r.energy.double().tolist(),
                  "iterations": r.iterations.tolist(), "status": list(r.status), "n_jvp": int(r.n_jvp),
                  "n_forward": int(r.n_forward)}))
"""


def run(model, switch, max_iter, pairs, seed):
    args = ["-c", CHILD, model, str(switch), str(max_iter), str(pairs), str(seed)]
    env = {**ONE_THREAD, "FASTGEO_BACKGROUND_COMPILE": "0"}
    return last_json(run_python(args, env=env, timeout=3600)[0])


def summarise(lines, reference):
    out = {}
    for model in dict.fromkeys(r["model"] for r in lines):
        runs = {r["switch"]: r for r in lines if r["model"] == model}
        if reference not in runs:
            continue
        ref = np.array(runs[reference]["energy"])
        rows = {}
        for switch, r in sorted(runs.items()):
            e = np.array(r["energy"])
            best = np.minimum(e, ref)
            rows[str(switch)] = {
                "seconds": r["seconds"], "converged": r["status"].count("converged"), "paths": len(e),
                "iterations_min_median_max": [int(np.min(r["iterations"])), int(np.median(r["iterations"])),
                                              int(np.max(r["iterations"]))],
                "paths_above_the_other_by_1e-3": [int((e / best - 1 > 1e-3).sum()), int((ref / best - 1 > 1e-3).sum())],
                "paths_above_the_other_by_1e-4": [int((e / best - 1 > 1e-4).sum()), int((ref / best - 1 > 1e-4).sum())],
                "geometric_mean_energy_ratio_to_reference": float(np.exp(np.mean(np.log(e / ref)))),
                "time_ratio_to_reference": r["seconds"] / runs[reference]["seconds"]}
        out[model] = rows
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="semicircle,normal,kilcher")
    parser.add_argument("--switch", default="100,150,300", help="switch points; the last is the reference")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-iter", type=int, default=3000)
    parser.add_argument("--from-lines", default=None, help="summarise the JSON lines of an earlier run instead")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    switches = [int(s) for s in args.switch.split(",")]
    if args.from_lines:
        with open(args.from_lines) as f:
            lines = [json.loads(line) for line in f if line.startswith("{")]
    else:
        lines = []
        for model in args.models.split(","):
            for switch in switches:
                lines.append(run(model, switch, args.max_iter, args.pairs, args.seed))
                print(model, switch, round(lines[-1]["seconds"], 1), flush=True)
    result = {"machine": describe_machine(), "pairs": args.pairs, "seed": args.seed, "max_iter": args.max_iter,
              "reference_switch": switches[-1], "summary": summarise(lines, switches[-1]), "runs": lines}
    save_json(result, args.json)
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
