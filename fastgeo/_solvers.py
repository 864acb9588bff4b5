"""Per-path minimisers of the path energy: preconditioned L-BFGS and plain gradient descent.

Both run B independent problems in lock-step *rounds*: in every round each active path
proposes one trial point (a new step, or a shorter one after a rejected trial), all trials
are decoded in one generator call, and each path accepts or rejects its own. Only accepted
paths need a gradient, so the backward pass runs once per round and only if some path
accepted. A path leaves the batch when it converges (relative energy decrease <= ftol in
two consecutive iterations, or every gradient entry <= gtol in absolute value), reaches max_iter, fails (NaN from the
generator) or cannot decrease its energy any more.

L-BFGS (``"lbfgs"``) uses the two-loop recursion with a *path-Laplacian* initial inverse
Hessian. Freezing the weights w_i and treating the generator as a local scaling by c
(J^T J ~ c I), the energy sum_i w_i |G(x_{i+1}) - G(x_i)|^2 has the Hessian
2 c (L_w kron I_D), where L_w is the (K-1) x (K-1) tridiagonal weighted Laplacian of the chain
(diag w_{j-1} + w_j, off-diagonal -w_j). It carries the K^2 ill-conditioning of a chain of
points that makes gradient descent slow. Its inverse is formed from a Cholesky factorisation,
kept, and formed anew only when the path's weights have moved (``PathLaplacianInverse``).
The scale comes from the latest curvature pair, gamma = s^T y / y^T L_w^{-1} y (before
the first pair, from the path's average gain c = E / sum_i w_i |x_{i+1} - x_i|^2). The
line search is Armijo backtracking with quadratic interpolation, trying the unit step first.

Gradient descent (``"gd"``) is the paper's method: x <- x - lr grad E with a fixed step per
path. Unless ``lr`` is given, the step is 1/lambda, lambda = 4 c max_j (w_{j-1} + w_j) the
Gershgorin bound on the quadratic model's largest eigenvalue (the standard 1/L step), and
it is halved, and the step retried, whenever the energy would increase.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

ACTIVE, CONVERGED, MAX_ITER, FAILED, NO_DECREASE = range(5)
STATUS_NAMES = {ACTIVE: "active", CONVERGED: "converged", MAX_ITER: "max_iter", FAILED: "nan",
                NO_DECREASE: "no_decrease"}
LOG2 = math.log(2.0)
ARMIJO = 1e-4
MAX_BACKTRACKS = 40


@dataclass
class SolveOutput:
    x: torch.Tensor  # (B, K-1, D) free points of the last accepted iterate
    decoded: torch.Tensor  # (B, K-1, ...) their decoded outputs
    log_ri: torch.Tensor  # (B, K+1) log ri of the whole path
    energy: torch.Tensor  # (B,) float64
    history: torch.Tensor  # (B, T+1) float64, energy after each accepted iteration, forward-filled
    forward_history: torch.Tensor  # (B, T+1) int64, path evaluations spent by then
    vjp_history: torch.Tensor  # (B, T+1) int64, path VJPs spent by then
    iterations: torch.Tensor  # (B,) int64
    status: torch.Tensor  # (B,) int64 status codes
    round_timings: dict  # seconds spent in the iterations (after the first evaluation), by part


def segment_weights(log_ri, log_alpha):
    """w_i = (log alpha + logaddexp(l_i, l_{i+1}) - log 2)^2 for (B, K+1) log ri, float64.

    The same weights as ``fastgeo.path`` (MATH.md 3); used here only to build the
    preconditioner, so a small difference from the energy's own weights costs speed, not
    correctness.
    """
    l = log_ri.to(torch.float64)
    log_a = log_alpha + torch.logaddexp(l[:, :-1], l[:, 1:]) - LOG2
    return log_a * log_a


def weights_and_gain(solver, rows):
    """Segment weights w (n, K) of paths ``rows`` and their average gain c (n,).

    c = E / sum_i w_i |x_{i+1} - x_i|^2 is the scale for which 2 c (L_w kron I) is the
    energy's Hessian when G is a scaled isometry with constant ri.
    """
    s = solver
    w = segment_weights(s.log_ri[rows], s.log_alpha)
    # a zero weight (alpha -> 1 where ri = 1) would make L_w singular; keep it definite
    w = w + 1e-9 * w.amax(dim=1, keepdim=True) + torch.finfo(torch.float64).tiny
    full = torch.cat([s.z0[rows, None], s.x[rows], s.z1[rows, None]], dim=1).to(torch.float64)
    dx2 = (full[:, 1:] - full[:, :-1]).square().sum(dim=2)
    gain = s.energy[rows] / (w * dx2).sum(dim=1)
    return w, torch.where(torch.isfinite(gain) & (gain > 0), gain, torch.ones_like(gain))


def gershgorin(w, gain):
    """An upper bound on the largest eigenvalue of 2 c L_w (row sums of |entries|)."""
    return 4.0 * gain * (w[:, :-1] + w[:, 1:]).amax(dim=1)


class PathLaplacianInverse:
    """L_w^{-1} of every path, kept between iterations.

    L_w is the (K-1) x (K-1) tridiagonal weighted Laplacian of the chain: diagonal
    w_{j-1} + w_j, off-diagonal -w_j. A path's inverse is recomputed (Cholesky, then its
    inverse) only when one of its weights has moved by more than ``REFRESH`` (relative)
    since; applying it is then one batched matrix product. A stale inverse is still a
    symmetric positive definite H0, and the L-BFGS scale gamma absorbs its overall size.
    """

    REFRESH = 0.25

    def __init__(self, b, k1, dtype, device):
        # factorised in float64, applied in the path's dtype (a preconditioner need not be exact)
        self.inverse = torch.zeros((b, k1, k1), dtype=dtype, device=device)
        self.weights = torch.full((b, k1 + 1), float("nan"), dtype=torch.float64, device=device)

    def apply(self, rows, w, rhs, all_rows):
        """L_w^{-1} r for each r in ``rhs`` (tensors (n, K-1, m)), paths ``rows`` with weights w."""
        old = self.weights[rows]
        stale = ~((w - old).abs() <= self.REFRESH * old).all(dim=1)  # NaN (never built) is stale
        if stale.any():
            ws = w[stale]
            lap = torch.diag_embed(ws[:, :-1] + ws[:, 1:])
            if ws.shape[1] > 2:
                off = -ws[:, 1:-1]
                lap = lap + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
            inverse = torch.cholesky_inverse(torch.linalg.cholesky(lap))
            self.inverse[rows[stale]] = inverse.to(self.inverse.dtype)
            self.weights[rows[stale]] = ws
        inverse = self.inverse if all_rows else self.inverse[rows]
        return [torch.bmm(inverse, r.to(inverse.dtype)) for r in rhs]


class Solver:
    """State of B independent paths and the round loop shared by both methods."""

    def __init__(self, problem, z0, z1, x0, method, alpha, max_iter, ftol, gtol=0.0, memory=10, lr=None,
                 precondition=True, progress=False):
        self.problem = problem
        self.z0, self.z1 = z0, z1
        self.method = method
        self.log_alpha = math.log(alpha)
        self.max_iter = max_iter
        self.ftol = ftol
        self.gtol = gtol
        self.memory = memory
        self.lr_fixed = lr
        self.precondition = precondition
        self.progress = progress
        b, k1, d = x0.shape
        self.shape = (b, k1, d)
        dev = x0.device
        self.x = x0.clone()
        self.iterations = torch.zeros(b, dtype=torch.int64, device=dev)
        self.status = torch.zeros(b, dtype=torch.int64, device=dev)
        self.new_direction = torch.ones(b, dtype=torch.bool, device=dev)
        self.step = torch.zeros(b, dtype=torch.float64, device=dev)
        self.slope = torch.zeros(b, dtype=torch.float64, device=dev)  # g^T p along the direction
        self.backtracks = torch.zeros(b, dtype=torch.int64, device=dev)
        self.small_steps = torch.zeros(b, dtype=torch.int64, device=dev)  # consecutive decreases <= ftol
        self.direction = torch.zeros_like(self.x)
        if method == "lbfgs":
            self.S = torch.zeros((b, memory, k1, d), dtype=x0.dtype, device=dev)
            self.Y = torch.zeros_like(self.S)
            self.rho = torch.zeros((b, memory), dtype=torch.float64, device=dev)
            self.n_pairs = torch.zeros(b, dtype=torch.int64, device=dev)
            self.head = torch.zeros(b, dtype=torch.int64, device=dev)
            self.laplacian = PathLaplacianInverse(b, k1, x0.dtype, dev)
        else:
            lr0 = float("nan") if lr is None else float(lr)
            self.lr = torch.full((b,), lr0, dtype=torch.float64, device=dev)

    # -- the round loop ------------------------------------------------------------------------
    def run(self) -> SolveOutput:
        b = self.shape[0]
        dev = self.x.device
        everyone = torch.arange(b, device=dev)
        ev = self.problem.evaluate(everyone, self.x)
        zero = torch.isinf(ev.energy) & ~ev.failed
        if zero.any():
            raise ValueError(f"the initial path of path(s) {zero.nonzero().flatten().tolist()} passes "
                             "through points of zero density (log ri = -inf); start from a path inside "
                             "the support")
        self.energy = ev.energy.clone()
        self.log_ri = ev.log_ri.clone()
        self.grad = ev.gradient()
        # histories grow by doubling: max_iter may be far more than the iterations needed
        columns = min(self.max_iter, 255) + 1
        self.history = torch.full((b, columns), float("nan"), dtype=torch.float64, device=dev)
        self.history[:, 0] = self.energy
        # per path: how many times its K-1 free points went through the generator (forward,
        # VJP) in all, and by each accepted iteration
        self.n_forward = torch.ones(b, dtype=torch.int64, device=dev)
        self.n_vjp = torch.ones(b, dtype=torch.int64, device=dev)
        self.forward_history = torch.zeros((b, columns), dtype=torch.int64, device=dev)
        self.vjp_history = torch.zeros_like(self.forward_history)
        self.forward_history[:, 0] = 1
        self.vjp_history[:, 0] = 1
        # Decoded outputs are not copied every round (that would be a pass over the largest
        # array): each path points at the evaluation of its last accepted iterate
        # (round id, row), and its outputs are copied out once, when the path stops.
        self.decoded = torch.empty_like(ev.decoded)
        self._kept = {0: ev.decoded}
        self._round_id = 0
        self._source_round = torch.zeros(b, dtype=torch.int64, device=dev)
        self._source_row = everyone.clone()
        self.status[ev.failed] = FAILED
        flat = self.grad.reshape(b, -1)
        self.status[(self.status == ACTIVE) & (flat.abs().amax(dim=1) <= self.gtol)] = CONVERGED
        if self.max_iter == 0:
            self.status[self.status == ACTIVE] = MAX_ITER
        self._collect(everyone)
        bar = _progress_bar(self.progress, self.max_iter, self.method)
        p = self.problem
        before = (p.t_forward, p.t_vjp, p.t_ri, p.t_energy, time.perf_counter())
        per_round = []
        try:
            while True:
                active = (self.status == ACTIVE).nonzero().flatten()
                if active.numel() == 0:
                    break
                self._round_id += 1
                mark = (p.t_forward, p.t_vjp, p.t_ri, p.t_energy, time.perf_counter())
                self._round(active)
                self._collect(active)
                now = (p.t_forward, p.t_vjp, p.t_ri, p.t_energy, time.perf_counter())
                per_round.append([b - a for a, b in zip(mark, now)])
                if bar is not None:
                    bar.update(1)
                    mean = float(self.energy[active].mean())
                    bar.set_postfix(active=int(active.numel()), energy=f"{mean:.4g}")
        finally:
            if bar is not None:
                bar.close()
        # the iterations alone, without the set-up before and the results after them
        after = (p.t_forward, p.t_vjp, p.t_ri, p.t_energy, time.perf_counter())
        self.round_timings = dict(zip(("generator_forward", "generator_vjp", "realism_index", "path_energy",
                                       "total"), (y - x for x, y in zip(before, after))))
        self.round_timings["rounds"] = self._round_id
        # (generator forward, VJP, realism index, path energy, total) seconds of each round
        self.round_timings["per_round"] = np.array(per_round, dtype=np.float64).reshape(-1, 5)
        t = int(self.iterations.max()) if b else 0
        history = self.history[:, : t + 1]
        # forward-fill: a path that stopped keeps its final energy
        cols = torch.arange(t + 1, device=dev)
        last = torch.minimum(cols[None, :], self.iterations[:, None])
        history = torch.gather(history, 1, last)
        fwd = torch.gather(self.forward_history[:, : t + 1], 1, last)
        vjp = torch.gather(self.vjp_history[:, : t + 1], 1, last)
        return SolveOutput(self.x, self.decoded, self.log_ri, self.energy, history, fwd, vjp, self.iterations,
                           self.status, self.round_timings)

    def _grow_histories(self):
        columns = min(2 * self.history.shape[1], self.max_iter + 1)
        for name in ("history", "forward_history", "vjp_history"):
            old = getattr(self, name)
            new = old.new_zeros((old.shape[0], columns)) if name != "history" else \
                old.new_full((old.shape[0], columns), float("nan"))
            new[:, : old.shape[1]] = old
            setattr(self, name, new)

    def _collect(self, rows):
        """Copy out the decoded outputs of the ``rows`` that stopped; forget unused rounds."""
        stopped = rows[self.status[rows] != ACTIVE]
        if stopped.numel():
            source = self._source_round[stopped]
            for r in source.unique().tolist():
                mine = stopped[source == r]
                self.decoded[mine] = self._kept[r][self._source_row[mine]]
        live = set(self._source_round[self.status == ACTIVE].unique().tolist())
        for r in [r for r in self._kept if r not in live]:
            del self._kept[r]

    def _round(self, active):
        fresh = active[self.new_direction[active]]
        if fresh.numel():
            self._start_line_search(fresh)
        trial = self.x[active] + self.step[active, None, None].to(self.x.dtype) * self.direction[active]
        ev = self.problem.evaluate(active, trial)
        self.n_forward[active] += 1
        e_old = self.energy[active]
        if self.method == "gd":
            ok = ev.energy <= e_old
        else:
            ok = ev.energy <= e_old + ARMIJO * self.step[active] * self.slope[active]
        ok &= torch.isfinite(ev.energy) & ~ev.failed
        self.status[active[ev.failed]] = FAILED
        if ok.any():
            self.n_vjp[active] += 1  # the backward pass runs over every row of the evaluation
            self._accept(active[ok], trial[ok], ev, ok, e_old[ok])
        rejected = ~ok & ~ev.failed
        if rejected.any():
            self._backtrack(active[rejected], ev.energy[rejected])

    def _accept(self, rows, trial, ev, ok, e_old):
        grad = ev.gradient()[ok]
        e_new = ev.energy[ok]
        if self.method == "lbfgs":
            self._remember(rows, trial - self.x[rows], grad - self.grad[rows])
        self.x[rows] = trial
        self.grad[rows] = grad
        self.energy[rows] = e_new
        self.log_ri[rows] = ev.log_ri[ok]
        self._kept[self._round_id] = ev.decoded
        self._source_round[rows] = self._round_id
        self._source_row[rows] = ok.nonzero().flatten()
        self.iterations[rows] += 1
        if self.history.shape[1] <= min(self._round_id, self.max_iter):  # iterations <= rounds
            self._grow_histories()
        self.history[rows, self.iterations[rows]] = e_new
        self.forward_history[rows, self.iterations[rows]] = self.n_forward[rows]
        self.vjp_history[rows, self.iterations[rows]] = self.n_vjp[rows]
        self.new_direction[rows] = True
        # one small decrease can be a short step of a poor direction: it takes two in a row
        small = (e_old - e_new) <= self.ftol * e_new.abs()
        self.small_steps[rows] = torch.where(small, self.small_steps[rows] + 1, 0)
        done = (self.small_steps[rows] >= 2) | (grad.flatten(1).abs().amax(dim=1) <= self.gtol)
        self.status[rows[done]] = CONVERGED
        out_of_time = ~done & (self.iterations[rows] >= self.max_iter)
        self.status[rows[out_of_time]] = MAX_ITER

    def _backtrack(self, rows, e_trial):
        t = self.step[rows]
        self.backtracks[rows] += 1
        if self.method == "gd":
            self.lr[rows] *= 0.5
            self.step[rows] = self.lr[rows]
        else:
            # minimiser of the quadratic through E(0), E'(0) and E(t), kept in [0.1 t, 0.5 t]
            slope = self.slope[rows]
            curv = e_trial - self.energy[rows] - slope * t
            t_quad = -slope * t * t / (2 * curv)
            t_quad = torch.where(torch.isfinite(t_quad), t_quad, 0.5 * t)
            self.step[rows] = torch.minimum(torch.maximum(t_quad, 0.1 * t), 0.5 * t)
        stuck = rows[self.backtracks[rows] > MAX_BACKTRACKS]
        if stuck.numel() and self.method == "lbfgs":
            # with curvature memory, forget it and retry along the preconditioned gradient;
            # without, there is no decrease left to find
            had_memory = self.n_pairs[stuck] > 0
            self._forget(stuck[had_memory])
            self.new_direction[stuck[had_memory]] = True
            stuck = stuck[~had_memory]
        self.status[stuck] = NO_DECREASE

    # -- directions ----------------------------------------------------------------------------
    def _start_line_search(self, rows):
        self.backtracks[rows] = 0
        g = self.grad[rows]
        if self.method == "gd":
            if self.lr_fixed is None:
                unset = torch.isnan(self.lr[rows])
                if unset.any():
                    self.lr[rows[unset]] = 1.0 / gershgorin(*weights_and_gain(self, rows[unset]))
            self.direction[rows] = -g
            self.step[rows] = self.lr[rows]
        else:
            p = self._lbfgs_direction(rows, g)
            uphill = ~((p * g).flatten(1).sum(dim=1) < 0)
            if uphill.any():  # not a descent direction (stale curvature): restart from the gradient
                self._forget(rows[uphill])
                p[uphill] = self._lbfgs_direction(rows[uphill], g[uphill])
            self.direction[rows] = p
            self.step[rows] = 1.0
        self.slope[rows] = (self.direction[rows] * g).flatten(1).sum(dim=1).to(torch.float64)
        self.new_direction[rows] = False

    def _lbfgs_direction(self, rows, g):
        """-H g by the two-loop recursion; H0 = gamma L_w^{-1} (or gamma I unpreconditioned).

        Pairs live in a ring buffer per path (``head`` is the next slot to write), so a new
        pair is one write; slot rho = 0 marks an unused or forgotten pair, which the
        recursion then skips arithmetically. The pairs are gathered newest first in one
        indexing operation, and the recursion runs on flat (A, (K-1) D) views.
        """
        a_rows, k1, d = g.shape
        m = self.memory
        n_pairs = self.n_pairs[rows]
        depth = int(n_pairs.max()) if a_rows else 0
        head = self.head[rows]
        b = self.S.shape[0]
        S, Y = self.S.view(b, m, k1 * d), self.Y.view(b, m, k1 * d)
        if a_rows == b and bool((head == head[0]).all()):
            # every path active and in step (the common case): views of the slots, no copies
            slots = [(int(head[0]) - 1 - j) % m for j in range(depth)]
            S, Y = [S[:, k] for k in slots], [Y[:, k] for k in slots]
            rho = [self.rho[:, k].to(g.dtype) for k in slots]
        else:
            order = (head[:, None] - 1 - torch.arange(depth, device=g.device)[None, :]) % m  # (A, depth)
            S, Y = S[rows[:, None], order].unbind(1), Y[rows[:, None], order].unbind(1)  # newest first
            rho = self.rho[rows[:, None], order].to(g.dtype).unbind(1)
        q = g.reshape(a_rows, k1 * d).clone()
        coef = []
        for j in range(depth):
            a = rho[j] * torch.linalg.vecdot(S[j], q)
            q.addcmul_(Y[j], a[:, None], value=-1)
            coef.append(a)
        newest = (head - 1) % m
        r = self._initial_inverse_hessian(rows, q.view(a_rows, k1, d), self.S[rows, newest],
                                          self.Y[rows, newest], n_pairs > 0).reshape(a_rows, k1 * d)
        for j in reversed(range(depth)):
            beta = rho[j] * torch.linalg.vecdot(Y[j], r)
            r.addcmul_(S[j], (coef[j] - beta)[:, None])
        return -r.view(a_rows, k1, d)

    def _initial_inverse_hessian(self, rows, q, s, y, have_pair):
        """H0 q with H0 = gamma L_w^{-1} (or gamma I without preconditioning).

        gamma = s^T y / y^T L_w^{-1} y from the newest pair; before the first pair, the
        quadratic model's own scale 1 / (2 c) (or 1 / lambda_max without preconditioning).
        """
        w, gain = weights_and_gain(self, rows)
        if self.precondition:
            hq, hy = self.laplacian.apply(rows, w, (q, y), rows.numel() == self.shape[0])
            first = 0.5 / gain
        else:
            hq, hy = q, y
            first = 1.0 / gershgorin(w, gain)
        sy = torch.linalg.vecdot(s.flatten(1), y.flatten(1)).to(torch.float64)
        yhy = torch.linalg.vecdot(y.flatten(1), hy.flatten(1)).to(torch.float64)
        gamma = torch.where(have_pair, sy / yhy, first)
        gamma = torch.where(torch.isfinite(gamma) & (gamma > 0), gamma, first)
        return gamma.to(q.dtype)[:, None, None] * hq

    def _forget(self, rows):
        self.n_pairs[rows] = 0
        self.rho[rows] = 0

    def _remember(self, rows, s, y):
        """Store the pair (s, y) of each row with positive curvature, over its oldest pair."""
        sy = (s * y).flatten(1).sum(dim=1).to(torch.float64)
        yy = y.to(torch.float64).square().flatten(1).sum(dim=1)
        good = sy > 1e-10 * yy
        if not good.any():
            return
        if not good.all():
            rows, s, y, sy = rows[good], s[good], y[good], sy[good]
        slot = self.head[rows]
        self.S[rows, slot] = s
        self.Y[rows, slot] = y
        self.rho[rows, slot] = 1.0 / sy
        self.head[rows] = (slot + 1) % self.memory
        self.n_pairs[rows] = torch.clamp(self.n_pairs[rows] + 1, max=self.memory)


def _progress_bar(progress, total, method):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a declared dependency; a broken install only loses the bar
        return None
    return tqdm(total=total, desc=f"interpolate ({method})", unit="round", leave=False)
