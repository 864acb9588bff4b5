"""fastgeo.nn: the realism index and the path energy as torch modules."""
import numpy as np
import pytest
import torch

import fastgeo
from fastgeo import nn, priors


@pytest.fixture(params=[torch.float32, torch.float64])
def dtype(request):
    return request.param


def test_index_modules_equal_the_functions_and_differentiate(rng, dtype):
    d = 5
    for prior in (priors.Gaussian(rng.standard_normal(d), rng.uniform(0.5, 2.0, d)),
                  priors.semicircle(d, kde_samples=600)):
        z = torch.tensor(rng.standard_normal((4, 7, d)) * 1.6, dtype=dtype, requires_grad=True)
        for module, fn in ((nn.RealismIndex(prior, 0.4), fastgeo.ri), (nn.LogRealismIndex(prior, 0.4), fastgeo.log_ri)):
            out = module(z)
            assert out.dtype == dtype and out.shape == (4, 7) and out.requires_grad
            torch.testing.assert_close(out, fn(z.detach(), prior, 0.4), rtol=0, atol=0)
            (grad,) = torch.autograd.grad(out.sum(), z)
            want = fastgeo.grad_log_ri(z.detach(), prior)
            if fn is fastgeo.ri:
                want = want * out.detach()[..., None]
            torch.testing.assert_close(grad, want, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=1e-30)


def test_path_energy_module(rng, dtype):
    G = torch.tensor(np.cumsum(rng.standard_normal((3, 9, 11)), axis=1), dtype=dtype, requires_grad=True)
    l = torch.tensor(rng.uniform(-25.0, -0.1, (3, 9)), dtype=torch.float64, requires_grad=True)
    energy = nn.PathEnergy(0.3)(G, l)
    torch.testing.assert_close(energy, fastgeo.path_energy(G.detach(), l.detach(), 0.3), rtol=0, atol=0)
    energy.sum().backward()
    _, dG, dl = fastgeo.energy_and_grads(G.detach(), l.detach(), 0.3)
    torch.testing.assert_close(G.grad, dG, rtol=0, atol=0)
    torch.testing.assert_close(l.grad, dl, rtol=0, atol=0)


def test_index_modules_take_a_distribution_converted_once(rng):
    mvn = torch.distributions.MultivariateNormal(torch.zeros(3), torch.eye(3) * 2.0)
    module = nn.RealismIndex(mvn, 0.7)
    assert isinstance(module.prior, priors.Gaussian)
    z = torch.tensor(rng.standard_normal((5, 3)) * 2)
    torch.testing.assert_close(module(z), fastgeo.ri(z, module.prior, 0.7), rtol=0, atol=0)


def test_modules_in_a_model_under_torch_compile(rng):
    """A regulariser inside a model: torch.compile breaks the graph at the module and runs."""
    prior = priors.StandardNormal(6)
    index = nn.LogRealismIndex(prior)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(6, 6).double()

        def forward(self, z):
            w = self.lin(z)
            return w.square().sum(-1) - index(w)

    model = Model()
    z = torch.tensor(rng.standard_normal((10, 6)))
    compiled = torch.compile(model, backend="eager")
    torch.testing.assert_close(compiled(z), model(z), rtol=1e-14, atol=0)
    compiled(z).sum().backward()
    assert model.lin.weight.grad is not None and torch.isfinite(model.lin.weight.grad).all()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"alpha must be a number in \(0, 1\]"):
        nn.RealismIndex(priors.StandardNormal(2), alpha=1.5)
    with pytest.raises(ValueError, match=r"alpha must be a number in \(0, 1\)"):
        nn.PathEnergy(1.0)
    with pytest.raises(TypeError, match="prior must be"):
        nn.LogRealismIndex("normal")
    assert "alpha=0.5" in repr(nn.RealismIndex(priors.StandardNormal(2), 0.5))
