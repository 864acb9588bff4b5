"""How a realism index is computed (MATH.md 1): the three *index specs* a prior hands out.

- :class:`Radial`: the density is a decreasing function of s = |W (z - loc)|^2, so ri is a
  closed-form survival function of s (MATH.md 1.1); one row-norm kernel for all families.
- :class:`Indicator`: uniform on a box; ri is the indicator of the box (MATH.md 1.2).
- :class:`Estimated`: anything else; ri is estimated by the KDE of log f (MATH.md 1.3).

The evaluator (:mod:`fastgeo._evaluator`) reads specs; priors (:mod:`fastgeo.priors`)
make them; the reference backend and the radial priors' log-density share the float64 row
radii (:func:`radii`). This module imports only the array layer and the kernels' constants.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._arrays import matmul
from .kernels import families as F
from .kernels.families import TINY_S

NO_KDE = ("{prior!r} has no KDE estimate of its realism index: a uniform prior's log-density takes one "
          "value on its support, so the KDE of log f has zero bandwidth; its index is the indicator of the "
          "support, computed exactly by method='auto' or 'exact'")


@dataclass(frozen=True, eq=False)
class Radial:
    """ri(z) = S(s), s = |W (z - loc)|^2; see fastgeo.kernels.families for the codes."""

    family: int
    dim: int
    p0: float = 0.0
    p1: float = 0.0
    loc: np.ndarray | None = None
    whiten: np.ndarray | None = None  # lower-triangular W = L^{-1}, Sigma = L L^T (or a diagonal, 1-D)
    log_det_whiten: float = 0.0

    @property
    def whitens(self) -> bool:
        return self.loc is not None or self.whiten is not None

    @property
    def isotropic(self) -> bool:
        """Whether ri depends on |z - loc| alone: W absent or a diagonal (1-D) of equal entries
        (a full matrix that happens to be c I counts as not isotropic: the dense route, safe)."""
        w = self.whiten
        return w is None or (w.ndim == 1 and bool(np.all(w == w[0])))

    def whitened(self, z, params=None):
        """y = W (z - loc) for each row of z.

        ``params``: (loc, W) as arrays of z's library and device (fastgeo._arrays.on_device);
        by default the spec's own numpy arrays.
        """
        loc, w = (self.loc, self.whiten) if params is None else params
        y = z if loc is None else z - loc
        if w is None:
            return y
        return y * w if w.ndim == 1 else matmul(y, w.T)

    def pull_back(self, g, params=None):
        """A gradient with respect to y = W (z - loc) as one with respect to z: W^T g."""
        w = self.whiten if params is None else params[1]
        if w is None:
            return g
        return g * w if w.ndim == 1 else matmul(g, w)


def from_radius_rows(family, s, r):
    """The rows whose index and log-density come from the radius r, as in the kernels
    (kernels/radial.py: from_radius): |y|^2 overflowed, or underflowed for the gamma radius."""
    return ~np.isfinite(s) | ((s < TINY_S) & (r > 0) & (family == F.GAMMA_RADIUS))


def radii(y):
    """(|y|^2, |y|) of each row of a float64 array; where |y|^2 overflows (|y| > 1.34e154) or
    has lost its digits to underflow (s < TINY_S), |y| by scaling with the row's largest entry
    (as kernels/rows.py does in the kernels)."""
    with np.errstate(over="ignore", under="ignore"):
        s = np.einsum("ij,ij->i", y, y)
    r = np.sqrt(s)
    far = (~np.isfinite(s) | (s < TINY_S)) & np.isfinite(y).all(axis=1) & np.any(y != 0, axis=1)
    if far.any():
        top = np.max(np.abs(y[far]), axis=1, keepdims=True)
        with np.errstate(over="ignore"):
            r[far] = top[:, 0] * np.sqrt(np.einsum("ij,ij->i", y[far] / top, y[far] / top))
    return s, r


@dataclass(frozen=True, eq=False)
class Indicator:
    """ri(z) = 1 on the closed box [low, high], 0 outside."""

    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True, eq=False)
class Estimated:
    """ri(z) ~ G_W(log f(z)), the KDE estimator of MATH.md 1.3, from the prior's own
    log-density (:meth:`fastgeo.priors.Prior.log_density`) and KDE (``prior.kde``)."""

    prior: object
