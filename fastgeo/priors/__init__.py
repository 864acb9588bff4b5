"""Latent priors: their densities, samplers and realism-index specs (MATH.md 1)."""
from .base import DEFAULT_KDE_SAMPLES, DEFAULT_KDE_SEED, Estimated, Indicator, Prior, Radial
from .convert import as_prior, from_distribution
from .mixture import Custom, GaussianMixture, semicircle
from .radial import Cauchy, GammaNorm, Gaussian, RadialPrior, StandardNormal, StudentT, UniformBall
from .uniform import UniformBox

__all__ = [
    "Prior", "Radial", "Indicator", "Estimated", "DEFAULT_KDE_SAMPLES", "DEFAULT_KDE_SEED",
    "StandardNormal", "Gaussian", "GammaNorm", "StudentT", "Cauchy", "UniformBall", "UniformBox",
    "GaussianMixture", "semicircle", "Custom", "RadialPrior",
    "from_distribution", "as_prior",
]
