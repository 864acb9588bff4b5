"""Radially decreasing priors (MATH.md 1.1): closed-form realism index from the radius.

Each prior is a family code plus its parameters (see ``fastgeo.kernels.families``); the
shared :class:`RadialPrior` turns that into log_prob, the gradient of log f for the KDE
estimator, and the index spec the kernels read.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import special

from ..kernels import families as F
from .._specs import from_radius_rows, radii
from .base import CPU, Prior, Radial, check_positive, check_vector, cholesky_spd


def whiten(spec, z, params=None):
    """y = W (z - loc) for each row of z: :meth:`fastgeo._specs.Radial.whitened` (kept for
    callers of this module)."""
    return spec.whitened(z, params)


def whiten_grad(spec, g, params=None):
    """W^T g: :meth:`fastgeo._specs.Radial.pull_back` (kept for callers of this module)."""
    return spec.pull_back(g, params)


def scale_whitening(cov, name, dim):
    """(cov as an array, sd or None, Cholesky factor or None, W, log|W|) of a scale given as a
    (D, D) symmetric positive definite matrix, a (D,) vector of variances (a diagonal, never
    expanded to a matrix: W is then the 1-D vector 1/sd) or a positive scalar variance."""
    cov_arr = np.asarray(cov, dtype=np.float64)
    if cov_arr.ndim == 0:
        sd = np.full(dim, math.sqrt(check_positive(float(cov_arr), name)))
    elif cov_arr.ndim == 1:
        var = check_vector(cov_arr, f"{name} (variances)", dim)
        if np.any(var <= 0):
            raise ValueError(f"{name} (variances) must all be > 0")
        sd = np.sqrt(var)
    else:
        chol = cholesky_spd(cov_arr, name, dim)
        whiten = np.tril(np.linalg.solve(chol, np.eye(dim)))
        whiten.setflags(write=False)
        return cov_arr, None, chol, whiten, -float(np.sum(np.log(np.diag(chol))))
    whiten = 1.0 / sd  # diagonal whitening, applied elementwise
    whiten.setflags(write=False)
    return cov_arr, sd, None, whiten, -float(np.sum(np.log(sd)))


class RadialPrior(Prior):
    """A prior whose density is a decreasing function of s = |W (z - loc)|^2."""

    family: int

    def __init__(self, dim, p0=0.0, p1=0.0, loc=None, whiten=None, log_det_whiten=0.0, **kde_options):
        super().__init__(dim, **kde_options)
        self._spec = Radial(self.family, self.dim, float(p0), float(p1), loc, whiten, float(log_det_whiten))

    def index(self):
        return self._spec

    def log_density(self, z, need_grad=False, kind=CPU):
        """log f from the radius of the whitened rows (the kernels' far-tail forms where the
        closed form over- or underflows), and grad log f = W^T (d log f / dr) y / r; CPU only
        (GPU inputs get log f from the radial kernels through ``log_prob``)."""
        if kind.is_cuda:
            raise self._no_gpu_density(kind)
        spec = self._spec
        y = spec.whitened(np.asarray(z, dtype=np.float64))
        s, r = radii(y)
        far = from_radius_rows(spec.family, s, r)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            lp = self._log_density_of_s(s)
        if far.any():
            from ..kernels.radial import radial_far
        for i in np.flatnonzero(far):
            lp[i] = radial_far(spec.family, float(r[i]), float(spec.dim), spec.p0, spec.p1, True, False, True)[0]
        lp = lp + spec.log_det_whiten
        if not need_grad:
            return lp, None
        # grad log f = (d log f / dr) y / r: no r^2 in it, so finite wherever r is
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            g = np.where(r[:, None] > 0, self._dlog_density_dr(r)[:, None] * (y / r[:, None]), 0.0)
        g = np.where(np.isfinite(g), g, 0.0)
        return lp, spec.pull_back(g)

    def _log_density_of_s(self, s):  # pragma: no cover - abstract
        raise NotImplementedError

    def _dlog_density_dr(self, r):  # pragma: no cover - abstract
        raise NotImplementedError


class Gaussian(RadialPrior):
    """N(mean, cov): ri(z) = chi2(D).sf of the squared Mahalanobis radius.

    ``cov`` is a (D, D) symmetric positive definite matrix, a (D,) vector of variances (a
    diagonal covariance, never expanded to a matrix) or a positive scalar variance.
    """

    family = F.CHI2
    has_erf_approximation = True

    def __init__(self, mean, cov=1.0, **kde_options):
        mean = check_vector(mean, "mean")
        dim = mean.shape[0]
        self.cov, self._sd, self._chol, whiten, log_det = scale_whitening(cov, "cov", dim)
        self.mean = mean
        identity = not np.any(mean) and whiten.ndim == 1 and np.all(whiten == 1.0)
        super().__init__(
            dim,
            loc=None if not np.any(mean) else mean,
            whiten=None if identity else whiten,
            log_det_whiten=log_det,
            **kde_options,
        )

    def _sample(self, n, rng):
        e = rng.standard_normal((n, self.dim))
        return self.mean + (e * self._sd if self._chol is None else e @ self._chol.T)

    def _log_density_of_s(self, s):
        return -0.5 * s - 0.5 * self.dim * math.log(2 * math.pi)

    def _dlog_density_dr(self, r):
        return -r

    def __repr__(self):
        return f"Gaussian(dim={self.dim})"


class StandardNormal(Gaussian):
    """N(0, I_D): ri(z) = Q(D/2, |z|^2/2) (paper, section 3)."""

    def __init__(self, dim, **kde_options):
        RadialPrior.__init__(self, dim, **kde_options)
        self.mean = np.zeros(self.dim)
        self.cov = np.asarray(1.0)
        self._chol = None
        self._sd = 1.0

    def __repr__(self):
        return f"StandardNormal(dim={self.dim})"


class GammaNorm(RadialPrior):
    """Kilcher et al.'s prior (MATH.md 1.1): z = R u, u uniform on the unit sphere,
    R ~ Gamma(shape, scale). Density proportional to r^(shape - D) exp(-r/scale), decreasing
    for shape <= D, so ri(z) = Q(shape, |z|/scale)."""

    family = F.GAMMA_RADIUS

    def __init__(self, dim, shape=0.5, scale=1.0, **kde_options):
        from .base import check_dim

        dim = check_dim(dim)
        self.shape = check_positive(shape, "shape")
        self.scale = check_positive(scale, "scale")
        if self.shape > dim:
            raise ValueError(
                f"shape must be <= dim ({dim}) for the density to decrease with the radius, got {shape}"
            )
        super().__init__(dim, self.shape, self.scale, **kde_options)

    def _sample(self, n, rng):
        e = rng.standard_normal((n, self.dim))
        norms = np.linalg.norm(e, axis=1, keepdims=True)
        return e / norms * rng.gamma(self.shape, self.scale, size=(n, 1))

    def _log_density_of_s(self, s):
        k, theta, d = self.shape, self.scale, self.dim
        r = np.sqrt(s)
        log_sphere = math.log(2.0) + 0.5 * d * math.log(math.pi) - special.gammaln(0.5 * d)
        return (k - d) * np.log(r) - r / theta - special.gammaln(k) - k * math.log(theta) - log_sphere

    def _dlog_density_dr(self, r):
        return (self.shape - self.dim) / r - 1.0 / self.scale

    def __repr__(self):
        return f"GammaNorm(dim={self.dim}, shape={self.shape}, scale={self.scale})"


class StudentT(RadialPrior):
    """Multivariate Student-t with ``df`` degrees of freedom, location ``loc`` (default 0) and
    shape matrix ``shape`` (default the identity):
    f ~ (1 + s/df)^(-(df + D)/2) with s = |W (z - loc)|^2 the squared Mahalanobis radius
    (W = L^{-1}, shape = L L^T), s/D ~ F(D, df), ri(z) = F(D, df).sf(s/D).

    ``shape`` is a (D, D) symmetric positive definite matrix, a (D,) vector of variances (a
    diagonal) or a positive scalar, as :class:`Gaussian`'s ``cov``; ``StudentT(dim, df)`` is the
    standard one.
    """

    family = F.F_RATIO

    def __init__(self, dim, df, loc=None, shape=None, **kde_options):
        from .base import check_dim

        dim = check_dim(dim)
        self.df = check_positive(df, "df")
        self.loc = np.zeros(dim) if loc is None else check_vector(loc, "loc", dim)
        if shape is None:
            self.shape, self._sd, self._chol, whiten, log_det = np.asarray(1.0), np.ones(dim), None, None, 0.0
        else:
            self.shape, self._sd, self._chol, whiten, log_det = scale_whitening(shape, "shape", dim)
            if whiten.ndim == 1 and np.all(whiten == 1.0):
                whiten = None
        super().__init__(dim, self.df, loc=self.loc if np.any(self.loc) else None, whiten=whiten,
                         log_det_whiten=log_det, **kde_options)

    @property
    def is_standard(self) -> bool:
        """Location 0 and identity shape: the density depends on |z| alone."""
        return not self._spec.whitens

    def _sample(self, n, rng):
        g = rng.standard_normal((n, self.dim))
        g = g * self._sd if self._chol is None else g @ self._chol.T
        return self.loc + g / np.sqrt(rng.chisquare(self.df, size=(n, 1)) / self.df)

    def _log_density_of_s(self, s):
        nu, d = self.df, self.dim
        return (special.gammaln(0.5 * (nu + d)) - special.gammaln(0.5 * nu)
                - 0.5 * d * math.log(nu * math.pi) - 0.5 * (nu + d) * np.log1p(s / nu))

    def _dlog_density_dr(self, r):
        # -(nu + D) r / (nu + r^2), written without r^2
        return -(self.df + self.dim) / (self.df / r + r)

    def __repr__(self):
        extra = "" if self.is_standard else ", loc, shape"
        return f"StudentT(dim={self.dim}, df={self.df}{extra})"


class Cauchy(StudentT):
    """Multivariate Cauchy (Student-t with one degree of freedom; Lesniak et al.'s prior)."""

    def __init__(self, dim, loc=None, shape=None, **kde_options):
        super().__init__(dim, 1.0, loc, shape, **kde_options)

    def __repr__(self):
        return f"Cauchy(dim={self.dim})"


class UniformBall(RadialPrior):
    """Uniform on the closed ball of ``radius`` about 0: ri is 1 inside, 0 outside."""

    has_kde = False

    family = F.BALL

    def __init__(self, dim, radius=1.0, **kde_options):
        self.radius = check_positive(radius, "radius")
        super().__init__(dim, self.radius, **kde_options)

    def _sample(self, n, rng):
        e = rng.standard_normal((n, self.dim))
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        return e * self.radius * rng.random((n, 1)) ** (1.0 / self.dim)

    def _log_density_of_s(self, s):
        d = self.dim
        log_vol = 0.5 * d * math.log(math.pi) + d * math.log(self.radius) - special.gammaln(0.5 * d + 1)
        return np.where(s <= self.radius ** 2, -log_vol, -np.inf)

    def _dlog_density_dr(self, r):
        return np.zeros_like(r)

    def __repr__(self):
        return f"UniformBall(dim={self.dim}, radius={self.radius})"
