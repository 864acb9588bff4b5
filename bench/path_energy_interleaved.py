"""Path energy at B = 32, K = 50, N = 12288 float32: every contender timed in interleaved rounds.

pytest-benchmark times one contender after another, so on a shared machine a burst of load
can fall on one of them only; here each round times all of them back to back and the minimum
over rounds is reported. It also shows what the pytest file does not: the fused pass on one
thread, a perfect single pass (read decoded once, write an array of its size once, float64
arithmetic, same thread split) and the API without the gradient buffer pool (fresh 80 MB each
call, as the operating system hands it out).

    flock /tmp/fastgeo-bench.lock python bench/path_energy_interleaved.py \
        --rounds 60 --json bench/results/path-energy-cpu-interleaved.json
"""
import argparse
import json
import math
import time

import numba
import numpy as np
import torch
from numba import njit, prange

import fastgeo
from fastgeo._buffers import BufferPool
from fastgeo.backends import cpu
from fastgeo.kernels.cpu_path import path_pass, path_pass_serial, segment_log_a_rows

B, K, N = 32, 50, 12288
ALPHA = 0.5


@njit(parallel=True, fastmath={"reassoc", "contract"})
def perfect_pass(g, out):
    """The least a fused pass must do: read g once, write out once, reduce in float64."""
    sums = np.zeros(g.shape[0])
    for b in prange(g.shape[0]):
        acc = 0.0
        for j in range(g.shape[1]):
            for x in range(g.shape[2]):
                v = np.float64(g[b, j, x])
                out[b, j, x] = 2.0 * v
                acc += v * v
        sums[b] = acc
    return sums


def contenders():
    rng = np.random.default_rng(2024)
    G = rng.standard_normal((B, K + 1, N), dtype=np.float32)
    l = rng.uniform(-20.0, 0.0, (B, K + 1)).astype(np.float32)
    log_a = np.empty((B, K))
    segment_log_a_rows(l.astype(np.float64), math.log(ALPHA), log_a)
    grad, d_part, copy_out = np.empty_like(G), np.empty((B, 1, K)), np.empty_like(G)
    Gt = torch.from_numpy(G).requires_grad_()
    lt = torch.from_numpy(l).requires_grad_()
    fresh = BufferPool(min_bytes=1 << 62)  # never pools: every call gets new memory

    def pass_threads():
        with numba.parallel_chunksize(1):
            path_pass(G, log_a, N, True, d_part, grad)

    def api_fresh():
        pooled, cpu.GRADIENTS = cpu.GRADIENTS, fresh
        try:
            fastgeo.energy_and_grads(G, l, ALPHA, backend="cpu")
        finally:
            cpu.GRADIENTS = pooled

    def fastgeo_autograd():
        Gt.grad = lt.grad = None
        fastgeo.path_energy(Gt, lt, ALPHA, backend="cpu").sum().backward()

    def torch_eager():
        Gt.grad = lt.grad = None
        diff = (Gt[:, 1:] - Gt[:, :-1]).flatten(2)
        log_a = math.log(ALPHA) + torch.logaddexp(lt[:, :-1], lt[:, 1:]) - math.log(2.0)
        (log_a * log_a * (diff * diff).sum(2)).sum().backward()

    fast = {
        "copy of decoded (np.copyto, 1 thread)": lambda: np.copyto(copy_out, G),
        "perfect single pass (read + write, all threads)": lambda: perfect_pass(G, grad),
        "fused pass, all threads, preallocated dE/dG": pass_threads,
        "fused pass, 1 thread, preallocated dE/dG": lambda: path_pass_serial(G, log_a, N, True, d_part, grad),
        "energy_and_grads (pooled dE/dG)": lambda: fastgeo.energy_and_grads(G, l, ALPHA, backend="cpu"),
        "energy_and_grads (fresh dE/dG every call)": api_fresh,
        "path_energy(...).sum().backward() (torch)": fastgeo_autograd,
    }
    slow = {
        "torch eager autograd of eq. (3)": torch_eager,
        "numpy reference backend": lambda: fastgeo.energy_and_grads(G, l, ALPHA, backend="reference"),
    }
    return fast, slow, 2 * G.nbytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--slow-every", type=int, default=10, help="time the slow references every n rounds")
    parser.add_argument("--json")
    args = parser.parse_args()
    fast, slow, nbytes = contenders()
    for fn in [*fast.values(), *slow.values()]:
        fn()  # compile, load, warm up
    times = {name: [] for name in [*fast, *slow]}
    for r in range(args.rounds):
        for name, fn in fast.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
        if r % args.slow_every == 0:
            for name, fn in slow.items():
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    copy = min(times["copy of decoded (np.copyto, 1 thread)"])
    eager = min(times["torch eager autograd of eq. (3)"])
    rows = {}
    for name, ts in times.items():
        best = min(ts)
        rows[name] = {"rounds": len(ts), "min_ms": best * 1e3, "median_ms": float(np.median(ts)) * 1e3,
                      "gb_s": nbytes / best / 1e9, "fraction_of_copy_bandwidth": copy / best,
                      "speedup_over_torch_eager": eager / best}
        print(f"{name:50s} {best * 1e3:9.2f} ms (median {np.median(ts) * 1e3:8.2f})  {nbytes / best / 1e9:5.1f} GB/s"
              f"  {copy / best:5.2f} of copy  {eager / best:6.1f}x torch eager")
    if args.json:
        from conftest import describe_machine

        with open(args.json, "w") as fh:
            json.dump({"machine": describe_machine(), "load_average": open("/proc/loadavg").read().split()[:3],
                       "shape": {"B": B, "K": K, "N": N, "dtype": "float32"},
                       "bytes_counted": nbytes, "results": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
