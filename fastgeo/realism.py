"""The realism index of points (MATH.md 1): ``ri``, ``log_ri``, ``grad_log_ri``.

    ri(z) = P_{X~f}( f(X) <= f(z) ),        ri_alpha(z) = alpha * ri(z),  0 < alpha <= 1.

Everything is computed in log space. The public functions accept z of shape (..., D) as a
numpy array or a torch tensor and return the same type, dtype and device; with torch
tensors that require grad, ``ri`` and ``log_ri`` are differentiable (their backward calls
``grad_log_ri``). The work is done by the backend that :func:`fastgeo.backends.select`
picks; this module only routes an index spec (``prior.index()``) to it.
"""
from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from ._lazy import LazyAutogradFunction
from . import backends
from ._arrays import as_array, check_finite, check_last_dim, is_torch
from ._device import (add_scalar, astype, empty, every, exp, first_nonfinite, first_true, free_bytes,
                      is_out_of_memory, isfinite, isnan, numpy_dtype, on_device, where, zeros_like)
from .kernels import families
from .priors.base import NO_KDE, Estimated, Indicator, Prior, Radial
from .priors.radial import whiten, whiten_grad

METHODS = ("auto", "exact", "erf", "kde")


def check_alpha(alpha, upper_inclusive=True) -> float:
    ok = isinstance(alpha, numbers.Real) and not isinstance(alpha, bool) and math.isfinite(alpha) and alpha > 0
    ok = ok and (alpha <= 1 if upper_inclusive else alpha < 1)
    if not ok:
        interval = "(0, 1]" if upper_inclusive else "(0, 1)"
        raise ValueError(f"alpha must be a number in {interval}, got {alpha!r}")
    return float(alpha)


def index_spec(prior, method="auto"):
    """The index spec that computes ``prior``'s realism index by ``method``.

    method: "auto" (closed form where MATH.md gives one, else the KDE), "exact" (closed form
    only), "erf" (the paper's large-D approximation, eq. 1; Gaussian priors only) or "kde".
    """
    if not isinstance(prior, Prior):
        raise TypeError(f"prior must be a fastgeo.priors.Prior, got {type(prior).__name__}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    spec = prior.index()
    if method == "kde":
        if not prior.has_kde:
            raise ValueError(NO_KDE.format(prior=prior))
        return Estimated(prior)
    if method == "exact" and isinstance(spec, Estimated):
        raise ValueError(f"{prior!r} has no closed-form realism index; use method='kde' or 'auto'")
    if method == "erf":
        if not prior.has_erf_approximation:
            raise ValueError(f"the erf approximation (paper eq. 1) is defined for Gaussian priors, not {prior!r}")
        return dataclasses.replace(spec, family=families.CHI2_ERF)
    return spec


def _compute(z2, prior, spec, what, log_alpha, need_grad, backend, kind):
    """(out, grad) for a 2-D array z2 whose rows are points; grad = d out / d z.

    z2 is a numpy array, or on a GPU a torch tensor or CuPy array: everything here is done
    with z2's own library (fastgeo._device), on its device.
    """
    if isinstance(spec, Radial):
        params = on_device(spec, kind, "loc", "whiten")
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf in z: a ValueError below
            # float64 when whitening applies: the kernels accumulate in float64 anyway
            y = whiten(spec, z2, params)
        try:
            out, grad = backend.radial(y, spec.family, spec.dim, spec.p0, spec.p1, log_alpha, what,
                                       need_grad and what != "log_density")
        except ValueError:
            found = first_nonfinite(y)
            if first_nonfinite(z2) is None and found is not None:  # z is finite: the whitening overflowed
                row = found[0][0]
                raise ValueError(f"the whitened point W (z - mean) of row {row} of z overflows float64 "
                                 f"(largest |z| entry {float(abs(z2[row]).max()):.3g}): beyond the range this "
                                 "prior's index can be computed in (MATH.md 1.1)") from None
            raise
        out = astype(out, numpy_dtype(z2))
        if what == "log_density":
            out = add_scalar(out, spec.log_det_whiten)
            if need_grad:
                check_finite(z2)
                grad = prior._log_prob_np(z2, True)[1].astype(z2.dtype)
        elif need_grad:
            grad = astype(whiten_grad(spec, grad, params), z2.dtype)
            if what == "ri":
                grad = grad * out[:, None]
        return out, grad
    if isinstance(spec, Indicator):
        if what == "log_density":  # 1/volume inside the box, 0 outside: the same indicator
            log_alpha, what = -float(np.sum(np.log(spec.high - spec.low))), "log_ri"
        low, high = on_device(spec, kind, "low", "high")
        out = backend.box(z2, low, high, log_alpha, what)
        return out, (zeros_like(z2) if need_grad else None)
    # Estimated: ri(z) ~ G_W(log f(z)); grad log ri = (g_W / G_W)(log f) * grad log f
    return _estimated(z2, prior, spec, what, log_alpha, need_grad, backend, kind)


def _estimated(z2, prior, spec, what, log_alpha, need_grad, backend, kind):
    """The KDE estimator (MATH.md 1.3) in z2's library: log f by the prior, then the KDE."""
    if not kind.is_cuda or what == "log_density":
        _check_finite_any(z2)
    lp, glp = prior._log_prob_array(z2, need_grad, kind)
    if what == "log_density":
        if kind.is_cuda:
            _raise_if_nan_density(lp, prior)
        return astype(lp, z2.dtype), (None if glp is None else astype(glp, z2.dtype))
    if kind.is_cuda:
        # a row of z holding NaN or inf becomes a NaN query: the KDE kernel's one flag read
        # reports it, and the error then names z's entry (no synchronisation of its own)
        lp = where(every(isfinite(z2), axis=1), lp, float("nan"))
    try:
        log_cdf, dlog = backend.kde(lp, spec.prior.kde, "log_cdf", need_grad)
    except ValueError:
        if kind.is_cuda:
            _raise_if_nonfinite(z2)
            _raise_if_nan_density(lp, prior)
        raise
    out = add_scalar(log_cdf, log_alpha)
    grad = None
    if need_grad:
        # 0 where log f = -inf (ri = 0 there), whatever the prior's gradient holds at such rows
        grad = where(isfinite(lp)[:, None], dlog[:, None] * glp, 0.0)
    if what == "ri":
        out = exp(out)
        if need_grad:
            grad = grad * out[:, None]
    return astype(out, z2.dtype), (None if grad is None else astype(grad, z2.dtype))


def _check_finite_any(z2):
    if isinstance(z2, np.ndarray):
        check_finite(z2)
    else:
        _raise_if_nonfinite(z2)


def _raise_if_nan_density(lp, prior):
    found = first_true(isnan(lp), lp)
    if found is not None:
        raise ValueError(f"the log-density of {prior!r} is NaN at row {found[0][0]} of z") from None


def _check_gpu_support(spec, what, need_grad):
    """GPU inputs to paths whose CUDA kernels are not built yet: say so before any work."""
    from .backends.cuda import NOT_YET_ON_GPU

    if isinstance(spec, Radial) and what == "log_density" and need_grad:
        raise NotImplementedError(NOT_YET_ON_GPU.format(what="The gradient of log_prob"))


def _chunk_rows(kind, z2, spec, need_grad) -> int:
    """Rows per call such that the call's temporaries fit in free device memory (GPU only).

    Whitening works in float64 (two (rows, D) temporaries, two more for the gradient's
    pull-back), and the outputs take another (rows, D) with the gradient. The budget is half
    the free memory; an out-of-memory error halves the chunk again (see _compute_rows).
    """
    m, d = z2.shape
    free = free_bytes(kind)
    if free is None:
        return m
    itemsize = numpy_dtype(z2).itemsize
    whitened = isinstance(spec, Radial) and (spec.loc is not None or spec.whiten is not None)
    per_row = itemsize * (1 + d * (2 if need_grad else 1))
    if whitened:
        per_row += d * (8 * 2 + itemsize) * (2 if need_grad else 1)
    if isinstance(spec, Estimated):  # log f and its gradient, the KDE's outputs and scratch
        per_row += spec.prior._log_prob_bytes_per_row(need_grad) + 8 * 4
    return max(1, min(m, (free // 2) // per_row))


def _raise_if_nonfinite(z2):
    """Name the first NaN/inf of z itself: backends see the whitened rows (and one chunk), so
    their message may point at an entry of W (z - loc) or at a row index within a chunk."""
    found = first_nonfinite(z2)
    if found is not None:
        raise ValueError(f"z contains NaN or inf (first at index {found[0]}: {found[1]})") from None


def _compute_rows(z2, prior, spec, what, log_alpha, need_grad, backend, kind):
    """_compute over the rows of z2, in chunks where one call would not fit in memory.

    Rows are independent, so chunks change the results at most by the rounding of the
    whitening's matrix product (BLAS blocks differently for fewer rows). An out-of-memory
    error halves the chunk and tries again: huge batches are processed, not refused.
    """
    m = z2.shape[0]
    rows = min(m, _chunk_rows(kind, z2, spec, need_grad))
    args = (prior, spec, what, log_alpha, need_grad, backend, kind)
    out = grad = None
    start = 0
    while True:
        stop = min(m, start + rows)
        try:
            o, g = _compute(z2[start:stop], *args)
        except ValueError:
            _raise_if_nonfinite(z2)
            raise
        except Exception as err:
            if not is_out_of_memory(err) or rows <= 1:
                raise
            rows = max(1, rows // 2)
            continue
        if stop - start == m:  # the whole batch in one call: its result as it stands
            return o, g
        if out is None:
            out = empty(kind, (m,), numpy_dtype(o))
            grad = None if g is None else empty(kind, z2.shape, numpy_dtype(g))
        out[start:stop] = o
        if g is not None:
            grad[start:stop] = g
        start = stop
        if start == m:
            return out, grad


def evaluate(z, prior, what="log_ri", alpha=1.0, backend="auto", method="auto", need_grad=False,
             keep_graph=True):
    """Compute ``what`` in {"log_ri", "ri", "log_density"} (and its gradient) for z (..., D).

    Returns the output (and the gradient, when need_grad) as z's array type. With a torch z
    that requires grad and ``keep_graph``, the output is differentiable.
    """
    if keep_graph and is_torch(z) and z.requires_grad and not need_grad:
        import torch

        if torch.is_grad_enabled():
            return _Evaluate.apply(z, prior, what, alpha, backend, method)
    log_alpha = math.log(check_alpha(alpha))
    spec = index_spec(prior, method)
    arr, kind = as_array(z, "z")
    check_last_dim(arr, prior.dim)
    batch = tuple(arr.shape[:-1])
    be = backends.select(backend, kind)
    if kind.is_cuda:
        _check_gpu_support(spec, what, need_grad)
    z2 = arr if arr.ndim == 2 else arr.reshape(-1, prior.dim)
    if z2.shape[0] == 0:
        out = empty(kind, batch, numpy_dtype(arr))
        grad = empty(kind, arr.shape, numpy_dtype(arr)) if need_grad else None
    else:
        out, grad = _compute_rows(z2, prior, spec, what, log_alpha, need_grad, be, kind)
        out = out.reshape(batch)
        if need_grad:
            grad = grad.reshape(arr.shape)
    if kind.library == "numpy" and out.ndim == 0:
        out = out[()]
    if need_grad:
        return kind.wrap(out), kind.wrap(grad)
    return kind.wrap(out)


def _torch_function():
    import torch

    class Evaluate(torch.autograd.Function):
        """ri / log ri / log f of a torch tensor, with the analytic gradient in backward."""

        @staticmethod
        def forward(z, prior, what, alpha, backend, method):
            return evaluate(z, prior, what, alpha, backend, method, keep_graph=False)

        @staticmethod
        def setup_context(ctx, inputs, output):
            z, prior, what, alpha, backend, method = inputs
            ctx.params = (prior, what, alpha, backend, method)
            ctx.save_for_backward(z)

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, grad_out):
            if not ctx.needs_input_grad[0]:
                return (None,) * 6
            (z,) = ctx.saved_tensors
            prior, what, alpha, backend, method = ctx.params
            _, grad = evaluate(z.detach(), prior, what, alpha, backend, method, need_grad=True)
            return (grad_out.unsqueeze(-1) * grad,) + (None,) * 5

    return Evaluate


_Evaluate = LazyAutogradFunction(_torch_function)


def log_ri(z, prior, alpha=1.0, backend="auto", method="auto"):
    """log ri_alpha(z) = log alpha + log P(f(X) <= f(z)) for z of shape (..., D).

    Finite wherever the prior's density is positive, however far z lies from the prior's
    mass; -inf only where the density is zero (outside a uniform prior's support).

    Parameters
    ----------
    z : numpy array or torch tensor of shape (..., D), float32 or float64.
    prior : a :mod:`fastgeo.priors` prior of dimension D.
    alpha : scale of the index, in (0, 1].
    backend : "auto", "cpu", "reference" (or "cuda").
    method : "auto", "exact", "erf" (Gaussian priors; the paper's eq. 1) or "kde".
    """
    return evaluate(z, prior, "log_ri", alpha, backend, method)


def ri(z, prior, alpha=1.0, backend="auto", method="auto"):
    """ri_alpha(z) = alpha * P_{X~f}(f(X) <= f(z)), in [0, alpha]; see :func:`log_ri`."""
    return evaluate(z, prior, "ri", alpha, backend, method)


def grad_log_ri(z, prior, alpha=1.0, backend="auto", method="auto"):
    """The gradient of log ri with respect to z: same shape, type, dtype and device as z.

    For radial priors ``2 (d log S / ds) W^T W (z - mu)``, with the hazard formed as
    exp(log pdf - log sf); for the KDE ``(g_W / G_W)(log f(z)) grad log f(z)``; 0 for uniform
    priors (log ri is piecewise constant). It does not depend on alpha.
    """
    return evaluate(z, prior, "log_ri", alpha, backend, method, need_grad=True)[1]


def log_ri_and_grad(z, prior, alpha=1.0, backend="auto", method="auto"):
    """(log ri, grad log ri) in one pass over z."""
    return evaluate(z, prior, "log_ri", alpha, backend, method, need_grad=True)
