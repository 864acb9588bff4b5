"""A/B of two source trees' CPU kernels, interleaved: the radial index and the path energy.

Each round runs every tree once, in a fresh process (the tree's own fastgeo and kernels, via
PYTHONPATH), in turn; a process times each kernel ``--repeats`` times and keeps its minimum.
Rounds alternate which tree goes first, so that a burst of load on this shared machine does
not fall on one tree only. Reports per tree the minimum and the range over rounds, and the
ratio of their minima; the limit is a plain copy of the same input (same process).

    git worktree add /tmp/base <commit>
    flock /tmp/fastgeo-bench.lock python bench/ab_kernels.py --tree base=/tmp/base --tree new=. \\
        --rounds 5 --json bench/results/<name>.json
"""
import argparse
import json
import os
import subprocess
import sys
import time

from fastgeo.benchmarks import describe_machine

CASES = {
    "ri standard normal 200000x512 float32": "radial",
    "ri standard normal 200000x512 float32, read-only": "radial_ro",
    "energy_and_grads 32x51x12288 float32": "path",
}

CHILD = r"""
import json, sys, time
import numpy as np
import fastgeo
from fastgeo.priors import StandardNormal

repeats = int(sys.argv[1])
rng = np.random.default_rng(12345)
z = rng.standard_normal((200_000, 512), dtype=np.float32)
z_ro = z.copy(); z_ro.flags.writeable = False
G = rng.standard_normal((32, 51, 12288), dtype=np.float32)
l = rng.uniform(-20.0, 0.0, (32, 51)).astype(np.float32)
prior = StandardNormal(512)
want = fastgeo.log_ri(z[:1000].astype(np.float64), prior, backend="reference")

def best(fn):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return min(times)

out = {}
got = fastgeo.log_ri(z[:1000], prior, backend="cpu")  # the timed kernel, checked once
assert np.allclose(got, want, rtol=1e-5, atol=1e-30)
out["radial"] = best(lambda: fastgeo.ri(z, prior, backend="cpu"))
try:
    out["radial_ro"] = best(lambda: fastgeo.ri(z_ro, prior, backend="cpu"))
except TypeError:
    out["radial_ro"] = None
E, dG, dl = fastgeo.energy_and_grads(G, l, 0.5, backend="cpu")
Er = fastgeo.energy_and_grads(G[:2].astype(np.float64), l[:2].astype(np.float64), 0.5, backend="reference")[0]
assert np.allclose(E[:2], Er, rtol=1e-5)
out["path"] = best(lambda: fastgeo.energy_and_grads(G, l, 0.5, backend="cpu"))
dst = np.empty_like(z)
out["copy_radial"] = best(lambda: np.copyto(dst, z))
dstG = np.empty_like(G)
out["copy_path"] = best(lambda: np.copyto(dstG, G))
print(json.dumps(out))
"""


def run_tree(path, repeats):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(path))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(repeats)], capture_output=True, text=True, env=env,
                          cwd=os.path.abspath(path), timeout=1800)
    if proc.returncode:
        raise RuntimeError(f"{path}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    trees = [t.split("=", 1) for t in args.tree]
    for _, path in trees:  # compile and cache each tree's kernels outside the rounds
        run_tree(path, 1)
    rounds = []
    for r in range(args.rounds):
        order = trees if r % 2 == 0 else trees[::-1]
        rounds.append({name: run_tree(path, args.repeats) for name, path in order})
        print(f"round {r + 1}: " + json.dumps(rounds[-1]), flush=True)
    summary = {}
    for case, key in CASES.items():
        per = {}
        for name, _ in trees:
            vals = [rd[name][key] for rd in rounds if rd[name][key] is not None]
            copies = [rd[name]["copy_path" if key == "path" else "copy_radial"] for rd in rounds]
            per[name] = {"min_ms": min(vals) * 1e3 if vals else None,
                         "max_ms": max(vals) * 1e3 if vals else None,
                         "copy_min_ms": min(copies) * 1e3} if vals else {"note": "refused the input"}
        names = [n for n, _ in trees]
        if len(names) == 2 and all(per[n].get("min_ms") for n in names):
            per[f"{names[1]}_over_{names[0]}"] = per[names[1]]["min_ms"] / per[names[0]]["min_ms"]
        summary[case] = per
    result = {"machine": describe_machine(), "trees": dict(trees), "rounds": rounds, "summary": summary,
              "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(json.dumps(summary, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
