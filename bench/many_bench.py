"""interpolate_many on a LocalCluster: pairs per second with 2 single-threaded workers against
1, and Dask's own cost per batch, on the semicircle demo model (its embedded generator and
prior, far_pairs endpoints). Writes bench/results/many-cpu.json.

    python bench/many_bench.py [--pairs 256] [--rounds 2] [--batch-size 16]

Each round runs 1 worker then 2 (interleaved, so a busy spell of the shared machine hits
both), each into a fresh store, on a cluster started and warmed (fastgeo imported, kernels
loaded, generator built, one batch run) outside the timing. Per run:

- wall: interpolate_many's own wall time (from the call to its return, store writes included);
- compute: the sum of the batch tasks' seconds (generator, solver, metrics, Zarr writes);
- Dask's cost per batch = (wall x workers - compute) / batches: worker time not spent in a
  batch (scheduling, transfers, the idle tail when batches do not divide evenly), as a
  fraction of the mean batch.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = f"{os.path.join(HERE, 'semicircle_generator.py')}:generator()"


def run(client, workers, pairs, prior, batch_size, folder):
    import fastgeo

    store = os.path.join(folder, f"w{workers}-{time.time_ns()}.zarr")
    start = time.perf_counter()
    res = fastgeo.interpolate_many(SPEC, pairs, prior, store=store, client=client, batch_size=batch_size,
                                   progress=False)
    wall = time.perf_counter() - start
    assert res.ok, res.failed
    compute = sum(res.batch_seconds.values())
    overhead = (wall * workers - compute) / res.n_batches
    shutil.rmtree(store)
    return {"workers": workers, "wall_s": wall, "pairs_per_s": len(pairs) / wall, "compute_s": compute,
            "batches": res.n_batches, "mean_batch_s": compute / res.n_batches,
            "mean_write_s": sum(res.write_seconds.values()) / res.n_batches,
            "dask_cost_per_batch_s": overhead, "dask_cost_fraction": overhead / (compute / res.n_batches)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "many-cpu.json"))
    args = parser.parse_args(argv)

    import distributed

    import fastgeo
    from fastgeo.benchmarks import describe_machine, save_json
    from fastgeo.endpoints import far_pairs

    model = fastgeo.models.load("semicircle")
    z0, z1, rule = far_pairs(model.prior, args.pairs, seed=0)
    pairs = np.stack([z0, z1], axis=1)
    rows = []
    folder = tempfile.mkdtemp(prefix="many-bench-")
    clusters = {}
    try:
        for workers in (1, 2):
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                               dashboard_address=":0")
            client = distributed.Client(cluster)
            # warm: every worker imports fastgeo, loads the kernels and builds the generator
            fastgeo.interpolate_many(SPEC, pairs[:2 * workers], model.prior, store=os.path.join(folder, f"warm{workers}"),
                                     client=client, batch_size=1, progress=False)
            clusters[workers] = (cluster, client)
        for r in range(args.rounds):
            for workers in (1, 2):
                row = run(clusters[workers][1], workers, pairs, model.prior, args.batch_size, folder)
                row["round"] = r
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
        shutil.rmtree(folder, ignore_errors=True)

    def span(workers, key):
        vals = [row[key] for row in rows if row["workers"] == workers]
        return [min(vals), max(vals)]

    speedups = [b["pairs_per_s"] / a["pairs_per_s"] for a, b in zip(rows[::2], rows[1::2])]
    result = {"benchmark": "interpolate_many, 2 workers vs 1", "machine": describe_machine(),
              "model": "semicircle (embedded)", "pairs": args.pairs, "pairs_rule": rule,
              "batch_size": args.batch_size, "methods": ["linear", "slerp", "optimal"], "rows": rows,
              "summary": {"speedup_2_over_1_per_round": speedups,
                          "pairs_per_s_1_worker": span(1, "pairs_per_s"), "pairs_per_s_2_workers": span(2, "pairs_per_s"),
                          "dask_cost_fraction_1_worker": span(1, "dask_cost_fraction"),
                          "dask_cost_fraction_2_workers": span(2, "dask_cost_fraction"),
                          "load_average_after": os.getloadavg()}}
    save_json(result, args.out)
    print(json.dumps(result["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
