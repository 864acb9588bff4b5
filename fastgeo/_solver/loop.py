"""The round loop of the path solver: B independent paths minimised in lock-step.

In every round each active path proposes one trial point (a new step along a fresh
direction, or a shorter one after a rejected trial), all trials are decoded in one generator
call, and each path accepts or rejects its own. Only accepted paths need a gradient, so the
backward pass runs once per round and only if some path accepted. A path leaves the batch
when it converges (see :meth:`Solver._start_line_search`), reaches max_iter, fails (NaN from the
generator), cannot decrease its energy any more, or stalls at the edge of the prior's support
(see ``Solver._freeze_outside``).

The loop owns the batching, the statuses, the histories, the decoded-output cache, the
timings and the progress bar; what a step is comes from two parts chosen by method and
backend: a direction strategy (:mod:`fastgeo._solver.methods` picks it) and a step rule
(:mod:`fastgeo._solver.steps`).

The points, gradients, directions and curvature pairs are tensors on the paths' device; the
per-path numbers (energies, steps, slopes, counters, statuses) are float64 numpy arrays on
the host, where a round's bookkeeping costs microseconds instead of a torch dispatch per tiny
operation.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from . import gaps, methods, steps
from .lbfgs import index_on, to_device, to_host
from .progress import progress_bar, update_bar
from .rows import copy_rows

ACTIVE, CONVERGED, MAX_ITER, FAILED, NO_DECREASE, STALLED = range(6)
STATUS_NAMES = {ACTIVE: "active", CONVERGED: "converged", MAX_ITER: "max_iter", FAILED: "nan",
                NO_DECREASE: "no_decrease", STALLED: "stalled"}
# a path whose steps stay negligible because its line searches keep running into the edge of
# the prior's support (E = inf beyond it) stops as "stalled" after this many in a row
MAX_STALLS = 3
MAX_BACKTRACKS = 40
# a path whose accepted steps have lowered E by at most ftol |E| this many times in a row while
# its model still predicted more (E at its rounding floor, e.g. float32 energies, where a step
# of zero decrease passes Armijo's test) stops as "no_decrease" instead of spending max_iter
MAX_FLAT = 20


def zero_density_start(paths):
    """The error for starting paths (their indices) through points where ri = 0."""
    return ValueError(f"the initial path of path(s) {paths} passes through points of zero density "
                      "(log ri = -inf); start from a path inside the support")


@dataclass
class SolveOutput:
    x: torch.Tensor  # (B, K-1, D) free points of the last accepted iterate
    decoded: torch.Tensor  # (B, K+1, ...) the decoded outputs of the whole path (end points too)
    log_ri: torch.Tensor  # (B, K+1) log ri of the whole path
    energy: torch.Tensor  # (B,) float64
    history: torch.Tensor  # (B, T+1) float64, energy after each accepted iteration, forward-filled
    forward_history: torch.Tensor  # (B, T+1) int64, path evaluations spent by then
    vjp_history: torch.Tensor  # (B, T+1) int64, path VJPs spent by then
    jvp_history: torch.Tensor  # (B, T+1) int64, tangents pushed through each free point by then
    iterations: torch.Tensor  # (B,) int64
    status: torch.Tensor  # (B,) int64 status codes
    gap: torch.Tensor  # (B,) float64 estimate of E - (the minimum's E), see gaps.estimate
    round_timings: dict  # seconds spent in the iterations (after the first evaluation), by part


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
        self.progress = progress
        b, n_free, d = x0.shape
        self.shape = (b, n_free, d)
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
        # the decrease the direction's model predicts at its first trial step, relative to |E|
        self.predicted = np.full(b, np.nan)
        self.n_jvp = np.zeros(b, dtype=np.int64)  # tangents pushed through each free point
        self.directions = methods.choose(method, self, memory, precondition)
        self.steps = steps.Halving(self, lr) if method == "gd" else steps.Armijo(self)

    def index(self, rows):
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
            raise zero_density_start(np.flatnonzero(zero).tolist())
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
        self.jvp_history = np.zeros_like(self.forward_history)
        # seconds since the iterations began, when each accepted iterate was reached
        self.seconds_history = np.zeros((b, columns))
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
        bar = progress_bar(self.progress, self.max_iter, self.method)
        p = self.problem
        before = (p.t_forward, p.t_vjp, p.t_ri, p.t_energy, time.perf_counter())
        self._t0 = before[-1]
        jvp0 = p.t_jvp
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
                    update_bar(bar, self, active)
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
        self.round_timings["generator_jvp"] = p.t_jvp - jvp0
        # the Jacobians of a final convergence test come after the last accepted iterate
        self.jvp_history[everyone, self.iterations] = self.n_jvp
        t = int(self.iterations.max()) if b else 0
        # forward-fill: a path that stopped keeps its final energy
        last = np.minimum(np.arange(t + 1)[None, :], self.iterations[:, None])
        history, fwd, vjp, jvp, seconds = (
            np.take_along_axis(h[:, : t + 1], last, axis=1) for h in
            (self.history, self.forward_history, self.vjp_history, self.jvp_history, self.seconds_history))
        # (B, T+1): seconds since the iterations began when each path reached each iterate
        self.round_timings["seconds_history"] = seconds
        gap = gaps.estimate(self.history, self.iterations, self.predicted * np.abs(self.energy),
                            self.status == CONVERGED)

        def out(a):
            return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

        return SolveOutput(self.x, self.decoded_path, self.log_ri, out(self.energy), out(history), out(fwd),
                           out(vjp), out(jvp), out(self.iterations), out(self.status), out(gap),
                           self.round_timings)

    def _grow_histories(self):
        columns = min(2 * self.history.shape[1], self.max_iter + 1)
        for name, fill in (("history", np.nan), ("forward_history", 0), ("vjp_history", 0), ("jvp_history", 0),
                           ("seconds_history", 0.0)):
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

    def current_decoded(self, rows):
        """The decoded outputs (n, K-1, ...) of the current iterates of paths ``rows`` (a copy)."""
        out = self.decoded.new_empty((len(rows), *self.decoded.shape[1:]))
        source = self._source_round[rows]
        for r in np.unique(source):
            mine = np.flatnonzero(source == r)
            src, src_rows = (self.decoded, rows[mine]) if r < 0 else (self._kept[r], self._source_row[rows[mine]])
            out[index_on(mine, self.device)] = src[index_on(src_rows, self.device)]
        return out

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
            active = active[self.status[active] == ACTIVE]
            if not active.size:
                return
        index = self.index(active)
        step = self.step[active]
        trial = torch.addcmul(self.x[index], to_device(step, self.x)[:, None, None], self.direction[index])
        ev = self.problem.evaluate(None if isinstance(index, slice) else index, trial)
        # the round's one device-to-host transfer before the gradient: energies, failures and
        # the segment weights of the trial paths
        host = to_host(torch.cat([ev.energy[:, None], ev.failed[:, None].to(torch.float64), ev.weights], dim=1))
        energy, failed, weights = host[:, 0], host[:, 1].astype(bool), host[:, 2:]
        self.n_forward[active] += 1
        e_old = self.energy[active]
        ok = self.steps.accepts(energy, e_old, step, self.slope[active])
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
        index = self.index(rows)
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
            log_ri = log_ri[index_on(took, self.device)]
        index = self.index(rows)
        self.energy[rows] = e_new
        gmax = self.directions.accept(rows, took, trial, grad)
        self.log_ri[index] = log_ri
        self.weights[rows] = weights[took]
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
        self.jvp_history[rows, it] = self.n_jvp[rows]
        self.seconds_history[rows, it] = time.perf_counter() - self._t0
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
        self.status[rows[self.small_steps[rows] >= MAX_FLAT]] = NO_DECREASE
        # every |dE/dx| <= gtol is first-order optimality itself; the other tests (and the
        # iteration limit) are taken at the next fresh direction, see _start_line_search
        done = gmax <= self.gtol
        self.status[rows[done]] = CONVERGED
        if walled.any():
            stalled = rows[~done & (self.stalls[rows] >= MAX_STALLS)]
            self.status[stalled] = STALLED

    def _backtrack(self, rows, e_trial):
        self.backtracks[rows] += 1
        self.step[rows] = self.steps.shorter(rows, e_trial)
        stuck = rows[self.backtracks[rows] > MAX_BACKTRACKS]
        if stuck.size:
            retry = self.directions.restart(stuck)
            self.new_direction[stuck[retry]] = True
            stuck = stuck[~retry]
        self.status[stuck] = NO_DECREASE

    # -- directions ----------------------------------------------------------------------------
    def _start_line_search(self, rows):
        """Fresh directions for paths ``rows``, and the tests that need one: a path whose
        model predicts a decrease of at most ftol |E| along it (and that the direction
        strategy's test accepts, :meth:`Direction.converged`) has converged; a path that has
        made max_iter iterations stops there."""
        self.backtracks[rows] = 0
        self.hit_wall[rows] = False
        slope = self.directions.start(rows)
        self.slope[rows] = slope
        self.step[rows] = self.steps.first(rows)
        self.new_direction[rows] = False
        # the quadratic model's decrease at the first trial step t along p: -t g^T p / 2 for a
        # (quasi-)Newton step t = 1 and for a gradient step t = 1/L alike
        with np.errstate(divide="ignore", invalid="ignore"):
            predicted = np.maximum(-0.5 * self.step[rows] * slope, 0.0) / np.abs(self.energy[rows])
        self.predicted[rows] = np.where(np.isfinite(predicted), predicted, np.inf)
        done = self.directions.converged(rows, self.predicted[rows], self.small_steps[rows] >= 2)
        self.status[rows[done]] = CONVERGED
        self.status[rows[~done & (self.iterations[rows] >= self.max_iter)]] = MAX_ITER
