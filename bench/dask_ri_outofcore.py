"""Realism index of a Zarr array on disk larger than this machine's memory, on a LocalCluster.

    python bench/dask_ri_outofcore.py --rows 100000000 --dim 64 --folder /tmp/ooc [--keep]

1. writes a (rows, dim) float32 Zarr array of standard normal draws (uncompressed: random
   bits do not compress), chunks of --chunk rows, unless it is there already;
2. measures the disk's read bandwidth: every chunk file read once with plain reads (1 MiB
   buffers), nothing computed, after dropping what it can of the page cache (posix_fadvise
   DONTNEED per file: the array is larger than memory anyway);
3. computes ``fastgeo.log_ri(da.from_zarr(...), StandardNormal(dim))`` into a Zarr array on
   the same cluster (one single-threaded worker process per core), sampling the resident
   memory of every process (the client, the scheduler in it, each worker) every 0.1 s;
4. times the in-memory kernel on one chunk (numpy, same process, best of 5).

Writes bench/results/ooc-ri-cpu.json: throughput of step 3 in rows/s and GB/s against step
2's read bandwidth and step 4's in-memory rate; peak memory per process against the chunk size.
"""
import argparse
import json
import os
import shutil
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def make_array(path, rows, dim, chunk, client):
    import dask.array as da

    if os.path.exists(os.path.join(path, "zarr.json")):
        return 0.0
    start = time.perf_counter()
    z = da.random.default_rng(0).standard_normal((rows, dim), chunks=(chunk, dim), dtype=np.float32)
    z.to_zarr(path, compressors=None, overwrite=True)
    return time.perf_counter() - start


def read_bandwidth(path):
    os.sync()  # dirty pages cannot be dropped from the cache
    files = [os.path.join(root, f) for root, _, names in os.walk(path) for f in names if not f.endswith(".json")]
    total = 0
    buf = bytearray(1 << 20)
    start = time.perf_counter()
    for name in files:
        fd = os.open(name, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except (AttributeError, OSError):
            pass
        try:
            while True:
                n = os.readv(fd, [buf])
                if not n:
                    break
                total += n
        finally:
            os.close(fd)
    seconds = time.perf_counter() - start
    return {"bytes": total, "seconds": seconds, "GB_per_s": total / seconds / 1e9, "files": len(files)}


def drop_cache(path):
    os.sync()
    for root, _, names in os.walk(path):
        for f in names:
            fd = os.open(os.path.join(root, f), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            except (AttributeError, OSError):
                pass
            finally:
                os.close(fd)


class PeakMemory:
    """Resident memory of this process and its children, sampled every ``every`` seconds."""

    def __init__(self, every=0.1):
        import psutil

        self.me = psutil.Process()
        self.every = every
        self.peak = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for p in [self.me] + self.me.children(recursive=True):
                try:
                    rss = p.memory_info().rss
                    name = "client+scheduler" if p.pid == self.me.pid else f"worker pid {p.pid}"
                    self.peak[name] = max(self.peak.get(name, 0), rss)
                except Exception:
                    pass
            time.sleep(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=500_000)
    parser.add_argument("--folder", default="/tmp/ooc")
    parser.add_argument("--keep", action="store_true", help="keep the input array for a rerun")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "ooc-ri-cpu.json"))
    args = parser.parse_args(argv)

    import dask.array as da
    import distributed
    import psutil

    import fastgeo
    from fastgeo.benchmarks import describe_machine, save_json
    from fastgeo.priors import StandardNormal

    prior = StandardNormal(args.dim)
    src = os.path.join(args.folder, "z.zarr")
    dst = os.path.join(args.folder, "log_ri.zarr")
    os.makedirs(args.folder, exist_ok=True)
    nbytes = args.rows * args.dim * 4
    workers = os.cpu_count() or 1
    result = {"benchmark": "log_ri of an out-of-core Zarr array on a LocalCluster", "machine": describe_machine(),
              "rows": args.rows, "dim": args.dim, "dtype": "float32", "array_GB": nbytes / 1e9,
              "memory_GB": psutil.virtual_memory().total / 1e9, "chunk_rows": args.chunk,
              "chunk_MB": args.chunk * args.dim * 4 / 1e6, "workers": workers, "threads_per_worker": 1}
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        result["write_seconds"] = make_array(src, args.rows, args.dim, args.chunk, client)
        print("written", result["write_seconds"], flush=True)
        result["disk_read"] = read_bandwidth(src)
        print("read", result["disk_read"], flush=True)
        drop_cache(src)
        shutil.rmtree(dst, ignore_errors=True)
        # warm the workers (import, kernels) on a small array first
        fastgeo.log_ri(da.from_zarr(src)[: args.chunk], prior).sum().compute()
        with PeakMemory() as mem:
            start = time.perf_counter()
            fastgeo.log_ri(da.from_zarr(src), prior).to_zarr(dst, compressors=None, overwrite=True)
            seconds = time.perf_counter() - start
        result["dask"] = {"seconds": seconds, "rows_per_s": args.rows / seconds, "GB_per_s": nbytes / seconds / 1e9,
                          "fraction_of_disk_read": (nbytes / seconds) / (result["disk_read"]["bytes"] /
                                                                         result["disk_read"]["seconds"]),
                          "peak_rss_MB": {k: v / 1e6 for k, v in sorted(mem.peak.items())}}
        print("dask", result["dask"], flush=True)
    # the in-memory kernel on one chunk, in this process
    block = np.asarray(da.from_zarr(src)[: args.chunk])
    times = []
    for _ in range(5):
        t = time.perf_counter()
        fastgeo.log_ri(block, prior)
        times.append(time.perf_counter() - t)
    best = min(times)
    result["in_memory_one_chunk"] = {"seconds_best_of_5": best, "rows_per_s": args.chunk / best,
                                     "GB_per_s": args.chunk * args.dim * 4 / best / 1e9, "threads": "numba default"}
    result["dask"]["fraction_of_in_memory"] = result["dask"]["rows_per_s"] / result["in_memory_one_chunk"]["rows_per_s"]
    # check: the stored result equals the in-memory call on a chunk (bit for bit)
    got = np.asarray(da.from_zarr(dst)[: args.chunk])
    result["first_chunk_bit_equal"] = bool(np.array_equal(got, np.asarray(fastgeo.log_ri(block, prior))))
    result["load_average_after"] = os.getloadavg()
    shutil.rmtree(dst, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(src, ignore_errors=True)
    save_json(result, args.out)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
