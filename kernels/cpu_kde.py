"""Numba CPU kernels of the KDE realism-index estimator (MATH.md 1.3): table build and queries.

The scalar math lives in :mod:`.kde`; these kernels only loop over it in parallel. See
:class:`fastgeo.kde.KDETable` for the table's layout and how its range and spacing are chosen.
"""
import math

import numpy as np
from numba import njit, prange, types

from .kde import (
    COL_CDF, COL_DPDF, COL_PDF, EXACT_CDF, EXACT_PDF, exact_sums, hermite5, hermite5_coefficients,
    kde_point, nearest, point_derivatives,
)

#: columns of the table-point array: log G, (log G)', (log G)'', log S, (log S)', (log S)'',
#: log g, (log g)', (log g)'', (log g)''', distance (in bandwidths) to the nearest sample (0
#: outside the samples' range: log g bends sharply only in gaps between samples)
POINT_COLUMNS = 11


@njit("void(float64[::1], float64[::1], float64[::1], float64, float64, float64, float64, "
      "float64[:, ::1])", parallel=True, cache=True)
def kde_table_points(vals, cnts, cum, n, h, x0, step, points):
    """points[k] = the exact values and derivatives at x0 + k step (see POINT_COLUMNS).

    The builder passes step = dx / 2: even rows are the interpolation nodes, odd rows the cell
    midpoints where each interpolant is checked.
    """
    log_n = math.log(n)
    log_nh = math.log(n * h)
    for k in prange(points.shape[0]):
        x = x0 + k * step
        lg, ls, lp, mu, var, k3 = exact_sums(x, vals, cnts, cum, h, n)
        r = point_derivatives(lg, ls, lp, mu, var, k3, h, log_n, log_nh)
        for c in range(10):
            points[k, c] = r[c]
        inside = vals[0] < x < vals[vals.shape[0] - 1]  # a gap has samples on both sides
        points[k, 10] = abs(x - vals[nearest(vals, x)]) / h if inside else 0.0


@njit("void(float64[:, ::1], float64, float64, int64, float64, float64, float64, float64, "
      "float64[:, ::1], uint8[::1])", parallel=True, cache=True)
def kde_table_fit(points, dx, h, j_half, tol_cdf, tol_pdf, tol_dpdf, far_pdf, coef, flags):
    """Quintic Hermite coefficients of every cell, and its flags from the mid-cell check.

    Cell j interpolates log G (j < j_half) or log S in coef[j, 0:6], log g in coef[j, 6:12]
    and (log g)' in coef[j, 12:18]. It is flagged EXACT_CDF when the first misses the exact
    mid-cell value by more than tol_cdf max(1, |value|), EXACT_PDF when log g misses by more
    than tol_pdf max(1, |value|) or (log g)' by more than tol_dpdf (|(log g)'| + 1/h), or the
    midpoint lies more than far_pdf bandwidths from every sample (a gap, where log g may bend
    too sharply for any check at one point).
    """
    for j in prange(coef.shape[0]):
        a = 2 * j
        mid = a + 1
        b = a + 2
        c = 0 if j < j_half else 3
        hermite5_coefficients(points[a, c], points[a, c + 1], points[a, c + 2],
                              points[b, c], points[b, c + 1], points[b, c + 2], dx, coef, j, COL_CDF)
        hermite5_coefficients(points[a, 6], points[a, 7], points[a, 8],
                              points[b, 6], points[b, 7], points[b, 8], dx, coef, j, COL_PDF)
        hermite5_coefficients(points[a, 7], points[a, 8], points[a, 9],
                              points[b, 7], points[b, 8], points[b, 9], dx, coef, j, COL_DPDF)
        flag = 0
        want = points[mid, c]
        if not abs(hermite5(coef, j, COL_CDF, 0.5) - want) <= tol_cdf * max(1.0, abs(want)):
            flag |= EXACT_CDF
        want = points[mid, 6]
        slope = points[mid, 7]
        err = abs(hermite5(coef, j, COL_PDF, 0.5) - want)
        err_slope = abs(hermite5(coef, j, COL_DPDF, 0.5) - slope)
        if (not err <= tol_pdf * max(1.0, abs(want)) or not err_slope <= tol_dpdf * (abs(slope) + 1.0 / h)
                or points[mid, 10] > far_pdf):
            flag |= EXACT_PDF
        flags[j] = flag


def _query_signatures():
    # the table's arrays are read-only (fastgeo.kde.KDETable); x may have any stride
    vec = types.Array(types.float64, 1, "C", readonly=True)
    coef = types.Array(types.float64, 2, "C", readonly=True)
    flags = types.Array(types.uint8, 1, "C", readonly=True)
    f64, i64 = types.float64, types.int64
    sigs = []
    for dt in (types.float32, types.float64):
        sigs.append(types.void(types.Array(dt, 1, "A"), i64, i64, vec, vec, vec, f64, f64, f64, f64,
                               f64, f64, coef, flags, i64, types.Array(dt, 1, "C"), types.Array(dt, 1, "C")))
    return sigs


@njit(_query_signatures(), parallel=True, cache=True)
def kde_query(x, what, want_grad, vals, cnts, cum, n, h, log_n, log_nh, x0, inv_dx, coef, flags, j_half,
              out, dout):
    """out[i] = cdf, log cdf, pdf or log pdf (by ``what``) at x[i], and dout[i] its x-derivative
    when ``want_grad``. NaN in x gives NaN in out, for the caller to report."""
    for i in prange(x.shape[0]):
        v, d = kde_point(np.float64(x[i]), what, want_grad, vals, cnts, cum, n, h, log_n, log_nh, x0,
                         inv_dx, coef, flags, j_half)
        out[i] = v
        if want_grad:
            dout[i] = d
