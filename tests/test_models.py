"""The embedded generators (fastgeo.models): loading, shapes, range, determinism, and that
prior samples decode to digits."""
import copy
import json
import os

import numpy as np
import pytest
import torch

import fastgeo
from fastgeo import models
from fastgeo.models.data import load_digit_images, load_digit_labels, nearest_distances, nearest_neighbours

NAMES = ["normal", "semicircle", "kilcher"]


@pytest.fixture(scope="module")
def digits():
    return torch.from_numpy(load_digit_images())


@pytest.fixture(scope="module")
def loaded():
    return {name: models.load(name) for name in NAMES}


def decode(model, z):
    with torch.no_grad():
        return model.generator(torch.as_tensor(z, dtype=torch.float32))


def test_available_lists_every_shipped_model():
    listed = models.available()
    assert sorted(listed) == sorted(NAMES)
    assert all(isinstance(text, str) and text for text in listed.values())


def test_unknown_name_lists_the_known_ones():
    known = r"unknown model 'mnist'; known models: 'normal' \(GAN on .*'semicircle'.*'kilcher'"
    with pytest.raises(ValueError, match=known) as err:
        models.load("mnist")
    assert "ModelSpec" not in str(err.value)
    with pytest.raises(ValueError, match="unknown model"):
        models.load(["normal"])


@pytest.mark.parametrize("name", NAMES)
def test_weights_are_a_plain_state_dict(name):
    path = os.path.join(models.WEIGHTS_DIR, f"{name}.pt")
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert isinstance(state, dict) and state
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 for v in state.values())
    with open(os.path.join(models.WEIGHTS_DIR, f"{name}.json")) as fh:
        meta = json.load(fh)
    for key in ("architecture", "prior", "dim", "data", "training", "final_losses"):
        assert key in meta
    assert meta["name"] == name and meta["data"]["shape"] == [1, 8, 8]


@pytest.mark.parametrize("name", NAMES)
def test_documented_shapes_and_prior(loaded, name, rng):
    model = loaded[name]
    assert model.name == name
    assert isinstance(model.generator, torch.nn.Module) and not model.generator.training
    assert isinstance(model.prior, fastgeo.priors.Prior)
    assert model.dim == model.prior.dim == model.metadata["dim"]
    assert model.image_shape == (1, 8, 8)
    for m in (1, 7):
        assert decode(model, model.prior.sample(m, seed=rng)).shape == (m, 1, 8, 8)
    with pytest.raises(ValueError, match=f"\\(M, {model.dim}\\)"):
        model.generator(torch.zeros(3, model.dim + 1))
    z = torch.as_tensor(model.prior.sample(5, seed=rng))
    with pytest.raises(TypeError, match="float64"):
        model.generator(z)
    # a float64 copy for float64 solvers decodes the same images
    with torch.no_grad():
        x64 = copy.deepcopy(model.generator).double()(z)
    assert x64.dtype == torch.float64
    torch.testing.assert_close(x64.float(), decode(model, z), rtol=0, atol=1e-5)


def test_priors_are_the_documented_ones(loaded):
    assert repr(loaded["normal"].prior) == f"StandardNormal(dim={loaded['normal'].dim})"
    semi = loaded["semicircle"].prior
    assert semi.dim == 20
    np.testing.assert_array_equal(semi.means[:, :2], [[2, 6], [0, 0], [2, -6]])
    kil = loaded["kilcher"].prior
    assert isinstance(kil, fastgeo.priors.GammaNorm) and kil.shape == 0.5
    assert kil.scale == pytest.approx((kil.dim / 0.75) ** 0.5)  # E|z|^2 = D


@pytest.mark.parametrize("name", NAMES)
def test_decoded_values_are_finite_images_and_deterministic(loaded, name, rng):
    model = loaded[name]
    z = model.prior.sample(200, seed=rng)
    z = np.vstack([z, 30.0 * z[:20], np.zeros((1, model.dim))])  # also far out and the origin
    x = decode(model, z)
    assert torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    assert torch.equal(x, decode(model, z))
    assert torch.equal(x, decode(models.load(name), z))  # a fresh load decodes bit for bit alike
    # numpy or torch through EmbeddedModel.decode; gradients reach z (for path optimisation)
    assert torch.equal(model.decode(z), x)
    zt = torch.as_tensor(z[:5], dtype=torch.float32).requires_grad_(True)
    model.decode(zt).sum().backward()
    assert zt.grad is not None and torch.isfinite(zt.grad).all() and zt.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_prior_samples_decode_to_digits(loaded, digits, name, rng):
    """Decoded prior samples lie near real digits; random images and far-out latents do not.

    Mean distance to the nearest of the 1797 training digits (two real digits lie 1.03 apart
    on average, leave-one-out; the shipped models' samples 1.1, uniform random images 3.5,
    latents 10 times farther out than prior samples 1.7-1.8). The Kilcher model's generator
    sees log |z| (fastgeo.models.nets.LogRadius), so it decodes far-out latents about as well as
    prior samples (1.3 at |z| = 1e6): that comparison is skipped for it.
    """
    model = loaded[name]
    z = model.prior.sample(500, seed=rng)
    samples = nearest_distances(decode(model, z), digits).mean()
    noise_images = torch.rand(500, 1, 8, 8, generator=torch.Generator().manual_seed(int(rng.integers(2**31))))
    noise = nearest_distances(noise_images, digits).mean()
    assert samples < 1.3
    assert samples < 0.45 * noise
    if name != "kilcher":
        assert samples < 0.85 * nearest_distances(decode(model, 10.0 * z), digits).mean()


@pytest.mark.parametrize("name", NAMES)
def test_prior_samples_make_every_digit(loaded, digits, name, rng):
    """No mode collapse: real digits lie near some decoded sample; labelled by their nearest
    real digit, decoded prior samples show all ten digits in about equal shares; and few
    samples have a near-duplicate among the others (none of the real digits has one closer
    than 0.3; a plain network under Kilcher's prior gave 10-12% such samples, see
    fastgeo.models.nets.LogRadius; the shipped models give at most 0.5%)."""
    model = loaded[name]
    images = decode(model, model.prior.sample(len(digits), seed=rng))
    assert nearest_distances(digits, images).mean() < 1.5
    _, index = nearest_neighbours(images, digits)
    shares = np.bincount(load_digit_labels()[index.numpy()], minlength=10) / len(images)
    assert shares.min() > 0.04 and shares.max() < 0.2, shares
    flat = images.reshape(len(images), -1).double()
    gaps = torch.cdist(flat, flat).fill_diagonal_(float("inf")).min(dim=1).values
    assert (gaps < 0.3).double().mean() < 0.03


def test_semicircle_images_change_along_the_horseshoe(loaded, digits):
    """The generator uses the horseshoe's coordinates: walking its spine (tip, component
    means, tip) passes through several different digits."""
    from fastgeo.models.gallery import HORSESHOE_SPINE, polyline

    model = loaded["semicircle"]
    walk = np.zeros((11, model.dim))
    walk[:, :2] = polyline(HORSESHOE_SPINE, 11)
    _, index = nearest_neighbours(decode(model, walk), digits)
    assert len(set(load_digit_labels()[index.numpy()])) >= 3


def test_training_script_writes_what_the_loader_reads(tmp_path, capsys):
    """A few steps of the trainer (the real runs take minutes and are not part of the tests)."""
    from fastgeo.models import train

    meta = train.main(["--model", "kilcher", "--steps", "30", "--batch", "16", "--hidden", "32",
                       "--out", str(tmp_path), "--no-progress", "--seed", "3"])
    assert "done in" in capsys.readouterr().out
    model = models.load("kilcher", weights_dir=str(tmp_path))
    assert model.metadata == meta
    assert model.generator.hidden == (32,) and model.generator.input_map["type"] == "log_radius"
    x = decode(model, model.prior.sample(4, seed=0))
    assert x.shape == (4, 1, 8, 8) and torch.isfinite(x).all()
    # the same arguments train the same weights
    again = tmp_path / "again"
    train.main(["--model", "kilcher", "--steps", "30", "--batch", "16", "--hidden", "32",
                "--out", str(again), "--no-progress", "--seed", "3"])
    first = torch.load(tmp_path / "kilcher.pt", weights_only=True)
    second = torch.load(again / "kilcher.pt", weights_only=True)
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_the_shipped_digits_are_scikit_learns():
    """fastgeo ships the 1797 digits (so the demo's digit distance needs no scikit-learn); they
    are exactly scikit-learn's bundled copy."""
    datasets = pytest.importorskip("sklearn.datasets")
    ref = datasets.load_digits()
    np.testing.assert_array_equal(load_digit_images(np.float64)[:, 0], ref.images / 16.0)
    np.testing.assert_array_equal(load_digit_labels(), ref.target)

