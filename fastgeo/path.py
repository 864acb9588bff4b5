"""Path realism index and the energy of ri-optimal interpolation (MATH.md 2 and 3).

For a batch of B paths of K+1 points with decoded outputs G_j (flattened to N values) and
log realism indices l_j = log ri(x_j):

    log a_i = log alpha + logaddexp(l_i, l_{i+1}) - log 2,   w_i = (log a_i)^2,
    d_i = |G_{i+1} - G_i|^2,                                 E = sum_i w_i d_i            (eq. 3)
    dE/dG_j = 2 w_{j-1} (G_j - G_{j-1}) - 2 w_j (G_{j+1} - G_j)
    dE/dl_j = sum_{i in {j-1, j}} 2 log(a_i) d_i exp(l_j - logaddexp(l_i, l_{i+1}))
    log ri(path) ~ sum_i (logaddexp(l_i, l_{i+1}) - log 2) |G_{i+1} - G_i|             (MATH.md 2)

All of it is computed in log space, so points far outside the prior's mass (l = -1e5 or
-1e300) give finite results wherever the true value is representable. Edge cases:

- a segment that does not move (d_i = 0) contributes 0 to E, to both gradients and to
  log ri(path), whatever its weight;
- l_j = -inf (a point of zero density, e.g. outside a uniform prior's support): a segment
  between two such points has infinite weight, so E = +inf (and log ri(path) = -inf) when
  the path moves along it. There dE/dl = -inf at both its ends (making either end more
  realistic lowers the energy without bound) and dE/dG is the limit as the infinite weights
  grow together: +-inf by the sign of the infinite-weight differences, or the finite-weight
  terms where those cancel. A point of l = -inf next to a point of finite l only gets
  finite contributions (its share r_j / (r_i + r_{i+1}) is 0). Nothing is ever NaN.
- weights that overflow float64 although log a is finite (both ends below about -1e154)
  give E = +inf and correctly signed gradients (+-inf only where they overflow).

NaN anywhere, +inf in log_ri, inf in decoded, mismatched shapes, paths of fewer than 2
points or alpha outside (0, 1) raise ValueError/TypeError. Inputs are numpy arrays or torch
tensors (both of one library and device); outputs come back in that library, with the
dtype of the input they belong to (E and dE/dG: decoded's; dE/dl: log_ri's). Float32
inputs are accumulated in float64.

With torch tensors, :func:`path_energy` is differentiable (a ``torch.autograd.Function``):
when an input requires grad, the forward pass is the fused kernel that also yields the
gradients (one pass over the decoded outputs instead of two), and backward only scales
them by the incoming gradient.
"""
from __future__ import annotations

import math

import numpy as np

from ._lazy import LazyAutogradFunction
from . import _arrays, backends
from ._arrays import LOG_RI_ERROR, as_array, common_kind, is_torch
from .realism import check_alpha

LOG2 = math.log(2.0)


# -- inputs ---------------------------------------------------------------------------------
def _check_path_arrays(decoded, log_ri):
    """(kind, decoded as an array, log_ri as an array) after the shape checks."""
    kind = common_kind(decoded, log_ri, names=["decoded", "log_ri"])
    g, _ = as_array(decoded, "decoded")
    l, _ = as_array(log_ri, "log_ri")
    if g.ndim < 2 or l.ndim != 2 or tuple(g.shape[:2]) != tuple(l.shape):
        raise ValueError(
            f"decoded must have shape (B, K+1, ...) and log_ri shape (B, K+1); got {tuple(g.shape)} "
            f"and {tuple(l.shape)}"
        )
    if g.shape[1] < 2:
        raise ValueError(f"a path needs at least 2 points, got K+1 = {g.shape[1]}")
    return kind, g, l


def _log_ri_rows(l, check=True):
    """log_ri as C-contiguous float64; NaN or +inf raise (-inf is a point of zero density).

    GPU arrays stay on their device; the CUDA backend checks them in its kernels (without
    another synchronisation) and raises the same error, so ``check=False`` skips it there.
    """
    l64 = _arrays.contiguous_float64(l)
    if check or isinstance(l64, np.ndarray):
        found = _arrays.first_true(_arrays.isnan(l64) | (l64 == math.inf), l64)
        if found is not None:
            raise ValueError(LOG_RI_ERROR.format(index=found[0], value=found[1]))
    return l64


def _decoded_rows(g):
    """decoded as (B, K+1, N): a view where the strides allow, else a copy."""
    return g.reshape(g.shape[0], g.shape[1], -1)


# -- the shared core --------------------------------------------------------------------------
def _energy_core(decoded, log_ri, alpha, backend, need_grad_decoded):
    """(E, dE/d decoded or None, dE/d log_ri) in the inputs' array type.

    The one place that validates, routes to the backend and wraps the results; both the
    numpy API and the torch autograd Function call it. dE/d decoded (a write pass over an
    array the size of decoded) is formed only with need_grad_decoded; dE/d log_ri costs
    O(B K) once the segment lengths are known, so it always comes back.
    """
    log_alpha = math.log(check_alpha(alpha, upper_inclusive=False))
    kind, g, l = _check_path_arrays(decoded, log_ri)
    be = backends.select(backend, kind)
    g_dtype, l_dtype = _arrays.numpy_dtype(g), _arrays.numpy_dtype(l)
    if g.shape[0] == 0:
        energy, grad_g = _arrays.empty(kind, (0,), g_dtype), _arrays.empty(kind, g.shape, g_dtype)
        grad_l = _arrays.empty(kind, l.shape, l_dtype)
    else:
        l64 = _log_ri_rows(l, check=not kind.is_cuda)
        try:
            energy, grad_g, grad_l = be.path_energy(_decoded_rows(g), l64, log_alpha, need_grad_decoded)
        except ValueError:
            _arrays.check_finite(g, "decoded")  # name the offending entry in decoded's own shape
            raise
        if grad_g is not None:
            grad_g = grad_g.reshape(g.shape)
        with np.errstate(over="ignore"):  # beyond float32's range is -inf in float32
            grad_l = _arrays.astype(grad_l, l_dtype)
    grad_g = kind.wrap(grad_g) if need_grad_decoded else None
    return kind.wrap(energy), grad_g, kind.wrap(grad_l)


def energy_and_grads(decoded, log_ri, alpha, backend="auto"):
    """The path energy of eq. (3) and both its gradients, from one fused pass.

    Parameters
    ----------
    decoded : (B, K+1, ...) numpy array or torch tensor, float32 or float64: the decoded
        outputs G_j of the K+1 points of B paths (trailing dims are flattened to N).
    log_ri : (B, K+1), same library and device: l_j = log ri(x_j), in [-inf, 0].
    alpha : the scale of the index, in (0, 1).
    backend : "auto", "cpu" (the fused Numba kernel) or "reference" (float64 numpy).

    Returns
    -------
    (E (B,), dE/d decoded (shape of decoded), dE/d log_ri (B, K+1)) in the inputs' array
    type, without autograd history; E and dE/d decoded in decoded's dtype, dE/d log_ri in
    log_ri's. See the module docstring for the formulas and the edge cases.
    """
    return _energy_core(decoded, log_ri, alpha, backend, need_grad_decoded=True)


def solver_energy_and_grads(g0, g_free, g_end, log_ri, alpha, backend="auto", need_grad_decoded=True):
    """The energy of eq. (3) and its gradients in the solver's layout (internal).

    ``fastgeo.interpolate`` decodes only the free points of its paths in each iteration;
    this takes them as they come, with the fixed end points' outputs apart, and returns
    dE/dG for the free points only, C-contiguous, so that it can be the cotangent of the
    generator's output as it stands: the whole path is never copied into one array.

    Parameters
    ----------
    g0, g_end : (B, ...) outputs of the end points x_0 and x_K.
    g_free : (B, K-1, ...) outputs of the free points x_1 .. x_{K-1} (K-1 >= 0).
    log_ri : (B, K+1) log ri of all points; any values (see Returns).
    alpha, backend : as in :func:`energy_and_grads`.

    Returns
    -------
    (E, dE/d g_free, dE/d log_ri, w) in the inputs' array type:

    - E (B,) float64; per path, never raising: NaN where the path's inputs are not finite
      (NaN or inf in its outputs, NaN or +inf in its log ri), +inf where one of its points
      has log ri = -inf (zero density);
    - dE/d g_free, shaped like g_free and C-contiguous, in its dtype (None unless
      need_grad_decoded); dE/d log_ri (B, K+1) in log_ri's dtype; both 0 on paths whose E is
      not finite;
    - w (B, K) float64: the segment weights w_i = (log a_i)^2 (the one computation of them
      that the solver's preconditioner also uses).

    Shapes, libraries, dtypes and alpha are checked as in :func:`energy_and_grads`; the
    values are not (that is the point of this function).
    """
    log_alpha = math.log(check_alpha(alpha, upper_inclusive=False))
    kind = common_kind(g0, g_free, g_end, log_ri, names=["g0", "g_free", "g_end", "log_ri"])
    f, _ = as_array(g_free, "g_free")
    a, _ = as_array(g0, "g0")
    z, _ = as_array(g_end, "g_end")
    l, _ = as_array(log_ri, "log_ri")
    nb = f.shape[0] if f.ndim >= 2 else -1
    if (f.ndim < 2 or tuple(a.shape) != (nb, *f.shape[2:]) or tuple(z.shape) != tuple(a.shape)
            or tuple(l.shape) != (nb, f.shape[1] + 2)):
        raise ValueError(f"g_free must have shape (B, K-1, ...), g0 and g_end (B, ...) and log_ri (B, K+1); "
                         f"got {tuple(f.shape)}, {tuple(a.shape)}, {tuple(z.shape)} and {tuple(l.shape)}")
    if not (a.dtype == f.dtype == z.dtype):
        raise TypeError(f"g0, g_free and g_end must have one dtype, got {a.dtype}, {f.dtype} and {z.dtype}")
    be = backends.select(backend, kind)
    n = math.prod(f.shape[2:])
    k = f.shape[1] + 1
    if nb == 0:
        energy, log_a = _arrays.empty(kind, (0,), np.float64), _arrays.empty(kind, (0, k), np.float64)
        grad, dl = _arrays.empty(kind, f.shape, _arrays.numpy_dtype(f)), _arrays.empty(kind, l.shape, np.float64)
    else:
        energy, grad, dl, log_a = be.path_energy_ends(
            _arrays.contiguous(a.reshape(nb, n)), _arrays.contiguous(f.reshape(nb, k - 1, n)),
            _arrays.contiguous(z.reshape(nb, n)), _arrays.contiguous_float64(l), log_alpha, need_grad_decoded)
        if grad is not None:
            grad = grad.reshape(f.shape)
        with np.errstate(over="ignore"):  # beyond float32's range is -inf in float32
            dl = _arrays.astype(dl, _arrays.numpy_dtype(l))
    with np.errstate(over="ignore"):  # |log a| > 1e154: an infinite weight
        weights = log_a * log_a
    grad = kind.wrap(grad) if need_grad_decoded else None
    return kind.wrap(energy), grad, kind.wrap(dl), kind.wrap(weights)


def path_energy(decoded, log_ri, alpha, backend="auto"):
    """The energy E = sum_i w_i |G_{i+1} - G_i|^2 of eq. (3) of each path, shape (B,).

    Same arguments as :func:`energy_and_grads`. With torch tensors that require grad it is
    differentiable: ``path_energy(G, l, alpha).sum().backward()`` fills ``G.grad`` and
    ``l.grad`` (first order only), so torch optimizers can drive it.
    """
    common_kind(decoded, log_ri, names=["decoded", "log_ri"])
    if is_torch(decoded):
        import torch

        if torch.is_grad_enabled():
            want_g = bool(decoded.requires_grad)
            want_l = bool(log_ri.requires_grad)
            if want_g or want_l:
                return _PathEnergy.apply(decoded, log_ri, alpha, backend, want_g, want_l)[0]
    return _energy_core(decoded, log_ri, alpha, backend, need_grad_decoded=False)[0]


# -- torch autograd ---------------------------------------------------------------------------
def _scale_rows(grad, grad_energy):
    """grad_energy[b] * grad[b, ...], in place on our own gradient (no copy when all ones)."""
    scale = grad_energy.to(grad.dtype)
    if bool((scale == 1).all()):
        return grad  # the usual E.sum().backward(): hand the fused gradient over as it is
    shape = (-1,) + (1,) * (grad.ndim - 1)
    grad.mul_(scale.reshape(shape))
    zero = scale == 0
    if bool(zero.any()):  # a path the loss ignores gets 0, even where its gradient is inf
        grad[zero] = 0
    return grad


def _torch_function():
    import torch

    class PathEnergy(torch.autograd.Function):
        """E of eq. (3); forward also yields the gradients that were asked for (fused)."""

        @staticmethod
        def forward(decoded, log_ri, alpha, backend, want_grad_decoded, want_grad_log_ri):
            energy, grad_g, grad_l = _energy_core(decoded, log_ri, alpha, backend, want_grad_decoded)
            return energy, grad_g, (grad_l if want_grad_log_ri else None)

        @staticmethod
        def setup_context(ctx, inputs, output):
            decoded, log_ri, alpha, backend, _, _ = inputs
            _, grad_g, grad_l = output
            ctx.params = (alpha, backend)
            ctx.save_for_backward(decoded, log_ri)
            ctx.mark_non_differentiable(*[t for t in (grad_g, grad_l) if t is not None])
            # the gradient outputs get no incoming gradient: do not fill zeros of their size
            ctx.set_materialize_grads(False)
            # Kept as plain attributes and released in backward, so that autograd can adopt
            # the gradient as .grad without copying it.
            ctx.fused = (grad_g, grad_l)

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, grad_energy, _grad_g_out, _grad_l_out):
            need_g, need_l = ctx.needs_input_grad[:2]
            grad_g, grad_l = ctx.fused
            ctx.fused = (None, None)
            if grad_energy is None or not (need_g or need_l):
                return (None,) * 6
            if (need_g and grad_g is None) or (need_l and grad_l is None):
                # a second backward (retain_graph) or an input that forward was not told of
                decoded, log_ri = ctx.saved_tensors
                _, grad_g, grad_l = _energy_core(decoded.detach(), log_ri.detach(), *ctx.params,
                                                 need_grad_decoded=need_g)
            return (_scale_rows(grad_g, grad_energy) if need_g else None,
                    _scale_rows(grad_l, grad_energy) if need_l else None,
                    None, None, None, None)

    return PathEnergy


_PathEnergy = LazyAutogradFunction(_torch_function)


# -- path realism index -------------------------------------------------------------------------
def path_log_index(decoded, log_ri, backend="auto"):
    """log ri(path) ~ sum_i log((r_i + r_{i+1})/2) |G_{i+1} - G_i| per path, shape (B,).

    Same inputs as :func:`energy_and_grads` (no alpha). A segment that does not move adds 0;
    one that moves between two points of l = -inf gives -inf (ri(path) = 0). In decoded's
    array type and dtype. With torch tensors that require grad the result is differentiable
    (computed with torch operations); otherwise the backend's pass computes it.
    """
    common_kind(decoded, log_ri, names=["decoded", "log_ri"])
    if is_torch(decoded):
        import torch

        if torch.is_grad_enabled() and (decoded.requires_grad or log_ri.requires_grad):
            return _torch_path_log_index(decoded, log_ri)
    kind, g, l = _check_path_arrays(decoded, log_ri)
    be = backends.select(backend, kind)
    if g.shape[0] == 0:
        return kind.wrap(_arrays.empty(kind, (0,), _arrays.numpy_dtype(g)))
    l64 = _log_ri_rows(l, check=not kind.is_cuda)
    try:
        return kind.wrap(be.path_log_index(_decoded_rows(g), l64))
    except ValueError:
        _arrays.check_finite(g, "decoded")
        raise


def _torch_path_log_index(decoded, log_ri):
    """The differentiable torch form of :func:`path_log_index` (same checks, same edges)."""
    import torch

    _, g, l = _check_path_arrays(decoded, log_ri)
    _arrays.check_finite(g, "decoded")
    _log_ri_rows(l)
    step = torch.linalg.vector_norm((decoded[:, 1:] - decoded[:, :-1]).flatten(2).to(torch.float64), dim=2)
    l64 = log_ri.to(torch.float64)
    log_rbar = torch.logaddexp(l64[:, :-1], l64[:, 1:]) - LOG2
    # where() twice: the masked branch must not see -inf * 0 in backward either
    moving = step > 0
    terms = torch.where(moving, torch.where(moving, log_rbar, 0.0) * step, 0.0)
    return terms.sum(dim=1).to(decoded.dtype)
