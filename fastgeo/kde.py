"""The KDE estimator of the realism index for densities without a closed form (MATH.md 1.3).

Draw n samples w_i of the prior, take l_i = log f(w_i), and smooth them with a Gaussian
kernel of Silverman's bandwidth h = (4 / (3n))^(1/5) std(l, ddof=1):

    G_W(x) = (1/n) sum_i Phi((x - l_i) / h)            (the cdf; ri(z) ~ G_W(log f(z)))
    g_W(x) = (1/(n h)) sum_i phi((x - l_i) / h)        (its density, G_W' = g_W)

These are exactly ``scipy.stats.gaussian_kde(l, bw_method="silverman")``'s
``integrate_box_1d(-inf, x)`` and ``evaluate(x)``.
"""
from __future__ import annotations

import numpy as np

from ._arrays import as_array, check_finite

WHATS = ("cdf", "log_cdf", "pdf", "log_pdf")


def silverman_bandwidth(samples) -> float:
    """h = (4 / (3 n))^(1/5) * std(samples, ddof=1), as scipy's gaussian_kde computes it."""
    n = samples.shape[0]
    return float((4.0 / (3.0 * n)) ** 0.2 * np.std(samples, ddof=1))


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
        if bandwidth == "silverman":
            h = silverman_bandwidth(samples)
        else:
            h = float(bandwidth)
        if not np.isfinite(h) or h <= 0:
            raise ValueError(f"bandwidth must be finite and > 0, got {h} (are all samples equal?)")
        samples.setflags(write=False)
        self.samples = samples
        self.bandwidth = h
        self.n = samples.shape[0]
        self.latent_samples = latent_samples
        self._tables = {}

    @classmethod
    def from_prior(cls, prior, n=5000, seed=0):
        """Draw ``n`` samples of ``prior`` with ``seed`` and build the KDE of their log-density."""
        w = prior.sample(n, seed=seed)
        lp, _ = prior._log_prob_np(w, need_grad=False)
        lp = np.asarray(lp, dtype=np.float64)
        if not np.all(np.isfinite(lp)):
            raise ValueError(f"{prior!r}: log_prob of its own samples is not finite everywhere")
        return cls(lp, latent_samples=w)

    # -- evaluation ---------------------------------------------------------------------
    def _evaluate(self, x, what, backend="auto", need_grad=False):
        from . import backends

        arr, kind = as_array(x, "x")
        be = backends.select(backend, kind)
        flat = arr.reshape(-1)
        if flat.size == 0:
            out = np.empty(arr.shape, dtype=arr.dtype)
            return kind.wrap(out), (kind.wrap(out.copy()) if need_grad else None)
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

    def __repr__(self):
        return f"KDE(n={self.n}, bandwidth={self.bandwidth:.6g})"
