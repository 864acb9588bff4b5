"""The L-BFGS pair memory's two-loop recursion (fastgeo/_solver/lbfgs.py) against the inverse
Hessian built densely from its definition, the BFGS update of H0 = gamma P by each stored
pair, oldest first:

    H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T,   rho = 1 / s^T y.
"""
import numpy as np
import pytest
import torch

from fastgeo._solver.lbfgs import PairMemory, to_host
from fastgeo.backends.cpu import CPUBackend

CPU = CPUBackend()  # the compiled route's kernels


def dense_direction(pairs, P, g, gamma):
    n = g.size
    H = gamma * P
    for s, y in pairs:  # oldest first
        rho = 1.0 / (s @ y)
        V = np.eye(n) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    p = -H @ g
    return p, g @ p


def expected_step(pairs, P, g, first):
    """(gamma, p, slope) of the dense BFGS inverse with the solver's scale: gamma from the
    newest pair, s^T y / y^T P y, or ``first`` without pairs."""
    if pairs:
        s_new, y_new = pairs[-1]
        gamma = (s_new @ y_new) / (y_new @ P @ y_new)
    else:
        gamma = first
    return (gamma, *dense_direction(pairs, P, g, gamma))


@pytest.mark.parametrize("preconditioned", [True, False])
@pytest.mark.parametrize("m,updates", [(3, 2), (4, 7), (10, 10)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_two_loop_matches_the_dense_bfgs_inverse(rng, m, updates, dtype, preconditioned):
    """-H g and g^T (-H g) for 4 paths of k1 = 3 points in d = 4 dimensions, with H0 =
    gamma (P_b kron I_d) (the solver's path-Laplacian form) or gamma I, against the dense
    BFGS inverse."""
    b, k1, d = 4, 3, 4
    n = k1 * d
    A = [(lambda q: q @ np.diag(rng.uniform(0.5, 3.0, n)) @ q.T)(np.linalg.qr(rng.standard_normal((n, n)))[0])
         for _ in range(b)]
    blocks = np.stack([(lambda r: (r @ r.T + k1 * np.eye(k1)) / k1)(rng.standard_normal((k1, k1)))
                       for _ in range(b)])
    Pm = [np.kron(blk, np.eye(d)) if preconditioned else np.eye(n) for blk in blocks]
    mem = PairMemory(b, m, k1, d, dtype, torch.device("cpu"))
    history = [[] for _ in range(b)]
    rows_all = np.arange(b)
    g = torch.zeros(b, n, dtype=dtype)
    for t in range(updates):
        # path 3 forgets its pairs half-way; path 2 stores nothing in the last round
        rows = rows_all if t < updates - 1 else rows_all[[0, 1, 3]]
        if t == updates // 2:
            mem.forget(np.array([3]))
            history[3] = []
        s = rng.standard_normal((len(rows), n))
        y = np.stack([A[r] @ s[i] for i, r in enumerate(rows)])
        g_new = rng.standard_normal((len(rows), n))
        st, yt, gt = (torch.from_numpy(a).to(dtype) for a in (s, y, g_new))
        index = torch.from_numpy(rows)
        mem.remember(rows, st, yt, to_host(mem.products(index, st, yt, gt)))
        for i, r in enumerate(rows):
            history[r] = (history[r] + [(st[i].double().numpy(), yt[i].double().numpy())])[-m:]
        g[index] = gt
    P = [torch.from_numpy(p).to(dtype) for p in Pm]

    def apply_h0(q, y):
        hq = torch.stack([P[i] @ q[i] for i in range(b)])
        return hq, None if y is None else torch.stack([P[i] @ y[i] for i in range(b)])

    first = 0.7
    p, slope = mem.direction(rows_all, slice(None), g, apply_h0, lambda mask: np.full(mask.sum(), first))
    assert p.dtype == dtype and p.shape == (b, n)
    tol = 1e-10 if dtype == torch.float64 else 2e-4
    for r in range(b):
        _, want_p, want_slope = expected_step(history[r], Pm[r], g[r].double().numpy(), first)
        np.testing.assert_allclose(p[r].double().numpy(), want_p, rtol=tol, atol=tol * np.abs(want_p).max())
        np.testing.assert_allclose(slope[r], want_slope, rtol=tol)
        assert slope[r] < 0  # a descent direction: H is positive definite


@pytest.mark.parametrize("k", [2, 3, 17, 51])
def test_path_laplacian_inverse_inverts_the_chain_laplacian(rng, k):
    from fastgeo._solver.lbfgs import path_laplacian_inverse

    w = np.exp(rng.uniform(-3, 3, (5, k)))
    w[1] *= 1e250  # huge and tiny weights: the resistances are formed in relative units
    w[2] *= 1e-250
    inv = path_laplacian_inverse(w)
    assert inv.shape == (5, k - 1, k - 1)
    for b in range(5):
        lap = np.diag(w[b, :-1] + w[b, 1:]) - np.diag(w[b, 1:-1], 1) - np.diag(w[b, 1:-1], -1)
        np.testing.assert_allclose(lap @ inv[b], np.eye(k - 1), atol=1e-11 * np.linalg.cond(lap))
        np.testing.assert_array_equal(inv[b], inv[b].T)
        assert np.all(np.linalg.eigvalsh(inv[b] / inv[b].max()) > 0)


# -- the CPU route: accepting iterates and forming directions in compiled kernels ---------------

def chain_laplacian(w):
    return np.diag(w[:-1] + w[1:]) - np.diag(w[1:-1], 1) - np.diag(w[1:-1], -1)


@pytest.mark.parametrize("preconditioned", [True, False])
@pytest.mark.parametrize("m,updates", [(3, 2), (4, 7), (10, 10)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_compiled_step_matches_the_dense_bfgs_inverse(rng, m, updates, dtype, preconditioned):
    """PairMemory.accept + PairMemory.directions (kernels/cpu_lbfgs.py) against the dense BFGS
    inverse with H0 = gamma (L_w^{-1} kron I_d) (L_w the chain Laplacian, weights spread over
    1e-250 .. 1e250) or gamma I, for 5 paths of k1 = 3 points in d = 4 dimensions: pairs
    stored only with positive curvature, ring-buffer wrap, a path that forgot its pairs, one
    that skipped an update, new iterates handed over in another order and non-contiguous."""
    b, k1, d = 5, 3, 4
    n = k1 * d
    A = [(lambda q: q @ np.diag(rng.uniform(0.5, 3.0, n)) @ q.T)(np.linalg.qr(rng.standard_normal((n, n)))[0])
         for _ in range(b)]
    w = np.exp(rng.uniform(-2, 2, (b, k1 + 1)))
    w[1] *= 1e250  # the solve works in units of the largest weight: no overflow
    w[2] *= 1e-250
    P = [np.kron(np.linalg.inv(chain_laplacian(w[r])), np.eye(d)) if preconditioned else np.eye(n)
         for r in range(b)]
    mem = PairMemory(b, m, k1, d, dtype, torch.device("cpu"))
    x = torch.from_numpy(rng.standard_normal((b, k1, d))).to(dtype)
    grad = torch.from_numpy(rng.standard_normal((b, k1, d))).to(dtype)
    history = [[] for _ in range(b)]
    for t in range(updates):
        # path 3 forgets its pairs half-way; path 2 sits out the last round; path 4's pair
        # of the second round has negative curvature and must not be stored
        rows = np.arange(b) if t < updates - 1 else np.array([0, 1, 3, 4])
        if t == updates // 2:
            mem.forget(np.array([3]))
            history[3] = []
        s = rng.standard_normal((len(rows), n))
        y = np.stack([(-1.0 if (r == 4 and t == 1) else 1.0) * A[r] @ s[i] for i, r in enumerate(rows)])
        x_new = x[rows] + torch.from_numpy(s).to(dtype).view(-1, k1, d)
        g_new = grad[rows] + torch.from_numpy(y).to(dtype).view(-1, k1, d)
        order = rng.permutation(len(rows))  # the kernel reads row src[r] of the new iterates
        src = np.argsort(order)
        strided_x = torch.zeros((len(rows), k1, 2 * d), dtype=dtype)[:, :, ::2]
        strided_x.copy_(x_new[order])
        s_stored = (x_new - x[rows]).reshape(len(rows), n).double().numpy()
        y_stored = (g_new - grad[rows]).reshape(len(rows), n).double().numpy()
        gmax = mem.accept(CPU, rows, src, x, grad, strided_x, g_new[order])
        np.testing.assert_array_equal(x[rows].numpy(), x_new.numpy())
        np.testing.assert_array_equal(grad[rows].numpy(), g_new.numpy())
        want_gmax = g_new.abs().reshape(len(rows), -1).amax(dim=1).double().numpy()
        np.testing.assert_allclose(gmax, want_gmax, rtol=0)
        for i, r in enumerate(rows):
            if s_stored[i] @ y_stored[i] > 0:
                history[r] = (history[r] + [(s_stored[i], y_stored[i])])[-m:]
    assert mem.n_pairs[4] == min(updates - 1, m)  # its negative-curvature pair was not stored
    first = 0.7
    gamma_in = np.where(mem.n_pairs == 0, first, np.nan)
    out = torch.full((b, k1, d), 5.0, dtype=dtype)
    gamma, slope = mem.directions(CPU, np.arange(b), grad, w, preconditioned, gamma_in, out)
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    for r in range(b):
        g_r = grad[r].double().numpy().ravel()
        want_gamma, want_p, want_slope = expected_step(history[r], P[r], g_r, first)
        np.testing.assert_allclose(gamma[r], want_gamma, rtol=tol)
        got = out[r].double().numpy().ravel()
        np.testing.assert_allclose(got, want_p, rtol=tol, atol=tol * np.abs(want_p).max())
        np.testing.assert_allclose(slope[r], want_slope, rtol=tol)
        assert slope[r] < 0


def test_compiled_direction_reports_a_missing_scale(rng):
    """Where gamma is to come from the pairs and a path has none, the kernel leaves its
    direction alone and says so with NaN (the solver then supplies its first-step scale)."""
    b, m, k1, d = 3, 4, 5, 2
    mem = PairMemory(b, m, k1, d, torch.float64, torch.device("cpu"))
    grad = torch.from_numpy(rng.standard_normal((b, k1, d)))
    w = np.exp(rng.uniform(-1, 1, (b, k1 + 1)))
    out = torch.full((b, k1, d), 5.0, dtype=torch.float64)
    gamma, slope = mem.directions(CPU, np.array([0, 2]), grad, w, True, np.array([np.nan, 0.5]), out)
    assert np.isnan(gamma[0]) and np.isnan(slope[0])
    assert (out[0] == 5.0).all() and (out[1] == 5.0).all()
    want = -0.5 * np.linalg.solve(chain_laplacian(w[2]), grad[2].numpy())  # p = -gamma L_w^{-1} g
    np.testing.assert_allclose(out[2].numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(slope[1], (grad[2].numpy() * want).sum(), rtol=1e-12)


@pytest.mark.parametrize("precondition", [True, False])
def test_the_cpu_and_gpu_routes_of_the_solver_agree(rng, monkeypatch, precondition):
    """The whole solver with the compiled CPU route and with the torch route that GPUs run
    (both here on the CPU, float64) on a curved generator with an active realism term: the
    same iterates, to rounding. Paths converge at different iterations (so later rounds
    work on subsets) and the memory of 4 pairs wraps. The compiled kernels' thread-pool
    versions give the same bits as their serial ones."""
    import fastgeo
    from fastgeo.backends import cpu as cpu_backend
    from fastgeo.priors import StandardNormal

    d, hidden, out = 3, 24, 10
    gen_w = [torch.from_numpy(rng.standard_normal(shape) / np.sqrt(shape[1])) for shape in
             ((hidden, d), (out, hidden))]

    def gen(z):
        return torch.tanh(z @ gen_w[0].T) @ gen_w[1].T

    z0, z1 = (torch.from_numpy(rng.standard_normal((6, d)) * 1.5) for _ in range(2))
    kw = dict(n_points=9, max_iter=40, ftol=1e-7, memory=4, precondition=precondition, progress=False)
    compiled = fastgeo.interpolate(gen, z0, z1, StandardNormal(d), **kw)
    monkeypatch.setattr(cpu_backend, "runs_parallel", lambda size: True)
    threaded = fastgeo.interpolate(gen, z0, z1, StandardNormal(d), **kw)
    monkeypatch.setattr(cpu_backend.CPUBackend, "compiled_lbfgs", False)
    torch_route = fastgeo.interpolate(gen, z0, z1, StandardNormal(d), **kw)
    assert torch.equal(threaded.path, compiled.path) and torch.equal(threaded.energy, compiled.energy)
    assert compiled.iterations.min() > 5
    # a convergence test (relative decrease <= 1e-7) may fall the other way on rounding
    assert (compiled.iterations - torch_route.iterations).abs().max() <= 1
    torch.testing.assert_close(compiled.energy_history[:, :6], torch_route.energy_history[:, :6], rtol=1e-10,
                               atol=0)
    torch.testing.assert_close(compiled.energy_history, torch_route.energy_history, rtol=1e-6, atol=0)
    torch.testing.assert_close(compiled.energy, torch_route.energy, rtol=1e-6, atol=0)
