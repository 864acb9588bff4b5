"""The realism index of points (MATH.md 1): ``ri``, ``log_ri``, ``grad_log_ri``.

    ri(z) = P_{X~f}( f(X) <= f(z) ),        ri_alpha(z) = alpha * ri(z),  0 < alpha <= 1.

Everything is computed in log space. The public functions accept z of shape (..., D) as a
numpy array or a torch tensor and return the same type, dtype and device; with torch
tensors that require grad, ``ri`` and ``log_ri`` are differentiable (their backward calls
``grad_log_ri``). They are thin wrappers over the evaluator (:mod:`fastgeo._evaluator`),
which checks the request, picks the backend and routes the prior's index spec to it.

A Dask array z (numpy or CuPy blocks, the last axis in one chunk) gives a lazy Dask array of
the same chunks (less the last axis for ``ri`` and ``log_ri``) and block type, each block equal
to the in-memory call on it; arguments are checked when the graph is built, and the prior
(with its KDE table, built first) is one key of the graph (:mod:`fastgeo._dask`).
"""
from __future__ import annotations

from . import _dask, _evaluator
from ._evaluator import METHODS, Request, check_alpha, compute
from .priors.base import check_device
from .priors.convert import as_prior

__all__ = ["METHODS", "Request", "check_alpha", "compute", "evaluate", "grad_log_ri", "index_spec", "log_ri",
           "log_ri_and_grad", "ri"]


def _checked(prior, z=None):
    """The prior (a torch or frozen scipy distribution converted by
    :func:`fastgeo.priors.as_prior`), checked to be on z's device when it came from a torch
    distribution."""
    prior = as_prior(prior)
    if z is not None:
        check_device(prior, z)
    return prior


def index_spec(prior, method="auto"):
    """The index spec that computes ``prior``'s realism index by ``method`` (see
    :func:`fastgeo._evaluator.index_spec`)."""
    return _evaluator.index_spec(_checked(prior), method)


def evaluate(z, prior, what="log_ri", alpha=1.0, backend="auto", method="auto", need_grad=False,
             keep_graph=True):
    """``what`` in {"log_ri", "ri", "log_density"} (and its gradient) for z (..., D), as z's
    array type (see :func:`fastgeo._evaluator.evaluate`); for a Dask array, a lazy Dask array (and
    gradient) of its chunks and block type, computed per block (see :mod:`fastgeo._dask`)."""
    if _dask.is_dask_array(z):
        return _dask.evaluate(z, _checked(prior, z._meta), what, alpha, backend, method, need_grad)
    return _evaluator.evaluate(z, _checked(prior, z), what, alpha, backend, method, need_grad, keep_graph)


def log_ri(z, prior, alpha=1.0, backend="auto", method="auto"):
    """log ri_alpha(z) = log alpha + log P(f(X) <= f(z)) for z of shape (..., D).

    Finite wherever the prior's density is positive, however far z lies from the prior's
    mass; -inf only where the density is zero (outside a uniform prior's support).

    Parameters
    ----------
    z : numpy array, torch tensor, CuPy array or Dask array of shape (..., D), float32 or
        float64. A Dask array (its last axis in one chunk, else ``z.rechunk({-1: -1})``) gives a
        lazy Dask array with z's chunks less the last axis and z's block type.
    prior : a :mod:`fastgeo.priors` prior of dimension D, or a torch distribution or frozen scipy
        distribution of event shape (D,) (see :func:`fastgeo.priors.from_distribution`).
    alpha : scale of the index, in (0, 1].
    backend : "auto", "cpu", "reference" (or "cuda").
    method : "auto", "exact", "erf" (Gaussian priors; the paper's eq. 1) or "kde".
    """
    return evaluate(z, prior, "log_ri", alpha, backend, method)


def ri(z, prior, alpha=1.0, backend="auto", method="auto"):
    """ri_alpha(z) = alpha * P_{X~f}(f(X) <= f(z)), in [0, alpha]; see :func:`log_ri` (a Dask
    array z gives a lazy Dask array of z's chunks less the last axis)."""
    return evaluate(z, prior, "ri", alpha, backend, method)


def grad_log_ri(z, prior, alpha=1.0, backend="auto", method="auto"):
    """The gradient of log ri with respect to z: same shape, type, dtype and device as z (a Dask
    array z gives a lazy Dask array of z's chunks).

    For radial priors ``2 (d log S / ds) W^T W (z - mu)``, with the hazard formed as
    exp(log pdf - log sf); for the KDE ``(g_W / G_W)(log f(z)) grad log f(z)``; 0 for uniform
    priors (log ri is piecewise constant). It does not depend on alpha.
    """
    return evaluate(z, prior, "log_ri", alpha, backend, method, need_grad=True)[1]


def log_ri_and_grad(z, prior, alpha=1.0, backend="auto", method="auto"):
    """(log ri, grad log ri) in one pass over z. For a Dask array z, two lazy Dask arrays (z's
    chunks less the last axis, and z's chunks) that share one task per block: computing both
    runs the kernel once per block."""
    return evaluate(z, prior, "log_ri", alpha, backend, method, need_grad=True)
