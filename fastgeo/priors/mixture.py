"""Gaussian mixtures, the paper's semicircle prior (MATH.md 1.3), and user densities.

Neither has a closed-form realism index: both use the KDE estimator of log f.
"""
from __future__ import annotations

import inspect
import math

import numpy as np

from .. import _arrays
from .base import CPU, Prior, check_dim, cholesky_spd, check_vector

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
        _arrays.check_finite(means, "means")
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
        # (lower triangular: the kernels read the lower triangle only)
        self._whiten = np.tril(np.stack([np.linalg.solve(c, np.eye(dim)) for c in self._chols]))
        self._first = None  # the kernels skip the zeros left of these columns (set on first use)
        self._log_norm = (np.log(self.weights, where=self.weights > 0, out=np.full(k, -np.inf))
                          - np.sum(np.log(np.diagonal(self._chols, axis1=1, axis2=2)), axis=1)
                          - 0.5 * dim * math.log(2 * math.pi))

    def _sample(self, n, rng):
        comp = rng.choice(self.weights.shape[0], size=n, p=self.weights)
        e = rng.standard_normal((n, self.dim))
        return self.means[comp] + np.einsum("nij,nj->ni", self._chols[comp], e)

    def log_density(self, z, need_grad=False, kind=CPU, backend=None):
        """log f = logsumexp_k (log w_k + log N_k(z)) and grad log f = -sum_k resp_k W_k^T y_k,
        with y_k = W_k (z - mu_k) and resp_k the posterior component probabilities (float64,
        on z's device; the parameters are copied to a device once).

        Computed by ``backend`` (a :class:`fastgeo.backends.Backend`; None: the one
        ``backends.select("auto", kind)`` picks): the compiled one-pass kernels on the CPU and
        GPU backends, the float64 formula in z's library on the reference backend."""
        from .. import backends

        if backend is None:
            backend = backends.select("auto", kind)
        if self._first is None:
            from ..kernels.mixture import first_columns  # imports Numba: not when fastgeo is imported

            self._first = first_columns(self._whiten)
        whiten, means, log_norm, first = _arrays.on_device(self, kind, "_whiten", "means", "_log_norm",
                                                           "_first")
        if _arrays.numpy_dtype(z) not in (np.float32, np.float64):
            z = _arrays.astype(z, np.float64)
        return backend.mixture_log_density(z, whiten, means, log_norm, need_grad, first)

    # the evaluator passes its backend to a log_density marked so (other priors take none; a
    # replacement of this method without the mark gets none either)
    log_density.takes_backend = True

    def log_density_bytes_per_row(self, need_grad):
        k = self.weights.shape[0]
        return 8 * (self.dim * (1 + k * (4 if need_grad else 2)) + 3 * k)

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

    GPU inputs (torch CUDA tensors, CuPy arrays): ``log_prob`` (and ``grad_log_prob``) are
    called with a float64 array of the input's own library on its device and must return one
    of the same library on the same device (fastgeo never moves data between devices), e.g. a
    ``log_prob`` written with torch operations; anything else raises a TypeError saying so.
    Without ``grad_log_prob``, the gradient on a GPU needs torch (autograd through
    ``log_prob``). The samples behind the KDE are always drawn and evaluated on the host.
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

    def log_density(self, z, need_grad=False, kind=CPU):
        """log_prob(z) (and grad_log_prob(z), or torch autograd through log_prob), checked:
        shapes, no NaN in log f, a finite gradient wherever log f is finite."""
        if kind.is_cuda:
            return self._log_density_on_device(z, need_grad, kind)
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
        return lp, _check_gradient(lp, grad, self._grad_fn is not None)

    def _log_density_on_device(self, z, need_grad, kind):
        z = _arrays.contiguous_float64(z)
        lp = self._call_on_device("log_prob", self._log_prob_fn, z, kind, z.shape[:1])
        if not need_grad:
            return lp, None
        if self._grad_fn is not None:
            grad = self._call_on_device("grad_log_prob", self._grad_fn, z, kind, z.shape)
        elif kind.library == "torch":
            grad = self._autograd_torch(z)
        else:
            raise NotImplementedError(
                f"the gradient of a Custom prior's realism index on {kind.describe()} inputs needs "
                "grad_log_prob=... accepting and returning arrays of that library on that device")
        return lp, _check_gradient(lp, _arrays.astype(grad, np.float64), self._grad_fn is not None)

    def _call_on_device(self, name, fn, z, kind, shape):
        """fn(z) for a GPU array z, checked to come back as a float array of z's library and
        device with ``shape``."""
        explain = (f"with {kind.describe()} inputs a Custom prior's {name} is called on a float64 "
                   f"{kind.library} array on {kind.device} and must return one of the same library on the "
                   "same device (write it with that library's operations), or move z to the CPU")
        try:
            out = fn(z)
        except Exception as err:
            raise TypeError(f"calling {name} on a {kind.describe()} array failed "
                            f"({type(err).__name__}: {err}); {explain}") from err
        got = _arrays.kind_of(out)
        if got.library != kind.library or got.device != kind.device:
            raise TypeError(f"{name} returned a {got.describe()} array for a {kind.describe()} input; {explain}")
        if tuple(out.shape) != tuple(shape):
            raise ValueError(f"Custom {name} returned shape {tuple(out.shape)} for input {tuple(z.shape)}; "
                             f"expected {tuple(shape)}")
        return _arrays.astype(out, np.float64)

    def _autograd_torch(self, z):
        """grad log f by torch autograd through log_prob, on z's device."""
        import torch

        t = z.detach().requires_grad_(True)
        try:
            with torch.enable_grad():
                out = self._log_prob_fn(t)
                if not isinstance(out, torch.Tensor) or not out.requires_grad:
                    raise TypeError("log_prob did not return a differentiable torch tensor")
                (grad,) = torch.autograd.grad(out.sum(), t)
        except Exception as err:
            raise NotImplementedError(
                "the gradient of a Custom prior's realism index needs grad_log_prob=..., or a "
                f"log_prob written with torch operations (calling it on a tensor failed: {err})"
            ) from err
        return grad

    def _autograd(self, z):
        import torch

        return self._autograd_torch(torch.from_numpy(z)).numpy()

    def __repr__(self):
        return f"Custom(dim={self.dim})"


def _check_gradient(lp, grad, given):
    """grad unchanged; a ValueError naming the first row where log f is finite but its gradient
    is not (a NaN there would otherwise become the realism index's gradient, silently). Rows
    of zero density (log f = -inf) may carry anything: their index gradient is 0."""
    bad = _arrays.isfinite(lp)[:, None] & ~_arrays.isfinite(grad)
    found = _arrays.first_true(bad, grad)
    if found is not None:
        source = "grad_log_prob" if given else "torch autograd through log_prob"
        raise ValueError(f"the gradient of a Custom prior's log-density ({source}) is {found[1]} at row "
                         f"{found[0][0]} of z, where log_prob is finite ({float(lp[found[0][0]])})")
    return grad

