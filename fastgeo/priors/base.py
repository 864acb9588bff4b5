"""The prior base class and the three ways a realism index is computed (MATH.md 1).

A prior answers two questions: what is its density (``log_prob``, ``sample``) and how is
its realism index computed. The second answer is a small *index spec*:

- :class:`Radial`: the density is a decreasing function of s = |W (z - loc)|^2, so ri is a
  closed-form survival function of s (MATH.md 1.1); one row-norm kernel for all families.
- :class:`Indicator`: uniform on a box; ri is the indicator of the box (MATH.md 1.2).
- :class:`Estimated`: anything else; ri is estimated by the KDE of log f (MATH.md 1.3).

Every prior also has a KDE (``prior.kde``), so estimators can be compared with each other.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

DEFAULT_KDE_SAMPLES = 5000
DEFAULT_KDE_SEED = 0
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
    whiten: np.ndarray | None = None  # lower-triangular W = L^{-1}, Sigma = L L^T
    log_det_whiten: float = 0.0


@dataclass(frozen=True, eq=False)
class Indicator:
    """ri(z) = 1 on the closed box [low, high], 0 outside."""

    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True, eq=False)
class Estimated:
    """ri(z) ~ G_W(log f(z)), the KDE estimator of MATH.md 1.3."""

    prior: "Prior"


# -- parameter checks ----------------------------------------------------------------------

def check_dim(dim) -> int:
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    return int(dim)


def check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_vector(value, name: str, dim: int | None = None) -> np.ndarray:
    arr = np.array(value, dtype=np.float64)
    if arr.ndim != 1 or (dim is not None and arr.shape[0] != dim):
        want = f"({dim},)" if dim is not None else "1-D"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    arr.setflags(write=False)
    return arr


def cholesky_spd(cov, name: str = "cov", dim: int | None = None) -> np.ndarray:
    """Lower Cholesky factor of a symmetric positive definite matrix, or a ValueError."""
    cov = np.array(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or (dim is not None and cov.shape[0] != dim):
        want = f"({dim}, {dim})" if dim is not None else "square"
        raise ValueError(f"{name} must be a {want} matrix, got shape {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise ValueError(f"{name} contains NaN or inf")
    scale = max(np.max(np.abs(cov)), np.finfo(np.float64).tiny)
    if np.max(np.abs(cov - cov.T)) > 1e-10 * scale:
        raise ValueError(f"{name} is not symmetric")
    try:
        return np.linalg.cholesky(0.5 * (cov + cov.T))
    except np.linalg.LinAlgError:
        raise ValueError(f"{name} is not positive definite") from None


def check_count(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    return int(n)


class Prior:
    """A latent prior: ``dim``, ``sample(n, seed)``, ``log_prob(z)`` and its realism index.

    Subclasses implement ``_sample(n, rng)`` and either ``index()`` returning a closed form
    (:class:`Radial` or :class:`Indicator`) or ``_log_prob_np`` for the KDE estimator.
    """

    #: the paper's erf approximation (eq. 1) is offered for these priors only
    has_erf_approximation = False
    #: False for uniform priors: log f takes one value on the support, so the KDE of log f
    #: has no spread (Silverman's bandwidth is 0) and estimates nothing; their index is the
    #: indicator of the support, computed exactly
    has_kde = True

    def __init__(self, dim, kde_samples=DEFAULT_KDE_SAMPLES, kde_seed=DEFAULT_KDE_SEED):
        self.dim = check_dim(dim)
        self.kde_samples = check_count(kde_samples, "kde_samples")
        if self.kde_samples < 2:
            raise ValueError(f"kde_samples must be at least 2, got {kde_samples}")
        self.kde_seed = kde_seed
        self._kde = None

    # -- density --------------------------------------------------------------------------
    def sample(self, n, seed=None) -> np.ndarray:
        """``n`` float64 samples of shape (n, dim); ``seed`` is an int, a Generator or None."""
        n = check_count(n)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        out = np.asarray(self._sample(n, rng), dtype=np.float64)
        if out.shape != (n, self.dim):
            raise ValueError(f"{type(self).__name__} sampler returned shape {out.shape}, expected {(n, self.dim)}")
        return out

    def log_prob(self, z, backend="auto"):
        """log f(z) for z of shape (..., dim); same array type, dtype and device as z."""
        from ..realism import evaluate

        return evaluate(z, self, what="log_density", backend=backend)

    def _sample(self, n, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def _log_prob_np(self, z, need_grad):
        """float64 log f and (optionally) grad log f of a 2-D float64 numpy array.

        Used by the KDE estimator. Closed-form priors get it from their index spec.
        """
        from ..realism import evaluate

        lp = evaluate(z, self, what="log_density", backend="cpu")
        if not need_grad:
            return lp, None
        raise NotImplementedError(f"{type(self).__name__} has a closed-form index; use its gradient")

    def _log_prob_array(self, z, need_grad, kind):
        """float64 log f and (optionally) grad log f of a 2-D array z of ``kind`` (the KDE
        estimator's input), computed in z's own library on its device.

        On the CPU this is :meth:`_log_prob_np`. Priors with a GPU log-density override it
        (GaussianMixture, Custom); the others raise NotImplementedError for GPU inputs.
        """
        if not kind.is_cuda:
            return self._log_prob_np(z, need_grad)
        raise NotImplementedError(
            f"the KDE estimate of the realism index of {self!r} (method='kde') needs its log-density on "
            f"the GPU, which {type(self).__name__} does not provide; use its closed-form index (method="
            "'auto' or 'exact'), or move z to the CPU with .cpu() / cupy.asnumpy")

    def _log_prob_bytes_per_row(self, need_grad) -> int:
        """Device memory that :meth:`_log_prob_array` needs per row of z, at most (for chunking)."""
        return 8 * self.dim * (4 if need_grad else 2)

    # -- realism index ----------------------------------------------------------------------
    def index(self):
        """How ri is computed in closed form, or :class:`Estimated` for the KDE."""
        return Estimated(self)

    @property
    def kde(self):
        """The KDE of log f (MATH.md 1.3), drawn once on first use with ``kde_seed``."""
        if not self.has_kde:
            raise ValueError(NO_KDE.format(prior=self))
        if self._kde is None:
            from ..kde import KDE

            self._kde = KDE.from_prior(self, n=self.kde_samples, seed=self.kde_seed)
        return self._kde

    def __repr__(self):
        return f"{type(self).__name__}(dim={self.dim})"
