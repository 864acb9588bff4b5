"""Numba CPU kernel of the uniform-box realism index (MATH.md 1.2): an indicator."""
import math

import numpy as np
from numba import njit, prange


def _signatures():
    return [f"void({dt}[:, {lay}], float64[::1], float64[::1], float64, int64, {dt}[::1])"
            for dt in ("float32", "float64") for lay in ("::1", ":")]


@njit(_signatures(), parallel=True, cache=True)
def box_index(z, low, high, log_alpha, exp_out, out):
    """out[i] = log_alpha (or alpha) inside the closed box, -inf (or 0) outside, NaN if z_i is
    not finite."""
    m, d = z.shape
    inside_value = math.exp(log_alpha) if exp_out else log_alpha
    outside_value = 0.0 if exp_out else -math.inf
    for i in prange(m):
        inside = True
        finite = True
        for j in range(d):
            v = np.float64(z[i, j])
            if not math.isfinite(v):
                finite = False
            elif v < low[j] or v > high[j]:
                inside = False
        out[i] = (inside_value if inside else outside_value) if finite else np.nan
