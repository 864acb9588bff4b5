"""Generators and problems shared by the solver benchmarks (random weights, fixed seeds)."""
from __future__ import annotations

import math

import numpy as np
import torch

from fastgeo.models.dcgan import DCGANGenerator, dcgan  # noqa: F401 - shared with fastgeo bench
from fastgeo.priors import StandardNormal, semicircle


def mlp(d=32, hidden=512, out=784, seed=0, dtype=torch.float32):
    """A fixed random tanh MLP decoder R^d -> R^out (an MNIST-size fully connected generator)."""
    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, hidden),
                              torch.nn.Tanh(), torch.nn.Linear(hidden, out))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (1.5 / math.sqrt(p.shape[-1])))
    return net.to(dtype).eval()


def normal_endpoints(b, d, seed, dtype=torch.float32):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((2, b, d))
    return torch.from_numpy(z[0]).to(dtype), torch.from_numpy(z[1]).to(dtype), StandardNormal(d)


def semicircle_horn_endpoints(b, d, seed, dtype=torch.float64):
    """Endpoints sampled from the first and the third component (the horns) of semicircle(d)."""
    prior = semicircle(d)
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((2, b, d))
    z0 = prior.means[0] + e[0] @ prior._chols[0].T
    z1 = prior.means[2] + e[1] @ prior._chols[2].T
    return torch.from_numpy(z0).to(dtype), torch.from_numpy(z1).to(dtype), prior


def identity(x):
    return x
