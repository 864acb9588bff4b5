"""Solver iterations against their floor: the generator's forward passes and VJPs alone.

Kernel: ``fastgeo.interpolate`` running a fixed number of L-BFGS iterations (ftol = 0) on a
batch of paths. Reference: the same number of generator calls (forward with graph, then one
VJP) on the same batch of free points, with nothing else. The same-run "speed-up" of the
kernel over the reference is then (generator time) / (solver time) = 1 - overhead; the
script bench/solver_overhead.py splits the overhead into its parts. Definitions and checks:
:mod:`fastgeo.benchmarks.interpolate` (the solved paths start at the linear paths' energy and
go down from there; the VJPs match a float64 copy of the generator).

    flock /tmp/fastgeo-bench.lock python -m pytest bench/test_bench_solver.py --benchmark-enable \\
        --benchmark-json bench/results/solver-iterations.json
"""
import numba
import pytest
import torch

from fastgeo.benchmarks import interpolate as bench_interpolate
from fastgeo.models.dcgan import dcgan

N_POINTS, ITERATIONS = 52, 8
CASES = {"mlp-32-512-512-784": (lambda: bench_interpolate.mlp(32, 512, 784), 32, 32),
         "dcgan-ngf32": (lambda: dcgan(100, 32), 100, 4)}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(threads[0])
    numba.set_num_threads(threads[1])


def problem(case):
    make, d, b = CASES[case]
    z0, z1, prior = bench_interpolate.normal_endpoints(b, d, seed=1)
    return make(), z0, z1, prior


def solve(gen, z0, z1, prior):
    return bench_interpolate.solve(gen, z0, z1, prior, N_POINTS, ITERATIONS)


@pytest.mark.parametrize("case", list(CASES))
def test_solver(benchmark, case):
    gen, z0, z1, prior = problem(case)
    solve(gen, z0[:1], z1[:1], prior)  # warm up
    benchmark.group = f"solver-{case}-B{z0.shape[0]}-K{N_POINTS - 1}"
    res = solve(gen, z0, z1, prior)
    benchmark.extra_info.update(role="kernel", items=res.n_forward + res.n_vjp, generator_calls=res.n_calls)
    result = benchmark.pedantic(solve, args=(gen, z0, z1, prior), rounds=3, iterations=1)
    bench_interpolate.check(result, bench_interpolate.reference(gen, z0, z1, prior, N_POINTS))


@pytest.mark.parametrize("case", list(CASES))
def test_generator_alone(benchmark, case):
    gen, z0, z1, prior = problem(case)
    benchmark.group = f"solver-{case}-B{z0.shape[0]}-K{N_POINTS - 1}"
    calls = solve(gen, z0, z1, prior).n_calls
    x = bench_interpolate.linear_free_points(z0, z1, N_POINTS)
    benchmark.extra_info.update(role="reference", generator_calls=calls)
    vjp = benchmark.pedantic(bench_interpolate.generator_alone, args=(gen, x, calls), rounds=3, iterations=1)
    bench_interpolate.check_vjp(vjp, bench_interpolate.vjp_reference(gen, x))
