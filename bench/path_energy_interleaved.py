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
from numba import njit, prange

import fastgeo
from fastgeo._buffers import BufferPool
from fastgeo.backends import cpu
from fastgeo.benchmarks import check_close, check_that, describe_machine
from fastgeo.benchmarks import path_energy as pe
from fastgeo.kernels.cpu_path import path_pass, path_pass_serial, segment_log_a_rows

B, K, N = 32, 50, 12288
ALPHA = pe.ALPHA


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
    """name -> (call, check of the call's result) of the fast contenders and of the slow ones,
    and the bytes a pass moves at least."""
    G, l = pe.noise_inputs(np.random.default_rng(2024), B, K, N)
    truth = pe.reference(G, l, ALPHA)
    log_a = np.empty((B, K))
    segment_log_a_rows(l.astype(np.float64), math.log(ALPHA), log_a)
    grad, d_part, copy_out = np.empty_like(G), np.empty((B, 1, K)), np.empty_like(G)
    leaves = pe.torch_leaves(G, l)
    fresh = BufferPool(min_bytes=1 << 62)  # never pools: every call gets new memory

    def pass_threads():
        with numba.parallel_chunksize(1):
            path_pass(G, log_a, N, True, d_part, grad)
        return None, grad, None

    def pass_serial():
        path_pass_serial(G, log_a, N, True, d_part, grad)
        return None, grad, None

    def api_fresh():
        pooled, cpu.GRADIENTS = cpu.GRADIENTS, fresh
        try:
            return fastgeo.energy_and_grads(G, l, ALPHA, backend="cpu")
        finally:
            cpu.GRADIENTS = pooled

    def copy():
        np.copyto(copy_out, G)
        return copy_out

    def perfect():
        return perfect_pass(G, grad), grad

    def check_perfect(result):
        sums, out = result
        check_that(np.array_equal(out[:2], 2 * G[:2]), "perfect pass: out is not 2 g")
        want = np.square(G[:2], dtype=np.float64).sum(axis=(1, 2))
        check_close("perfect pass: sums of squares", sums, want, rtol=1e-10)

    def check_energy(result):
        pe.check(result, truth)

    def check_copy(out):
        check_that(np.array_equal(out, G), "copy: differs from its input")

    fast = {
        "copy of decoded (np.copyto, 1 thread)": (copy, check_copy),
        "perfect single pass (read + write, all threads)": (perfect, check_perfect),
        "fused pass, all threads, preallocated dE/dG": (pass_threads, check_energy),
        "fused pass, 1 thread, preallocated dE/dG": (pass_serial, check_energy),
        "energy_and_grads (pooled dE/dG)": (lambda: pe.fastgeo_energy_and_grads(G, l, ALPHA, "cpu"),
                                            check_energy),
        "energy_and_grads (fresh dE/dG every call)": (api_fresh, check_energy),
        "path_energy(...) and its gradients (torch autograd)": (lambda: pe.fastgeo_autograd(*leaves, ALPHA),
                                                                 check_energy),
    }
    slow = {
        "torch eager autograd of eq. (3)": (lambda: pe.torch_eager_energy_and_grads(*leaves, ALPHA),
                                            check_energy),
        "numpy reference backend": (lambda: pe.fastgeo_energy_and_grads(G, l, ALPHA, "reference"),
                                    check_energy),
    }
    return fast, slow, 2 * G.nbytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--slow-every", type=int, default=10, help="time the slow references every n rounds")
    parser.add_argument("--json")
    args = parser.parse_args()
    fast, slow, nbytes = contenders()
    for fn, check in [*fast.values(), *slow.values()]:
        check(fn())  # compile, load, warm up; and check the result once
    times = {name: [] for name in [*fast, *slow]}
    for r in range(args.rounds):
        for name, (fn, _) in fast.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
        if r % args.slow_every == 0:
            for name, (fn, _) in slow.items():
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
        with open(args.json, "w") as fh:
            json.dump({"machine": describe_machine(), "load_average": open("/proc/loadavg").read().split()[:3],
                       "shape": {"B": B, "K": K, "N": N, "dtype": "float32"},
                       "bytes_counted": nbytes, "results": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
