"""Solver iterations against their floor: the generator's forward passes and VJPs alone.

Kernel: ``fastgeo.interpolate`` running a fixed number of L-BFGS iterations (ftol = 0) on a
batch of paths. Reference: the same number of generator calls (forward with graph, then one
VJP) on the same batch of free points, with nothing else. The same-run "speed-up" of the
kernel over the reference is then (generator time) / (solver time) = 1 - overhead; the
script bench/solver_overhead.py splits the overhead into its parts.

    flock /tmp/fastgeo-bench.lock python -m pytest bench/test_bench_solver.py --benchmark-enable \\
        --benchmark-json bench/results/solver-iterations.json
"""
import numba
import pytest
import torch

import fastgeo

from solver_models import dcgan, mlp, normal_endpoints

N_POINTS, ITERATIONS = 52, 8
CASES = {"mlp-32-512-512-784": (lambda: mlp(32, 512, 784), 32, 32),
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
    z0, z1, prior = normal_endpoints(b, d, seed=1)
    return make(), z0, z1, prior


def solve(gen, z0, z1, prior):
    return fastgeo.interpolate(gen, z0, z1, prior, n_points=N_POINTS, max_iter=ITERATIONS, ftol=0.0)


@pytest.mark.parametrize("case", list(CASES))
def test_solver(benchmark, case):
    gen, z0, z1, prior = problem(case)
    solve(gen, z0[:1], z1[:1], prior)  # warm up
    benchmark.group = f"solver-{case}-B{z0.shape[0]}-K{N_POINTS - 1}"
    res = solve(gen, z0, z1, prior)
    benchmark.extra_info.update(role="kernel", items=res.n_forward + res.n_vjp, generator_calls=res.n_calls)
    benchmark.pedantic(solve, args=(gen, z0, z1, prior), rounds=3, iterations=1)


@pytest.mark.parametrize("case", list(CASES))
def test_generator_alone(benchmark, case):
    gen, z0, z1, prior = problem(case)
    benchmark.group = f"solver-{case}-B{z0.shape[0]}-K{N_POINTS - 1}"
    calls = solve(gen, z0, z1, prior).n_calls
    t = torch.linspace(0, 1, N_POINTS, dtype=z0.dtype)[1:-1]
    x = ((1 - t)[None, :, None] * z0[:, None] + t[None, :, None] * z1[:, None]).reshape(-1, z0.shape[1])

    def generator_only():
        for _ in range(calls):
            leaf = x.detach().requires_grad_(True)
            out = gen(leaf)
            torch.autograd.grad(out, leaf, torch.ones_like(out))

    benchmark.extra_info.update(role="reference", generator_calls=calls)
    benchmark.pedantic(generator_only, rounds=3, iterations=1)
