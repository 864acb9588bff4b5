"""Generators and problems shared by the solver benchmarks (random weights, fixed seeds)."""
from __future__ import annotations

import math

import numpy as np
import torch

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


class DCGANGenerator(torch.nn.Module):
    """The DCGAN generator of Radford et al. for 64x64x3 images: latent (M, nz) -> (M, 3, 64, 64)."""

    def __init__(self, nz=100, ngf=64):
        super().__init__()
        c = torch.nn

        def block(cin, cout, stride, pad):
            return [c.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False), c.BatchNorm2d(cout),
                    c.ReLU(True)]

        self.nz = nz
        self.net = c.Sequential(*block(nz, ngf * 8, 1, 0), *block(ngf * 8, ngf * 4, 2, 1),
                                *block(ngf * 4, ngf * 2, 2, 1), *block(ngf * 2, ngf, 2, 1),
                                c.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), c.Tanh())

    def forward(self, z):
        return self.net(z.view(z.shape[0], self.nz, 1, 1))


def dcgan(nz=100, ngf=64, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    net = DCGANGenerator(nz, ngf)
    for m in net.modules():  # DCGAN's initialisation: N(0, 0.02) convolutions, N(1, 0.02) BN scales
        if isinstance(m, torch.nn.ConvTranspose2d):
            torch.nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.normal_(m.weight, 1.0, 0.02)
            torch.nn.init.zeros_(m.bias)
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
