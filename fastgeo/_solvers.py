"""Per-path minimisers of the path energy: preconditioned L-BFGS and plain gradient descent.

Both run B independent problems in lock-step *rounds*: in every round each active path
proposes one trial point (a new step, or a shorter one after a rejected trial), all trials
are decoded in one generator call, and each path accepts or rejects its own. Only accepted
paths need a gradient, so the backward pass runs once per round and only if some path
accepted. A path leaves the batch when it converges (relative energy decrease <= ftol in
two consecutive iterations, or every gradient entry <= gtol in absolute value), reaches
max_iter, fails (NaN from the generator), cannot decrease its energy any more, or stalls at
the edge of the prior's support (see ``Solver._freeze_outside``).

The points, gradients, directions and curvature pairs are tensors on the paths' device; the
per-path numbers (energies, steps, slopes, counters, statuses, L-BFGS coefficients) are
float64 numpy arrays on the host, where a round's bookkeeping costs microseconds instead of
a torch dispatch per tiny operation. On a GPU an L-BFGS iteration fetches them from the
device in three small transfers: the trial energies, the accepted iterate's products with the
pair memory, and the two-loop recursion's products (host-to-device copies are asynchronous).
On the CPU, accepting an iterate (its curvature pair and products) and forming the next
direction are two compiled kernels (kernels/cpu_lbfgs.py) that work through the pair memory
in place, one path at a time, so each path's pairs come from memory once per pass and stay
in cache for the passes that follow (``compiled_lbfgs``).

L-BFGS (``"lbfgs"``) uses the two-loop recursion with a *path-Laplacian* initial inverse
Hessian. Freezing the weights w_i and treating the generator as a local scaling by c
(J^T J ~ c I), the energy sum_i w_i |G(x_{i+1}) - G(x_i)|^2 has the Hessian
2 c (L_w kron I_D), where L_w is the (K-1) x (K-1) tridiagonal weighted Laplacian of the chain
(diag w_{j-1} + w_j, off-diagonal -w_j). It carries the K^2 ill-conditioning of a chain of
points that makes gradient descent slow. The weights it is formed with are kept and taken
anew only when the path's weights have moved (``fastgeo._lbfgs.PathLaplacianInverse``); on a
GPU its inverse is then formed in closed form (the chain's Green's function) and applied as
a dense product, on the CPU it is applied by a tridiagonal solve.
The scale comes from the latest curvature pair, gamma = s^T y / y^T L_w^{-1} y (before
the first pair, from the path's average gain c = E / sum_i w_i |x_{i+1} - x_i|^2). The
line search is Armijo backtracking with quadratic interpolation, trying the unit step first.

Gradient descent (``"gd"``) is the paper's method: x <- x - lr grad E with a fixed step per
path. Unless ``lr`` is given, the step is 1/lambda, lambda = 4 c max_j (w_{j-1} + w_j) the
Gershgorin bound on the quadratic model's largest eigenvalue (the standard 1/L step), and
it is halved, and the step retried, whenever the energy would increase.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ._lbfgs import TINY, PairMemory, PathLaplacianInverse, index_on, to_device, to_host

ACTIVE, CONVERGED, MAX_ITER, FAILED, NO_DECREASE, STALLED = range(6)
STATUS_NAMES = {ACTIVE: "active", CONVERGED: "converged", MAX_ITER: "max_iter", FAILED: "nan",
                NO_DECREASE: "no_decrease", STALLED: "stalled"}
# a path whose steps stay negligible because its line searches keep running into the edge of
# the prior's support (E = inf beyond it) stops as "stalled" after this many in a row
MAX_STALLS = 3
ARMIJO = 1e-4
MAX_BACKTRACKS = 40


@dataclass
class SolveOutput:
    x: torch.Tensor  # (B, K-1, D) free points of the last accepted iterate
    decoded: torch.Tensor  # (B, K+1, ...) the decoded outputs of the whole path (end points too)
    log_ri: torch.Tensor  # (B, K+1) log ri of the whole path
    energy: torch.Tensor  # (B,) float64
    history: torch.Tensor  # (B, T+1) float64, energy after each accepted iteration, forward-filled
    forward_history: torch.Tensor  # (B, T+1) int64, path evaluations spent by then
    vjp_history: torch.Tensor  # (B, T+1) int64, path VJPs spent by then
    iterations: torch.Tensor  # (B,) int64
    status: torch.Tensor  # (B,) int64 status codes
    round_timings: dict  # seconds spent in the iterations (after the first evaluation), by part


def preconditioner_weights(weights):
    """The segment weights w (n, K) of the path energy (numpy), made usable for L_w: a zero
    weight (alpha -> 1 where ri = 1) would make L_w singular, an infinite one (log ri below
    -1e154) would overflow it; keep them definite and finite."""
    w = np.minimum(weights, 1e300)
    return w + 1e-9 * w.max(axis=1, keepdims=True) + TINY


def path_gain(solver, rows, index, w):
    """The average gain c (n,) of paths ``rows`` (numpy) with preconditioner weights w.

    c = E / sum_i w_i |x_{i+1} - x_i|^2 is the scale for which 2 c (L_w kron I) is the
    energy's Hessian when G is a scaled isometry with constant ri. Needed only for a path's
    first step (or after a failed curvature estimate): one device-to-host transfer then.
    """
    s = solver
    full = torch.cat([s.z0[index][:, None], s.x[index], s.z1[index][:, None]], dim=1).to(torch.float64)
    dx2 = to_host((full[:, 1:] - full[:, :-1]).square().sum(dim=2))
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = s.energy[rows] / (w * dx2).sum(axis=1)
    return np.where(np.isfinite(gain) & (gain > 0), gain, 1.0)


# a GPU copies scattered rows in one index_copy_ rather than in more than this many copies
MAX_ROW_RUNS_GPU = 8


def copy_rows(dst, dst_rows, src, src_rows, max_runs=None):
    """dst[dst_rows] = src[src_rows] for sorted numpy row numbers: one slice copy per run of
    rows consecutive in both (on the CPU index_put_ moves rows 4x slower than copy_ does,
    and the usual case, every row in order, is a single copy), or one index_copy_ where
    there are more than ``max_runs`` runs (default: no limit on the CPU, else
    MAX_ROW_RUNS_GPU)."""
    if max_runs is None:
        max_runs = len(dst_rows) if dst.device.type == "cpu" else MAX_ROW_RUNS_GPU
    cut = np.flatnonzero((np.diff(dst_rows) != 1) | (np.diff(src_rows) != 1)) + 1
    starts, stops = np.r_[0, cut], np.r_[cut, len(dst_rows)]
    if len(starts) > max_runs:
        picked = src.index_select(0, index_on(src_rows, src.device))
        dst.index_copy_(0, index_on(dst_rows, dst.device), picked)
        return
    for start, stop in zip(starts.tolist(), stops.tolist()):
        d, s, n = int(dst_rows[start]), int(src_rows[start]), stop - start
        dst[d:d + n].copy_(src[s:s + n])


def compiled_lbfgs(device):
    """Whether L-BFGS on ``device`` accepts iterates and forms directions in compiled kernels
    (kernels/cpu_lbfgs.py: on the CPU, where one pass per path keeps its pairs in cache)
    rather than in batched torch products (on a GPU). Tests run both routes on the CPU."""
    return device.type == "cpu"


def gershgorin(w, gain):
    """An upper bound on the largest eigenvalue of 2 c L_w (row sums of |entries|)."""
    return 4.0 * gain * (w[:, :-1] + w[:, 1:]).max(axis=1)


class Solver:
    """State of B independent paths and the round loop shared by both methods.

    The points, gradients, directions and curvature pairs are torch tensors on the paths'
    device; the per-path numbers (energies, step sizes, counters, statuses, histories) are
    numpy arrays on the host, so that the bookkeeping of a round costs microseconds.
    """

    def __init__(self, problem, z0, z1, x0, method, alpha, max_iter, ftol, gtol=0.0, memory=10, lr=None,
                 precondition=True, progress=False):
        self.problem = problem
        self.z0, self.z1 = z0, z1
        self.method = method
        self.alpha = alpha
        self.max_iter = max_iter
        self.ftol = ftol
        self.gtol = gtol
        self.lr_fixed = lr
        self.precondition = precondition
        self.progress = progress
        b, k1, d = x0.shape
        self.shape = (b, k1, d)
        self.device = x0.device
        # C-contiguous whatever x0's layout: the compiled L-BFGS step writes through (B, n) views
        self.x = x0.clone(memory_format=torch.contiguous_format)
        self.direction = torch.zeros_like(self.x)
        self.iterations = np.zeros(b, dtype=np.int64)
        self.status = np.zeros(b, dtype=np.int64)
        self.new_direction = np.ones(b, dtype=bool)
        self.step = np.zeros(b)
        self.slope = np.zeros(b)  # g^T p along the direction
        self.backtracks = np.zeros(b, dtype=np.int64)
        self.small_steps = np.zeros(b, dtype=np.int64)  # consecutive decreases <= ftol
        self.hit_wall = np.zeros(b, dtype=bool)  # a trial of the current line search had E = inf
        self.stalls = np.zeros(b, dtype=np.int64)  # consecutive negligible steps stopped by the wall
        self.compiled = method == "lbfgs" and compiled_lbfgs(self.device)
        if method == "lbfgs":
            self.pairs = PairMemory(b, memory, k1, d, x0.dtype, self.device)
            self.laplacian = PathLaplacianInverse(b, k1, x0.dtype, self.device, dense=not self.compiled)
        else:
            self.lr = np.full(b, np.nan if lr is None else float(lr))

    def _index(self, rows):
        """Numpy row numbers as an index of the device tensors: a slice when they are all rows
        (rows are sorted and unique), so that reads are views and writes plain copies."""
        return slice(None) if len(rows) == self.shape[0] else index_on(rows, self.device)

    # -- the round loop ------------------------------------------------------------------------
    def run(self) -> SolveOutput:
        b = self.shape[0]
        everyone = np.arange(b)
        ev = self.problem.evaluate(None, self.x)
        energy, failed = to_host(ev.energy), to_host(ev.failed).astype(bool)
        zero = np.isinf(energy) & ~failed
        if zero.any():
            raise ValueError(f"the initial path of path(s) {np.flatnonzero(zero).tolist()} passes "
                             "through points of zero density (log ri = -inf); start from a path inside "
                             "the support")
        self.energy = energy
        self.weights = to_host(ev.weights)
        self.log_ri = ev.log_ri.clone()
        self.grad = ev.gradient()
        # histories grow by doubling: max_iter may be far more than the iterations needed
        columns = min(self.max_iter, 255) + 1
        self.history = np.full((b, columns), np.nan)
        self.history[:, 0] = self.energy
        # per path: how many times its K-1 free points went through the generator (forward,
        # VJP) in all, and by each accepted iteration
        self.n_forward = np.ones(b, dtype=np.int64)
        self.n_vjp = np.ones(b, dtype=np.int64)
        self.forward_history = np.zeros((b, columns), dtype=np.int64)
        self.vjp_history = np.zeros_like(self.forward_history)
        self.forward_history[:, 0] = 1
        self.vjp_history[:, 0] = 1
        # Decoded outputs are not copied every round (that would be a pass over the largest
        # array): each path points at the evaluation of its last accepted iterate (round id,
        # row), or at its row of ``self.decoded`` (round id -1), where its outputs are copied
        # once it stops, or earlier, when most of that evaluation's rows are out of use
        # (which bounds the evaluations held to a few).
        # ... the result's buffer: the whole path's outputs, so that no copy joins the ends later
        self.decoded_path = torch.empty((b, ev.decoded.shape[1] + 2, *ev.decoded.shape[2:]),
                                        dtype=ev.decoded.dtype, device=self.device)
        self.decoded_path[:, 0] = self.problem.g0
        self.decoded_path[:, -1] = self.problem.g1
        self.decoded = self.decoded_path[:, 1:-1]
        self._kept = {0: ev.decoded}
        self._round_id = 0
        self._source_round = np.zeros(b, dtype=np.int64)
        self._source_row = everyone.copy()
        self.status[failed] = FAILED
        gmax = to_host(self.grad.reshape(b, -1).abs().amax(dim=1)) if b else np.zeros(0)
        self.status[(self.status == ACTIVE) & (gmax <= self.gtol)] = CONVERGED
        if self.max_iter == 0:
            self.status[self.status == ACTIVE] = MAX_ITER
        self._collect(everyone)
        bar = _progress_bar(self.progress, self.max_iter, self.method)
        p = self.problem
        before = (p.t_forward, p.t_vjp, p.t_ri, p.t_energy, time.perf_counter())
        per_round = []
        try:
            while True:
                active = np.flatnonzero(self.status == ACTIVE)
                if active.size == 0:
                    break
                self._round_id += 1
                mark = (p.t_forward, p.t_vjp, p.t_ri, p.t_energy, time.perf_counter())
                self._round(active)
                self._collect(active)
                now = (p.t_forward, p.t_vjp, p.t_ri, p.t_energy, time.perf_counter())
                per_round.append([b - a for a, b in zip(mark, now)])
                if bar is not None:
                    _update_bar(bar, self, active)
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
        # forward-fill: a path that stopped keeps its final energy
        last = np.minimum(np.arange(t + 1)[None, :], self.iterations[:, None])
        history, fwd, vjp = (np.take_along_axis(h[:, : t + 1], last, axis=1)
                             for h in (self.history, self.forward_history, self.vjp_history))

        def out(a):
            return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

        return SolveOutput(self.x, self.decoded_path, self.log_ri, out(self.energy), out(history), out(fwd),
                           out(vjp),
                           out(self.iterations), out(self.status), self.round_timings)

    def _grow_histories(self):
        columns = min(2 * self.history.shape[1], self.max_iter + 1)
        for name, fill in (("history", np.nan), ("forward_history", 0), ("vjp_history", 0)):
            old = getattr(self, name)
            new = np.full((old.shape[0], columns), fill, dtype=old.dtype)
            new[:, : old.shape[1]] = old
            setattr(self, name, new)

    def _collect(self, rows):
        """Copy out the decoded outputs of the ``rows`` that stopped; release evaluations
        that no active path uses, and those that only a quarter of their rows still use
        (after copying those rows out)."""
        stopped = rows[self.status[rows] != ACTIVE]
        if stopped.size:
            self._copy_out(stopped)
        active = np.flatnonzero(self.status == ACTIVE)
        sources = self._source_round[active]
        for r in list(self._kept):
            users = int(np.count_nonzero(sources == r))
            if users and r != self._round_id and 4 * users <= self._kept[r].shape[0]:
                self._copy_out(active[sources == r])
                users = 0
            if not users:
                del self._kept[r]

    def _copy_out(self, rows):
        """Copy the decoded outputs of ``rows`` into ``self.decoded``; they point there after."""
        source = self._source_round[rows]
        for r in np.unique(source):
            if r < 0:
                continue  # copied before
            mine = rows[source == r]
            copy_rows(self.decoded, mine, self._kept[r], self._source_row[mine])
        self._source_round[rows] = -1

    def _round(self, active):
        fresh = active[self.new_direction[active]]
        if fresh.size:
            self._start_line_search(fresh)
        index = self._index(active)
        step = self.step[active]
        trial = torch.addcmul(self.x[index], to_device(step, self.x)[:, None, None], self.direction[index])
        ev = self.problem.evaluate(None if isinstance(index, slice) else index, trial)
        # the round's one device-to-host transfer before the gradient: energies, failures and
        # the segment weights of the trial paths
        host = to_host(torch.cat([ev.energy[:, None], ev.failed[:, None].to(torch.float64), ev.weights], dim=1))
        energy, failed, weights = host[:, 0], host[:, 1].astype(bool), host[:, 2:]
        self.n_forward[active] += 1
        e_old = self.energy[active]
        if self.method == "gd":
            ok = energy <= e_old
        else:
            ok = energy <= e_old + ARMIJO * step * self.slope[active]
        ok &= np.isfinite(energy) & ~failed
        self.status[active[failed]] = FAILED
        if ok.any():
            self.n_vjp[active] += 1  # the backward pass runs over every row of the evaluation
            self._accept(active, trial, ev, ok, energy, weights, e_old)
        rejected = ~ok & ~failed
        wall = rejected & np.isinf(energy)
        if wall.any():
            rejected &= ~self._freeze_outside(active, wall, ev)
        if rejected.any():
            self._backtrack(active[rejected], energy[rejected])

    def _freeze_outside(self, active, wall, ev):
        """Trials of paths ``active[wall]`` left the prior's support (a free point with
        log ri = -inf, so E = inf): retry the same step with those points held where they are.

        Shrinking the whole step instead would stall a path that starts on the support's edge
        (a point on the face of a box whose gradient points outwards) at negligible steps, all
        of its other points barely moving. The reduced direction is kept only where it still
        descends (g^T p < 0); the other paths backtrack as usual. Returns the mask (over
        ``active``) of the paths that retry. Costs one transfer, only in rounds where a trial
        leaves the support.
        """
        at = np.flatnonzero(wall)
        rows = active[at]
        index = self._index(rows)
        inside = ~torch.isneginf(ev.log_ri[index_on(at, self.device)][:, 1:-1])
        p = self.direction[index] * inside[:, :, None].to(self.direction.dtype)
        slope, froze = to_host(torch.stack([torch.linalg.vecdot(p.flatten(1), self.grad[index].flatten(1)),
                                            (~inside).any(dim=1).to(p.dtype)]))
        # (E can also be inf with every point inside: weights beyond float64; then backtrack)
        self.hit_wall[rows[froze > 0]] = True
        descent = (slope < 0) & (froze > 0)
        if descent.any():
            keep = np.flatnonzero(descent)
            mine = rows[keep]
            self.direction[index_on(mine, self.device)] = p[index_on(keep, self.device)]
            self.slope[mine] = slope[keep]
            self.backtracks[mine] += 1  # at most K-1 points to freeze: the line search still ends
        handled = np.zeros(active.size, dtype=bool)
        handled[at[descent]] = True
        return handled

    def _accept(self, active, trial, ev, ok, energy, weights, e_old):
        grad, log_ri = ev.gradient(), ev.log_ri
        took = np.flatnonzero(ok)
        rows, e_new, e_old = active[took], energy[took], e_old[took]
        if took.size < active.size:
            sel = index_on(took, self.device)
            log_ri = log_ri[sel]
        index = self._index(rows)
        if self.compiled:  # stores the pair and copies the point and gradient in one pass
            gmax = self.pairs.accept(rows, took, self.x, self.grad, trial, grad)
        else:
            if took.size < active.size:
                grad, trial = grad[sel], trial[sel]
            # the per-path numbers of the new iterate, in one transfer: max |dE/dx| (and the
            # products of the new curvature pair and gradient with the pair memory)
            flat = grad.reshape(rows.size, -1)
            stats = flat.abs().amax(dim=1).to(torch.float64)[:, None]
            if self.method == "lbfgs":
                s = (trial - self.x[index]).reshape(rows.size, -1)
                y = flat - self.grad[index].reshape(rows.size, -1)
                stats = torch.cat([stats, self.pairs.products(index, s, y, flat)], dim=1)
            stats = to_host(stats)
            gmax = stats[:, 0]
            if self.method == "lbfgs":
                self.pairs.remember(rows, s, y, stats[:, 1:])
            self.x[index] = trial
            self.grad[index] = grad
        self.log_ri[index] = log_ri
        self.weights[rows] = weights[took]
        self.energy[rows] = e_new
        self._kept[self._round_id] = ev.decoded
        self._source_round[rows] = self._round_id
        self._source_row[rows] = took
        self.iterations[rows] += 1
        if self.history.shape[1] <= min(self._round_id, self.max_iter):  # iterations <= rounds
            self._grow_histories()
        it = self.iterations[rows]
        self.history[rows, it] = e_new
        self.forward_history[rows, it] = self.n_forward[rows]
        self.vjp_history[rows, it] = self.n_vjp[rows]
        self.new_direction[rows] = True
        # one small decrease can be a short step of a poor direction: it takes two in a row
        small = (e_old - e_new) <= self.ftol * np.abs(e_new)
        # ... and a small decrease from a step that the support's edge cut short is no sign of
        # a minimum: it does not count towards convergence, and MAX_STALLS of them in a row stop
        # the path as "stalled", never as "converged". (The curvature pairs are kept: the steps
        # of the points that still move teach L-BFGS the directions that lead off the edge.)
        walled = small & self.hit_wall[rows]
        self.stalls[rows] = np.where(walled, self.stalls[rows] + 1, 0)
        small &= ~walled
        self.small_steps[rows] = np.where(small, self.small_steps[rows] + 1, 0)
        done = (self.small_steps[rows] >= 2) | (gmax <= self.gtol)
        self.status[rows[done]] = CONVERGED
        if walled.any():
            stalled = rows[~done & (self.stalls[rows] >= MAX_STALLS)]
            self.status[stalled] = STALLED
            done[np.isin(rows, stalled)] = True
        self.status[rows[~done & (it >= self.max_iter)]] = MAX_ITER

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
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                t_quad = -slope * t * t / (2 * curv)
            t_quad = np.where(np.isfinite(t_quad), t_quad, 0.5 * t)
            self.step[rows] = np.minimum(np.maximum(t_quad, 0.1 * t), 0.5 * t)
        stuck = rows[self.backtracks[rows] > MAX_BACKTRACKS]
        if stuck.size and self.method == "lbfgs":
            # with curvature memory, forget it and retry along the preconditioned gradient;
            # without, there is no decrease left to find
            had_memory = self.pairs.n_pairs[stuck] > 0
            self.pairs.forget(stuck[had_memory])
            self.new_direction[stuck[had_memory]] = True
            stuck = stuck[~had_memory]
        self.status[stuck] = NO_DECREASE

    # -- directions ----------------------------------------------------------------------------
    def _start_line_search(self, rows):
        self.backtracks[rows] = 0
        self.hit_wall[rows] = False
        index = self._index(rows)
        g = self.grad[index]
        if self.method == "gd":
            if self.lr_fixed is None:
                unset = rows[np.isnan(self.lr[rows])]
                if unset.size:
                    w = preconditioner_weights(self.weights[unset])
                    self.lr[unset] = 1.0 / gershgorin(w, path_gain(self, unset, self._index(unset), w))
            self.direction[index] = -g
            self.step[rows] = self.lr[rows]
            slope = -to_host(torch.linalg.vecdot(g.flatten(1), g.flatten(1)))
        else:
            slope = self._lbfgs_direction(rows)
            uphill = ~(slope < 0)
            if uphill.any():  # not a descent direction (stale curvature): restart from the gradient
                self.pairs.forget(rows[uphill])
                slope[uphill] = self._lbfgs_direction(rows[uphill])
            self.step[rows] = 1.0
        self.slope[rows] = slope
        self.new_direction[rows] = False

    def _lbfgs_direction(self, rows):
        """-H g of paths ``rows`` into ``self.direction``, H the L-BFGS inverse Hessian with
        H0 = gamma L_w^{-1} (or gamma I unpreconditioned); returns the slopes g^T (-H g).

        gamma (see :meth:`PairMemory.direction`) comes from the newest pair; before the first
        pair (or where that gives no positive number) it is the quadratic model's own scale
        1 / (2 c) (or 1 / lambda_max unpreconditioned).
        """
        w = preconditioner_weights(self.weights[rows])
        if self.compiled:
            return self._compiled_direction(rows, w)
        # When at least half of the paths need a direction, it is formed for all of them and
        # the others' discarded: that reads the pair memory in place instead of gathering it.
        b = self.shape[0]
        everyone = len(rows) < b <= 2 * len(rows)
        p, slope = self._direction(np.arange(b) if everyone else rows, rows, w)
        if everyone:
            p, slope = p[index_on(rows, self.device)], slope[rows]
        self.direction[self._index(rows)] = p
        return slope

    def _compiled_direction(self, rows, w):
        """:meth:`_lbfgs_direction` on the CPU: one kernel call (kernels/cpu_lbfgs.py) writes
        the directions in place; a second one, for the paths whose pairs give no scale."""
        if self.precondition:
            self.laplacian.refresh(rows, w)
        gamma = np.full(len(rows), np.nan)  # NaN: from the newest pair
        first = self.pairs.n_pairs[rows] == 0
        if first.any():
            gamma[first] = self._first_scale(rows[first], w[first])
        common = (self.grad, self.laplacian.weights, self.precondition)
        gamma, slope = self.pairs.directions(rows, *common, gamma, self.direction)
        unscaled = np.isnan(gamma)
        if unscaled.any():
            again = self._first_scale(rows[unscaled], w[unscaled])
            _, slope[unscaled] = self.pairs.directions(rows[unscaled], *common, again, self.direction)
        return slope

    def _first_scale(self, rows, w):
        gain = path_gain(self, rows, self._index(rows), w)
        return 0.5 / gain if self.precondition else 1.0 / gershgorin(w, gain)

    def _direction(self, rows, fresh, fresh_w):
        """(-H g, slope) for paths ``rows`` by torch products (the GPU route); ``fresh`` (a
        subset, weights ``fresh_w``) get their preconditioner refreshed."""
        index = self._index(rows)
        a_rows, (_, k1, d) = len(rows), self.shape
        g = self.grad[index].reshape(a_rows, k1 * d)
        if self.precondition:
            self.laplacian.refresh(fresh, fresh_w)

        def apply_h0(q, y):
            if not self.precondition:
                return q, y
            hq = self.laplacian.apply(index, q.view(a_rows, k1, d)).view(a_rows, -1)
            return hq, None if y is None else self.laplacian.apply(index, y.view(a_rows, k1, d)).view(a_rows, -1)

        w = fresh_w if len(fresh) == a_rows else preconditioner_weights(self.weights[rows])  # for first_scale
        p, slope = self.pairs.direction(rows, index, g, apply_h0,
                                        lambda mask: self._first_scale(rows[mask], w[mask]))
        return p.view(a_rows, k1, d), slope


def _update_bar(bar, solver, active):
    """Progress: accepted iterations of the furthest path (of max_iter), and how many paths
    are still active with their mean energy (set without forcing a redraw every round)."""
    done = int(solver.iterations.max())
    if done > bar.n:
        bar.update(done - bar.n)
    bar.set_postfix(active=int(active.size), energy=f"{float(solver.energy[active].mean()):.4g}", refresh=False)


def _progress_bar(progress, total, method):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a declared dependency; a broken install only loses the bar
        return None
    return tqdm(total=total, desc=f"interpolate ({method})", unit="it", leave=False)
