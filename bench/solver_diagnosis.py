"""Why L-BFGS crawls on the embedded models: the evidence behind docs/solver-diagnosis.md.

On the first ``--pairs`` of ``far_pairs(prior, 16, seed=0)`` (52 points, float64, ftol = 0)
this script measures, and writes to one JSON file:

1. the generator's Jacobian at the 500-iteration iterate: singular values relative to the
   largest, per point;
2. where the latent path moves between 500 and ``--long`` iterations: the share of the
   squared move in directions of small gain (right singular vectors of J with
   sigma < 0.1 and < 0.01 sigma_max), its radial share, and how much the decoded path, its
   smallest ri and its decoded length change;
3. the curvature along that move: the exact Hessian of E (block tridiagonal, formed from J,
   the generator's second derivatives contracted with dE/dG, and the realism index's first
   and second derivatives) against its Gauss-Newton part 2 w J^T J, and the inertia of the
   exact Hessian at the long run's iterate;
4. two second-order cures run for a fixed number of iterations: Gauss-Newton with the
   matrix-weighted path Laplacian (blocks w J^T J) plus the realism term's convex part, and
   damped exact Newton (Levenberg damping raised until the block Cholesky succeeds).

The exact Hessian is checked against central differences of the solver's own gradient
(``hessian_check``: max relative error). Run: ``python bench/solver_diagnosis.py --out
bench/results/solver-diagnosis-normal.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

import fastgeo
from fastgeo import models
from fastgeo._path_problem import PathProblem
from fastgeo.benchmarks import describe_machine, save_json
from fastgeo.endpoints import far_pairs
from fastgeo.interpolation import DEFAULT_ALPHA
from fastgeo.realism import log_ri_and_grad


def pairs(name, n, dtype=torch.float64):
    m = models.load(name)
    z0, z1, _ = far_pairs(m.prior, 16, seed=0)
    return m, m.generator.to(dtype), torch.from_numpy(z0[:n]).to(dtype), torch.from_numpy(z1[:n]).to(dtype)


def linear(z0, z1, k):
    t = torch.arange(1, k, dtype=z0.dtype) / k
    return (1 - t)[None, :, None] * z0[:, None] + t[None, :, None] * z1[:, None]


def jacobians(generator, x):
    """J (N, n_out, D) of the generator at points x (N, D), by forward mode."""
    def g(z):
        return generator(z[None]).reshape(-1)
    return torch.func.vmap(torch.func.jacfwd(g))(x)


def log_ri_hessian(prior, x, h=1e-5):
    """Hessian of log ri at points x (N, D) by central differences of its gradient."""
    n, d = x.shape
    e = torch.eye(d, dtype=x.dtype)
    _, gp = log_ri_and_grad((x[:, None] + h * e).reshape(-1, d), prior)
    _, gm = log_ri_and_grad((x[:, None] - h * e).reshape(-1, d), prior)
    hess = ((gp - gm) / (2 * h)).reshape(n, d, d)
    return 0.5 * (hess + hess.mT)


def hessian_blocks(problem, generator, x, alpha, exact):
    """(energy, gradient, diag (B, K-1, D, D), off (B, K-2, D, D)) of E at free points x.

    exact: the whole Hessian. Otherwise the Gauss-Newton matrix of the decoded term
    (blocks 2 w J^T J) plus the positive part of the realism term
    dE/dl_j grad^2 l_j + d^2E/dl_j^2 grad l_j grad l_j^T of each point.
    """
    b, n_free, d = x.shape
    ev = problem.evaluate(None, x)
    cotangent = ev._d_decoded.reshape(b * n_free, -1).clone()
    grad = ev.gradient()
    flat = x.reshape(-1, d)
    jac = jacobians(generator, flat)
    w, l = ev.weights, ev.log_ri
    dec = torch.cat([problem.g0[:, None], ev.decoded, problem.g1[:, None]], 1).flatten(2)
    delta = dec[:, 1:] - dec[:, :-1]
    dist2 = delta.square().sum(-1)
    log_a = math.log(alpha) + torch.logaddexp(l[:, :-1], l[:, 1:]) - math.log(2)
    s_left = torch.sigmoid(l[:, :-1] - l[:, 1:])
    s_right = 1 - s_left
    _, grad_l = log_ri_and_grad(x, problem.prior)
    hess_l = log_ri_hessian(problem.prior, flat).reshape(b, n_free, d, d)

    def outer(p, q):
        return p[..., :, None] * q[..., None, :]

    def pad(t):  # zero rows for the endpoints
        z = torch.zeros_like(t[:, :1])
        return torch.cat([z, t, z], 1)

    jf, gl, hl = pad(jac.reshape(b, n_free, -1, d)), pad(grad_l), pad(hess_l)
    ja, jb = jf[:, :-1], jf[:, 1:]
    ww = w[..., None, None]
    if not exact:
        dedl = ev._d_log_ri[:, 1:-1]
        d2 = (2 * dist2 * (s_right ** 2 + log_a * s_left * s_right))[:, :-1] + \
             (2 * dist2 * (s_left ** 2 + log_a * s_left * s_right))[:, 1:]
        real = dedl[..., None, None] * hess_l + d2.clamp(min=0)[..., None, None] * outer(grad_l, grad_l)
        val, vec = torch.linalg.eigh(real)
        real = (vec * val.clamp(min=0)[..., None, :]) @ vec.mT
        jtj = 2 * ww * (ja.mT @ ja)
        diag = jtj[:, 1:] + (2 * ww * (jb.mT @ jb))[:, :-1] + real
        off = (-2 * ww * (ja.mT @ jb))[:, 1:-1]
        return ev.energy, grad, diag, off
    dd_a = -2 * (ja.mT @ delta[..., None])[..., 0]  # d d_i / d x_i
    dd_b = 2 * (jb.mT @ delta[..., None])[..., 0]  # d d_i / d x_{i+1}
    wa, wb = 2 * log_a * s_left, 2 * log_a * s_right  # d w_i / d l_i, d w_i / d l_{i+1}
    ua, ub = wa[..., None] * gl[:, :-1], wb[..., None] * gl[:, 1:]
    dd = dist2[..., None, None]
    aa = (2 * ww * (ja.mT @ ja) + outer(ua, dd_a) + outer(dd_a, ua)
          + dd * (2 * (s_left ** 2 + log_a * s_left * s_right))[..., None, None] * outer(gl[:, :-1], gl[:, :-1])
          + (dist2 * wa)[..., None, None] * hl[:, :-1])
    bb = (2 * ww * (jb.mT @ jb) + outer(ub, dd_b) + outer(dd_b, ub)
          + dd * (2 * (s_right ** 2 + log_a * s_left * s_right))[..., None, None] * outer(gl[:, 1:], gl[:, 1:])
          + (dist2 * wb)[..., None, None] * hl[:, 1:])
    ab = (-2 * ww * (ja.mT @ jb) + outer(ua, dd_b) + outer(dd_a, ub)
          + dd * (2 * s_left * s_right * (1 - log_a))[..., None, None] * outer(gl[:, :-1], gl[:, 1:]))

    def contracted(z, r):  # grad^2 (r . G)(z): the generator's curvature along dE/dG
        return torch.func.jacfwd(lambda y: torch.func.vjp(lambda u: generator(u[None]).reshape(-1), y)[1](r)[0])(z)

    with torch.enable_grad():
        residual = torch.func.vmap(contracted)(flat, cotangent).reshape(b, n_free, d, d)
    diag = aa[:, 1:] + bb[:, :-1] + residual
    return ev.energy, grad, 0.5 * (diag + diag.mT), ab[:, 1:-1]


def dense(diag, off):
    """The dense matrices (B, n, n) of block tridiagonal (diag, off)."""
    b, n_free, d, _ = diag.shape
    out = diag.new_zeros((b, n_free * d, n_free * d))
    for j in range(n_free):
        out[:, j * d:(j + 1) * d, j * d:(j + 1) * d] = diag[:, j]
        if j < n_free - 1:
            out[:, j * d:(j + 1) * d, (j + 1) * d:(j + 2) * d] = off[:, j]
            out[:, (j + 1) * d:(j + 2) * d, j * d:(j + 1) * d] = off[:, j].mT
    return out


def damped_solve(diag, off, rhs, damping):
    """(M + damping_b I) p = rhs for each path b, raising damping_b tenfold until the
    dense Cholesky succeeds; returns (p, damping used)."""
    m = dense(diag, off)
    eye = torch.eye(m.shape[-1], dtype=m.dtype)
    out, used = [], damping.clone()
    for b in range(m.shape[0]):
        while True:
            chol, info = torch.linalg.cholesky_ex(m[b] + used[b] * eye)
            if int(info) == 0:
                break
            used[b] *= 10
        out.append(torch.cholesky_solve(rhs[b].reshape(-1, 1), chol).reshape(rhs[b].shape))
    return torch.stack(out), used


def second_order_run(problem, generator, x, alpha, exact, iterations):
    """Damped Gauss-Newton (exact=False) or Newton steps with Armijo backtracking."""
    start = time.perf_counter()
    b = x.shape[0]
    rows = []
    damping_rel = torch.full((b,), 1e-6 if not exact else 1e-8, dtype=x.dtype)
    for it in range(iterations):
        energy, grad, diag, off = hessian_blocks(problem, generator, x, alpha, exact)
        diag, off = diag.detach(), off.detach()
        scale = diag.diagonal(dim1=-2, dim2=-1).mean((1, 2))
        p, used = damped_solve(diag, off, -grad, damping_rel * scale)
        slope = (p * grad).sum((1, 2))
        step = torch.ones(b, dtype=x.dtype)
        with torch.no_grad():
            for _ in range(40):
                trial = problem.evaluate(None, x + step[:, None, None] * p).energy
                ok = trial <= energy + 1e-4 * step * slope
                if ok.all():
                    break
                step = torch.where(ok, step, 0.5 * step)
        x = x + step[:, None, None] * p
        if exact:  # adaptive: one tenth of what was needed, for the next iteration
            damping_rel = (used / scale / 10).clamp(min=1e-12)
        rows.append({"iteration": it + 1, "seconds": time.perf_counter() - start, "energy": trial.tolist(),
                     "damping_rel": (used / scale).tolist()})
    return x, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="normal")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--long", type=int, default=8000)
    parser.add_argument("--second-order", type=int, default=40, help="iterations of GN and of Newton")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, generator, z0, z1 = pairs(args.model, args.pairs)
    prior, alpha, k = model.prior, DEFAULT_ALPHA, 51
    result = {"machine": describe_machine(), "model": args.model, "pairs": args.pairs, "n_points": k + 1,
              "dtype": "float64", "threads": 1}

    runs = {}
    for iters in (500, args.long):
        t = time.perf_counter()
        r = fastgeo.interpolate(generator, z0, z1, prior, n_points=k + 1, max_iter=iters, ftol=0, progress=False)
        runs[iters] = r
        result[f"lbfgs_{iters}"] = {"seconds": time.perf_counter() - t, "energy": r.energy.tolist()}
    early, late = runs[500], runs[args.long]
    x5, x8 = early.path[:, 1:-1], late.path[:, 1:-1]
    b, n_free, d = x5.shape
    jac = jacobians(generator, x5.reshape(-1, d))
    _, sv, vh = torch.linalg.svd(jac, full_matrices=False)
    rel = sv / sv[:, :1]
    median = rel.median(0).values
    result["jacobian"] = {
        "sigma_rel_median_by_rank": {str(i): float(median[i]) for i in (0, 8, 16, 24, 32, 40, 48, 56, d - 1)},
        "dims_below_median": {str(t): float((rel < t).sum(1).double().median()) for t in (1e-1, 1e-2, 1e-3)},
    }
    move = (x8 - x5).reshape(-1, d)
    coords = torch.einsum("nkd,nd->nk", vh, move)
    total = coords.square().sum()
    unit = x5.reshape(-1, d) / x5.reshape(-1, d).norm(dim=1, keepdim=True)
    dec5, dec8 = early.decoded.flatten(2), late.decoded.flatten(2)
    ends = (dec5[:, -1] - dec5[:, 0]).norm(dim=1)
    lin = fastgeo.linear_path(generator, z0, z1, prior, n_points=k + 1)
    result["late_move"] = {
        "iterations": [500, args.long],
        "share_sigma_below": {str(t): float((coords.square() * (rel < t)).sum() / total) for t in (1e-1, 1e-2)},
        "share_radial": float((move * unit).sum(1).square().sum() / move.square().sum()),
        "latent_max_move": (x8 - x5).norm(dim=2).amax(1).tolist(),
        "endpoint_latent_distance": (z1 - z0).norm(dim=1).tolist(),
        "decoded_max_move_rel": ((dec8 - dec5).norm(dim=2).amax(1) / ends).tolist(),
        "decoded_linear_vs_optimal_rel": ((lin.decoded.flatten(2) - dec8).norm(dim=2).amax(1) / ends).tolist(),
        "min_ri": [early.ri.amin(1).tolist(), late.ri.amin(1).tolist()],
        "decoded_length": [early.distances.sum(1).tolist(), late.distances.sum(1).tolist()],
    }

    # the exact Hessian: checked against differences of the solver's gradient on a short path
    problem = PathProblem(generator, z0[:1], z1[:1], prior, alpha)
    xs = linear(z0[:1], z1[:1], 6) + 0.2 * torch.randn(1, 5, d, dtype=z0.dtype)
    _, _, diag, off = hessian_blocks(problem, generator, xs, alpha, exact=True)
    h, n = 1e-6, 5 * d
    eye = torch.eye(n, dtype=xs.dtype)
    with torch.no_grad():
        idx = torch.zeros(n, dtype=torch.int64)
        gp = problem.evaluate(idx, (xs.reshape(1, -1) + h * eye).reshape(n, 5, d)).gradient().reshape(n, -1)
        gm = problem.evaluate(idx, (xs.reshape(1, -1) - h * eye).reshape(n, 5, d)).gradient().reshape(n, -1)
    fd = (gp - gm) / (2 * h)
    result["hessian_check"] = float((dense(diag, off)[0] - 0.5 * (fd + fd.T)).abs().max() / fd.abs().max())

    problem = PathProblem(generator, z0, z1, prior, alpha)
    _, _, ed, eo = hessian_blocks(problem, generator, x8, alpha, exact=True)
    _, _, gd, go = hessian_blocks(problem, generator, x8, alpha, exact=False)
    exact_m, gn_m = dense(ed.detach(), eo.detach()), dense(gd.detach(), go.detach())
    eig = torch.linalg.eigvalsh(exact_m)
    v = (x8 - x5).reshape(b, -1)
    result["curvature_at_long_iterate"] = {
        "exact_negative_eigenvalues": (eig < 0).sum(1).tolist(),
        "exact_min_over_max_eigenvalue": (eig[:, 0] / eig[:, -1]).tolist(),
        "along_late_move_exact": torch.einsum("bi,bij,bj->b", v, exact_m, v).div(v.square().sum(1)).tolist(),
        "along_late_move_gauss_newton": torch.einsum("bi,bij,bj->b", v, gn_m, v).div(v.square().sum(1)).tolist(),
        "exact_max_eigenvalue": eig[:, -1].tolist(),
    }
    del exact_m, gn_m
    x0 = linear(z0, z1, k)
    for name, exact in (("gauss_newton", False), ("newton", True)):
        _, rows = second_order_run(problem, generator, x0, alpha, exact, args.second_order)
        result[name] = rows
        print(name, f"{rows[-1]['seconds']:.1f}s", np.round(rows[-1]["energy"], 5), flush=True)
    save_json(result, args.out)
    print(json.dumps({k: v for k, v in result.items() if k not in ("gauss_newton", "newton", "machine")}, indent=1))


if __name__ == "__main__":
    main()
