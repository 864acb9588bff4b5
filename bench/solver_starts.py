"""Which minimum the default solver finds, by starting path: the basins of the demo models.

For each demo model a fresh process solves ``--pairs`` pairs of ``far_pairs(prior, pairs,
seed=--seed)`` (52 points, float32, one thread, default settings) from several starting paths
(``init``): the linear path (the default), slerp (fastgeo.baselines.slerp_path) and
``--bumps`` smooth random detours of the linear path, x_i + sin(pi i / K) xi with
xi ~ N(0, (0.5 |z1 - z0|)^2 / D I) per pair (seeded), each solved alone; then
``fastgeo.interpolate(starts=--api-starts)`` (the linear path and detours of its own seed, one
batch, the lowest kept per pair). Per run: the time, how many paths converged, and how many
end above the lowest energy any run reached for them by more than 1e-3 and 1e-4, with the
geometric mean of the energy over that lowest one.

    python bench/solver_starts.py --json bench/results/<name>.json
"""
import argparse
import json

import numpy as np

from fastgeo.benchmarks import ONE_THREAD, describe_machine, last_json, run_python, save_json

CHILD = r"""
import json, math, sys, time
import torch
torch.set_num_threads(1)
import numba; numba.set_num_threads(1)
import fastgeo
from fastgeo import baselines, models
from fastgeo.endpoints import far_pairs
name, pairs, seed, bumps, api_starts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
m = models.load(name)
z0, z1, _ = far_pairs(m.prior, pairs, seed=seed)
z0, z1 = torch.from_numpy(z0).float(), torch.from_numpy(z1).float()
k1 = 52
t = torch.arange(k1, dtype=torch.float32) / (k1 - 1)
linear = (1 - t)[None, :, None] * z0[:, None] + t[None, :, None] * z1[:, None]
starts = {"linear": None, "slerp": baselines.slerp_path(m.generator, z0, z1, m.prior, n_points=k1).path}
gen = torch.Generator().manual_seed(seed)
for k in range(bumps):
    xi = torch.randn(z0.shape, generator=gen) * 0.5 * (z1 - z0).norm(dim=1, keepdim=True) / math.sqrt(z0.shape[1])
    starts[f"bump{k}"] = linear + torch.sin(math.pi * t)[None, :, None] * xi[:, None]
fastgeo.interpolate(m.generator, z0[:2], z1[:2], m.prior, n_points=k1, progress=False, max_iter=170)
out = {}
for label, init in starts.items():
    s = time.perf_counter()
    r = fastgeo.interpolate(m.generator, z0, z1, m.prior, n_points=k1, progress=False, init=init)
    out[label] = {"seconds": time.perf_counter() - s, "energy": r.energy.double().tolist(),
                  "iterations": r.iterations.tolist(), "status": list(r.status), "method": r.method}
if api_starts > 1:
    s = time.perf_counter()
    r = fastgeo.interpolate(m.generator, z0, z1, m.prior, n_points=k1, progress=False, starts=api_starts)
    out[f"starts={api_starts}"] = {"seconds": time.perf_counter() - s, "energy": r.energy.double().tolist(),
                                   "iterations": r.iterations.tolist(), "status": list(r.status),
                                   "method": r.method, "start": r.start.tolist()}
print(json.dumps({"model": name, "starts": out}))
"""


def summarise(starts):
    energies = np.array([s["energy"] for s in starts.values()])
    best = energies.min(axis=0)
    out = {}
    for (label, s), e in zip(starts.items(), energies):
        out[label] = {"seconds": s["seconds"], "converged": s["status"].count("converged"), "paths": len(e),
                      "method": s["method"],
                      "paths_above_the_lowest_by_1e-3": int((e / best - 1 > 1e-3).sum()),
                      "paths_above_the_lowest_by_1e-4": int((e / best - 1 > 1e-4).sum()),
                      "largest_relative_above_the_lowest": float((e / best - 1).max()),
                      "geometric_mean_energy_over_the_lowest": float(np.exp(np.mean(np.log(e / best))))}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="semicircle,normal,kilcher")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bumps", type=int, default=2)
    parser.add_argument("--api-starts", type=int, default=4, help="starts of the fastgeo.interpolate(starts=) run (1: none)")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    runs, summary = {}, {}
    for model in args.models.split(","):
        env = {**ONE_THREAD, "FASTGEO_BACKGROUND_COMPILE": "0"}
        line = last_json(run_python(["-c", CHILD, model, str(args.pairs), str(args.seed), str(args.bumps), str(args.api_starts)], env=env,
                                    timeout=3600)[0])
        runs[model] = line["starts"]
        summary[model] = summarise(line["starts"])
        print(model, json.dumps(summary[model]), flush=True)
    save_json({"machine": describe_machine(), "pairs": args.pairs, "seed": args.seed, "bumps": args.bumps,
               "api_starts": args.api_starts, "summary": summary,
               "runs": runs}, args.json)


if __name__ == "__main__":
    main()
