"""fastgeo as torch modules: the realism index and the path energy, for training-time
regularisers and for tools that compose ``torch.nn.Module`` objects.

    RealismIndex(prior, alpha)(z)    = fastgeo.ri(z, prior, alpha)            (..., D) -> (...)
    LogRealismIndex(prior, alpha)(z) = fastgeo.log_ri(z, prior, alpha)        (..., D) -> (...)
    PathEnergy(alpha)(decoded, log_ri) = fastgeo.path_energy(decoded, log_ri, alpha)  -> (B,)

The modules hold no tensors: they compute where their input lives (CPU or a CUDA device,
never moving it) in the input's dtype, and are differentiable (the analytic gradients of
MATH.md 1 and 3, first order). Their work is compiled Numba code outside torch's graph:
under ``torch.compile`` each call is one graph break (``torch.compiler.disable``), the rest
of the model compiles as usual. TorchScript cannot script them.
"""
from __future__ import annotations

import torch

from .path import path_energy
from .priors.convert import as_prior
from .realism import check_alpha, log_ri, ri


class _PointIndex(torch.nn.Module):
    def __init__(self, prior, alpha=1.0, backend="auto", method="auto"):
        super().__init__()
        self.prior = as_prior(prior)
        self.alpha = check_alpha(alpha)
        self.backend = backend
        self.method = method

    def extra_repr(self) -> str:
        return f"prior={self.prior!r}, alpha={self.alpha:g}, backend={self.backend!r}, method={self.method!r}"


class RealismIndex(_PointIndex):
    """ri_alpha(z) = alpha P_{X~f}(f(X) <= f(z)) of each point z (..., D), in [0, alpha]
    (:func:`fastgeo.ri`). ``prior``: a :mod:`fastgeo.priors` prior, a torch distribution or a
    frozen scipy distribution (converted once, :func:`fastgeo.priors.as_prior`)."""

    @torch.compiler.disable
    def forward(self, z):
        return ri(z, self.prior, self.alpha, self.backend, self.method)


class LogRealismIndex(_PointIndex):
    """log ri_alpha(z) of each point z (..., D), finite wherever the density is positive
    (:func:`fastgeo.log_ri`): the form to regularise with, as ri underflows far out."""

    @torch.compiler.disable
    def forward(self, z):
        return log_ri(z, self.prior, self.alpha, self.backend, self.method)


class PathEnergy(torch.nn.Module):
    """E = sum_i (log a_i)^2 |G_{i+1} - G_i|^2 of each path, eq. (3) (:func:`fastgeo.path_energy`):
    ``forward(decoded (B, K+1, ...), log_ri (B, K+1))`` -> (B,), alpha in (0, 1)."""

    def __init__(self, alpha, backend="auto"):
        super().__init__()
        self.alpha = check_alpha(alpha, upper_inclusive=False)
        self.backend = backend

    @torch.compiler.disable
    def forward(self, decoded, log_ri):
        return path_energy(decoded, log_ri, self.alpha, self.backend)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}, backend={self.backend!r}"
