"""Numba CPU kernels of a Gaussian mixture's log-density and gradient (:mod:`.mixture`).

One row per iteration (``prange`` over rows), all components in one pass over the row
(:func:`.mixture.mixture_row`: online log-sum-exp, float64 accumulation). No fast-math:
the row function calls ``exp`` and ``log`` and must keep IEEE semantics
(tests/test_numba_flags.py).

``mixture_log_density`` runs rows in parallel, ``mixture_log_density_serial`` on the calling
thread (small batches: waking the thread pool costs more). z may be float32 or float64, of
any strides, and read-only (kernels/signatures.py); the parameters are the prior's
read-only float64 arrays.
"""
from numba import njit, prange, types

from .mixture import mixture_row


def _signatures():
    whiten = types.Array(types.float64, 3, "C", readonly=True)
    means = types.Array(types.float64, 2, "C", readonly=True)
    log_norm = types.Array(types.float64, 1, "C", readonly=True)
    out = types.Array(types.float64, 1, "C")
    grad = types.Array(types.float64, 2, "C")
    return [types.void(types.Array(dt, 2, "A", readonly=True), whiten, means, log_norm, types.int64, out, grad)
            for dt in (types.float32, types.float64)]


def _rows(z, whiten, means, log_norm, want_grad, out, grad):
    """out[i] = log f(z_i), and grad[i] = grad log f(z_i) when want_grad (grad is (0, D) else)."""
    for i in prange(z.shape[0]):
        out[i] = mixture_row(z, i, whiten, means, log_norm, want_grad, grad)


def _rows_serial(z, whiten, means, log_norm, want_grad, out, grad):
    # a function of its own: one cached under two sets of flags would share a cache entry
    for i in range(z.shape[0]):
        out[i] = mixture_row(z, i, whiten, means, log_norm, want_grad, grad)


mixture_log_density = njit(_signatures(), parallel=True, cache=True)(_rows)
mixture_log_density_serial = njit(_signatures(), cache=True)(_rows_serial)
