"""The L-BFGS pair memory's two-loop recursion (fastgeo/_lbfgs.py) against the inverse
Hessian built densely from its definition, the BFGS update of H0 = gamma P by each stored
pair, oldest first:

    H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T,   rho = 1 / s^T y.
"""
import numpy as np
import pytest
import torch

from fastgeo._lbfgs import PairMemory, to_host


def dense_direction(pairs, P, g, gamma):
    n = g.size
    H = gamma * P
    for s, y in pairs:  # oldest first
        rho = 1.0 / (s @ y)
        V = np.eye(n) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    p = -H @ g
    return p, g @ p


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
        pairs = history[r]
        if pairs:
            s_new, y_new = pairs[-1]
            gamma = (s_new @ y_new) / (y_new @ Pm[r] @ y_new)
        else:
            gamma = first
        want_p, want_slope = dense_direction(pairs, Pm[r], g[r].double().numpy(), gamma)
        np.testing.assert_allclose(p[r].double().numpy(), want_p, rtol=tol, atol=tol * np.abs(want_p).max())
        np.testing.assert_allclose(slope[r], want_slope, rtol=tol)
        assert slope[r] < 0  # a descent direction: H is positive definite


@pytest.mark.parametrize("k", [2, 3, 17, 51])
def test_path_laplacian_inverse_inverts_the_chain_laplacian(rng, k):
    from fastgeo._lbfgs import path_laplacian_inverse

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
