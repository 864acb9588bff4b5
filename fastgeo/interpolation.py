"""ri-optimal interpolation (paper section 5, MATH.md 3): ``fastgeo.interpolate``.

Given a generator G, a latent prior and endpoint pairs (z0, z1), find latent paths
x_0 = z0, x_1, ..., x_K = z1 minimising, for each path independently,

    E = sum_{i=0}^{K-1} w_i |G(x_{i+1}) - G(x_i)|^2,
    w_i = (log alpha + log((ri(x_i) + ri(x_{i+1})) / 2))^2                          (eq. 3)

from the linear path (or a given one). Results come back as :class:`InterpolationResult`
(defined in :mod:`fastgeo._result`); the baselines in :mod:`fastgeo.baselines` return the
same type.
"""
from __future__ import annotations

import math
import numbers
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._arrays import check_finite, common_kind, kind_of
from ._path_problem import PathProblem
from ._result import InterpolationResult
from ._starts import lowest, with_detours
from ._solver import CONVERGED, STATUS_NAMES, Solver
from ._solver.loop import zero_density_start
from ._solver.gauss_newton import HELD_PAIR_VECTORS
from .path import energy_and_grads, path_log_index
from .priors.base import Prior, check_device
from .priors.convert import as_prior
from .realism import METHODS as RI_METHODS
from .realism import check_alpha

#: The default scale of the realism index, 1/e. With it the weight is
#: w = (1 - log rbar)^2: a segment in a perfectly realistic region (rbar = 1) costs its plain
#: squared decoded length (w = 1, never free), and every factor e by which rbar drops adds 1
#: to sqrt(w): a path accepts a detour up to (1 + k) times longer to avoid rbar = e^-k.
#: alpha -> 1 makes segments with rbar = 1 free, so paths through the prior's mode may
#: stretch without cost; alpha -> 0 drowns the realism term in log^2 alpha, leaving the
#: shortest decoded path.
DEFAULT_ALPHA = math.exp(-1.0)
METHODS = ("auto", "lbfgs-gn", "lbfgs", "gd")
DEFAULT_METHOD = "auto"
#: the largest latent dimension D for which "auto" is "lbfgs-gn", whose refreshes take D
#: forward-mode products a point and hold D x D blocks a point; above it "auto" is "lbfgs"
AUTO_GAUSS_NEWTON_MAX_DIM = 128
DEFAULT_MAX_ITER = {"lbfgs-gn": 3000, "lbfgs": 500, "gd": 20000}
DEFAULT_FTOL = {"lbfgs-gn": 1e-6, "lbfgs": 1e-7, "gd": 1e-9}
#: (latent, decoded-output) copies of every path that a baseline holds at once: the path;
#: its decoded inner points and the whole decoded path
BASELINE_COPIES = (1, 2)


def solver_copies(method, memory=10):
    """(latent, decoded-output) copies of every path that :func:`interpolate` holds at once, a
    lower bound (the generator's activations come on top): the iterate, its gradient,
    direction and trial point and, for L-BFGS, 2 x ``memory`` curvature pairs; the result's
    outputs, an evaluation's, and dE/dG."""
    return 4 + (2 * memory if method != "gd" else 0), 3


def _auto_method(problem, b, k, memory):
    """"auto": "lbfgs-gn" where D <= AUTO_GAUSS_NEWTON_MAX_DIM, the generator has forward-mode
    derivatives and the paths with the Gauss-Newton phase fit in memory, else "lbfgs"."""
    if problem.dim > AUTO_GAUSS_NEWTON_MAX_DIM:
        return "lbfgs"
    if k < 2 or not b:
        return "lbfgs-gn"
    if not problem.has_forward_mode():
        return "lbfgs"
    try:
        problem.require_memory(b, k + 1, *solver_copies("lbfgs-gn", memory), "",
                               plus_bytes=problem.gauss_newton_bytes(b, k - 1, pair_vectors=HELD_PAIR_VECTORS))
    except MemoryError:
        return "lbfgs"
    return "lbfgs-gn"


def interpolate(generator, z0, z1, prior, n_points=50, alpha=DEFAULT_ALPHA, method=DEFAULT_METHOD, *, init=None,
                starts=1, seed=0, max_iter=None, ftol=None, gtol=0.0, memory=10, lr=None, precondition=True,
                progress=None, backend="auto", ri_method="auto", synchronize=False) -> InterpolationResult:
    """ri-optimal interpolation between latent points (paper eq. 3; MATH.md 3).

    Minimises, for each pair independently over the free points x_1 .. x_{K-1},

        E = sum_{i=0}^{K-1} w_i d_i,   d_i = |G(x_{i+1}) - G(x_i)|^2,
        w_i = (log alpha + logaddexp(l_i, l_{i+1}) - log 2)^2,   l_j = log ri(x_j),

    starting from the linear path x_i = (1 - i/K) z0 + (i/K) z1 (or from ``init``). Each
    iteration decodes every free point of every active path in one generator call and
    takes one vector-Jacobian product (a single backward) for J^T dE/dG; the realism term
    adds dE/dl_j * grad log ri(x_j). A path leaves the batch, and stops costing generator
    calls, once it has converged (a first-order test, see ``converged`` in
    :class:`InterpolationResult`) or made ``max_iter`` iterations.

    Parameters
    ----------
    generator : torch callable mapping latents (M, D) to outputs (M, ...) row by row
        (put networks in ``.eval()`` mode: batch statistics would couple the paths).
    z0, z1 : (B, D) or (D,) torch tensors or numpy arrays of one library, device and dtype;
        the latent path uses their device and dtype.
    prior : a :mod:`fastgeo.priors` prior of dimension D (it defines ri), or a torch distribution or
        frozen scipy distribution converted by :func:`fastgeo.priors.as_prior`.
    n_points : points per path, endpoints included (K + 1 >= 2; the paper's figures use 50
        midpoints, n_points = 52).
    alpha : scale of the realism index in (0, 1); default 1/e (see ``DEFAULT_ALPHA``: every
        segment keeps at least its squared decoded length as cost, w >= 1).
    method : "auto" (default): "lbfgs-gn" where D <= AUTO_GAUSS_NEWTON_MAX_DIM (128), the
        generator has forward-mode derivatives and the paths with the Gauss-Newton blocks fit
        in memory, else "lbfgs"; ``result.method`` says which ran.
        "lbfgs-gn": L-BFGS until a path stalls or has made 150 iterations, then Gauss-Newton
        steps with the matrix-weighted path Laplacian (blocks w_i J^T J from forward-mode
        Jacobians, plus the realism term's convex part; MATH.md 3.1) and Levenberg-Marquardt
        damping, the factorisation held for 20 directions under L-BFGS corrections, until the
        decrease a fresh Gauss-Newton model predicts is at most ``ftol`` |E|: every path of
        the demo models converges (paths may settle in different local minima than other
        methods'), at D forward-mode products per point and refresh
        (docs/solver-diagnosis.md). A generator without forward-mode derivatives gets a
        warning and L-BFGS only.
        "lbfgs": per-path L-BFGS preconditioned by the weighted path Laplacian, Armijo line
        search; cheap iterations, but on generators whose gain differs by orders of magnitude
        between latent directions it stops well short of the minimum (docs/solver-diagnosis.md:
        5-11% above it after the default 500 iterations on the normal demo model; ``gap``
        estimates how far).
        "gd": the paper's gradient descent, fixed step 1/L (halved when a step would raise the
        energy) or ``lr``.
    init : optional starting path (B, n_points, D) (or (n_points, D)); its end points must
        equal z0 and z1.
    starts : starting paths per pair (default 1): the linear path (or ``init``) and
        ``starts - 1`` smooth random detours of it (:mod:`fastgeo._starts`), solved as one batch;
        each pair keeps the lowest finite energy (``result.start`` says which start). The
        energy has many local minima on some generators (on the Kilcher demo model the linear
        start ends above the lowest minimum of five runs by more than 1e-3 on 38 of 64 pairs:
        docs/solver-diagnosis.md); the cost is ``starts`` times one start's.
    seed : seeds the detours, with each pair's endpoints: a pair gets the same detours in any
        batch, at any position and on any device.
    max_iter : accepted iterations per path (default 3000 for lbfgs-gn, 500 for lbfgs, 20000
        for gd).
    ftol : the convergence tolerance, relative to E (default 1e-6 for lbfgs-gn, 1e-7 for
        lbfgs, 1e-9 for gd, whose steps decrease E slowly long before the minimum): the
        largest predicted decrease along the next direction (and, for lbfgs and gd, the
        largest decrease of each of the last two iterations) of a converged path.
    gtol : a path also counts as converged once every entry of dE/dx is at most gtol in
        absolute value (default 0: only ``ftol`` decides; E's scale depends on the generator).
    memory : L-BFGS curvature pairs kept per path.
    lr : gd step size (default: 1/L from the path Laplacian, see above).
    precondition : lbfgs (and lbfgs-gn's first phase) only; False uses the plain L-BFGS initial Hessian gamma I (for
        comparisons: it needs many times more iterations on long paths).
    progress : show a tqdm bar of solver rounds; default (None) shows it only when stderr is
        a terminal, so scripts, logs and tests stay quiet.
    backend, ri_method : passed to the realism-index and path-energy functions ("auto",
        "cpu", "reference"; ri_method "auto", "exact", "erf" or "kde").
    synchronize : synchronise the GPU around generator calls so ``timings`` are exact.

    Returns
    -------
    InterpolationResult

    Examples
    --------
    >>> prior = fastgeo.priors.StandardNormal(100)
    >>> res = fastgeo.interpolate(G.eval(), z0, z1, prior, n_points=52)   # z0, z1: (B, 100)
    >>> lin = fastgeo.linear_path(G, z0, z1, prior, n_points=52)
    >>> res.path_log_index - lin.path_log_index        # > 0: a more realistic path
    >>> res.status, res.n_forward, res.energy_history[:, -1]
    """
    setup = _setup(generator, z0, z1, prior, n_points, alpha, backend, ri_method)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    max_iter = None if max_iter is None else _check_int(max_iter, "max_iter", 0)
    ftol = None if ftol is None else _check_nonneg(ftol, "ftol")
    gtol = _check_nonneg(gtol, "gtol")
    memory = _check_int(memory, "memory", 1)
    starts = _check_int(starts, "starts", 1)
    seed = _check_int(seed, "seed", 0)
    if lr is not None:
        lr = _check_nonneg(lr, "lr")
        if lr == 0:
            raise ValueError("lr must be > 0")
    if progress is None:
        progress = sys.stderr is not None and sys.stderr.isatty()
    z0t, z1t = setup.z0, setup.z1
    k = n_points - 1
    start = time.perf_counter()
    if k < 2:
        starts = 1  # no free points: nothing to start from elsewhere
    z0s, z1s = z0t.repeat(starts, 1), z1t.repeat(starts, 1)  # start-major rows, see fastgeo._starts
    problem = PathProblem(generator, z0t, z1t, setup.prior, setup.alpha, backend, ri_method, synchronize,
                          repeats=starts)
    b = z0s.shape[0]
    if method == "auto":
        method = _auto_method(problem, b, k, memory)
    max_iter = DEFAULT_MAX_ITER[method] if max_iter is None else max_iter
    ftol = DEFAULT_FTOL[method] if ftol is None else ftol
    if k >= 2 and b:
        problem.require_memory(b, k + 1, *solver_copies(method, memory),
                               f"interpolate of {b} path(s) of {k + 1} points")
        if method == "lbfgs-gn":
            problem.require_gauss_newton_memory(b, k - 1, f"the Gauss-Newton phase of {b} path(s) of {k + 1} "
                                                f"points in {problem.dim} dimensions", pair_vectors=HELD_PAIR_VECTORS)
    x0 = _initial_path(setup, init, k)
    if k < 2 or b == 0:  # nothing to optimise
        path = torch.cat([z0t[:, None], x0, z1t[:, None]], dim=1)
        result = _finish_baseline(setup, problem, path, method, start, status="converged")
        result.start = _deliver(torch.zeros(z0t.shape[0], dtype=torch.int64, device=z0t.device), setup)
        return result
    if starts > 1:
        zero = torch.isneginf(problem.log_ri(x0)[0]).any(dim=1)  # named by pair, before the detours
        if zero.any():
            raise zero_density_start(zero.nonzero().flatten().tolist())
    x0 = with_detours(x0, z0t, z1t, starts, seed, lambda z: problem.log_ri(z)[0])
    solver = Solver(problem, z0s, z1s, x0, method, setup.alpha, max_iter, ftol, gtol=gtol, memory=memory,
                    lr=lr, precondition=bool(precondition), progress=progress)
    with torch.no_grad():
        out = solver.run()
    rows, chosen = lowest(out.energy, starts)
    path = torch.cat([z0t[:, None], out.x[rows], z1t[:, None]], dim=1)
    status = tuple(STATUS_NAMES[int(s)] for s in out.status[rows].tolist())
    result = _assemble(setup, problem, path, out.decoded[rows], out.log_ri[rows], out.history[rows],
                       out.forward_history[rows], out.vjp_history[rows], out.jvp_history[rows],
                       out.status[rows] == CONVERGED, out.gap[rows], status, out.iterations[rows], method, start)
    result.start = _deliver(chosen, setup)
    timings = dict(out.round_timings)
    timings["seconds_history"] = timings["seconds_history"][rows.cpu().numpy()]
    result.timings["iterations"] = timings
    return result


# -- shared with the baselines ---------------------------------------------------------------------

@dataclass
class Setup:
    generator: Any
    z0: torch.Tensor  # (B, D)
    z1: torch.Tensor
    prior: Prior
    alpha: float
    kind: Any  # the endpoints' ArrayKind
    batched: bool
    backend: str
    ri_method: str


def _setup(generator, z0, z1, prior, n_points, alpha, backend, ri_method) -> Setup:
    """Validate the arguments every path function shares; endpoints as (B, D) tensors."""
    if not callable(generator):
        raise TypeError("generator must be a callable (a torch module or function), "
                        f"got {type(generator).__name__}")
    prior = as_prior(prior)
    if isinstance(n_points, bool) or not isinstance(n_points, numbers.Integral) or n_points < 2:
        raise ValueError(f"n_points must be an integer >= 2 (both endpoints included), got {n_points!r}")
    alpha = check_alpha(alpha, upper_inclusive=False)
    if ri_method not in RI_METHODS:
        raise ValueError(f"ri_method must be one of {RI_METHODS}, got {ri_method!r}")
    kind = common_kind(z0, z1, names=["z0", "z1"])
    if kind.library not in ("numpy", "torch"):
        raise TypeError(f"z0 and z1 must be torch tensors or numpy arrays, got {kind.library} arrays")
    t0, t1 = _as_tensor(z0, "z0"), _as_tensor(z1, "z1")
    if t0.shape != t1.shape:
        raise ValueError(f"z0 and z1 must have the same shape, got {tuple(t0.shape)} and {tuple(t1.shape)}")
    if t0.dtype != t1.dtype:
        raise TypeError(f"z0 and z1 must have the same dtype, got {t0.dtype} and {t1.dtype}")
    if t0.ndim not in (1, 2) or t0.shape[-1] != prior.dim:
        raise ValueError(f"z0 and z1 must have shape (B, {prior.dim}) or ({prior.dim},) for this "
                         f"{prior.dim}-dimensional prior, got {tuple(t0.shape)}")
    for t, name in ((t0, "z0"), (t1, "z1")):
        check_finite(t, name)
        check_device(prior, t, name)
    batched = t0.ndim == 2
    if not batched:
        t0, t1 = t0[None], t1[None]
    if isinstance(generator, torch.nn.Module) and generator.training:
        warnings.warn("the generator is in training mode: batch normalisation or dropout would make each "
                      "path depend on the others; call generator.eval() first", UserWarning, stacklevel=3)
    return Setup(generator, t0, t1, prior, alpha, kind, batched, backend, ri_method)


def _as_tensor(x, name):
    """x as a C-contiguous tensor without autograd history (a transposed, negative-stride or
    broadcast input is copied once here, so that nothing downstream sees its layout)."""
    if isinstance(x, torch.Tensor):
        t = x.detach().contiguous()
    else:
        arr = np.asarray(x)
        if arr.dtype.kind in "iub":
            arr = arr.astype(np.float64)
        # torch refuses to share read-only memory (it cannot promise not to write): copy those
        t = torch.from_numpy(np.ascontiguousarray(arr) if arr.flags.writeable else np.array(arr, order="C"))
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be float32 or float64, got {t.dtype}")
    return t


def _initial_path(setup, init, k):
    """Free points (B, K-1, D) of the starting path: linear, or the given ``init``."""
    z0, z1 = setup.z0, setup.z1
    if init is None:
        t = torch.arange(1, k, dtype=z0.dtype, device=z0.device) / k
        return (1 - t)[None, :, None] * z0[:, None] + t[None, :, None] * z1[:, None]
    init_kind = kind_of(init)
    if init_kind.library != setup.kind.library:
        raise TypeError(f"init is a {init_kind.library} array but the endpoints are "
                        f"{setup.kind.library} arrays")
    if init_kind.device != setup.kind.device:
        raise ValueError(f"init is on {init_kind.device} but the endpoints are on {setup.kind.device}; "
                         "fastgeo never moves data between devices")
    x = _as_tensor(init, "init").to(z0.dtype)
    if not setup.batched and x.ndim == 2:
        x = x[None]
    want = (z0.shape[0], k + 1, z0.shape[1])
    if tuple(x.shape) != want:
        raise ValueError(f"init must have shape {want[1:] if not setup.batched else want} "
                         f"(n_points = {k + 1} points of dimension {want[2]}), got {tuple(init.shape)}")
    check_finite(x, "init")
    for end, z, name in ((x[:, 0], z0, "z0"), (x[:, -1], z1, "z1")):
        scale = 1 + z.abs().amax()
        if ((end - z).abs().amax() > 1e-6 * scale) if z.numel() else False:
            which = "first" if name == "z0" else "last"
            raise ValueError(f"init's end points must equal the endpoints; its {which} points differ "
                             f"from {name}")
    return x[:, 1:-1].clone()


def _finish_baseline(setup, problem, path, method, start, status="baseline"):
    """Decode a given path (B, K+1, D) and assemble its result (no optimisation)."""
    b, n_points, d = path.shape
    problem.require_memory(b, n_points, *BASELINE_COPIES, f"{method} paths of {b} pair(s) of {n_points} points")
    with torch.no_grad():
        if n_points > 2:
            inner = problem.decode(path[:, 1:-1].reshape(-1, d), grad=False)
            inner = inner.reshape(b, n_points - 2, *problem.out_shape)
            l_inner, _ = problem.log_ri(path[:, 1:-1])
            if torch.isneginf(l_inner).any():
                bad = torch.isneginf(l_inner).any(dim=1).nonzero().flatten().tolist()
                warnings.warn(f"path(s) {bad} pass through points of zero density (log ri = -inf)",
                              UserWarning, stacklevel=3)
        else:
            inner = problem.g0.new_empty((b, 0, *problem.out_shape))
            l_inner = problem.l0.new_empty((b, 0))
        decoded = torch.cat([problem.g0[:, None], inner, problem.g1[:, None]], dim=1)
        log_ri = torch.cat([problem.l0[:, None], l_inner, problem.l1[:, None]], dim=1)
    energy = _energy(decoded, log_ri, setup.alpha, setup.backend)
    converged = torch.full((b,), status == "converged", dtype=torch.bool, device=path.device)
    iterations = torch.zeros(b, dtype=torch.int64, device=path.device)
    counts = torch.zeros((b, 1), dtype=torch.int64, device=path.device)
    gap = torch.full((b,), float("nan"), dtype=torch.float64, device=path.device)
    return _assemble(setup, problem, path, decoded, log_ri, energy[:, None], counts + 1, counts, counts, converged,
                     gap, (status,) * b, iterations, method, start)


def _energy(decoded, log_ri, alpha, backend):
    """E per path (float64); +inf for paths through zero density, without NaN warnings."""
    b = decoded.shape[0]
    if b == 0:
        return torch.zeros(0, dtype=torch.float64, device=decoded.device)
    zero = torch.isneginf(log_ri).any(dim=1)
    safe = torch.where(zero[:, None], torch.zeros_like(log_ri), log_ri)
    e = energy_and_grads(decoded, safe, alpha, backend=backend)[0].to(torch.float64)
    return torch.where(zero, torch.full_like(e, float("inf")), e)


def _assemble(setup, problem, path, decoded, log_ri, history, forward_history, vjp_history, jvp_history, converged,
              gap, status, iterations, method, start):
    b = path.shape[0]
    with torch.no_grad():
        distances = torch.linalg.vector_norm((decoded[:, 1:] - decoded[:, :-1]).flatten(2), dim=2)
        if b:
            # paths through zero density have index -inf; a path flagged "nan" on its very
            # first evaluation has no finite decoded outputs and gets NaN
            zero = torch.isneginf(log_ri).any(dim=1)
            broken = ~torch.isfinite(decoded.flatten(1).sum(dim=1))
            safe = torch.where(zero[:, None], torch.zeros_like(log_ri), log_ri)
            shape = (b,) + (1,) * (decoded.ndim - 1)
            clean = torch.where(broken.view(shape), 0.0, decoded)
            pli = path_log_index(clean, safe, backend=setup.backend).to(torch.float64)
            pli = torch.where(zero, torch.full_like(pli, -float("inf")), pli)
            pli = torch.where(broken, torch.full_like(pli, float("nan")), pli)
        else:
            pli = torch.zeros(0, dtype=torch.float64, device=path.device)
    energy = history[:, -1].clone()
    timings = {"generator_forward": problem.t_forward, "generator_vjp": problem.t_vjp,
               "generator_jvp": problem.t_jvp, "realism_index": problem.t_ri, "path_energy": problem.t_energy,
               "total": time.perf_counter() - start}
    out = dict(path=path, decoded=decoded, log_ri=log_ri, ri=log_ri.exp(), distances=distances, energy=energy,
               energy_history=history, forward_history=forward_history, vjp_history=vjp_history,
               jvp_history=jvp_history, gap=gap,
               path_log_index=pli, converged=converged, iterations=iterations)
    out = {k: _deliver(v, setup) for k, v in out.items()}
    return InterpolationResult(**out, status=status if setup.batched else status[0],
                               n_forward=problem.n_forward, n_vjp=problem.n_vjp, n_jvp=problem.n_jvp,
                               n_calls=problem.n_calls,
                               method=method, alpha=setup.alpha, timings=timings)


def _deliver(t, setup):
    """A result tensor in the caller's library, without the path axis for unbatched input."""
    t = t.detach()
    if not setup.batched:
        t = t[0]
    if setup.kind.library == "numpy":
        return t.cpu().numpy()
    return t


def _check_int(value, name, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_nonneg(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)
