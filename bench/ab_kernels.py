"""A/B of two source trees' CPU work, interleaved: radial index, KDE, path energy, solver overhead.

Each round runs every tree once, in a fresh process (the tree's own fastgeo and kernels, via
PYTHONPATH), in turn; a process times each kernel ``--repeats`` times and keeps its minimum.
Rounds alternate which tree goes first, so that a burst of load on this shared machine does
not fall on one tree only. Reports per tree the minimum and the range over rounds, and the
ratio of their minima; the limit is a plain copy of the same input (same process). The
solver case is bench/solver_overhead.py's MLP (B = 32, 52 points, 15 iterations, one thread):
its time per iteration and overhead 1 - (generator forward + VJP) / total, of the fastest of
``--repeats`` runs. The child uses only the public API, so that it runs on older trees too.

    git worktree add /tmp/base <commit>
    flock /tmp/fastgeo-bench.lock python bench/ab_kernels.py --tree base=/tmp/base --tree new=. \\
        --rounds 5 --json bench/results/<name>.json
"""
import argparse
import json
import subprocess
import time

from fastgeo.benchmarks import describe_machine, last_json, run_python, save_json

CASES = {  # case: (key of its time, key of its copy limit or None)
    "ri standard normal 200000x512 float32": ("radial", "copy_radial"),
    "ri standard normal 200000x512 float32, read-only": ("radial_ro", "copy_radial"),
    "ri standard normal 400000x64 float32, radii 0.5-1.5x the bulk's": ("radial64", "copy_radial64"),
    "ri standard normal 50000x512 float32, radii 0.5-1.5x the bulk's": ("radial512_off", "copy_radial512_off"),
    "log_ri_and_grad Student-t(5) 100000x64 float64": ("radial_t_grad", None),
    "ri standard normal 520x64 float64 (a solver batch: serial kernel), 100 calls": ("radial_small", None),
    "KDE(5000 samples).cdf at 1000000 float64 queries": ("kde_cdf", "copy_kde"),
    "log_ri semicircle(20) (KDE estimator) 100000x20 float64": ("kde_ri", None),
    "energy_and_grads 32x51x12288 float32": ("path", "copy_path"),
    "interpolate MLP 32-512-512-784 B=32 K+1=52, seconds per iteration": ("solver_round", None),
}
#: fractions reported per tree as their range over rounds (no ratio of minima)
FRACTIONS = {"solver overhead 1 - (forward + VJP) / total, MLP case": "solver_overhead"}

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
dst = np.empty_like(z)
out["copy_radial"] = best(lambda: np.copyto(dst, z))
from fastgeo.priors import StudentT
z64 = (rng.standard_normal((400_000, 64)) * rng.uniform(0.5, 1.5, (400_000, 1))).astype(np.float32)
prior64 = StandardNormal(64)
assert np.allclose(fastgeo.log_ri(z64[:1000], prior64, backend="cpu"),
                   fastgeo.log_ri(z64[:1000].astype(np.float64), prior64, backend="reference"), rtol=1e-5, atol=1e-30)
out["radial64"] = best(lambda: fastgeo.ri(z64, prior64, backend="cpu"))
dst64 = np.empty_like(z64)
out["copy_radial64"] = best(lambda: np.copyto(dst64, z64))
z512 = z[:50_000] * rng.uniform(0.5, 1.5, (50_000, 1)).astype(np.float32)
assert np.allclose(fastgeo.log_ri(z512[:1000], prior, backend="cpu"),
                   fastgeo.log_ri(z512[:1000].astype(np.float64), prior, backend="reference"), rtol=1e-5, atol=1e-30)
out["radial512_off"] = best(lambda: fastgeo.ri(z512, prior, backend="cpu"))
dst512 = np.empty_like(z512)
out["copy_radial512_off"] = best(lambda: np.copyto(dst512, z512))
zt = z64[:100_000].astype(np.float64)
student = StudentT(64, 5.0)
got_t, got_g = fastgeo.log_ri_and_grad(zt[:300], student, backend="cpu")
want_t, want_g = fastgeo.log_ri_and_grad(zt[:300], student, backend="reference")
assert np.allclose(got_t, want_t, rtol=1e-10) and np.allclose(got_g, want_g, rtol=1e-9, atol=1e-300)
out["radial_t_grad"] = best(lambda: fastgeo.log_ri_and_grad(zt, student, backend="cpu"))
zsmall = zt[:520]
def small_calls():
    for _ in range(100):
        fastgeo.ri(zsmall, prior64, backend="cpu")
out["radial_small"] = best(small_calls)
if "--radial-only" in sys.argv:
    print(json.dumps(out))
    sys.exit(0)

E, dG, dl = fastgeo.energy_and_grads(G, l, 0.5, backend="cpu")
Er = fastgeo.energy_and_grads(G[:2].astype(np.float64), l[:2].astype(np.float64), 0.5, backend="reference")[0]
assert np.allclose(E[:2], Er, rtol=1e-5)
out["path"] = best(lambda: fastgeo.energy_and_grads(G, l, 0.5, backend="cpu"))
dstG = np.empty_like(G)
out["copy_path"] = best(lambda: np.copyto(dstG, G))

samples = rng.standard_normal(5000)
kde = fastgeo.KDE(samples)
x = rng.uniform(-6.0, 6.0, 1_000_000)
ref = fastgeo.KDE(samples).cdf(x[:200], backend="reference")
assert np.allclose(kde.cdf(x[:200], backend="cpu"), ref, rtol=1e-9, atol=1e-12)
out["kde_cdf"] = best(lambda: kde.cdf(x, backend="cpu"))
dstx = np.empty_like(x)
out["copy_kde"] = best(lambda: np.copyto(dstx, x))
from fastgeo.priors import semicircle
semi = semicircle(20)
zs = semi.sample(100_000, seed=3) * rng.uniform(0.5, 2.0, (100_000, 1))
assert np.allclose(fastgeo.log_ri(zs[:200], semi, backend="cpu"), fastgeo.log_ri(zs[:200], semi, backend="reference"),
                   rtol=1e-9, atol=1e-12)
out["kde_ri"] = best(lambda: fastgeo.log_ri(zs, semi, backend="cpu"))

import math
import numba
import torch
torch.set_num_threads(1)
numba.set_num_threads(1)
g = torch.Generator().manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(32, 512), torch.nn.Tanh(), torch.nn.Linear(512, 512), torch.nn.Tanh(),
                          torch.nn.Linear(512, 784))
with torch.no_grad():
    for p in net.parameters():
        p.copy_(torch.randn(p.shape, generator=g) * (1.5 / math.sqrt(p.shape[-1])))
net = net.eval()
ze = np.random.default_rng(1).standard_normal((2, 32, 32))
z0, z1 = (torch.as_tensor(ze[i], dtype=torch.float32) for i in (0, 1))
normal = StandardNormal(32)
fastgeo.interpolate(net, z0[:1], z1[:1], normal, n_points=4, max_iter=1)
runs = []
for _ in range(max(2, repeats // 2)):
    res = fastgeo.interpolate(net, z0, z1, normal, n_points=52, max_iter=15, ftol=0.0, progress=False)
    t = res.timings["iterations"]
    runs.append((t["total"] / t["rounds"], 1 - (t["generator_forward"] + t["generator_vjp"]) / t["total"],
                 res.energy.double().sum().item()))
fastest = min(runs)
out["solver_round"], out["solver_overhead"], out["solver_energy"] = fastest
print(json.dumps(out))
"""


def run_tree(path, repeats, only=()):
    return last_json(run_python(["-c", CHILD, str(repeats), *only], tree=path)[0])


def commit_of(path):
    """The commit checked out in ``path`` (with "+changes" if its tracked files differ), or None."""
    try:
        head = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", path, "diff", "--quiet", "HEAD"]).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", default=None)
    parser.add_argument("--radial-only", action="store_true", help="only the radial index's cases")
    args = parser.parse_args()
    only = ("--radial-only",) if args.radial_only else ()
    trees = [t.split("=", 1) for t in args.tree]
    for _, path in trees:  # compile and cache each tree's kernels outside the rounds
        run_tree(path, 1, only)
    rounds = []
    for r in range(args.rounds):
        order = trees if r % 2 == 0 else trees[::-1]
        rounds.append({name: run_tree(path, args.repeats, only) for name, path in order})
        print(f"round {r + 1}: " + json.dumps(rounds[-1]), flush=True)
    summary = {}
    names = [n for n, _ in trees]
    for case, (key, copy_key) in CASES.items():
        per = {}
        if not any(key in rd[name] for rd in rounds for name in names):
            continue  # not run (--radial-only)
        for name in names:
            vals = [rd[name][key] for rd in rounds if rd[name].get(key) is not None]
            if not vals:
                per[name] = {"note": "refused the input"}
                continue
            per[name] = {"min_ms": min(vals) * 1e3, "max_ms": max(vals) * 1e3}
            if copy_key:
                per[name]["copy_min_ms"] = min(rd[name][copy_key] for rd in rounds) * 1e3
        if len(names) == 2 and all(per[n].get("min_ms") for n in names):
            per[f"{names[1]}_over_{names[0]}"] = per[names[1]]["min_ms"] / per[names[0]]["min_ms"]
        summary[case] = per
    for case, key in FRACTIONS.items():
        if args.radial_only:
            break
        summary[case] = {name: {"min": min(rd[name][key] for rd in rounds), "max": max(rd[name][key] for rd in rounds)}
                         for name in names}
    result = {"machine": describe_machine(), "trees": dict(trees), "commits": {name: commit_of(path) for name, path in trees},
              "rounds": rounds, "summary": summary,
              "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(json.dumps(summary, indent=1))
    if args.json:
        save_json(result, args.json)


if __name__ == "__main__":
    main()
