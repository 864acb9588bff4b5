"""The two costs of docs/distributed.md's cost model that do not depend on the generator:
Dask's cost per task and the store's write bandwidth for batch-sized chunks.

    python bench/dask_costs.py [--tasks 4000] [--folder /tmp/dask-costs]

1. Dask: --tasks no-op tasks submitted at once to a LocalCluster of 2 single-threaded worker
   processes, gathered; tasks per second end to end (submission, scheduling, execution
   bookkeeping, result), best and worst of 3.
2. Zarr: batches of 16 pairs written region by region into one store as interpolate_many
   writes them, for two payloads: the paths alone (latents float32 (16, 52, 20) for 3 methods,
   plus the per-path arrays) and with decoded DCGAN-size outputs (16 x 52 x 3 x 64 x 64 float32
   per method); seconds per batch and MB/s, fsync not forced (the page cache absorbs what
   fits; the figure for a big run is the disk's, measured in ooc-ri-cpu.json).

Writes bench/results/dask-costs-cpu.json.
"""
import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def noop(x):
    return x


def task_rate(n_tasks):
    import distributed

    rates = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cl, \
            distributed.Client(cl) as c:
        c.gather(c.map(noop, range(100), pure=False))  # warm
        for _ in range(3):
            start = time.perf_counter()
            c.gather(c.map(noop, range(n_tasks), pure=False))
            rates.append(n_tasks / (time.perf_counter() - start))
    return {"tasks": n_tasks, "tasks_per_s": rates, "ms_per_task": [1e3 / r for r in rates]}


def store_rate(folder, decoded, n_batches=12):
    import zarr

    bs, k1, d = 16, 52, 20
    path = os.path.join(folder, f"store-{decoded}.zarr")
    shutil.rmtree(path, ignore_errors=True)
    root = zarr.open_group(path, mode="w")
    n = bs * n_batches
    methods = ("linear", "slerp", "optimal")
    for m in methods:
        g = root.create_group(m)
        g.create_array("latents", shape=(n, k1, d), chunks=(bs, k1, d), dtype="float32")
        for name, cols in (("ri", k1), ("log_ri", k1), ("distances", k1 - 1)):
            g.create_array(name, shape=(n, cols), chunks=(bs, cols), dtype="float64")
        for name in ("energy", "path_log_index", "m1", "m2", "m3", "m4", "m5", "m6", "m7"):
            g.create_array(name, shape=(n,), chunks=(bs,), dtype="float64")
        if decoded:
            g.create_array("decoded", shape=(n, k1, 3, 64, 64), chunks=(bs, k1, 3, 64, 64), dtype="float32")
    rng = np.random.default_rng(0)
    payload = {"latents": rng.standard_normal((bs, k1, d)).astype(np.float32),
               "ri": rng.random((bs, k1)), "log_ri": rng.random((bs, k1)), "distances": rng.random((bs, k1 - 1))}
    payload.update({name: rng.random(bs) for name in ("energy", "path_log_index", "m1", "m2", "m3", "m4", "m5",
                                                      "m6", "m7")})
    if decoded:
        payload["decoded"] = rng.random((bs, k1, 3, 64, 64), dtype=np.float32)
    nbytes = len(methods) * sum(v.nbytes for v in payload.values())
    times = []
    for i in range(n_batches):
        start = time.perf_counter()
        for m in methods:
            for name, value in payload.items():
                root[m][name][i * bs:(i + 1) * bs] = value
        times.append(time.perf_counter() - start)
    shutil.rmtree(path, ignore_errors=True)
    return {"decoded": decoded, "bytes_per_batch": nbytes, "seconds_per_batch_median": float(np.median(times)),
            "seconds_per_batch_range": [min(times), max(times)], "MB_per_s_median": nbytes / np.median(times) / 1e6}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4000)
    parser.add_argument("--folder", default="/tmp/dask-costs")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "dask-costs-cpu.json"))
    args = parser.parse_args(argv)
    from fastgeo.benchmarks import describe_machine, save_json

    os.makedirs(args.folder, exist_ok=True)
    result = {"benchmark": "Dask cost per task and Zarr write rate per batch", "machine": describe_machine(),
              "dask": task_rate(args.tasks), "store": [store_rate(args.folder, False), store_rate(args.folder, True)],
              "load_average_after": os.getloadavg()}
    shutil.rmtree(args.folder, ignore_errors=True)
    save_json(result, args.out)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
