"""How a realism index is computed (MATH.md 1): the three *index specs* a prior hands out.

- :class:`Radial`: the density is a decreasing function of s = |W (z - loc)|^2, so ri is a
  closed-form survival function of s (MATH.md 1.1); one row-norm kernel for all families.
- :class:`Indicator`: uniform on a box; ri is the indicator of the box (MATH.md 1.2).
- :class:`Estimated`: anything else; ri is estimated by the KDE of log f (MATH.md 1.3).

The evaluator (:mod:`fastgeo._evaluator`) reads specs; priors (:mod:`fastgeo.priors`)
make them. Neither imports the other through this module, which imports only the array layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._arrays import matmul

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
