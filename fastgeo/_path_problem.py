"""The energy of a batch of latent paths and its gradient, one generator call per evaluation.

For B paths of K+1 latent points x_0 .. x_K (endpoints fixed) the energy of eq. (3)
(MATH.md 3) is E = sum_i w_i d_i with d_i = |G(x_{i+1}) - G(x_i)|^2. Its gradient with
respect to a free point x_j (0 < j < K) is

    dE/dx_j = J_G(x_j)^T dE/dG_j + dE/dl_j * grad log ri(x_j),

where ``fastgeo.path.solver_energy_and_grads`` gives dE/dG and dE/dl, ``fastgeo.log_ri_and_grad``
gives grad log ri, and the first term is a single vector-Jacobian product (one backward)
over all free points of all paths in the evaluation. The endpoints are decoded once.

:class:`PathProblem` evaluates the energy at trial points of any subset of the paths (the
solvers drop converged paths from the batch) and computes the gradient only when asked, so
that a rejected line-search trial costs a forward pass and no backward pass. It counts the
generator's forward and VJP points and times them, which is what the benchmarks report.
"""
from __future__ import annotations

import contextlib
import functools
import math
import time
import warnings

import numpy as np
import torch

from ._arrays import kind_of
from ._arrays import is_out_of_memory, require_bytes
from ._errors import GeneratorError, one_line
from ._specs import Radial
from .path import solver_energy_and_grads
from .realism import log_ri_and_grad


class PathProblem:
    """Endpoints, generator, prior and alpha of a batch of paths; evaluates trial paths.

    Parameters
    ----------
    generator : torch callable mapping (M, D) latents to (M, ...) outputs, row by row.
    z0, z1 : torch tensors (B, D), the endpoints (their device and dtype are the path's).
    prior, alpha, backend, ri_method : as in :func:`fastgeo.interpolate`.
    synchronize : wait for the device around generator calls so the timings are exact on
        GPUs (costs a little latency; only for profiling).
    repeats : the batch holds every pair this many times, pair-block after pair-block (row
        r * B + b is pair b: the starts of fastgeo._starts); the endpoints are decoded, scored
        and reported once per pair.
    """

    def __init__(self, generator, z0, z1, prior, alpha, backend="auto", ri_method="auto", synchronize=False,
                 repeats=1):
        self.generator = generator
        self.prior = prior
        self.alpha = alpha
        self.backend = backend
        self.ri_method = ri_method
        self.synchronize = synchronize and z0.device.type == "cuda"
        self.device, self.dtype = z0.device, z0.dtype
        self.n_forward = 0  # generator forward points
        self.n_vjp = 0  # points whose vector-Jacobian product was taken
        self.n_jvp = 0  # Jacobian-vector products (a point times a tangent) taken by forward mode
        self.n_calls = 0  # generator calls
        self.t_forward = 0.0
        self.t_vjp = 0.0
        self.t_jvp = 0.0  # forward-mode Jacobians (Gauss-Newton directions)
        self.t_ri = 0.0  # fastgeo.log_ri_and_grad
        self.t_energy = 0.0  # the path energy (fastgeo.path.solver_energy_and_grads)
        b = z0.shape[0]
        self.dim = z0.shape[1]
        ends = torch.cat([z0, z1])
        self._probe = z0[:1].detach()  # a point for has_forward_mode
        with torch.no_grad():
            g_ends = self.decode(ends, grad=False)
        if not torch.isfinite(g_ends).all():
            # a path is bad when either of its endpoints has a non-finite output
            bad = (~torch.isfinite(g_ends.reshape(2, b, -1)).all(dim=2)).any(dim=0)
            raise GeneratorError(f"the generator returned NaN or inf at the endpoints of path(s) "
                                 f"{bad.nonzero().flatten().tolist()}")
        self.out_shape = tuple(g_ends.shape[1:])
        l_ends, _ = self.log_ri(ends)
        zero = torch.isneginf(l_ends).reshape(2, b).any(dim=0)
        if zero.any():
            raise ValueError(
                f"endpoint(s) of path(s) {zero.nonzero().flatten().tolist()} have zero density under "
                f"{prior!r} (log ri = -inf): no path from them has a finite energy"
            )
        tile = (repeats,) + (1,) * (g_ends.ndim - 1)
        self.g0, self.g1 = g_ends[:b].repeat(tile), g_ends[b:].repeat(tile)
        self.l0, self.l1 = l_ends[:b].repeat(repeats), l_ends[b:].repeat(repeats)

    def require_memory(self, n_paths, n_points, latent_copies, output_copies, what, plus_bytes=0):
        """A MemoryError naming ``what`` when ``n_paths`` paths of ``n_points`` points, held
        ``latent_copies`` times as latents and ``output_copies`` times as decoded outputs (and
        ``plus_bytes`` more), do not fit in the paths' device memory (a lower bound: the
        generator's own activations come on top), so that an impossible request fails at once
        instead of being killed."""
        need = path_bytes(n_paths, n_points, self.dim, math.prod(self.out_shape), self.g0.element_size(),
                          latent_copies, output_copies)
        require_bytes(kind_of(self.g0), need + plus_bytes, what)

    def require_gauss_newton_memory(self, n_paths, n_free, what, pair_vectors=0):
        """A MemoryError naming ``what`` when the Gauss-Newton phase of ``n_paths`` paths of
        ``n_free`` free points cannot fit: its float64 D x D blocks a point, GN_BLOCK_COPIES of
        them alive at once (J^T J, J_j^T J_{j+1}, the realism Hessian and term, the system's
        blocks, their Cholesky factors, and the factors held between refreshes), the
        ``pair_vectors`` float64 D-vectors a point of its curvature pairs, and one chunk of
        Jacobians."""
        require_bytes(kind_of(self.g0), self.gauss_newton_bytes(n_paths, n_free, pair_vectors), what)

    def gauss_newton_bytes(self, n_paths, n_free, pair_vectors=0):
        """The bytes :meth:`require_gauss_newton_memory` asks for."""
        per_path = n_free * self.dim * 8 * (self.dim * GN_BLOCK_COPIES + pair_vectors)
        jacobians = min(JACOBIAN_BYTES, n_paths * self._jacobian_bytes(n_free, self.g0.element_size()))
        return n_paths * per_path + jacobians

    def has_forward_mode(self):
        """Whether the generator can be differentiated in forward mode (one torch.func.jvp at
        an endpoint, not counted), as :meth:`jacobian_products` needs."""
        x = self._probe
        try:
            with _forward_mode():
                out = torch.func.jvp(self.generator, (x,), (torch.ones_like(x),))[1]
        except Exception as err:
            if is_out_of_memory(err):
                raise
            return False
        return tuple(out.shape) == (1, *self.out_shape)

    # -- generator ---------------------------------------------------------------------------
    def _sync(self):
        if self.synchronize:
            torch.cuda.synchronize(self.device)

    def decode(self, x, grad):
        """G(x) for x of shape (M, D); with ``grad`` the output keeps its autograd graph."""
        self._sync()
        start = time.perf_counter()
        try:
            with torch.set_grad_enabled(grad):
                out = self.generator(x)
        except Exception as err:
            if is_out_of_memory(err):
                raise
            raise GeneratorError(f"the generator raised {one_line(err)} on a batch of shape {tuple(x.shape)} "
                                 f"(call {self.n_calls + 1})") from err
        self._sync()
        self.t_forward += time.perf_counter() - start
        self.n_calls += 1
        self.n_forward += x.shape[0]
        check_output(out, x, grad)
        return out

    def log_ri(self, z):
        """(log ri, grad log ri) of latents z (..., D), unscaled (alpha enters the energy)."""
        start = time.perf_counter()
        out = log_ri_and_grad(z.detach(), self.prior, backend=self.backend, method=self.ri_method)
        self.t_ri += time.perf_counter() - start
        return out

    def jacobian_products(self, x):
        """(J_j^T J_j (A, K-1, D, D), J_j^T J_{j+1} (A, K-2, D, D)), float64, of the generator's
        Jacobians J_j at the free points x (A, K-1, D) of A paths.

        Forward mode: torch.func.jvp of the generator over the D basis tangents (vmapped), so
        each point costs D Jacobian-vector products (counted in ``n_jvp``); whole paths are
        taken in chunks that keep J within ``JACOBIAN_BYTES``. Raises ForwardModeError when
        the generator cannot be differentiated in forward mode.
        """
        a, n_free, d = x.shape
        n_out = math.prod(self.out_shape)
        chunk = max(1, JACOBIAN_BYTES // max(self._jacobian_bytes(n_free, x.element_size()), 1))
        basis = torch.eye(d, dtype=x.dtype, device=x.device)
        jtj = torch.empty((a, n_free, d, d), dtype=torch.float64, device=x.device)
        jtj_next = torch.empty((a, max(n_free - 1, 0), d, d), dtype=torch.float64, device=x.device)
        for start in range(0, a, chunk):
            xs = x[start:start + chunk].detach().reshape(-1, d)
            m = xs.shape[0]

            def push(v, xs=xs):
                return torch.func.jvp(self.generator, (xs,), (v.expand_as(xs),))[1]

            self._sync()
            begin = time.perf_counter()
            try:
                with _forward_mode():
                    tangents = torch.func.vmap(push)(basis)  # (D, m, ...)
            except Exception as err:
                if is_out_of_memory(err):
                    raise
                raise ForwardModeError(f"forward-mode Jacobians of the generator (torch.func.jvp) failed: "
                                       f"{one_line(err)}") from err
            self._sync()
            self.t_jvp += time.perf_counter() - begin
            self.n_jvp += m * d
            if tuple(tangents.shape) != (d, m, *self.out_shape):
                raise ForwardModeError(f"forward-mode Jacobians of the generator have shape "
                                       f"{tuple(tangents.shape)}, expected {(d, m, *self.out_shape)}")
            jac = tangents.reshape(d, -1, n_free, n_out).permute(1, 2, 3, 0).to(torch.float64)  # (p, K-1, N, D)
            del tangents
            stop = start + jac.shape[0]
            jtj[start:stop] = jac.mT @ jac
            if n_free > 1:
                jtj_next[start:stop] = jac[:, :-1].mT @ jac[:, 1:]
        return jtj, jtj_next

    def _jacobian_bytes(self, n_free, itemsize):
        """Bytes of one path's Jacobians (n_free points) as computed, and again in float64."""
        return n_free * math.prod(self.out_shape) * self.dim * (itemsize + 8)

    def log_ri_hessian(self, x):
        """(grad log ri (A, K-1, D), its Hessian (A, K-1, D, D)), float64, at points x
        (A, K-1, D): the Hessian by central differences of the gradient (step 1e-5 (1 +
        max |x_j|)), symmetrised; entries that are not finite (a difference that left the
        prior's support) count as 0."""
        a, n_free, d = x.shape
        flat = x.detach().reshape(-1, d).to(torch.float64)
        h = 1e-5 * (1.0 + flat.abs().amax(dim=1))
        eye = torch.eye(d, dtype=torch.float64, device=x.device)
        shift = h[:, None, None] * eye
        both = torch.cat([(flat[:, None] + shift).reshape(-1, d), (flat[:, None] - shift).reshape(-1, d), flat])
        _, grads = self.log_ri(both)
        n = flat.shape[0]
        plus, minus, grad = grads[:n * d], grads[n * d:2 * n * d], grads[2 * n * d:]
        hess = (plus - minus).reshape(n, d, d) / (2 * h[:, None, None])  # row k: d grad / d x_k
        hess = _finite_or_zero(hess)
        hess = 0.5 * (hess + hess.mT)
        return _finite_or_zero(grad).reshape(a, n_free, d), hess.reshape(a, n_free, d, d)

    @functools.cached_property
    def _isotropic_center(self):
        spec = self.prior.index()
        if not (isinstance(spec, Radial) and spec.isotropic):
            return None
        loc = spec.loc if spec.loc is not None else np.zeros(self.dim)
        return torch.from_numpy(np.array(loc, dtype=np.float64)).to(self.device)

    def isotropic_center(self):
        """The center (D,) float64 of the prior where ri depends on the distance to it alone
        (a radial prior whose W is a multiple of I), else None; found and moved to the paths'
        device once (every Gauss-Newton refresh asks)."""
        return self._isotropic_center

    def log_ri_radial_curvature(self, x, center):
        """(grad log ri (A, K-1, D), tangential (A, K-1), radial (A, K-1), unit (A, K-1, D)),
        float64, at points x (A, K-1, D) of a prior whose ri depends on rho = |x - center| alone
        (:meth:`isotropic_center`), where

            grad^2 log ri = tangential (I - u u^T) + radial u u^T,   u = (x - center) / rho,

        tangential = (grad log ri . u) / rho and radial the second derivative along u by a
        central difference of the gradient (step h = 1e-5 (1 + max |x_j|)): 3 evaluations of
        the index a point where :meth:`log_ri_hessian` takes 2 D + 1. Within h of the center,
        where u is undefined, u = e_1 and tangential = radial. Values that are not finite (a
        difference that left the prior's support) count as 0."""
        a, n_free, d = x.shape
        flat = x.detach().reshape(-1, d).to(torch.float64)
        offset = flat - center
        rho = torch.linalg.vector_norm(offset, dim=1)
        h = 1e-5 * (1.0 + flat.abs().amax(dim=1))
        near = rho <= h
        first = torch.zeros_like(flat)
        first[:, 0] = 1.0
        unit = torch.where(near[:, None], first, offset / torch.where(near, 1.0, rho)[:, None])
        both = torch.cat([flat + h[:, None] * unit, flat - h[:, None] * unit, flat])
        _, grads = self.log_ri(both)
        n = flat.shape[0]
        slope = torch.linalg.vecdot(grads, torch.cat([unit, unit, unit]))
        radial = (slope[:n] - slope[n:2 * n]) / (2 * h)
        tangential = torch.where(near, radial, slope[2 * n:] / torch.where(near, 1.0, rho))
        return (_finite_or_zero(grads[2 * n:]).reshape(a, n_free, d), _finite_or_zero(tangential).reshape(a, n_free),
                _finite_or_zero(radial).reshape(a, n_free), unit.reshape(a, n_free, d))

    # -- energy ------------------------------------------------------------------------------
    def evaluate(self, idx, x):
        """Energies of paths ``idx`` (A,) whose free points are ``x`` (A, K-1, D).

        ``idx`` may be None for all B paths in order (no gathers of the endpoint outputs).
        Returns an :class:`Evaluation`. Its ``energy`` is +inf for a path with a point of
        zero density, and for a path marked ``failed``: its decoded outputs or realism
        indices are not finite (the generator returned NaN or inf there).
        """
        a, n_free, d = x.shape
        leaf = x.detach().reshape(a * n_free, d).requires_grad_(True)
        out = self.decode(leaf, grad=True)
        decoded = out.detach().reshape(a, n_free, *self.out_shape)  # a view unless out's strides forbid it
        log_ri, grad_log_ri = self.log_ri(x)
        l0, l1, g0, g1 = ((self.l0, self.l1, self.g0, self.g1) if idx is None else
                          (self.l0[idx], self.l1[idx], self.g0[idx], self.g1[idx]))
        l_full = torch.cat([l0[:, None], log_ri, l1[:, None]], dim=1)
        start = time.perf_counter()
        # the free points' outputs as the generator gave them, the endpoints' apart: no copy of
        # the whole path; NaN or inf anywhere comes back as a NaN energy of that path only
        energy, d_decoded, d_log_ri, weights = solver_energy_and_grads(g0, decoded, g1, l_full, self.alpha,
                                                                       backend=self.backend)
        self.t_energy += time.perf_counter() - start
        # no data-dependent branches here: on a GPU each would wait for the device
        failed = torch.isnan(energy)
        if grad_log_ri.numel():
            # the largest |entry| per path is NaN or inf iff an entry is (max propagates NaN):
            # one reduction, cheaper than isfinite + all on the solver's small batches
            failed |= ~torch.isfinite(grad_log_ri.flatten(1).abs().amax(dim=1))
        energy = torch.where(failed, float("inf"), energy)
        return Evaluation(self, leaf, out, decoded, l_full, grad_log_ri, energy, failed, d_decoded, d_log_ri,
                          weights)


class ForwardModeError(GeneratorError):
    """The generator cannot be differentiated in forward mode (torch.func.jvp): in-place
    operations on its inputs, hooks, or operations without a forward-mode derivative."""


#: the most bytes the Jacobians of one chunk of paths may take (PathProblem.jacobian_products)
JACOBIAN_BYTES = 256 * 2 ** 20
#: float64 D x D blocks a free point that the Gauss-Newton phase holds at once, at most: 10
#: while a refresh forms its system, and the two held factors (_solver/gauss_newton.py)
GN_BLOCK_COPIES = 12


def _finite_or_zero(t):
    """t with its non-finite entries 0: differences of log ri that left the prior's support
    (the Hessian's differences and the radial curvature's)."""
    return torch.where(torch.isfinite(t), t, 0.0)


@contextlib.contextmanager
def _forward_mode():
    """Where the generator is pushed forward (torch.func.jvp): no autograd graph, and quiet
    about torch's own forward-mode decompositions, which use torch.jit.script on first use."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=DeprecationWarning)
        yield


class Evaluation:
    """The result of :meth:`PathProblem.evaluate`; :meth:`gradient` runs the backward pass."""

    def __init__(self, problem, leaf, out, decoded, log_ri, grad_log_ri, energy, failed, d_decoded, d_log_ri,
                 weights):
        self.problem = problem
        self._leaf, self._out = leaf, out
        self.decoded = decoded  # (A, K-1, ...) free points only
        self.log_ri = log_ri  # (A, K+1) including the endpoints
        self._grad_log_ri = grad_log_ri
        self.energy = energy  # (A,) float64
        self.failed = failed  # (A,) bool
        self.weights = weights  # (A, K) float64 segment weights w_i (of eq. 3)
        self._d_decoded, self._d_log_ri = d_decoded, d_log_ri

    def gradient(self):
        """dE/dx of the free points, (A, K-1, D): one VJP through the generator for all rows."""
        p = self.problem
        a, n_free = self.decoded.shape[:2]
        # dE/dG of the free points, C-contiguous in the output's own shape: the cotangent as it
        # stands (its rows are 0 on failed paths, so the VJP stays finite there)
        cotangent = self._d_decoded.view(self._out.shape)
        p._sync()
        start = time.perf_counter()
        try:
            (vjp,) = torch.autograd.grad(self._out, self._leaf, grad_outputs=cotangent)
        except Exception as err:  # the generator's backward: its graph, its custom functions
            if is_out_of_memory(err):
                raise
            shape = tuple(self._leaf.shape)
            raise GeneratorError(f"the generator's backward pass (the vector-Jacobian product) raised "
                                 f"{one_line(err)} on a batch of shape {shape}") from err
        p._sync()
        p.t_vjp += time.perf_counter() - start
        p.n_vjp += a * n_free
        self._out = self._d_decoded = None  # the graph is spent; the pooled buffer may be reused
        grad = torch.addcmul(vjp.view(a, n_free, -1), self._d_log_ri[:, 1:-1, None].to(vjp.dtype), self._grad_log_ri)
        return grad.masked_fill_(self.failed[:, None, None], 0.0)  # grad is a fresh tensor


def path_bytes(n_paths, n_points, dim, n_out, itemsize, latent_copies, output_copies):
    """Bytes of ``n_paths`` paths of ``n_points`` points held ``latent_copies`` times as latents
    (``dim`` values a point) and ``output_copies`` times as decoded outputs (``n_out`` values)."""
    return n_paths * n_points * (latent_copies * dim + output_copies * n_out) * itemsize


def check_output(out, x, grad):
    """The generator must return a float tensor (M, ...) with one row per input row, on x's
    device (a GeneratorError if not)."""
    if not isinstance(out, torch.Tensor):
        raise GeneratorError(f"the generator must return a torch tensor, got {type(out).__name__}")
    if out.ndim < 2 or out.shape[0] != x.shape[0]:
        raise GeneratorError(f"the generator returned shape {tuple(out.shape)} for a batch of shape "
                             f"{tuple(x.shape)}; it must map latents (M, D) to outputs (M, ...) with at "
                             "least one output axis (a scalar per point: return shape (M, 1))")
    if out.device != x.device:
        raise GeneratorError(f"the generator returned a tensor on {out.device} for latents on {x.device}; "
                             "fastgeo never moves data between devices")
    if not out.is_floating_point():
        raise GeneratorError(f"the generator must return floating-point outputs, got {out.dtype}")
    if grad and x.shape[0] > 0 and not out.requires_grad:
        raise GeneratorError("the generator's output does not depend on its input through torch autograd; "
                             "interpolate needs a differentiable torch generator")
