"""Priors from torch and frozen scipy distributions: :func:`from_distribution`, :func:`as_prior`.

Closed forms where they exist (the prior's ``conversion.method`` is ``"closed form"``):

================================================================  ==============================
distribution                                                      prior
================================================================  ==============================
torch ``Normal`` (scalar: D = 1), ``Independent(Normal, 1)``      ``StandardNormal`` if loc = 0
                                                                  and scale = 1, else
                                                                  ``Gaussian`` (diagonal)
torch ``MultivariateNormal`` (covariance, precision, scale_tril)  ``StandardNormal`` / ``Gaussian``
torch ``Uniform`` (scalar), ``Independent(Uniform, 1)``           ``UniformBox``
torch ``MixtureSameFamily(Categorical, MultivariateNormal or      ``GaussianMixture``: its own
Independent(Normal))``                                            exact log f; its index is the
                                                                  KDE (method ``"kde"``)
scipy ``multivariate_normal(mean, cov)``                          ``StandardNormal`` / ``Gaussian``
scipy ``multivariate_t(loc, shape, df)``                          ``StudentT(D, df, loc, shape)``
                                                                  (``Gaussian`` for df = inf)
scipy ``uniform(loc, scale)`` (scalar or (D,) parameters: a box)  ``UniformBox``
================================================================  ==============================

Any other continuous distribution of event shape (D,) (or a scalar one: D = 1) with
``log_prob``/``sample`` (torch) or ``logpdf``/``rvs`` (scipy) becomes a :class:`Custom` prior
whose index is the KDE estimator (``conversion.method == "kde"``). Its gradient is torch
autograd through ``log_prob`` on the distribution's device (torch), or central finite
differences of ``logpdf`` (scipy: approximate, about 1e-5 relative). A torch distribution that
gets log f = -inf (not an error, nor NaN) outside its support, whether or not it validates its arguments. Its KDE samples are drawn
with the torch generator seeded from ``kde_seed`` (reproducible) or scipy's ``random_state``.

Devices: the closed-form priors keep float64 host copies of the parameters, which the
evaluator copies to the device of z on first use there; the distribution's device is recorded
(``prior.conversion.device``) and z on another device is refused with a ValueError (a CUDA
distribution with numpy or CPU z, and the reverse). Custom-route torch distributions call
``log_prob`` on z's device, and their KDE samples (drawn on the distribution's device) are
evaluated there too.

Caching: :func:`as_prior` (which every public function taking a prior calls) and
:func:`from_distribution` convert a distribution object once per (kde_samples, kde_seed) and
keep the prior on the object itself (attribute ``_fastgeo_priors``), so repeated calls with
the same object reuse the prior and its KDE; the prior lives as long as the distribution.
:func:`as_prior` takes the object's latest conversion, so ``from_distribution(d,
kde_samples=20000)`` once sets the KDE that ``fastgeo.ri(z, d)`` uses afterwards.
The parameters are read at conversion: a distribution whose parameter tensors are changed
in place afterwards keeps its former prior (convert a new distribution object instead).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import DEFAULT_KDE_SAMPLES, DEFAULT_KDE_SEED, Prior, check_device
from .mixture import Custom, GaussianMixture
from .radial import Gaussian, StandardNormal, StudentT
from .uniform import UniformBox

__all__ = ["CLOSED_FORM", "KDE_METHOD", "Conversion", "as_prior", "check_device", "from_distribution",
           "is_distribution"]

CLOSED_FORM = "closed form"
KDE_METHOD = "kde"
_CACHE_ATTR = "_fastgeo_priors"
PRIOR_TYPES = "prior must be a fastgeo.priors.Prior, a torch distribution or a frozen scipy distribution"


@dataclass(frozen=True)
class Conversion:
    """Where a converted prior came from: ``source`` (the distribution's class, e.g.
    ``torch.distributions.MultivariateNormal``), ``method`` (``"closed form"`` or ``"kde"``) and
    ``device`` (the torch distribution's parameters' device; None for scipy)."""

    source: str
    method: str
    device: str | None = None

    def __str__(self):
        device = f", device={self.device!r}" if self.device not in (None, "cpu") else ""
        return f"from={self.source}, method={self.method!r}{device}"


def _library(d):
    """"torch", "scipy" or None, from the modules of d's classes (nothing is imported)."""
    for cls in type(d).__mro__:
        module = cls.__module__ or ""
        if module.startswith("torch.distributions"):
            return "torch"
        if module.startswith("scipy.stats"):
            return "scipy"
    return None


def is_distribution(d) -> bool:
    """Whether d is a torch distribution or a scipy distribution (frozen or not)."""
    return _library(d) is not None


def as_prior(prior) -> Prior:
    """A Prior unchanged; a distribution converted by :func:`from_distribution` (once per object,
    see the module docstring: the latest ``from_distribution(d, kde_samples=..., kde_seed=...)``
    of the object when there was one, so a distribution converted with its own KDE options is
    used with them); anything else a TypeError."""
    if isinstance(prior, Prior):
        return prior
    if is_distribution(prior):
        cache = getattr(prior, "__dict__", {}).get(_CACHE_ATTR)
        if cache:  # the latest conversion of this object, whatever its KDE options
            return next(reversed(cache.values()))
        return from_distribution(prior)
    raise TypeError(f"{PRIOR_TYPES}, got {type(prior).__name__}")


def from_distribution(d, *, kde_samples=DEFAULT_KDE_SAMPLES, kde_seed=DEFAULT_KDE_SEED) -> Prior:
    """The fastgeo prior of a torch distribution or a frozen scipy distribution (see the module
    docstring for the table); its ``conversion`` attribute (and repr) says the source and the
    method. ``kde_samples``/``kde_seed`` are the prior's KDE options. ValueError for batch shapes,
    event shapes other than (D,) or (), discrete distributions and non-finite parameters;
    TypeError for anything that is not a distribution."""
    library = _library(d)
    if library is None:
        raise TypeError(f"from_distribution needs a torch distribution or a frozen scipy distribution, "
                        f"got {type(d).__name__}")
    key = (kde_samples, kde_seed)
    cache = getattr(d, "__dict__", {}).get(_CACHE_ATTR)
    if cache is not None and key in cache:
        cache[key] = cache.pop(key)  # the latest asked for, for as_prior
        return cache[key]
    options = dict(kde_samples=kde_samples, kde_seed=kde_seed)
    prior, conversion = (_from_torch if library == "torch" else _from_scipy)(d, options)
    prior.conversion = conversion
    if hasattr(d, "__dict__"):
        d.__dict__.setdefault(_CACHE_ATTR, {})[key] = prior
    return prior


def _gaussian(mean, cov, options):
    """StandardNormal for mean 0 and identity covariance (cov: (D,) variances or (D, D)), else
    Gaussian."""
    dim = mean.shape[0]
    standard = not np.any(mean) and np.array_equal(cov, np.ones(dim) if cov.ndim == 1 else np.eye(dim))
    return StandardNormal(dim, **options) if standard else Gaussian(mean, cov, **options)


def _check_finite_params(name, params):
    for pname, value in params:
        arr = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} has a non-finite parameter {pname}: {value!r}")


# -- torch --------------------------------------------------------------------------------------

def _from_torch(d, options):
    import torch
    from torch import distributions as td

    name = f"torch.distributions.{type(d).__name__}"
    tensors = _tensors(d, torch.Tensor, td.Distribution)
    devices = {"cpu" if v.device.type == "cpu" else f"{v.device.type}:{v.device.index or 0}" for _, v in tensors}
    if len(devices) > 1:
        raise ValueError(f"{name} has parameters on several devices ({sorted(devices)})")
    device = devices.pop() if devices else "cpu"
    host = [(k, v.detach().to("cpu", torch.float64)) for k, v in tensors if v.is_floating_point()]
    _check_finite_params(name, [(k, v.numpy()) for k, v in host])
    if tuple(d.batch_shape):
        raise ValueError(f"{name} has batch shape {tuple(d.batch_shape)}: fastgeo takes one distribution of "
                         "event shape (D,), not a batch; select one (d[i] is not supported by torch: build it "
                         "from one row of the parameters) or make the batch the event with "
                         "torch.distributions.Independent(d, 1)")
    if len(d.event_shape) > 1:
        raise ValueError(f"{name} has event shape {tuple(d.event_shape)}: fastgeo priors have event shape (D,)")
    if getattr(d.support, "is_discrete", False):
        raise ValueError(f"{name} is a discrete distribution: fastgeo priors are densities on R^D")

    def arr(t):
        return t.detach().to("cpu", torch.float64).numpy().copy()

    closed = None
    base = d.base_dist if type(d) is td.Independent else d
    if type(base) is td.Normal:
        closed = _gaussian(arr(base.loc).reshape(-1), arr(base.scale).reshape(-1) ** 2, options)
    elif type(base) is td.Uniform:
        closed = UniformBox(arr(base.low).reshape(-1), arr(base.high).reshape(-1), **options)
    elif type(d) is td.MultivariateNormal:
        chol = arr(d.scale_tril)
        closed = _gaussian(arr(d.loc), chol @ chol.T, options)
    elif type(d) is td.MixtureSameFamily:
        mixture = None
        comp = d.component_distribution
        inner = comp.base_dist if type(comp) is td.Independent else None
        if type(comp) is td.MultivariateNormal:
            chol = arr(comp.scale_tril)
            mixture = GaussianMixture(arr(d.mixture_distribution.probs), arr(comp.loc),
                                      chol @ np.swapaxes(chol, -1, -2), **options)
        elif type(inner) is td.Normal and len(comp.event_shape) == 1:
            var = arr(inner.scale) ** 2
            covs = np.einsum("kd,de->kde", var, np.eye(var.shape[1]))
            mixture = GaussianMixture(arr(d.mixture_distribution.probs), arr(inner.loc), covs, **options)
        if mixture is not None:  # its own compiled log f; its index is the KDE (no closed form)
            return mixture, Conversion(name, KDE_METHOD, device)
    if closed is not None:
        return closed, Conversion(name, CLOSED_FORM, device)
    return _torch_custom(d, name, device, options), Conversion(name, KDE_METHOD, device)


def _tensors(d, tensor_type, distribution_type, prefix=""):
    """(name, tensor) of d's parameters and cached tensors, and those of the distributions in it."""
    out = []
    for k, v in vars(d).items():
        if isinstance(v, tensor_type):
            out.append((prefix + k.lstrip("_"), v))
        elif isinstance(v, distribution_type) and v is not d:
            out.extend(_tensors(v, tensor_type, distribution_type, f"{prefix}{k.lstrip('_')}."))
    return out


def _torch_custom(d, name, device, options):
    """A Custom prior calling d.log_prob on z's own device (host numpy arrays, e.g. the KDE's
    samples, go to d's device and back) and d.sample under a torch generator seeded from the
    numpy Generator."""
    import torch

    for method in ("log_prob", "sample"):
        if not callable(getattr(d, method, None)):
            raise TypeError(f"{name} has no {method}: fastgeo needs log_prob and sample")
    scalar = len(d.event_shape) == 0
    dim = 1 if scalar else int(d.event_shape[0])
    devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    # outside its support a distribution raises (when it validates its arguments) or returns
    # anything, NaN included (when it does not: torch.compile turns validation off for the
    # whole process): those rows are evaluated at a point of the support instead and get
    # log f = -inf (density 0)
    try:
        check = getattr(d.support, "check", None)
    except NotImplementedError:
        check = None
    if check is not None:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            anchor = d.sample()

    def log_prob_tensor(t):
        x = t[..., 0] if scalar else t
        if check is None:
            return d.log_prob(x)
        inside = check(x)
        safe = torch.where(inside if scalar else inside[..., None], x, anchor.to(x.dtype))
        return torch.where(inside, d.log_prob(safe), torch.tensor(-math.inf, dtype=x.dtype, device=x.device))

    def log_prob(z):
        if isinstance(z, torch.Tensor):
            return log_prob_tensor(z)
        with torch.no_grad():
            return log_prob_tensor(torch.from_numpy(np.asarray(z)).to(device)).to("cpu", torch.float64).numpy()

    def grad_log_prob(z):
        host = not isinstance(z, torch.Tensor)
        t = (torch.from_numpy(np.asarray(z)).to(device) if host else z).detach().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(log_prob_tensor(t).sum(), t)
        return g.to("cpu", torch.float64).numpy() if host else g

    def sample(n, rng):
        seed = int(rng.integers(2**62))
        with torch.random.fork_rng(devices=devices), torch.no_grad():  # the caller's generators untouched
            torch.default_generator.manual_seed(seed)
            if devices:
                with torch.cuda.device(devices[0]):
                    torch.cuda.manual_seed(seed)
            x = d.sample((n,))
        return x.to("cpu", torch.float64).numpy().reshape(n, dim)

    return Custom(log_prob, sample, dim, grad_log_prob=grad_log_prob, **options)


# -- scipy --------------------------------------------------------------------------------------

def _from_scipy(d, options):
    name = f"scipy.stats.{type(d).__name__.removesuffix('_frozen')}"
    if not any(cls.__name__.endswith("frozen") for cls in type(d).__mro__):
        raise TypeError(f"{name} is not a frozen scipy distribution: call it with its parameters, e.g. "
                        "scipy.stats.multivariate_normal(mean, cov)")
    if not callable(getattr(d, "logpdf", None)):
        kind = "a discrete distribution" if callable(getattr(d, "logpmf", None)) else "without logpdf"
        raise ValueError(f"{name} is {kind}: fastgeo priors are densities on R^D with logpdf and rvs")
    dist = getattr(d, "dist", None)
    if dist is not None:  # univariate: parameters in args and kwds, broadcast to a batch shape
        from scipy import stats

        if isinstance(dist, stats.rv_discrete):
            raise ValueError(f"{name} ({dist.name}) is a discrete distribution: fastgeo priors are densities on R^D")
        params = list(enumerate(d.args)) + list(d.kwds.items())
        _check_finite_params(f"scipy.stats.{dist.name}", [(str(k), v) for k, v in params])
        shape = np.broadcast_shapes(*[np.shape(v) for _, v in params]) if params else ()
        name = f"scipy.stats.{dist.name}"
        if dist.name == "uniform" and len(shape) <= 1:
            low, high = (np.asarray(b, dtype=np.float64).reshape(-1) for b in d.support())
            return UniformBox(low, high, **options), Conversion(name, CLOSED_FORM)
        if shape:
            raise ValueError(f"{name} has parameters of shape {shape}, a batch of univariate distributions: "
                             "fastgeo takes one distribution of event shape (D,) (scipy.stats.uniform with (D,) "
                             "parameters is read as a box)")
        return _scipy_custom(d, name, 1, True, options), Conversion(name, KDE_METHOD)
    kind = type(d).__name__.removesuffix("_frozen")
    if kind == "multivariate_normal":
        mean = np.asarray(d.mean, dtype=np.float64)
        _check_finite_params(name, [("mean", mean), ("cov", d.cov)])
        return _gaussian(mean, np.asarray(d.cov, dtype=np.float64), options), Conversion(name, CLOSED_FORM)
    if kind == "multivariate_t":
        loc, shape, df = (np.asarray(v, dtype=np.float64) for v in (d.loc, d.shape, d.df))
        _check_finite_params(name, [("loc", loc), ("shape", shape)])
        if math.isinf(float(df)):
            return _gaussian(loc, shape, options), Conversion(name, CLOSED_FORM)
        standard = not np.any(loc) and np.array_equal(shape, np.eye(loc.shape[0]))
        prior = (StudentT(loc.shape[0], float(df), **options) if standard
                 else StudentT(loc.shape[0], float(df), loc=loc, shape=shape, **options))
        return prior, Conversion(name, CLOSED_FORM)
    if not callable(getattr(d, "rvs", None)):
        raise ValueError(f"{name} has no rvs: fastgeo needs logpdf and rvs")
    x = np.asarray(d.rvs(size=3, random_state=np.random.default_rng(0)))
    if x.shape == (3,):
        dim = 1
    elif x.ndim == 2 and x.shape[0] == 3:
        dim = x.shape[1]
    else:
        raise ValueError(f"{name} draws samples of shape {x.shape[1:]}: fastgeo priors have event shape (D,)")
    return _scipy_custom(d, name, dim, False, options), Conversion(name, KDE_METHOD)


def _scipy_custom(d, name, dim, univariate, options):
    """A Custom prior calling d.logpdf (host only) and d.rvs(random_state=rng); its gradient by
    central finite differences of logpdf."""

    def log_prob(z):
        z = np.asarray(z, dtype=np.float64)
        return np.asarray(d.logpdf(z[..., 0] if univariate else z), dtype=np.float64).reshape(z.shape[:-1])

    def grad_log_prob(z):
        z = np.asarray(z, dtype=np.float64)
        h = np.finfo(np.float64).eps ** (1 / 3) * np.maximum(1.0, np.abs(z))
        steps = np.einsum("md,de->emd", h, np.eye(dim))  # (D, M, D): step j along coordinate j
        up, down = log_prob(z[None] + steps), log_prob(z[None] - steps)
        return ((up - down) / (2.0 * h.T)).T

    def sample(n, rng):
        return np.asarray(d.rvs(size=n, random_state=rng), dtype=np.float64).reshape(n, dim)

    return Custom(log_prob, sample, dim, grad_log_prob=grad_log_prob, **options)
