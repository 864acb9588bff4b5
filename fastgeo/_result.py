"""The result type of :func:`fastgeo.interpolate` and the baselines (:mod:`fastgeo.baselines`).

Its own module, without torch at import: ``fastgeo.InterpolationResult`` (and
``fastgeo.interpolation.InterpolationResult``, the same class) loads no solver.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    #: a result array: a torch tensor on the endpoints' device, or a numpy array
    Array = torch.Tensor | np.ndarray
else:  # resolvable at run time (typing.get_type_hints) without importing torch
    Array = Any


@dataclass
class InterpolationResult:
    """Paths found by :func:`fastgeo.interpolate` or a baseline, with their diagnostics.

    Arrays are torch tensors on the endpoints' device when the endpoints were torch tensors,
    numpy arrays otherwise. With endpoints of shape (D,) the leading path axis B is dropped.

    Attributes
    ----------
    path : (B, K+1, D) latent points, endpoints included (K + 1 = n_points).
    decoded : (B, K+1, ...) the generator's outputs along the path.
    log_ri, ri : (B, K+1) realism index of each point (unscaled: alpha enters only E).
    distances : (B, K) consecutive decoded distances |G(x_{i+1}) - G(x_i)|.
    energy : (B,) float64, E of eq. (3) with this result's alpha.
    energy_history : (B, T+1) float64, E after 0, 1, ..., T accepted iterations (T = max of
        ``iterations``); a path that stopped earlier repeats its final energy.
    forward_history, vjp_history : (B, T+1) how many times the path's K-1 free points had
        gone through the generator forward, and through a VJP, when ``energy_history`` was
        reached (times K-1 for points); rejected line-search trials count too.
    jvp_history : (B, T+1) how many tangents had been pushed through each free point by
        forward-mode Jacobian-vector products by then (D per Gauss-Newton direction; 0 for
        methods that take none); the last entry includes the final convergence test's.
    path_log_index : (B,) log ri(path) ~ sum_i log rbar_i |G(x_{i+1}) - G(x_i)| (MATH.md 2).
    converged : (B,) bool, True where a first-order test held: the decrease the solver's
        model predicts along the next direction was at most ``ftol`` |E| (for "lbfgs-gn" in
        its Gauss-Newton phase: half the Gauss-Newton decrement g^T M^{-1} g; for "lbfgs" and
        "gd" also after two relative decreases of at most ``ftol`` in a row), or every entry
        of the gradient was at most ``gtol``.
    gap : (B,) float64, an estimate of how far E is above the minimum the path was heading
        for: the model's predicted decrease where it converged, else the larger of that and
        a trend over the energy history (``fastgeo._solver.gaps``); NaN for baselines.
    status : per path (a tuple, or one string when unbatched): "converged", "max_iter",
        "nan" (the generator or the realism index returned NaN/inf on a trial path: the
        path stopped at its last finite iterate), "no_decrease" (the line search found no
        lower energy, or 20 accepted steps in a row lowered it by at most ftol |E|: a numerical
        minimum, E at its rounding floor, or a non-smooth point), "stalled" (its steps stayed
        negligible because they kept running into the edge of the prior's support, where
        E = inf: it stopped short of a minimum), or "baseline".
    iterations : (B,) accepted iterations of each path.
    n_forward, n_vjp : generator forward points and vector-Jacobian-product points spent
        (endpoints and the final decode included); n_calls: generator calls.
    n_jvp : Jacobian-vector products spent (a point times a tangent; forward mode), so that
        generator cost compares across methods.
    start : (B,) int64, the start each path's result came from (0: the linear path or
        ``init``; see ``starts`` of :func:`fastgeo.interpolate`); None for the baselines.
    timings : seconds spent in generator forwards ("generator_forward"), in VJPs
        ("generator_vjp"), in ``fastgeo.log_ri_and_grad`` ("realism_index"), in
        ``fastgeo.path.energy_and_grads`` ("path_energy"), and in all ("total"); for the
        solver, "iterations" holds the same split for the iterations alone (without the set-up
        and the final results), their number of "rounds" (generator calls), "per_round":
        a (rounds, 5) numpy array of [forward, VJP, realism index, path energy, total] seconds
        of each round, and "seconds_history": a (B, T+1) numpy array, the seconds since the
        iterations began when each path reached each iterate of ``energy_history``.
        "generator_jvp": seconds in forward-mode Jacobians. On a GPU they are exact only with
        ``synchronize=True``.
    """

    path: Array
    decoded: Array
    log_ri: Array
    ri: Array
    distances: Array
    energy: Array
    energy_history: Array
    forward_history: Array
    vjp_history: Array
    jvp_history: Array
    path_log_index: Array
    converged: Array
    gap: Array
    status: tuple[str, ...] | str
    iterations: Array
    n_forward: int
    n_vjp: int
    n_jvp: int
    n_calls: int
    method: str
    alpha: float
    timings: dict[str, Any] = field(default_factory=dict)
    start: Array | None = None

    @property
    def n_points(self) -> int:
        return self.path.shape[-2]

    @property
    def path_ri(self) -> Array:
        """ri(path) = exp(path_log_index), in [0, 1]."""
        return np.exp(self.path_log_index) if isinstance(self.path_log_index, np.ndarray) \
            else self.path_log_index.exp()
