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

Each family gets kernels of its own, made on its first call (:class:`PerFamily`): the family
code is a constant of their code, so Numba compiles that family's special functions only
(kernels/radial.py). A first call for a Gaussian prior compiles the incomplete gamma function,
not the incomplete beta function of the Student-t family too (bench/first_call.py); for a
chi-square radius below D = 203 (a gamma radius of shape below 101.2) not even the gamma
function's written-out sums for large shapes (radial.wide_gamma).

Rows whose index must come from their radius by scaling (kernels/radial.py: from_radius:
|y|^2 overflowed, |y| > 1.3e154; for the gamma radius also |y| < 1e-145, the prior's centre
y = 0 among them) are left to a kernel of their own, ``far_rows``: the row kernels mark them
with +inf (which no other row yields: ri <= alpha <= 1, and the only infinite log density, the
gamma radius's at y = 0, is such a row) and return how many they marked, and the caller runs
``far_rows`` on those only. Such rows are rare, and the code that treats them would otherwise
double what Numba compiles for the parallel row loop on a first call.
"""
import math
import threading

import numpy as np
from numba import njit, prange

from . import codes
from .cpu_prefetch import prefetch_row, rows_ahead
from .radial import from_radius, radial_far, radial_log_density, radial_log_sf_and_dlog, wide_gamma
from .rows import row_radius
from .signatures import OnDemand, reading

#: what to compute, as kernels/codes.py defines it (log ri is what the other tests leave)
WHAT_LOG_RI, WHAT_RI, WHAT_LOG_DENSITY = codes.WHAT_LOG_RI, codes.WHAT_RI, codes.WHAT_LOG_DENSITY

_FASTMATH = {"reassoc", "contract"}


def _signature(layout, dt):
    """y C-contiguous (layout "::1", vectorised) or of any strides (":"); read-only allowed.
    Returns the number of rows marked for ``far_rows``."""
    return reading(f"int64({dt}[:, {layout}], float64, float64, float64, float64, int64, {dt}[::1], "
                   f"{dt}[:, ::1])", 0)


def _contiguous(dt):
    return _signature("::1", dt)


def _strided(dt):
    return _signature(":", dt)


def _far_signature(dt):
    """y of any strides and the rows to treat (read-only both)."""
    return reading(f"void({dt}[:, :], int64[::1], float64, float64, float64, float64, int64, {dt}[::1], "
                   f"{dt}[:, ::1])", 0, 1)


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _sum_sq(row):
    """sum_j row[j]^2 in float64 (vectorised: LLVM inlines it with its fast-math flags)."""
    s = 0.0
    for j in range(row.shape[0]):
        v = np.float64(row[j])
        s += v * v
    return s


@njit(cache=True, inline="always")
def _radial_row(y, i, ahead, family, wide, dim, p0, p1, log_alpha, what, out, grad):
    """Row i; returns 1 if it is marked (+inf) for far_rows, else 0."""
    d = y.shape[1]
    s = _sum_sq(y[i])
    # the row `ahead` streams in while this one's survival function is computed
    prefetch_row(y, i + ahead)
    if not math.isfinite(s):
        for j in range(d):
            if not math.isfinite(y[i, j]):
                out[i] = np.nan  # the caller turns this mark into a ValueError
                return 0
    if from_radius(family, s):
        out[i] = np.inf
        return 1
    if what == WHAT_LOG_DENSITY:
        out[i] = radial_log_density(family, s, dim, p0, p1)
        return 0
    want_grad = grad.shape[0] > 0
    log_sf, dlog = radial_log_sf_and_dlog(family, s, dim, p0, p1, want_grad, wide)
    out[i] = math.exp(log_sf + log_alpha) if what == WHAT_RI else log_sf + log_alpha
    if want_grad:
        g = 2.0 * dlog
        for j in range(d):
            grad[i, j] = g * np.float64(y[i, j])
    return 0


@njit(cache=True, inline="always")
def _far_row(y, i, family, wide, dim, p0, p1, log_alpha, what, out, grad):
    """A finite row whose squared norm overflows (or underflows, where that matters): from its
    radius (kernels/radial.py: from_radius, radial_far)."""
    r = row_radius(y, i)
    want_grad = grad.shape[0] > 0 and what != WHAT_LOG_DENSITY
    v, dv = radial_far(family, r, dim, p0, p1, what == WHAT_LOG_DENSITY, want_grad, wide)
    if what == WHAT_LOG_DENSITY:
        out[i] = v
        return
    out[i] = math.exp(v + log_alpha) if what == WHAT_RI else v + log_alpha
    if want_grad:
        for j in range(y.shape[1]):
            grad[i, j] = dv * (np.float64(y[i, j]) / r) if 0.0 < r < math.inf else 0.0


def _family_kernels(family, wide):
    """(radial_index, radial_index_serial, far_rows) of one family: ``family`` and ``wide``
    (kernels/radial.py: wide_gamma) are constants of their code (closure cells, which Numba's
    cache keys on), so their branches are settled before typing (the row functions and
    kernels/radial.py's dispatch are inlined into them)."""

    def radial_index(y, dim, p0, p1, log_alpha, what, out, grad):
        """out[i] = f(|y_i|^2) for f = log ri + log_alpha, ri or log density (by ``what``).

        If grad has rows, grad[i] = d log ri / d y_i = 2 (d log ri / ds) y_i. A row holding
        NaN or inf gets out[i] = NaN, which the caller turns into a ValueError; a row for
        far_rows gets +inf. Returns the number of the latter.
        """
        ahead = rows_ahead(y)
        far = 0
        for i in prange(y.shape[0]):
            far += _radial_row(y, i, ahead, family, wide, dim, p0, p1, log_alpha, what, out, grad)
        return far

    def radial_index_serial(y, dim, p0, p1, log_alpha, what, out, grad):
        """radial_index on the calling thread, for small batches."""
        ahead = rows_ahead(y)
        far = 0
        for i in range(y.shape[0]):
            far += _radial_row(y, i, ahead, family, wide, dim, p0, p1, log_alpha, what, out, grad)
        return far

    def far_rows(y, rows, dim, p0, p1, log_alpha, what, out, grad):
        """Rows ``rows`` (those radial_index marked) from their radius."""
        for k in range(rows.shape[0]):
            _far_row(y, rows[k], family, wide, dim, p0, p1, log_alpha, what, out, grad)

    return radial_index, radial_index_serial, far_rows


class PerFamily:
    """A radial kernel called as ``kernel(y, family, dim, p0, p1, log_alpha, what, out,
    grad)`` (``far_rows``: ``kernel(y, family, rows, dim, ...)``): one :class:`OnDemand` kernel
    per family code (kernels/families.py), and for the gamma families per side of
    special_gamma.WIDE_MIN_A (kernels/radial.py: wide_gamma), made on the first call with
    them."""

    def __init__(self, which, signature_of, dim_at=0, **options):
        # dim_at: where dim is among the arguments after y and family (far_rows: after rows)
        self._which, self._signature_of, self._dim_at, self._options = which, signature_of, dim_at, options
        self._lock = threading.Lock()
        self.by_family = {}

    def __call__(self, y, family, *args):
        key = (family, wide_gamma(family, args[self._dim_at], args[self._dim_at + 1]))
        kernel = self.by_family.get(key)
        if kernel is None:
            kernel = self.kernel(*key)
        return kernel(y, *args)

    def kernel(self, family, wide):
        """The :class:`OnDemand` kernel of ``family`` (an int code), with or without the wide
        Temme sums (``wide``)."""
        key = (int(family), bool(wide))
        with self._lock:
            kernel = self.by_family.get(key)
            if kernel is None:
                kernel = OnDemand(_family_kernels(*key)[self._which], self._signature_of, **self._options)
                self.by_family[key] = kernel
        return kernel


# contiguous rows and any strides, each with and without the thread pool, each compiled for
# a family and a dtype when a call first needs them (kernels/signatures.py)
radial_index = PerFamily(0, _contiguous, parallel=True, cache=True)
radial_index_strided = PerFamily(0, _strided, parallel=True, cache=True)
radial_index_serial = PerFamily(1, _contiguous, cache=True)
radial_index_serial_strided = PerFamily(1, _strided, cache=True)
far_rows = PerFamily(2, _far_signature, dim_at=1, cache=True)
