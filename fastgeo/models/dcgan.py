"""The DCGAN generator of Radford et al. (64x64x3 images), with random weights: the
generator-size stand-in of the solver and GPU benchmarks (no training, fixed seeds).

Latent (M, nz) -> four transposed-convolution blocks (BatchNorm, ReLU) -> (M, 3, 64, 64),
tanh; N = 12288 outputs per latent point, the size of the path-energy target.
"""
from __future__ import annotations

import torch


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
    """A DCGAN generator with DCGAN's random initialisation, in eval mode (BatchNorm then uses
    its running statistics, so rows of a batch stay independent)."""
    torch.manual_seed(seed)
    net = DCGANGenerator(nz, ngf)
    for m in net.modules():  # N(0, 0.02) convolutions, N(1, 0.02) BN scales
        if isinstance(m, torch.nn.ConvTranspose2d):
            torch.nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.normal_(m.weight, 1.0, 0.02)
            torch.nn.init.zeros_(m.bias)
    return net.to(dtype).eval()
