"""What each embedded model is: its prior, latent dimension and one-line description.

One table serves the trainer (which prior to sample while training) and the loader (which
prior object to hand back with the weights), so the two cannot drift apart. The metadata
JSON stored beside each weight file repeats the prior's name and parameters; the loader
rebuilds the prior from that JSON and checks it against this table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import priors

IMAGE_SHAPE = (1, 8, 8)

# D for the normal and Kilcher models: see the module docstring of fastgeo.models.
LATENT_DIM = 64
SEMICIRCLE_DIM = 20          # the paper's section 6
GAMMA_SHAPE = 0.5            # Kilcher et al.'s usual choice (MATH.md 1.1)
# scale chosen so that E|z|^2 = shape (shape + 1) scale^2 equals D, as under N(0, I_D):
# both priors then spread over the same radii in the mean-square sense.
GAMMA_SCALE = math.sqrt(LATENT_DIM / (GAMMA_SHAPE * (GAMMA_SHAPE + 1.0)))
# the Kilcher generator's fixed log-radius input map (fastgeo.models.nets.LogRadius)
KILCHER_INPUT_EPS = 1e-6 * GAMMA_SCALE


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    prior_name: str               # a key of PRIOR_BUILDERS
    prior_params: dict = field(default_factory=dict)
    generator_options: dict = field(default_factory=dict)  # extra MLPGenerator arguments

    @property
    def dim(self) -> int:
        return int(self.prior_params["dim"])

    def make_prior(self):
        return build_prior(self.prior_name, self.prior_params)


PRIOR_BUILDERS = {
    "StandardNormal": lambda p: priors.StandardNormal(p["dim"]),
    "semicircle": lambda p: priors.semicircle(p["dim"]),
    "GammaNorm": lambda p: priors.GammaNorm(p["dim"], shape=p["shape"], scale=p["scale"]),
}


def build_prior(prior_name: str, params: dict):
    if prior_name not in PRIOR_BUILDERS:
        raise ValueError(f"unknown prior {prior_name!r}; known: {', '.join(PRIOR_BUILDERS)}")
    return PRIOR_BUILDERS[prior_name](params)


SPECS = {
    spec.name: spec
    for spec in (
        ModelSpec("normal", f"GAN on 8x8 digits, standard normal prior N(0, I_{LATENT_DIM})",
                  "StandardNormal", {"dim": LATENT_DIM}),
        ModelSpec("semicircle", f"GAN on 8x8 digits, the paper's semicircle prior (D = {SEMICIRCLE_DIM})",
                  "semicircle", {"dim": SEMICIRCLE_DIM}),
        ModelSpec("kilcher", f"GAN on 8x8 digits, Kilcher et al.'s prior (|z| ~ Gamma({GAMMA_SHAPE}, "
                  f"{GAMMA_SCALE:.3g}), D = {LATENT_DIM})",
                  "GammaNorm", {"dim": LATENT_DIM, "shape": GAMMA_SHAPE, "scale": GAMMA_SCALE},
                  {"input_map": {"type": "log_radius", "eps": KILCHER_INPUT_EPS}}),
    )
}
