"""The prior base class: the contract every prior keeps (MATH.md 1).

A prior answers two questions: what is its density (``sample``, ``log_prob`` and, on arrays,
:meth:`Prior.log_density`) and how is its realism index computed: ``index()`` returns a
small *index spec* (:mod:`fastgeo._specs`):

- :class:`Radial`: the density is a decreasing function of s = |W (z - loc)|^2, so ri is a
  closed-form survival function of s (MATH.md 1.1); one row-norm kernel for all families.
- :class:`Indicator`: uniform on a box; ri is the indicator of the box (MATH.md 1.2).
- :class:`Estimated`: anything else; ri is estimated by the KDE of log f (MATH.md 1.3).

Every prior also has a KDE (``prior.kde``), so estimators can be compared with each other.
"""
from __future__ import annotations

import abc
import numbers
import warnings

import numpy as np

from .._arrays import ArrayKind, check_finite, kind_of
from .._evaluator import evaluate
from .._specs import NO_KDE, Estimated, Indicator, Radial
from ..kde import KDE

DEFAULT_KDE_SAMPLES = 5000
DEFAULT_KDE_SEED = 0
#: the kind of a numpy array on the CPU: :meth:`Prior.log_density`'s default
CPU = ArrayKind("numpy", "cpu")

__all__ = ["CPU", "DEFAULT_KDE_SAMPLES", "DEFAULT_KDE_SEED", "NO_KDE", "Estimated", "Indicator", "Prior", "Radial",
           "check_count", "check_device", "check_dim", "check_positive", "check_vector", "cholesky_spd"]


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
    check_finite(arr, name)
    arr.setflags(write=False)
    return arr


def cholesky_spd(cov, name: str = "cov", dim: int | None = None) -> np.ndarray:
    """Lower Cholesky factor of a symmetric positive definite matrix, or a ValueError."""
    cov = np.array(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or (dim is not None and cov.shape[0] != dim):
        want = f"({dim}, {dim})" if dim is not None else "square"
        raise ValueError(f"{name} must be a {want} matrix, got shape {cov.shape}")
    check_finite(cov, name)
    scale = max(np.max(np.abs(cov)), np.finfo(np.float64).tiny)
    if np.max(np.abs(cov - cov.T)) > 1e-10 * scale:
        raise ValueError(f"{name} is not symmetric")
    try:
        return np.linalg.cholesky(0.5 * (cov + cov.T))
    except np.linalg.LinAlgError:
        raise ValueError(f"{name} is not positive definite") from None


def check_device(prior, z, name="z"):
    """A ValueError when a prior converted from a torch distribution (``prior.conversion.device``)
    meets an array z on another device; nothing for other priors."""
    device = getattr(prior.__dict__.get("conversion"), "device", None)
    if device is None:
        return
    kind = kind_of(z)
    if kind.device != device:
        raise ValueError(f"mixed devices: the distribution behind {prior!r} has its parameters on {device} but "
                         f"{name} is {kind.describe()}; move {name} (or the distribution) to one device")


def check_count(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    return int(n)


class Prior(abc.ABC):
    """A latent prior: ``dim``, ``sample(n, seed)``, ``log_prob(z)`` and its realism index.

    The contract of a subclass:

    - ``_sample(n, rng)``: n samples, shape (n, dim), from a numpy Generator;
    - :meth:`log_density`: float64 log f (and grad log f) of the rows of a 2-D array, in
      that array's library on its device; the KDE estimator and the density's gradient
      read it;
    - :meth:`index`: a closed form (:class:`Radial`, :class:`Indicator`) where one exists;
      by default :class:`Estimated`, the KDE of :meth:`log_density`;
    - :meth:`log_density_bytes_per_row`, where :meth:`log_density` needs more device memory
      per row than the default says (it sizes the GPU's chunks).
    """

    #: the paper's erf approximation (eq. 1) is offered for these priors only
    has_erf_approximation = False
    #: False for uniform priors: log f takes one value on the support, so the KDE of log f
    #: has no spread (Silverman's bandwidth is 0) and estimates nothing; their index is the
    #: indicator of the support, computed exactly
    has_kde = True
    #: where a prior converted from a distribution came from and how its index is computed
    #: (:class:`fastgeo.priors.convert.Conversion`; shown in the repr); None otherwise
    conversion = None

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
        """log f(z) for z of shape (..., dim); same array type, dtype and device as z
        (differentiable for torch tensors that require grad)."""
        check_device(self, z)
        return evaluate(z, self, what="log_density", backend=backend)

    @abc.abstractmethod
    def _sample(self, n, rng):
        """n samples of shape (n, dim) drawn with the numpy Generator ``rng``."""

    @abc.abstractmethod
    def log_density(self, z, need_grad=False, kind=CPU):
        """(log f, grad log f or None) of the rows of a 2-D array z of ``kind``: float64
        arrays of shapes (M,) and (M, D), computed in z's own library on its device.

        On the CPU (and for ``log_prob`` on a GPU) the evaluator has checked the rows to be
        finite; on the GPU route of the realism index it has not (that would synchronise): a
        NaN or inf row may give any value there, and the evaluator reports the row afterwards. A prior without a
        GPU log-density raises NotImplementedError for GPU kinds (:meth:`_no_gpu_density`).
        """

    def __init_subclass__(cls, **kwargs):
        """Subclasses written before :meth:`log_density` was the contract keep working: one with
        ``_log_prob_np(z, need_grad)`` (deprecated) gets it as its log-density; one with a
        closed-form ``index()`` alone gets the kernels' log-density of that index."""
        super().__init_subclass__(**kwargs)
        if "__repr__" in cls.__dict__:
            cls.__repr__ = _with_conversion(cls.__dict__["__repr__"])
        if not getattr(cls.log_density, "__isabstractmethod__", False):
            return
        if "_log_prob_np" in cls.__dict__:
            warnings.warn(f"{cls.__name__} implements _log_prob_np(z, need_grad); implement "
                          "log_density(z, need_grad=False, kind=CPU) instead", DeprecationWarning, stacklevel=2)
            cls.log_density = _log_density_of_log_prob_np
        elif cls.index is not Prior.index:
            cls.log_density = _log_density_of_index

    def _log_prob_np(self, z, need_grad):
        """float64 (log f, grad log f or None) of a 2-D numpy array: :meth:`log_density` on the
        CPU (kept for callers of the former hook)."""
        return self.log_density(np.asarray(z, dtype=np.float64), need_grad)

    def log_density_bytes_per_row(self, need_grad) -> int:
        """Device memory that :meth:`log_density` needs per row of z, at most (for chunking)."""
        return 8 * self.dim * (4 if need_grad else 2)

    def _no_gpu_density(self, kind):
        """The NotImplementedError of a prior whose log-density runs on the CPU only."""
        return NotImplementedError(
            f"the KDE estimate of the realism index of {self!r} (method='kde') needs its log-density on "
            f"the GPU, which {type(self).__name__} does not provide; use its closed-form index (method="
            "'auto' or 'exact'), or move z to the CPU with .cpu() / cupy.asnumpy")

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
            self._kde = KDE.from_prior(self, n=self.kde_samples, seed=self.kde_seed)
        return self._kde

    def __repr__(self):
        return _described(self, f"{type(self).__name__}(dim={self.dim})")


def _described(prior, text):
    """A prior's repr with its conversion (source and method) when it has one."""
    conversion = prior.__dict__.get("conversion")
    if conversion is None:
        return text
    return f"{text[:-1]}, {conversion})" if text.endswith(")") else f"{text} [{conversion}]"


def _with_conversion(repr_fn):
    """A subclass's __repr__ that also shows the prior's conversion."""
    if getattr(repr_fn, "_shows_conversion", False):
        return repr_fn

    def __repr__(self):
        return _described(self, repr_fn(self))

    __repr__._shows_conversion = True
    __repr__.__doc__ = repr_fn.__doc__
    return __repr__


def _log_density_of_log_prob_np(self, z, need_grad=False, kind=CPU):
    """The log-density of a subclass written to the former contract: its _log_prob_np (CPU)."""
    if kind.is_cuda:
        raise self._no_gpu_density(kind)
    return type(self)._log_prob_np(self, np.asarray(z, dtype=np.float64), need_grad)


def _log_density_of_index(self, z, need_grad=False, kind=CPU):
    """The log-density of a closed-form prior without its own: its index spec's kernels (CPU,
    without the gradient)."""
    if kind.is_cuda:
        raise self._no_gpu_density(kind)
    if need_grad:
        raise NotImplementedError(f"{type(self).__name__} has a closed-form index but no log_density(z, need_grad, "
                                  "kind): implement it for the gradient of its log-density")
    return evaluate(z, self, what="log_density", backend="cpu"), None
