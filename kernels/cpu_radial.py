"""Numba CPU kernels of the radial realism index: row norms, then the scalar survival function.

The reduction reads each row once; it accumulates in float64 whatever the input dtype and
lets LLVM reassociate the sum (``fastmath`` reassoc/contract only: NaN and inf keep their
IEEE meaning, which the non-finite check below relies on). The flags sit on the reduction
alone, which calls nothing: Numba compiles a jitted callee with its caller's fastmath flags
when the caller is compiled first, and the survival functions must keep exact IEEE
semantics (tests/test_numba_flags.py).

While the core works out one row's survival function it hints the row a few kilobytes
ahead into the cache (cpu_prefetch.py), so that the memory keeps streaming meanwhile.

Two entry points share one row function: ``radial_index`` runs rows in parallel and
``radial_index_serial`` on the calling thread, because waking the thread pool costs more than
a small batch does (the solver calls the index on a few hundred points at a time).
"""
import math

import numpy as np
from numba import njit, prange

from . import codes
from .cpu_prefetch import prefetch_row, rows_ahead
from .radial import from_radius, radial_far, radial_log_density, radial_log_sf_and_dlog
from .rows import row_radius
from .signatures import OnDemand, reading

#: what to compute, as kernels/codes.py defines it (log ri is what the other tests leave)
WHAT_LOG_RI, WHAT_RI, WHAT_LOG_DENSITY = codes.WHAT_LOG_RI, codes.WHAT_RI, codes.WHAT_LOG_DENSITY

_FASTMATH = {"reassoc", "contract"}


def _signature(layout, dt):
    """y C-contiguous (layout "::1", vectorised) or of any strides (":"); read-only allowed."""
    return reading(f"void({dt}[:, {layout}], int64, float64, float64, float64, float64, int64, {dt}[::1], "
                   f"{dt}[:, ::1])", 0)


def _contiguous(dt):
    return _signature("::1", dt)


def _strided(dt):
    return _signature(":", dt)


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _sum_sq(row):
    """sum_j row[j]^2 in float64 (vectorised: LLVM inlines it with its fast-math flags)."""
    s = 0.0
    for j in range(row.shape[0]):
        v = np.float64(row[j])
        s += v * v
    return s


@njit(cache=True, inline="always")
def _radial_row(y, i, ahead, family, dim, p0, p1, log_alpha, what, out, grad):
    d = y.shape[1]
    s = _sum_sq(y[i])
    # the row `ahead` streams in while this one's survival function is computed
    prefetch_row(y, i + ahead)
    if not math.isfinite(s):
        for j in range(d):
            if not math.isfinite(y[i, j]):
                out[i] = np.nan  # the caller turns this mark into a ValueError
                return
    if from_radius(family, s):
        _far_row(y, i, family, dim, p0, p1, log_alpha, what, out, grad)
        return
    if what == WHAT_LOG_DENSITY:
        out[i] = radial_log_density(family, s, dim, p0, p1)
        return
    want_grad = grad.shape[0] > 0
    log_sf, dlog = radial_log_sf_and_dlog(family, s, dim, p0, p1, want_grad)
    out[i] = math.exp(log_sf + log_alpha) if what == WHAT_RI else log_sf + log_alpha
    if want_grad:
        g = 2.0 * dlog
        for j in range(d):
            grad[i, j] = g * np.float64(y[i, j])


@njit(cache=True)
def _far_row(y, i, family, dim, p0, p1, log_alpha, what, out, grad):
    """A finite row whose squared norm overflows (or underflows, where that matters): from its
    radius (kernels/radial.py: from_radius, radial_far)."""
    r = row_radius(y, i)
    want_grad = grad.shape[0] > 0 and what != WHAT_LOG_DENSITY
    v, dv = radial_far(family, r, dim, p0, p1, what == WHAT_LOG_DENSITY, want_grad)
    if what == WHAT_LOG_DENSITY:
        out[i] = v
        return
    out[i] = math.exp(v + log_alpha) if what == WHAT_RI else v + log_alpha
    if want_grad:
        for j in range(y.shape[1]):
            grad[i, j] = dv * (np.float64(y[i, j]) / r) if 0.0 < r < math.inf else 0.0


def _radial_index(y, family, dim, p0, p1, log_alpha, what, out, grad):
    """out[i] = f(|y_i|^2) for f = log ri + log_alpha, ri or log density (by ``what``).

    If grad has rows, grad[i] = d log ri / d y_i = 2 (d log ri / ds) y_i. A row holding NaN
    or inf gets out[i] = NaN, which the caller turns into a ValueError.
    """
    ahead = rows_ahead(y)
    for i in prange(y.shape[0]):
        _radial_row(y, i, ahead, family, dim, p0, p1, log_alpha, what, out, grad)


def _radial_index_serial(y, family, dim, p0, p1, log_alpha, what, out, grad):
    """:func:`radial_index` on the calling thread, for small batches."""
    ahead = rows_ahead(y)
    for i in range(y.shape[0]):
        _radial_row(y, i, ahead, family, dim, p0, p1, log_alpha, what, out, grad)


# contiguous rows and any strides, each with and without the thread pool, each compiled for
# a dtype when a call first needs it (kernels/signatures.py)
radial_index = OnDemand(_radial_index, _contiguous, parallel=True, cache=True)
radial_index_strided = OnDemand(_radial_index, _strided, parallel=True, cache=True)
radial_index_serial = OnDemand(_radial_index_serial, _contiguous, cache=True)
radial_index_serial_strided = OnDemand(_radial_index_serial, _strided, cache=True)
