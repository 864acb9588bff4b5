"""Numba CPU kernels of the KDE realism-index estimator (MATH.md 1.3): table build and queries.

The scalar math lives in :mod:`.kde`; these kernels only loop over it in parallel. See
:class:`fastgeo.kde.KDETable` for the table's layout and how its range and spacing are chosen.
"""
import math

import numpy as np
from numba import njit, prange, types

from .signatures import on_demand, reading
from .kde import (
    COL_CDF, COL_DPDF, COL_LOG_CDF, COL_PDF, EXACT_CDF, EXACT_PDF, NCOEF, exact_sums, hermite5,
    hermite5_coefficients, kde_point, nearest, point_derivatives, table_point,
)

#: columns of the table-point array: log G, (log G)', (log G)'', log S, (log S)', (log S)'',
#: log g, (log g)', (log g)'', (log g)''', distance (in bandwidths) to the nearest sample (0
#: outside the samples' range: log g bends sharply only in gaps between samples)
POINT_COLUMNS = 11


@njit(reading("void(float64[::1], float64[::1], float64[::1], float64, float64, float64, float64, "
              "float64[:, ::1])", 0, 1, 2), parallel=True, cache=True)
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


@njit("void(float64[:, ::1], float64, float64, int64, int64, float64, float64, float64, float64, "
      "float64[:, ::1], uint8[::1])", parallel=True, cache=True)
def kde_table_fit(points, dx, h, j_middle, j_upper, tol_cdf, tol_pdf, tol_dpdf, far_pdf, coef, flags):
    """Quintic Hermite coefficients of every cell, and its flags from the mid-cell check.

    Cell j interpolates, in the column blocks of kernels.kde: log G (j < j_upper) or log S
    (COL_LOG_CDF); log G (j < j_middle), G (j < j_upper) or log S (COL_CDF); log g (COL_PDF);
    (log g)' (COL_DPDF). It is flagged EXACT_CDF when either of the first two misses the
    exact mid-cell value by more than tol_cdf max(1, |value|), EXACT_PDF when log g misses by
    more than tol_pdf max(1, |value|) or (log g)' by more than tol_dpdf (|(log g)'| + 1/h), or
    the midpoint lies more than far_pdf bandwidths from every sample (a gap, where log g may
    bend too sharply for any check at one point).
    """
    for j in prange(coef.shape[0]):
        a = 2 * j
        mid = a + 1
        b = a + 2
        c = 0 if j < j_upper else 3  # log G or log S
        hermite5_coefficients(points[a, c], points[a, c + 1], points[a, c + 2],
                              points[b, c], points[b, c + 1], points[b, c + 2], dx, coef, j, COL_LOG_CDF)
        flag = 0
        want = points[mid, c]
        if not abs(hermite5(coef, j, COL_LOG_CDF, 0.5) - want) <= tol_cdf * max(1.0, abs(want)):
            flag |= EXACT_CDF
        if j_middle <= j < j_upper:  # G itself: G' = g, G'' = g (log g)'
            ga, gb = math.exp(points[a, 0]), math.exp(points[b, 0])
            pa, pb = math.exp(points[a, 6]), math.exp(points[b, 6])
            hermite5_coefficients(ga, pa, pa * points[a, 7], gb, pb, pb * points[b, 7], dx, coef, j, COL_CDF)
            want = math.exp(points[mid, 0])
            if not abs(hermite5(coef, j, COL_CDF, 0.5) - want) <= tol_cdf:
                flag |= EXACT_CDF
        else:
            for k in range(NCOEF):
                coef[j, COL_CDF + k] = coef[j, COL_LOG_CDF + k]
        hermite5_coefficients(points[a, 6], points[a, 7], points[a, 8],
                              points[b, 6], points[b, 7], points[b, 8], dx, coef, j, COL_PDF)
        hermite5_coefficients(points[a, 7], points[a, 8], points[a, 9],
                              points[b, 7], points[b, 8], points[b, 9], dx, coef, j, COL_DPDF)
        want = points[mid, 6]
        slope = points[mid, 7]
        err = abs(hermite5(coef, j, COL_PDF, 0.5) - want)
        err_slope = abs(hermite5(coef, j, COL_DPDF, 0.5) - slope)
        if (not err <= tol_pdf * max(1.0, abs(want)) or not err_slope <= tol_dpdf * (abs(slope) + 1.0 / h)
                or points[mid, 10] > far_pdf):
            flag |= EXACT_PDF
        flags[j] = flag


def _query_signature(dt):
    # the table's arrays are read-only (fastgeo.kde.KDETable); x may have any stride and be
    # read-only too (kernels/signatures.py)
    vec = types.Array(types.float64, 1, "C", readonly=True)
    coef = types.Array(types.float64, 2, "C", readonly=True)
    flags = types.Array(types.uint8, 1, "C", readonly=True)
    f64, i64 = types.float64, types.int64
    dt = getattr(types, dt)
    x = types.Array(dt, 1, "A", readonly=True)
    out = types.Array(dt, 1, "C")
    return types.int64(x, i64, i64, vec, vec, vec, f64, f64, f64, f64, f64, f64, coef, flags, i64, i64, out, out)


@on_demand(_query_signature, parallel=True, cache=True)  # for the dtype of x, when first needed
def kde_query(x, what, want_grad, vals, cnts, cum, n, h, log_n, log_nh, x0, inv_dx, coef, flags, j_middle,
              j_upper, out, dout):
    """out[i] = cdf, log cdf, pdf or log pdf (by ``what``) at x[i], and dout[i] its x-derivative
    when ``want_grad``. Returns the number of NaN in x (their outputs are NaN), for the caller
    to report.

    Two passes: a lean one over the table (no branch into the exact sums, so it stays small
    and fast), which marks what it cannot answer with NaN; then the full evaluation of those.
    """
    m = x.shape[0]
    for i in prange(m):
        v, d, ok = table_point(np.float64(x[i]), what, want_grad, x0, inv_dx, coef, flags, j_middle, j_upper)
        out[i] = v
        if want_grad:
            dout[i] = d
    nan = 0
    for i in prange(m):
        if out[i] != out[i]:
            v, d = kde_point(np.float64(x[i]), what, want_grad, vals, cnts, cum, n, h, log_n, log_nh, x0,
                             inv_dx, coef, flags, j_middle, j_upper)
            out[i] = v
            if want_grad:
                dout[i] = d
            if v != v:
                nan += 1
    return nan
