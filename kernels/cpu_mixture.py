"""Numba CPU kernels of a Gaussian mixture's log-density and gradient (:mod:`.mixture`).

One row per iteration (``prange`` over rows), all components in one pass over the row
(:func:`.mixture.mixture_row`: online log-sum-exp, float64 accumulation). No fast-math:
the row function calls ``exp`` and ``log`` and must keep IEEE semantics
(tests/test_numba_flags.py).

``mixture_log_density`` runs rows in parallel, ``mixture_log_density_serial`` on the calling
thread (small batches: waking the thread pool costs more); each has a ``_strided`` twin for z
of any strides (the contiguous ones index faster, so contiguous z takes them). z may be
float32 or float64 and read-only (kernels/signatures.py); the parameters are the prior's
read-only float64 arrays.
"""
import numpy as np
from numba import prange, types

from .mixture import mixture_row
from .signatures import OnDemand


def _signature(layout, dtype):
    """The one signature for z of ``dtype`` (a name) and ``layout``; z read-only."""
    whiten = types.Array(types.float64, 3, "C", readonly=True)
    first = types.Array(types.int64, 2, "C", readonly=True)
    means = types.Array(types.float64, 2, "C", readonly=True)
    log_norm = types.Array(types.float64, 1, "C", readonly=True)
    out = types.Array(types.float64, 1, "C")
    grad = types.Array(types.float64, 2, "C")
    return types.void(types.Array(getattr(types, dtype), 2, layout, readonly=True), whiten, first, means, log_norm,
                      types.int64, out, grad)


def _contiguous(dtype):
    return _signature("C", dtype)


def _strided(dtype):
    return _signature("A", dtype)


def _rows(z, whiten, first, means, log_norm, want_grad, out, grad):
    """out[i] = log f(z_i), and grad[i] = grad log f(z_i) when want_grad (grad is (0, D) else)."""
    for i in prange(z.shape[0]):
        # int64: the parallel loop's index is unsigned where Numba outlines the loop body, and
        # mixture_row would compile a second time for it (the first call would pay for that compile)
        out[i] = mixture_row(z, np.int64(i), whiten, first, means, log_norm, want_grad, grad)


def _rows_serial(z, whiten, first, means, log_norm, want_grad, out, grad):
    # a function of its own: one cached under two sets of flags would share a cache entry
    for i in range(z.shape[0]):
        out[i] = mixture_row(z, i, whiten, first, means, log_norm, want_grad, grad)


# one dtype compiled at a time, on its first call (kernels/signatures.py: OnDemand)
mixture_log_density = OnDemand(_rows, _contiguous, parallel=True, cache=True)
mixture_log_density_strided = OnDemand(_rows, _strided, parallel=True, cache=True)
mixture_log_density_serial = OnDemand(_rows_serial, _contiguous, cache=True)
mixture_log_density_serial_strided = OnDemand(_rows_serial, _strided, cache=True)
