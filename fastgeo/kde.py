"""The KDE estimator of the realism index for densities without a closed form (MATH.md 1.3).

Draw n samples w_i of the prior, take l_i = log f(w_i), and smooth them with a Gaussian
kernel of Silverman's bandwidth h = (4 / (3n))^(1/5) std(l, ddof=1):

    G_W(x) = (1/n) sum_i Phi((x - l_i) / h)            (the cdf; ri(z) ~ G_W(log f(z)))
    g_W(x) = (1/(n h)) sum_i phi((x - l_i) / h)        (its density, G_W' = g_W)

These are exactly ``scipy.stats.gaussian_kde(l, bw_method="silverman")``'s
``integrate_box_1d(-inf, x)`` and ``evaluate(x)``.

The naive sum costs O(n) per query. Once the samples are drawn, log G_W, log(1 - G_W) and
log g_W are fixed smooth functions of one variable, so the compiled backends tabulate them
once (:class:`KDETable`, built lazily by :attr:`KDE.table`) and answer each query by quintic
Hermite interpolation in O(1); outside the table, and in the few cells where the
interpolant failed its check, they sum exactly over the few samples that matter.
"""
from __future__ import annotations

import math
import numbers
import threading
import time
from dataclasses import dataclass

import numpy as np

from ._arrays import as_array, check_finite

WHATS = ("cdf", "log_cdf", "pdf", "log_pdf")

#: the table spans [min l - LOWER_MARGIN h, max l + UPPER_MARGIN h]; beyond it the exact tail
#: sums need only the samples within about 49/margin bandwidths of the extreme one (both
#: margins must be at least kernels.kde.TAIL_FROM)
LOWER_MARGIN = 40.0
UPPER_MARGIN = 20.0
#: node spacing: the power of two dx with h/(2 NODES_PER_BANDWIDTH) < dx <= h/NODES_PER_BANDWIDTH
#: (measured: the mid-cell error of log G is then about 1e-14, see KDETable)
NODES_PER_BANDWIDTH = 32
#: tables larger than this get a coarser spacing (their extra cells fall back to exact sums)
MAX_CELLS = 2 ** 17
#: G itself is tabulated (no exp needed for the cdf) where both G and 1 - G are at least this
MIDDLE = 0.05
#: mid-cell checks (kernels.cpu_kde.kde_table_fit): cells that miss fall back to exact sums
TOL_CDF = 1e-13   # |error of log G, G or log S| <= TOL_CDF max(1, |value|)
TOL_PDF = 1e-12   # |error of log g| <= TOL_PDF max(1, |value|)
TOL_DPDF = 1e-11  # |error of (log g)'| <= TOL_DPDF (|(log g)'| + 1/h)
FAR_PDF = 6.0     # log g is evaluated exactly more than FAR_PDF bandwidths from every sample


def silverman_bandwidth(samples) -> float:
    """h = (4 / (3 n))^(1/5) * std(samples, ddof=1), as scipy's gaussian_kde computes it."""
    n = samples.shape[0]
    return float((4.0 / (3.0 * n)) ** 0.2 * np.std(samples, ddof=1))


@dataclass(frozen=True, eq=False)
class KDETable:
    """The tabulated KDE that the compiled backends query (built by :func:`build_table`).

    Samples are kept as sorted unique ``values`` with multiplicities ``counts`` (float64) and
    ``cumulative`` counts (cumulative[i] = samples below values[i]; cumulative[-1] = n).

    Nodes x_k = x0 + k dx, k = 0 .. ncell, with dx a power of two in (h/64, h/32] and x0 a
    multiple of dx, so every node is exact and a query's cell and offset are computed without
    rounding. The range [x0, x_end] covers [min l - 40 h, max l + 20 h]. Cell j is
    x_j <= x < x_j+1; with t = (x - x_j)/dx, each block of six columns of ``coef[j]`` holds
    the quintic Hermite interpolant (kernels.kde.hermite5) of

    - ``coef[j, 0:6]``: log G for j < ``j_upper``, log S = log(1 - G) from there on (where
      S < MIDDLE, so that 1 - G keeps its relative precision); what log_cdf reads;
    - ``coef[j, 6:12]``: log G for j < ``j_middle`` (G < MIDDLE), G itself up to j_upper, log S
      from there; what cdf reads (the middle of the distribution costs no exp);
    - ``coef[j, 12:18]``: log g;  ``coef[j, 18:24]``: (log g)' (from its values and two
      derivatives, so that the pdf's derivative is as accurate as its value).

    Nodes hold the exact values and derivatives, computed from the sorted samples with sums
    truncated only where the rest is provably below 1e-17 of the sum.

    Every cell is checked at its midpoint (where the Hermite error theta^3 (1 - theta)^3 peaks)
    against the exact value; ``flags[j]`` has bit 1 (EXACT_CDF) when log G, G or log S missed
    by more than TOL_CDF relative, bit 2 (EXACT_PDF) when log g or its slope missed (TOL_PDF,
    TOL_DPDF) or the cell lies in a gap of the samples; flagged quantities are summed exactly
    there. Below x0 and above x_end the tails are summed exactly too (the lowest or highest
    few samples dominate).
    """

    values: np.ndarray
    counts: np.ndarray
    cumulative: np.ndarray
    n: int
    bandwidth: float
    x0: float
    dx: float
    ncell: int
    j_middle: int
    j_upper: int
    coef: np.ndarray
    flags: np.ndarray
    build_seconds: float

    @property
    def x_end(self) -> float:
        return self.x0 + self.ncell * self.dx

    @property
    def nodes_per_bandwidth(self) -> float:
        return self.bandwidth / self.dx

    def summary(self) -> dict:
        """Layout and check results, for inspection and reports."""
        from .kernels.kde import EXACT_CDF, EXACT_PDF

        h = self.bandwidth
        return {
            "n": self.n, "unique_samples": int(self.values.shape[0]), "bandwidth": h,
            "x0": self.x0, "x_end": self.x_end, "dx": self.dx, "cells": self.ncell,
            "nodes_per_bandwidth": self.nodes_per_bandwidth,
            "lower_margin_in_bandwidths": float((self.values[0] - self.x0) / h),
            "upper_margin_in_bandwidths": float((self.x_end - self.values[-1]) / h),
            "cells_log_g": self.j_middle, "cells_g": self.j_upper - self.j_middle,
            "cells_log_s": self.ncell - self.j_upper,
            "exact_cdf_cells": int(np.count_nonzero(self.flags & EXACT_CDF)),
            "exact_pdf_cells": int(np.count_nonzero(self.flags & EXACT_PDF)),
            "bytes": int(self.coef.nbytes + self.flags.nbytes + 3 * self.values.nbytes),
            "build_seconds": self.build_seconds,
        }


def table_layout(lo: float, hi: float, h: float):
    """(x0, dx, ncell) of the table covering [lo - LOWER_MARGIN h, hi + UPPER_MARGIN h]."""
    start = lo - LOWER_MARGIN * h
    stop = hi + UPPER_MARGIN * h
    dx = 2.0 ** math.floor(math.log2(h / NODES_PER_BANDWIDTH))
    if (stop - start) / dx > MAX_CELLS:
        dx = 2.0 ** math.ceil(math.log2((stop - start) / MAX_CELLS))
    x0 = math.floor(start / dx) * dx
    ncell = int(math.ceil((stop - x0) / dx))
    return x0, dx, ncell


def build_table(samples: np.ndarray, h: float) -> KDETable:
    """Tabulate the KDE of ``samples`` (1-D float64) with bandwidth ``h`` (see KDETable)."""
    from .kernels.cpu_kde import POINT_COLUMNS, kde_table_fit, kde_table_points
    from .kernels.kde import TABLE_COLUMNS

    start = time.perf_counter()
    values, counts = np.unique(samples, return_counts=True)
    counts = counts.astype(np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(counts)])
    n = int(samples.shape[0])
    x0, dx, ncell = table_layout(float(values[0]), float(values[-1]), h)
    points = np.empty((2 * ncell + 1, POINT_COLUMNS))
    kde_table_points(values, counts, cumulative, float(n), h, x0, 0.5 * dx, points)
    nodes = points[0::2]
    # the first node with G >= MIDDLE and the first with S < MIDDLE (G rises along the nodes)
    j_middle = int(np.searchsorted(nodes[:, 0] >= math.log(MIDDLE), True))
    j_upper = max(j_middle, int(np.searchsorted(nodes[:, 3] < math.log(MIDDLE), True)))
    coef = np.empty((ncell, TABLE_COLUMNS))
    flags = np.empty(ncell, dtype=np.uint8)
    kde_table_fit(points, dx, h, j_middle, j_upper, TOL_CDF, TOL_PDF, TOL_DPDF, FAR_PDF, coef, flags)
    for a in (values, counts, cumulative, coef, flags):
        a.setflags(write=False)
    return KDETable(values, counts, cumulative, n, h, x0, dx, ncell, j_middle, j_upper, coef, flags,
                    time.perf_counter() - start)


class KDE:
    """A 1-D Gaussian KDE of log-density samples; fast cdf, log cdf, pdf and log pdf.

    Parameters
    ----------
    samples : 1-D array of the log-densities l_i (at least two, finite, not all equal).
    bandwidth : "silverman" or a positive number.
    latent_samples : optional (n, D) array of the latent points the l_i came from, kept
        for inspection.
    """

    def __init__(self, samples, bandwidth="silverman", latent_samples=None):
        samples = np.array(samples, dtype=np.float64)
        if samples.ndim != 1 or samples.shape[0] < 2:
            raise ValueError(f"samples must be 1-D with at least 2 entries, got shape {samples.shape}")
        check_finite(samples, "samples")
        if isinstance(bandwidth, str):
            if bandwidth != "silverman":
                raise ValueError(f'bandwidth must be "silverman" or a number > 0, got {bandwidth!r}')
            if np.all(samples == samples[0]):
                raise ValueError(f"all {samples.shape[0]} samples are equal ({samples[0]}): Silverman's "
                                 "bandwidth is 0; pass a bandwidth > 0")
            h = silverman_bandwidth(samples)
        elif isinstance(bandwidth, numbers.Real) and not isinstance(bandwidth, bool):
            h = float(bandwidth)
        else:
            raise TypeError(f'bandwidth must be "silverman" or a number > 0, got {type(bandwidth).__name__}')
        if not np.isfinite(h) or h <= 0:
            raise ValueError(f"bandwidth must be finite and > 0, got {h}")
        samples.setflags(write=False)
        self.samples = samples
        self.bandwidth = h
        self.n = samples.shape[0]
        self.latent_samples = latent_samples
        self._table = None
        self._table_lock = threading.Lock()

    @property
    def table(self) -> KDETable:
        """The interpolation table of the compiled backends, built on first use and cached."""
        if self._table is None:
            with self._table_lock:
                if self._table is None:
                    self._table = build_table(self.samples, self.bandwidth)
        return self._table

    @classmethod
    def from_prior(cls, prior, n=5000, seed=0):
        """Draw ``n`` samples of ``prior`` with ``seed`` and build the KDE of their log-density."""
        w = prior.sample(n, seed=seed)
        lp, _ = prior.log_density(w)
        lp = np.asarray(lp, dtype=np.float64)
        if not np.all(np.isfinite(lp)):
            raise ValueError(f"{prior!r}: log_prob of its own samples is not finite everywhere")
        return cls(lp, latent_samples=w)

    # -- evaluation ---------------------------------------------------------------------
    def _evaluate(self, x, what, backend="auto", need_grad=False):
        from . import backends

        from ._arrays import empty, numpy_dtype

        arr, kind = as_array(x, "x")
        be = backends.select(backend, kind)
        flat = arr.reshape(-1)
        if flat.shape[0] == 0:
            dtype = numpy_dtype(arr)
            out = empty(kind, arr.shape, dtype)
            return kind.wrap(out), (kind.wrap(empty(kind, arr.shape, dtype)) if need_grad else None)
        out, deriv = be.kde(flat, self, what, need_grad)
        out = kind.wrap(out.reshape(arr.shape))
        return out, (kind.wrap(deriv.reshape(arr.shape)) if need_grad else None)

    def cdf(self, x, backend="auto"):
        """G_W(x), the KDE's cdf."""
        return self._evaluate(x, "cdf", backend)[0]

    def log_cdf(self, x, backend="auto"):
        """log G_W(x), finite far below every sample where G_W underflows."""
        return self._evaluate(x, "log_cdf", backend)[0]

    def pdf(self, x, backend="auto"):
        """g_W(x), the KDE's density."""
        return self._evaluate(x, "pdf", backend)[0]

    def log_pdf(self, x, backend="auto"):
        """log g_W(x)."""
        return self._evaluate(x, "log_pdf", backend)[0]

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_table_lock"]  # locks do not pickle; the table (if built) travels along
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._table_lock = threading.Lock()

    def __repr__(self):
        return f"KDE(n={self.n}, bandwidth={self.bandwidth:.6g})"
