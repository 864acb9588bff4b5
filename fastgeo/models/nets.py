"""The generator network of the embedded models (and nothing else: training lives in train.py).

A small fully connected generator G: R^D -> [0, 1]^(1 x 8 x 8),

    G(z) = sigmoid(W_3 s(W_2 s(W_1 z + b_1) + b_2) + b_3),   s = SiLU,

reshaped to (M, 1, 8, 8). SiLU rather than ReLU keeps G smooth, so the pull-back metric
dG^T dG that ri-optimal paths are measured in changes continuously along a path instead of
jumping between linear pieces. 8x8 images are too small for a convolutional stack to pay off;
a fully connected net trains in seconds per thousand steps on a CPU.

Optionally the latent first passes a fixed radial map (:class:`LogRadius`), used for
Kilcher et al.'s prior; see that class for why.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class LogRadius(nn.Module):
    """The fixed radial map T(z) = z / |z| * log(1 + |z| / eps) (T(0) = 0), no parameters.

    Under Kilcher et al.'s prior z = R u with R ~ Gamma(1/2, theta), so R = theta X^2 / 2 with
    X ~ N(0, 1): P(R < r) ~ sqrt(2 r / (pi theta)) falls off only as the square root of r, and
    every direction u is equally likely at every radius. A generator that is Lipschitz near the
    origin maps the ball |z| < r, which holds that much prior mass, to images within L r of
    G(0): without help, a quarter of the prior samples decode to one and the same image.
    T keeps the direction and takes the log of the radius, so the next layer sees radii
    log(R / eps) ~ log(theta / (2 eps)) + 2 log|X|, spread over a few units with no pile at 0;
    only P(R < eps) ~ 1e-3 (for eps = 1e-6 theta) of the prior mass stays in the steep zone.
    """

    def __init__(self, eps: float):
        super().__init__()
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.eps = float(eps)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        r = torch.linalg.vector_norm(z, dim=1, keepdim=True)
        positive = r > 0
        safe = torch.where(positive, r, torch.ones_like(r))  # keeps the unused branch finite
        factor = torch.where(positive, torch.log1p(safe / self.eps) / safe,
                             torch.full_like(r, 1.0 / self.eps))  # the limit at r = 0
        return z * factor

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}"


INPUT_MAPS = {"log_radius": LogRadius}


class MLPGenerator(nn.Module):
    """Maps latent points (M, dim) to images (M, *image_shape) in [0, 1].

    ``input_map``: None, or {"type": "log_radius", "eps": ...} to put :class:`LogRadius`
    before the first layer.
    """

    def __init__(self, dim: int, hidden=(256, 256), image_shape=(1, 8, 8), input_map=None):
        super().__init__()
        self.dim = int(dim)
        self.hidden = tuple(int(h) for h in hidden)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.input_map = None if input_map is None else dict(input_map)
        widths = (self.dim,) + self.hidden
        layers = []
        if self.input_map is not None:
            options = dict(self.input_map)
            kind = options.pop("type", None)
            if kind not in INPUT_MAPS:
                raise ValueError(f"unknown input_map type {kind!r}; known: {', '.join(INPUT_MAPS)}")
            layers.append(INPUT_MAPS[kind](**options))
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(n_in, n_out), nn.SiLU()]
        layers += [nn.Linear(widths[-1], math.prod(self.image_shape)), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise ValueError(f"generator input must have shape (M, {self.dim}), got {tuple(z.shape)}")
        weight_dtype = self.net[-2].weight.dtype
        if z.dtype != weight_dtype:
            raise TypeError(f"generator input is {z.dtype} but its weights are {weight_dtype}: convert "
                            f"the latents (z.to({weight_dtype})) or the generator (.to({z.dtype}))")
        return self.net(z).reshape(z.shape[0], *self.image_shape)

    def config(self) -> dict:
        """The hyper-parameters that rebuild this architecture: MLPGenerator(**config())."""
        return {"dim": self.dim, "hidden": list(self.hidden), "image_shape": list(self.image_shape),
                "input_map": self.input_map}
