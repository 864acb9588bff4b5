"""Gaussian mixtures, the paper's semicircle prior (MATH.md 1.3), and user densities.

Neither has a closed-form realism index: both use the KDE estimator of log f.
"""
from __future__ import annotations

import inspect
import math

import numpy as np
from scipy import special

from .base import Prior, check_dim, cholesky_spd, check_vector


class GaussianMixture(Prior):
    """sum_k weights[k] N(means[k], covs[k]); ri by the KDE of log f (MATH.md 1.3)."""

    def __init__(self, weights, means, covs, **kde_options):
        weights = check_vector(weights, "weights")
        if np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("weights must be >= 0 with a positive sum")
        means = np.array(means, dtype=np.float64)
        k = weights.shape[0]
        if means.ndim != 2 or means.shape[0] != k:
            raise ValueError(f"means must have shape ({k}, D) for {k} weights, got {means.shape}")
        if not np.all(np.isfinite(means)):
            raise ValueError("means contains NaN or inf")
        dim = means.shape[1]
        covs = np.asarray(covs, dtype=np.float64)
        if covs.shape != (k, dim, dim):
            raise ValueError(f"covs must have shape ({k}, {dim}, {dim}), got {covs.shape}")
        super().__init__(dim, **kde_options)
        self.weights = weights / weights.sum()
        self.means = means
        self.covs = covs
        self._chols = np.stack([cholesky_spd(c, f"covs[{i}]", dim) for i, c in enumerate(covs)])
        # whitening W_k = L_k^{-1}; log N_k(z) = -|W_k (z - m_k)|^2 / 2 + log|W_k| - D/2 log 2pi
        self._whiten = np.stack([np.linalg.solve(c, np.eye(dim)) for c in self._chols])
        self._log_norm = (np.log(self.weights, where=self.weights > 0, out=np.full(k, -np.inf))
                          - np.sum(np.log(np.diagonal(self._chols, axis1=1, axis2=2)), axis=1)
                          - 0.5 * dim * math.log(2 * math.pi))

    def _sample(self, n, rng):
        comp = rng.choice(self.weights.shape[0], size=n, p=self.weights)
        e = rng.standard_normal((n, self.dim))
        return self.means[comp] + np.einsum("nij,nj->ni", self._chols[comp], e)

    def _log_prob_np(self, z, need_grad):
        z = np.asarray(z, dtype=np.float64)
        # y[k, m] = W_k (z_m - mu_k)
        y = np.einsum("kij,kmj->kmi", self._whiten, z[None, :, :] - self.means[:, None, :])
        log_comp = self._log_norm[:, None] - 0.5 * np.einsum("kmi,kmi->km", y, y)
        lp = special.logsumexp(log_comp, axis=0)
        if not need_grad:
            return lp, None
        resp = np.exp(log_comp - lp[None, :])  # posterior component probabilities
        # grad log f = -sum_k resp_k W_k^T y_k
        grad = -np.einsum("km,kji,kmj->mi", resp, self._whiten, y)
        return lp, grad

    def __repr__(self):
        return f"GaussianMixture(n_components={self.weights.shape[0]}, dim={self.dim})"


def semicircle(dim=20, **kde_options) -> GaussianMixture:
    """The paper's semicircle prior (its section 6; MATH.md 1.3), for any dim >= 2.

    Three equally weighted Gaussians with means (2, 6), (0, 0), (2, -6) and 2x2 covariance
    blocks [[5, 2], [2, 2]], [[1, 0], [0, 3]], [[5, -2], [-2, 2]] in the first two coordinates
    (a horseshoe), and variance 0.5 in every other coordinate.
    """
    dim = check_dim(dim)
    if dim < 2:
        raise ValueError(f"semicircle needs dim >= 2, got {dim}")
    means = np.zeros((3, dim))
    means[:, :2] = [[2.0, 6.0], [0.0, 0.0], [2.0, -6.0]]
    covs = np.zeros((3, dim, dim))
    covs[:, :2, :2] = [[[5.0, 2.0], [2.0, 2.0]], [[1.0, 0.0], [0.0, 3.0]], [[5.0, -2.0], [-2.0, 2.0]]]
    idx = np.arange(2, dim)
    covs[:, idx, idx] = 0.5
    return GaussianMixture(np.full(3, 1.0 / 3.0), means, covs, **kde_options)


class Custom(Prior):
    """Any density given as callables; ri by the KDE of log f (MATH.md 1.3).

    - ``log_prob(z)``: float64 numpy array (M, dim) -> (M,) log densities.
    - ``sample(n, rng)`` (or ``sample(n)``): (n, dim) samples; ``rng`` is a numpy Generator.
    - ``grad_log_prob(z)``, optional: (M, dim) -> (M, dim). Without it the gradient of the
      realism index is taken by torch autograd through ``log_prob`` called on a float64
      tensor, which works when ``log_prob`` is written with torch operations.
    """

    def __init__(self, log_prob, sample, dim, grad_log_prob=None, **kde_options):
        for name, fn in (("log_prob", log_prob), ("sample", sample)):
            if not callable(fn):
                raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
        if grad_log_prob is not None and not callable(grad_log_prob):
            raise TypeError(f"grad_log_prob must be callable or None, got {type(grad_log_prob).__name__}")
        super().__init__(dim, **kde_options)
        self._log_prob_fn = log_prob
        self._sample_fn = sample
        self._grad_fn = grad_log_prob
        try:
            n_params = len(inspect.signature(sample).parameters)
        except (TypeError, ValueError):
            n_params = 2
        self._sample_takes_rng = n_params >= 2

    def _sample(self, n, rng):
        return self._sample_fn(n, rng) if self._sample_takes_rng else self._sample_fn(n)

    def _log_prob_np(self, z, need_grad):
        z = np.ascontiguousarray(z, dtype=np.float64)
        lp = np.asarray(self._log_prob_fn(z), dtype=np.float64)
        if lp.shape != z.shape[:1]:
            raise ValueError(f"Custom log_prob returned shape {lp.shape} for input {z.shape}; "
                             f"expected ({z.shape[0]},)")
        if np.any(np.isnan(lp)):
            raise ValueError("Custom log_prob returned NaN")
        if not need_grad:
            return lp, None
        if self._grad_fn is not None:
            grad = np.asarray(self._grad_fn(z), dtype=np.float64)
        else:
            grad = self._autograd(z)
        if grad.shape != z.shape:
            raise ValueError(f"gradient of Custom log_prob has shape {grad.shape}, expected {z.shape}")
        return lp, grad

    def _autograd(self, z):
        import torch

        t = torch.from_numpy(z).requires_grad_(True)
        try:
            out = self._log_prob_fn(t)
            if not isinstance(out, torch.Tensor) or not out.requires_grad:
                raise TypeError("log_prob did not return a differentiable torch tensor")
            (grad,) = torch.autograd.grad(out.sum(), t)
        except Exception as err:
            raise NotImplementedError(
                "the gradient of a Custom prior's realism index needs grad_log_prob=..., or a "
                f"log_prob written with torch operations (calling it on a tensor failed: {err})"
            ) from err
        return grad.numpy()

    def __repr__(self):
        return f"Custom(dim={self.dim})"
