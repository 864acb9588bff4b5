"""What a Gauss-Newton refresh and direction of "lbfgs-gn" cost, part by part, on the demo models.

For each embedded model and A paths (the demo's far pairs, 52 points, linear paths), one
thread: the generator's Jacobians (``PathProblem.jacobian_products``: D forward-mode products
a point), the Hessian of log ri (``PathProblem.log_ri_hessian``: central differences of the
gradient, 2 D + 1 evaluations a point), the block-tridiagonal factorisation and one
substitution (``_solver.metric``, the torch route GPUs take) and the compiled held direction
without pairs (kernels/cpu_gauss_newton.py, the CPU's: the same solve), against one evaluation of the energy and its gradient
(``PathProblem.evaluate`` and its ``gradient``: what an L-BFGS iteration costs). Minimum of --repeats
calls each. Checked once: the Jacobian products against torch.autograd.functional.jacobian at
one point, and the solve against a dense float64 solve of one path's system.

    python bench/solver_gn_costs.py --json bench/results/solver-gn-costs-cpu.json
"""
from __future__ import annotations

import argparse
import time

import numba
import numpy as np
import torch

from fastgeo import models
from fastgeo.benchmarks import describe_machine, save_json
from fastgeo.benchmarks.device import Device
from fastgeo.benchmarks.timing import Runner
from fastgeo.endpoints import far_pairs
from fastgeo._path_problem import PathProblem
from fastgeo._solver.metric import factor_block_tridiagonal, substitute
from fastgeo.interpolation import DEFAULT_ALPHA
from fastgeo.kernels.cpu_gauss_newton import held_directions


def check(problem, x, jtj, diag, off, damping, chol, coupling):
    point = x[0, 3].detach()
    jac = torch.autograd.functional.jacobian(lambda v: problem.generator(v[None]).flatten(), point)
    jac = jac.to(torch.float64)
    ref = jac.T @ jac
    assert torch.allclose(jtj[0, 3], ref, rtol=1e-5, atol=1e-6 * ref.abs().max()), "J^T J disagrees"
    m, d = diag.shape[1], diag.shape[2]
    dense = torch.zeros(m * d, m * d, dtype=torch.float64)
    for j in range(m):
        dense[j * d:(j + 1) * d, j * d:(j + 1) * d] = diag[0, j] + damping[0, j] * torch.eye(d, dtype=torch.float64)
        if j < m - 1:
            dense[j * d:(j + 1) * d, (j + 1) * d:(j + 2) * d] = off[0, j]
            dense[(j + 1) * d:(j + 2) * d, j * d:(j + 1) * d] = off[0, j].T
    rhs = torch.randn(1, m, d, dtype=torch.float64)
    got = substitute(chol[:1], coupling[:1], rhs).flatten()
    want = torch.linalg.solve(dense, rhs.flatten())
    assert torch.allclose(got, want, rtol=1e-8, atol=1e-10 * want.abs().max()), "block solve disagrees"


def measure(name, sizes, repeats):
    model = models.load(name)
    z0, z1, _ = far_pairs(model.prior, max(sizes), seed=0)
    t0 = torch.as_tensor(z0, dtype=torch.float32)
    t1 = torch.as_tensor(z1, dtype=torch.float32)
    problem = PathProblem(model.generator, t0, t1, model.prior, DEFAULT_ALPHA)
    ts = torch.linspace(0, 1, 52)[1:-1]
    x_all = t0[:, None] * (1 - ts[None, :, None]) + t1[:, None] * ts[None, :, None]
    runner, cpu = Runner(repeats, progress=False), Device("cpu")
    rows = []
    for a in sizes:
        x = x_all[:a].contiguous()
        idx = torch.arange(a)
        t_jac = runner.time(lambda: problem.jacobian_products(x), cpu)
        t_hess = runner.time(lambda: problem.log_ri_hessian(x), cpu)
        jtj, jtj_next = problem.jacobian_products(x)
        d = x.shape[2]
        diag = 2 * jtj + 1e-3 * torch.eye(d, dtype=torch.float64)
        off = -jtj_next
        damping = 1e-6 * diag.diagonal(dim1=-2, dim2=-1).mean(dim=2)
        t_factor = runner.time(lambda: factor_block_tridiagonal(diag, off, damping), cpu)
        chol, coupling, damping = factor_block_tridiagonal(diag, off, damping)
        rhs = torch.randn(x.shape, dtype=torch.float64)
        t_sub = runner.time(lambda: substitute(chol, coupling, rhs), cpu)
        rows_np = np.arange(a, dtype=np.int64)
        no_pairs = np.zeros((a, 1, *x.shape[1:]))
        out = np.empty(x.shape)

        def compiled():
            held_directions(rows_np, chol.numpy(), coupling.contiguous().numpy(), no_pairs, no_pairs,
                            np.zeros(a, dtype=np.int64), rhs.numpy(), out)
            return out

        def same_solve(got):
            assert np.allclose(got, substitute(chol, coupling, rhs).numpy(), rtol=1e-10,
                               atol=1e-12 * np.abs(got).max()), "the compiled pass disagrees"

        t_compiled = runner.time(compiled, cpu, check=same_solve)
        t_eval = runner.time(lambda: problem.evaluate(idx, x).gradient(), cpu)
        if a == sizes[0]:
            check(problem, x, jtj, diag, off, damping, chol, coupling)
        row = {"model": name, "paths": a, "latent_dim": d, "points": x.shape[1], "jacobian_ms": 1e3 * t_jac,
               "log_ri_hessian_ms": 1e3 * t_hess, "factor_ms": 1e3 * t_factor, "substitute_ms": 1e3 * t_sub,
               "compiled_direction_ms": 1e3 * t_compiled,
               "evaluate_ms": 1e3 * t_eval}
        rows.append(row)
        print(f"{name} A={a}: " + ", ".join(f"{k[:-3]} {v:.1f} ms" for k, v in row.items() if k.endswith("_ms")),
              flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="semicircle,normal,kilcher")
    parser.add_argument("--sizes", default="1,4,16")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = [row for name in args.models.split(",") for row in measure(name, sizes, args.repeats)]
    result = {"benchmark": "solver-gn-costs", "machine": describe_machine(), "how": __doc__.strip(),
              "when": time.strftime("%Y-%m-%d %H:%M:%S"), "threads": 1, "rows": rows}
    if args.json:
        save_json(result, args.json)


if __name__ == "__main__":
    main()
