"""A/B of two source trees' solver, interleaved, on a demo model (default: L-BFGS, normal).

Each round runs every tree once in a fresh process (the tree's own fastgeo via PYTHONPATH),
alternating which goes first; a process solves the first ``--pairs`` pairs of
``far_pairs(prior, 16, seed=0)`` of ``--model`` (52 points, float32, one thread, default
settings but ``--method`` and ``--max-iter``) once to warm up and ``--repeats`` times timed, keeping the minimum,
and reports the energies (the trees should agree where a change moved no arithmetic).

    git worktree add /tmp/base <commit>
    python bench/ab_solver.py --tree base=/tmp/base --tree new=. [--model kilcher] [--method lbfgs-gn] [--max-iter 3000] \
        --json bench/results/<name>.json
"""
import argparse
import json

from fastgeo.benchmarks import ONE_THREAD, describe_machine, last_json, run_python, save_json

CHILD = r"""
import json, sys, time
import numpy as np, torch
import fastgeo
from fastgeo import models
from fastgeo.endpoints import far_pairs
torch.set_num_threads(1)
pairs, repeats, model, method = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
limit = {} if sys.argv[5] == "default" else {"max_iter": int(sys.argv[5])}
m = models.load(model)
z0, z1, _ = far_pairs(m.prior, 16, seed=0)
z0, z1 = torch.from_numpy(z0[:pairs]).float(), torch.from_numpy(z1[:pairs]).float()
def solve():
    return fastgeo.interpolate(m.generator, z0, z1, m.prior, n_points=52, method=method, progress=False, **limit)
res = solve()
times = []
for _ in range(repeats):
    t = time.perf_counter(); res = solve(); times.append(time.perf_counter() - t)
print(json.dumps({"seconds": min(times), "energy": res.energy.double().tolist(),
                  "iterations": res.iterations.tolist(), "status": list(res.status)}))
"""


def run_tree(path, pairs, repeats, model, method, max_iter):
    args = ["-c", CHILD, str(pairs), str(repeats), model, method, max_iter]
    return last_json(run_python(args, tree=path, env=ONE_THREAD)[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--model", default="normal", help="an embedded demo model")
    parser.add_argument("--method", default="lbfgs", help="fastgeo.interpolate's method")
    parser.add_argument("--max-iter", default="default", help="fastgeo.interpolate's max_iter")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    trees = [t.split("=", 1) for t in args.tree]
    rounds = []
    for r in range(args.rounds):
        order = trees if r % 2 == 0 else trees[::-1]
        row = {name: run_tree(path, args.pairs, args.repeats, args.model, args.method, args.max_iter) for name, path in order}
        rounds.append(row)
        print(r, {name: round(v["seconds"], 3) for name, v in row.items()}, flush=True)
    names = [n for n, _ in trees]
    summary = {n: {"min_s": min(r[n]["seconds"] for r in rounds), "max_s": max(r[n]["seconds"] for r in rounds)}
               for n in names}
    a, b = names[0], names[-1]
    summary["ratio_of_minima"] = summary[b]["min_s"] / summary[a]["min_s"]
    summary["per_round_ratios"] = [r[b]["seconds"] / r[a]["seconds"] for r in rounds]
    summary["same_energies"] = all(r[a]["energy"] == r[b]["energy"] for r in rounds)
    summary["max_relative_energy_difference"] = max(
        abs(x - y) / abs(x) for r in rounds for x, y in zip(r[a]["energy"], r[b]["energy"]))
    out = {"machine": describe_machine(), "trees": dict(trees), "pairs": args.pairs, "model": args.model,
           "method": args.method, "max_iter": args.max_iter, "rounds": rounds, "summary": summary}
    save_json(out, args.json)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
