"""Numba CPU kernel of the uniform-box realism index (MATH.md 1.2): an indicator."""
import math

import numpy as np
from numba import njit, prange

from .signatures import OnDemand, reading


def _signature(layout, dt):
    """z C-contiguous (layout "::1") or of any strides (":"); read-only inputs allowed."""
    return reading(f"void({dt}[:, {layout}], float64[::1], float64[::1], float64, int64, {dt}[::1])", 0, 1, 2)


def _contiguous(dt):
    return _signature("::1", dt)


def _strided(dt):
    return _signature(":", dt)


@njit(cache=True, inline="always")
def _box_row(z, i, low, high, inside_value, outside_value, out):
    inside = True
    for j in range(z.shape[1]):
        v = np.float64(z[i, j])
        if not math.isfinite(v):
            out[i] = np.nan  # the caller turns this mark into a ValueError
            return
        if v < low[j] or v > high[j]:
            inside = False
    out[i] = inside_value if inside else outside_value


def _box_index(z, low, high, log_alpha, exp_out, out):
    """out[i] = log_alpha (or alpha) inside the closed box, -inf (or 0) outside, NaN if z_i is
    not finite."""
    inside_value = math.exp(log_alpha) if exp_out else log_alpha
    outside_value = 0.0 if exp_out else -math.inf
    for i in prange(z.shape[0]):
        _box_row(z, i, low, high, inside_value, outside_value, out)


def _box_index_serial(z, low, high, log_alpha, exp_out, out):
    """:func:`box_index` on the calling thread, for small batches."""
    inside_value = math.exp(log_alpha) if exp_out else log_alpha
    outside_value = 0.0 if exp_out else -math.inf
    for i in range(z.shape[0]):
        _box_row(z, i, low, high, inside_value, outside_value, out)


# contiguous rows and any strides, each with and without the thread pool (kernels/signatures.py)
box_index = OnDemand(_box_index, _contiguous, parallel=True, cache=True)
box_index_strided = OnDemand(_box_index, _strided, parallel=True, cache=True)
box_index_serial = OnDemand(_box_index_serial, _contiguous, cache=True)
box_index_serial_strided = OnDemand(_box_index_serial, _strided, cache=True)
