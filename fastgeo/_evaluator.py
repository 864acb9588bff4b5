"""The evaluator: realism index and log-density of points, dispatched to a backend.

One call is a :class:`Request` (what to compute for which prior, by which method, with or
without the gradient) applied to z of shape (..., D) by :func:`evaluate`: the input's kind
is read by the array layer, the backend chosen by :func:`fastgeo.backends.select`, the rows
split into chunks that fit in device memory, and each chunk computed by the index spec's
route (:class:`~fastgeo._specs.Radial`, ``Indicator``, ``Estimated``) in z's own library
on its device. A torch z that requires grad gets a differentiable output through
:class:`_TorchIndex`, whose forward and backward call the same core, never this module's
public entry again. :mod:`fastgeo.realism` and :meth:`fastgeo.priors.Prior.log_prob` are
thin wrappers over :func:`evaluate`.
"""
from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from . import backends
from .backends.base import WHATS
from ._arrays import (add_scalar, as_array, astype, check_finite, check_last_dim, empty, every, exp,
                      first_nonfinite, first_true, free_bytes, is_out_of_memory, is_torch, isfinite, isnan,
                      nonfinite_message, numpy_dtype, on_device, where, zeros_like)
from ._lazy import LazyAutogradFunction
from ._specs import NO_KDE, Estimated, Indicator, Radial
from .kernels import families

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
    if not callable(getattr(prior, "index", None)) or not hasattr(prior, "dim"):
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


@dataclasses.dataclass(frozen=True)
class Request:
    """What one evaluation computes: ``what`` (and its gradient d what / dz when
    ``need_grad``) for ``prior`` through ``spec``, scaled by alpha, on ``backend``."""

    prior: object
    spec: object
    what: str
    log_alpha: float
    backend: str = "auto"
    need_grad: bool = False

    @classmethod
    def make(cls, prior, what="log_ri", alpha=1.0, backend="auto", method="auto", need_grad=False):
        """The checked request (ValueError/TypeError naming a bad argument)."""
        if what not in WHATS:
            raise ValueError(f"what must be one of {WHATS}, got {what!r}")
        log_alpha = math.log(check_alpha(alpha))
        return cls(prior, index_spec(prior, method), what, log_alpha, backend, bool(need_grad))


@dataclasses.dataclass(frozen=True)
class _Call:
    """A request bound to the input's kind and the backend that runs it."""

    request: Request
    backend: backends.Backend
    kind: object


# -- the entry ----------------------------------------------------------------------------------

def evaluate(z, prior, what="log_ri", alpha=1.0, backend="auto", method="auto", need_grad=False,
             keep_graph=True):
    """Compute ``what`` in {"log_ri", "ri", "log_density"} (and its gradient) for z (..., D).

    Returns the output (and the gradient, when need_grad) as z's array type. With a torch z
    that requires grad and ``keep_graph``, the output is differentiable.
    """
    request = Request.make(prior, what, alpha, backend, method, need_grad)
    if keep_graph and not need_grad and is_torch(z) and z.requires_grad:
        import torch

        if torch.is_grad_enabled():
            return _TorchIndex.apply(z, request)
    return compute(z, request)


def compute(z, request: Request):
    """:func:`evaluate` of a checked request, without autograd: (out, grad) when
    ``request.need_grad``, else out, as z's array type."""
    prior = request.prior
    arr, kind = as_array(z, "z")
    check_last_dim(arr, prior.dim)
    batch = tuple(arr.shape[:-1])
    call = _Call(request, backends.select(request.backend, kind), kind)
    if kind.is_cuda:
        _check_gpu_support(request)
    z2 = arr if arr.ndim == 2 else arr.reshape(-1, prior.dim)
    if z2.shape[0] == 0:
        out = empty(kind, batch, numpy_dtype(arr))
        grad = empty(kind, arr.shape, numpy_dtype(arr)) if request.need_grad else None
    else:
        out, grad = _compute_rows(z2, call)
        out = out.reshape(batch)
        if request.need_grad:
            grad = grad.reshape(arr.shape)
    if kind.library == "numpy" and out.ndim == 0:
        out = out[()]
    if request.need_grad:
        return kind.wrap(out), kind.wrap(grad)
    return kind.wrap(out)


def _torch_function():
    import torch

    class TorchIndex(torch.autograd.Function):
        """ri / log ri / log f of a torch tensor, with the analytic gradient in backward."""

        @staticmethod
        def forward(z, request):
            return compute(z, request)

        @staticmethod
        def setup_context(ctx, inputs, output):
            z, request = inputs
            ctx.request = request
            ctx.save_for_backward(z)

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, grad_out):
            if not ctx.needs_input_grad[0]:
                return None, None
            (z,) = ctx.saved_tensors
            _, grad = compute(z.detach(), dataclasses.replace(ctx.request, need_grad=True))
            return grad_out.unsqueeze(-1) * grad, None

    return TorchIndex


_TorchIndex = LazyAutogradFunction(_torch_function)


# -- rows, in chunks that fit ---------------------------------------------------------------------

def _check_gpu_support(request):
    """GPU inputs to paths whose CUDA kernels are not built yet: say so before any work."""
    from .backends.cuda import NOT_YET_ON_GPU

    if isinstance(request.spec, Radial) and request.what == "log_density" and request.need_grad:
        raise NotImplementedError(NOT_YET_ON_GPU.format(what="The gradient of log_prob"))


def chunk_rows(kind, z2, spec, need_grad) -> int:
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
    per_row = itemsize * (1 + d * (2 if need_grad else 1))
    if isinstance(spec, Radial) and spec.whitens:
        per_row += d * (8 * 2 + itemsize) * (2 if need_grad else 1)
    if isinstance(spec, Estimated):  # log f and its gradient, the KDE's outputs and scratch
        per_row += spec.prior.log_density_bytes_per_row(need_grad) + 8 * 4
    return max(1, min(m, (free // 2) // per_row))


def _compute_rows(z2, call):
    """_compute over the rows of z2, in chunks where one call would not fit in memory.

    Rows are independent, so chunks change the results at most by the rounding of the
    whitening's matrix product (BLAS blocks differently for fewer rows). An out-of-memory
    error halves the chunk and tries again: huge batches are processed, not refused.
    """
    m = z2.shape[0]
    rows = min(m, chunk_rows(call.kind, z2, call.request.spec, call.request.need_grad))
    out = grad = None
    start = 0
    while True:
        stop = min(m, start + rows)
        try:
            o, g = _compute(z2[start:stop], call)
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
            out = empty(call.kind, (m,), numpy_dtype(o))
            grad = None if g is None else empty(call.kind, z2.shape, numpy_dtype(g))
        out[start:stop] = o
        if g is not None:
            grad[start:stop] = g
        start = stop
        if start == m:
            return out, grad


def _raise_if_nonfinite(z2):
    """Name the first NaN/inf of z itself: backends see the whitened rows (and one chunk), so
    their message may point at an entry of W (z - loc) or at a row index within a chunk."""
    found = first_nonfinite(z2)
    if found is not None:
        raise ValueError(nonfinite_message("z", *found)) from None


# -- one chunk, by the index spec's route ------------------------------------------------------------

def _compute(z2, call):
    """(out, grad) for a 2-D array z2 whose rows are points; grad = d out / d z, in z2's
    library on its device."""
    spec = call.request.spec
    if isinstance(spec, Radial):
        return _radial(z2, call)
    if isinstance(spec, Indicator):
        return _indicator(z2, call)
    return _estimated(z2, call)


def _radial(z2, call):
    """The closed form of MATH.md 1.1 on the whitened rows y = W (z - loc)."""
    request, spec = call.request, call.request.spec
    what, need_grad = request.what, request.need_grad
    params = on_device(spec, call.kind, "loc", "whiten")
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf in z: a ValueError below
        # float64 when whitening applies: the kernels accumulate in float64 anyway
        y = spec.whitened(z2, params)
    try:
        out, grad = call.backend.radial(y, spec.family, spec.dim, spec.p0, spec.p1, request.log_alpha, what,
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
            grad = request.prior.log_density(z2, True, call.kind)[1].astype(z2.dtype)
    elif need_grad:
        grad = astype(spec.pull_back(grad, params), z2.dtype)
        if what == "ri":
            grad = grad * out[:, None]
    return out, grad


def _indicator(z2, call):
    """The indicator of the box (MATH.md 1.2); its gradient is 0."""
    request, spec = call.request, call.request.spec
    log_alpha, what = request.log_alpha, request.what
    if what == "log_density":  # 1/volume inside the box, 0 outside: the same indicator
        log_alpha, what = -float(np.sum(np.log(spec.high - spec.low))), "log_ri"
    low, high = on_device(spec, call.kind, "low", "high")
    out = call.backend.box(z2, low, high, log_alpha, what)
    return out, (zeros_like(z2) if request.need_grad else None)


def _estimated(z2, call):
    """The KDE estimator (MATH.md 1.3): log f by the prior, then the KDE;
    grad log ri = (g_W / G_W)(log f) grad log f."""
    request, kind = call.request, call.kind
    prior, what, need_grad = request.prior, request.what, request.need_grad
    if not kind.is_cuda or what == "log_density":
        check_finite(z2)
    if getattr(prior.log_density, "takes_backend", False):  # the mixtures: computed by the chosen backend
        lp, glp = prior.log_density(z2, need_grad, kind, backend=call.backend)
    else:
        lp, glp = prior.log_density(z2, need_grad, kind)
    if what == "log_density":
        if kind.is_cuda:
            _raise_if_nan_density(lp, prior)
        return astype(lp, z2.dtype), (None if glp is None else astype(glp, z2.dtype))
    if kind.is_cuda:
        # a row of z holding NaN or inf becomes a NaN query: the KDE kernel's one flag read
        # reports it, and the error then names z's entry (no synchronisation of its own)
        lp = where(every(isfinite(z2), axis=1), lp, float("nan"))
    try:
        log_cdf, dlog = call.backend.kde(lp, request.spec.prior.kde, "log_cdf", need_grad)
    except ValueError:
        if kind.is_cuda:
            _raise_if_nonfinite(z2)
            _raise_if_nan_density(lp, prior)
        raise
    out = add_scalar(log_cdf, request.log_alpha)
    grad = None
    if need_grad:
        # 0 where log f = -inf (ri = 0 there), whatever the prior's gradient holds at such rows
        grad = where(isfinite(lp)[:, None], dlog[:, None] * glp, 0.0)
    if what == "ri":
        out = exp(out)
        if need_grad:
            grad = grad * out[:, None]
    return astype(out, z2.dtype), (None if grad is None else astype(grad, z2.dtype))


def _raise_if_nan_density(lp, prior):
    found = first_true(isnan(lp), lp)
    if found is not None:
        raise ValueError(f"the log-density of {prior!r} is NaN at row {found[0][0]} of z") from None
