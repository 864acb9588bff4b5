"""Embedded generators: small GANs trained on scikit-learn's 8x8 digits, shipped as weights.

``fastgeo.models.load(name)`` returns an :class:`EmbeddedModel`: a generator G (a torch
module in eval mode mapping latents (M, D) to images (M, 1, 8, 8) in [0, 1]) together with
the prior it was trained for, so that the realism index of that prior is meaningful for it.
``fastgeo.models.available()`` lists the names.

Models (see ``available()``):

- ``"normal"``: N(0, I_64). The paper's normal-prior models use D = 100, but the digits are
  64 pixels whose principal components reach 95% of the variance at 29 and 99% at 41, so a
  latent larger than the image itself buys nothing. D = 64 is still deep in the soap-bubble
  regime: prior samples lie at |z| = 8.0 +- 0.7, the midpoint of two of them at about 5.7,
  and N(0, I_64) puts only P(chi2_64 < 32) = 3e-4 of its mass that close to the origin (at
  D = 32 the same ratio holds 8e-3). The realism index cannot see this (ri grows towards the
  origin); a generator trained on the shell can.
- ``"semicircle"``: the paper's semicircle prior (its section 6), D = 20.
- ``"kilcher"``: Kilcher et al.'s prior in D = 64, |z| ~ Gamma(shape 1/2, scale
  sqrt(64 / 0.75) = 9.24): the scale makes E|z|^2 = D, as for N(0, I_64), and D matches the
  normal model so that linear paths under the two priors can be compared. Its generator
  starts with a fixed map z -> z/|z| log(1 + |z|/eps) (:class:`~fastgeo.models.nets.LogRadius`):
  this prior puts a quarter of its mass within |z| < 0.46 with every direction equally likely
  there, and a plain network, being continuous at 0, decoded all of those to nearly one image
  (measured: pixel std across such samples 0.02-0.13 against 0.23 elsewhere). With the map,
  quality is the same at every radius. A consequence worth knowing: decoded images change
  fastest where a path passes close to the origin, so linear paths from a short endpoint jump.

Why a GAN and not a VAE: it is the paper's model type, and a GAN's generator is trained only
on prior samples, so it is a generator *for that prior* by construction; what it does away
from the prior's mass is exactly what realism-aware interpolation is about. A VAE decoder is
trained on the encoder's posterior samples instead, which stand in for the prior only as far
as the KL term makes their aggregate match it (hard to guarantee for the semicircle's three
modes), and the paper observes that auto-encoder decoders make linear paths look nearly
optimal anyway. The GAN here is small and fully connected, with the R1 penalty and a weight
average (see :mod:`fastgeo.models.train`); one set of settings trains all three models (the
Kilcher one once it had its input map, above). Training takes a few minutes on a CPU; each
model's ``<name>.json`` (below) records its steps and the seconds they took.

Each model is two files in ``fastgeo/models/weights/``: ``<name>.pt``, a plain state_dict of
float32 tensors loaded with ``torch.load(..., weights_only=True)``, and ``<name>.json``, its
metadata (architecture, prior and parameters, D, data shape, training configuration, final
losses, sample quality). Retrain with ``python -m fastgeo.models.train --model <name>``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from .specs import SPECS, build_prior

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")


@dataclass(frozen=True, eq=False)
class EmbeddedModel:
    """A shipped generator and its prior.

    Attributes
    ----------
    name : the model's name, e.g. "semicircle".
    generator : torch ``nn.Module`` in eval mode, (M, dim) float32 -> (M, *image_shape) in [0, 1].
    prior : the :mod:`fastgeo.priors` prior the generator was trained on.
    dim : latent dimension D.
    image_shape : (C, H, W) of one decoded image, (1, 8, 8).
    metadata : the contents of the model's JSON file.
    """

    name: str
    generator: object
    prior: object
    dim: int
    image_shape: tuple
    metadata: dict = field(repr=False)

    @property
    def description(self) -> str:
        return self.metadata.get("description", "")

    def decode(self, z):
        """G(z) for a numpy array or torch tensor z of shape (M, dim); returns a torch tensor.

        numpy inputs are converted to float32 and decoded without building a graph.
        """
        import numpy as np
        import torch

        if isinstance(z, np.ndarray):
            with torch.no_grad():
                return self.generator(torch.as_tensor(z, dtype=torch.float32))
        return self.generator(z)


def available() -> dict[str, str]:
    """{name: one-line description} of the models shipped with this installation."""
    return {name: spec.description for name, spec in SPECS.items()
            if os.path.isfile(os.path.join(WEIGHTS_DIR, f"{name}.pt"))}


def _paths(name: str, weights_dir: str):
    return (os.path.join(weights_dir, f"{name}.pt"), os.path.join(weights_dir, f"{name}.json"))


def load(name: str, weights_dir: str | None = None) -> EmbeddedModel:
    """Load the embedded model ``name`` (see :func:`available`).

    ``weights_dir`` reads ``<name>.pt`` / ``<name>.json`` from another folder (a retrained
    model); by default the files shipped in the package are used.
    """
    import torch

    from .nets import MLPGenerator

    if not isinstance(name, str) or name not in SPECS:
        known = "; ".join(f"{k!r} ({spec.description})" for k, spec in SPECS.items())
        raise ValueError(f"unknown model {name!r}; known models: {known}")
    weights_path, meta_path = _paths(name, weights_dir or WEIGHTS_DIR)
    if not (os.path.isfile(weights_path) and os.path.isfile(meta_path)):
        raise FileNotFoundError(f"model {name!r} has no weights at {weights_path} (and {meta_path}); "
                                f"train it with: python -m fastgeo.models.train --model {name}")
    with open(meta_path) as fh:
        meta = json.load(fh)
    arch = dict(meta["architecture"])
    if arch.pop("class") != "MLPGenerator":
        raise ValueError(f"{meta_path}: unknown architecture {meta['architecture']['class']!r}")
    generator = MLPGenerator(**arch)
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    generator.load_state_dict(state)
    generator.eval()
    generator.requires_grad_(False)
    prior = build_prior(meta["prior"]["name"], meta["prior"]["params"])
    if prior.dim != generator.dim:
        raise ValueError(f"{meta_path}: prior dimension {prior.dim} != generator input {generator.dim}")
    return EmbeddedModel(name=name, generator=generator, prior=prior, dim=generator.dim,
                         image_shape=tuple(generator.image_shape), metadata=meta)


__all__ = ["EmbeddedModel", "available", "load", "WEIGHTS_DIR"]
