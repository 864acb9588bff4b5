"""Endpoint pairs "from different ends of the prior" (paper section 6), seeded.

The paper starts its interpolations between "two points from different ends of the
distribution": pairs for which a straight line has the most to lose. What that means
depends on the prior's shape; :func:`far_pairs` picks a rule by the prior's type.

- Mixtures (:func:`mixture_end_pairs`; the semicircle): z0 from the first component, z1 from
  the last, each from the outer tail of its component: more than one standard deviation
  out along the component's major axis, on the side away from the mixture's mean (about a
  sixth of each component's mass). For the semicircle these are the two tips of the
  horseshoe (on average (5.3, +-7.7) in its first two coordinates), and the straight line
  between them crosses the empty region to the right of the middle component.
- Priors that depend only on |z| (:func:`opposite_pairs`; N(0, I), Kilcher et al.'s prior,
  Student-t, Cauchy, the uniform ball): z0 ~ f, and z1 ~ f conditioned on the angle between
  z0 and z1 being ``angle`` (150 degrees by default). For a radial prior that conditional is
  exact and simple: |z1| is an independent prior radius and z1's direction is uniform on
  the cone at that angle around z0's. Exactly opposite points (180 degrees) would make the
  plane of eq. (4) and slerp's great circle undefined; 150 degrees sends the straight line
  close to the origin (its closest point is at |z0| |z1| sin(30 deg) / |z1 - z0|, about a
  quarter of a typical radius) while keeping both well defined.
- Anything else: independent prior samples.

Every rule samples with ``numpy.random.default_rng(seed)``, so a seed fixes the pairs.
"""
from __future__ import annotations

import math

import numpy as np

from .priors import Cauchy, GammaNorm, GaussianMixture, StandardNormal, StudentT, UniformBall
from .priors.base import check_count
from .priors.convert import as_prior

#: the angle between z0 and z1 of :func:`opposite_pairs`, in degrees
OPPOSITE_ANGLE = 150.0
#: :func:`mixture_end_pairs` draws from beyond this many standard deviations along each arm
TIP_BEYOND = 1.0
#: priors whose density depends on |z| alone (centred at 0, identity scale)
ORIGIN_RADIAL = (StandardNormal, GammaNorm, StudentT, Cauchy, UniformBall)


def _origin_radial(prior) -> bool:
    """One of ORIGIN_RADIAL centred at 0 with identity scale (a StudentT may have a location and
    a shape matrix)."""
    return isinstance(prior, ORIGIN_RADIAL) and not prior.index().whitens


def far_pairs(prior, n: int, seed=0) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` endpoint pairs from different ends of ``prior``: (z0, z1, rule).

    z0 and z1 are float64 arrays (n, D); ``rule`` says in one sentence how they were chosen
    (see the module docstring for the rules).
    """
    n = check_count(n)
    prior = as_prior(prior)
    if isinstance(prior, GaussianMixture) and prior.weights.shape[0] >= 2:
        z0, z1 = mixture_end_pairs(prior, n, seed)
        return z0, z1, ("z0 from the first mixture component, z1 from the last, each more than one standard "
                        "deviation out along its component's major axis, away from the mixture mean (for the "
                        "semicircle: the two tips of the horseshoe)")
    if _origin_radial(prior):
        z0, z1 = opposite_pairs(prior, n, seed)
        return z0, z1, (f"z0 a prior sample, z1 a prior sample conditioned on an angle of "
                        f"{OPPOSITE_ANGLE:g} degrees to z0 (roughly opposite directions)")
    rng = np.random.default_rng(seed)
    return prior.sample(n, seed=rng), prior.sample(n, seed=rng), "independent prior samples"


def opposite_pairs(prior, n: int, seed=0, angle: float = OPPOSITE_ANGLE):
    """Pairs of samples of a radial prior at ``angle`` degrees from each other.

    z0 ~ f; z1 = |w| (cos(angle) u0 + sin(angle) v) with w ~ f independent, u0 = z0 / |z0| and
    v uniform on the unit sphere orthogonal to u0: a sample of f conditioned on the angle
    (exact for densities of |z| alone). Returns (z0, z1), each (n, D) float64.
    """
    n = check_count(n)
    prior = as_prior(prior)
    if not _origin_radial(prior):
        raise TypeError(f"opposite_pairs needs a prior whose density depends on |z| alone "
                        f"({', '.join(c.__name__ for c in ORIGIN_RADIAL)}), got {prior!r}")
    if not (isinstance(angle, (int, float)) and 0.0 < angle < 180.0):
        raise ValueError(f"angle must be in (0, 180) degrees, got {angle!r}")
    if prior.dim < 2:
        raise ValueError("opposite_pairs needs dim >= 2: in one dimension every angle is 0 or 180 degrees")
    rng = np.random.default_rng(seed)
    z0 = prior.sample(n, seed=rng)
    radius1 = np.linalg.norm(prior.sample(n, seed=rng), axis=1, keepdims=True)
    u0 = z0 / np.linalg.norm(z0, axis=1, keepdims=True)
    e = rng.standard_normal((n, prior.dim))
    v = e - np.sum(e * u0, axis=1, keepdims=True) * u0
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    a = math.radians(angle)
    return z0, radius1 * (math.cos(a) * u0 + math.sin(a) * v)


def mixture_end_pairs(prior: GaussianMixture, n: int, seed=0, first: int = 0, last: int = -1,
                      beyond: float = TIP_BEYOND):
    """z0 from component ``first`` and z1 from component ``last`` of a Gaussian mixture, each
    from the outer tail of its component: the coordinate along the component's major axis v_k
    (top eigenvector of its covariance, oriented away from the mixture mean) is at least
    ``beyond`` standard deviations. Exact conditional sampling: with the covariance
    sum_j lambda_j v_j v_j^T, z = mu_k + sum_j sqrt(lambda_j) s_j v_j, where s_j ~ N(0, 1) for
    the other axes and, along v_k, s ~ N(0, 1) conditioned on s >= beyond (inverse-CDF
    sampling). Returns (z0, z1), each (n, D) float64.
    """
    from scipy import special

    n = check_count(n)
    prior = as_prior(prior)
    if not isinstance(prior, GaussianMixture):
        raise TypeError(f"mixture_end_pairs needs a GaussianMixture, got {prior!r}")
    rng = np.random.default_rng(seed)
    center = prior.weights @ prior.means
    out = []
    for k in (first, last):
        mu = prior.means[k]
        lam, vecs = np.linalg.eigh(prior.covs[k])
        if vecs[:, -1] @ (mu - center) < 0:
            vecs[:, -1] = -vecs[:, -1]
        s = rng.standard_normal((n, prior.dim))
        # S = -ndtri(U P(S >= beyond)) is N(0, 1) conditioned on S >= beyond
        s[:, -1] = -special.ndtri(rng.random(n) * special.ndtr(-beyond))
        out.append(mu + (s * np.sqrt(np.clip(lam, 0.0, None))) @ vecs.T)
    return out[0], out[1]
