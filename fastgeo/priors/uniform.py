"""Uniform prior on a box (MATH.md 1.2): ri is the indicator of the box."""
from __future__ import annotations

import numpy as np

from .base import CPU, Indicator, Prior, check_vector


class UniformBox(Prior):
    """Uniform on the closed box [low, high] (per coordinate). ri = 1 inside, 0 outside."""

    has_kde = False

    def __init__(self, low, high, **kde_options):
        low = check_vector(low, "low")
        high = check_vector(high, "high", low.shape[0])
        if np.any(low >= high):
            i = int(np.argmax(low >= high))
            raise ValueError(f"low must be < high in every coordinate; coordinate {i} has "
                             f"low={low[i]} >= high={high[i]}")
        super().__init__(low.shape[0], **kde_options)
        self.low, self.high = low, high
        self._spec = Indicator(low, high)
        self._log_volume = float(np.sum(np.log(high - low)))

    def index(self):
        return self._spec

    def _sample(self, n, rng):
        return self.low + (self.high - self.low) * rng.random((n, self.dim))

    def log_density(self, z, need_grad=False, kind=CPU):
        if kind.is_cuda:
            raise self._no_gpu_density(kind)
        inside = np.all((z >= self.low) & (z <= self.high), axis=-1)
        lp = np.where(inside, -self._log_volume, -np.inf)
        return lp, (np.zeros_like(z) if need_grad else None)

    def __repr__(self):
        return f"UniformBox(dim={self.dim})"
