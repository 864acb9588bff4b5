"""A/B of two source trees' ``fastgeo demo``, warm, interleaved.

Each tree first runs the demo once untimed (its Numba cache filled); then each round runs
every tree's demo once in a fresh process, as users run it (default settings), alternating
which goes first, and records the wall time, the load average before it (this machine is
shared) and the solver line the demo prints for each model.

    git worktree add /tmp/base <commit>
    python bench/ab_demo.py --tree base=/tmp/base --tree new=. --rounds 2 --json bench/results/<name>.json
"""
import argparse
import json
import tempfile

from fastgeo.benchmarks import describe_machine, run_python, save_json


def demo(tree, extra):
    with tempfile.TemporaryDirectory() as out:
        stdout, seconds, load = run_python(["-m", "fastgeo", "demo", "--out", out, "--no-progress", *extra], tree=tree)
    solver = [line.strip() for line in stdout.splitlines() if line.strip().startswith("Solver")]
    return {"seconds": seconds, "load_average": load, "solver_lines": solver}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--demo-args", default="", help="extra arguments for fastgeo demo (one string)")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    trees = [t.split("=", 1) for t in args.tree]
    extra = args.demo_args.split()
    for _, path in trees:
        demo(path, extra)  # warm-up: the Numba cache on disk
    rounds = []
    for r in range(args.rounds):
        order = trees if r % 2 == 0 else trees[::-1]
        row = {name: demo(path, extra) for name, path in order}
        rounds.append(row)
        print(r, {name: round(v["seconds"], 1) for name, v in row.items()}, flush=True)
    names = [n for n, _ in trees]
    summary = {n: [min(r[n]["seconds"] for r in rounds), max(r[n]["seconds"] for r in rounds)] for n in names}
    summary["per_round_ratios"] = [r[names[-1]]["seconds"] / r[names[0]]["seconds"] for r in rounds]
    out = {"machine": describe_machine(), "trees": dict(trees), "demo_args": extra, "rounds": rounds,
           "seconds_min_max": summary}
    save_json(out, args.json)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
