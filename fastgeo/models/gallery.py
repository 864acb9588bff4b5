"""Look at an embedded model: ``python -m fastgeo.models.gallery --model NAME --out DIR``.

Writes PNGs to look at, and prints how close the decoded images are to real digits
(mean distance to the nearest of the 1797 training digits; two real digits lie 1.03 apart
on average, leave-one-out):

- ``<name>-samples.png``: 100 decoded prior samples (are they digits? all ten kinds?);
- ``<name>-far.png``: decoded latents three times farther out than prior samples;
- ``<name>-linear.png`` and ``<name>-linear-ri.png``: linear paths between pairs of prior
  samples (decoded every fifth of 51 points) and their distances and realism index;
- for the semicircle model, ``<name>-horseshoe.png`` (decoded along the horseshoe, and along
  the straight line between its two tips, which crosses the empty middle) and
  ``<name>-horseshoe-plane.png`` (both paths over prior samples in coordinates 0 and 1).
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch

from .. import log_ri
from ..report import distance_and_ri_plot, image_grid, image_strips, projection_plot
from . import load
from .data import load_digit_images, nearest_distances
from .specs import SPECS

#: the horseshoe's spine in the semicircle's first two coordinates: tip, means, tip
HORSESHOE_SPINE = np.array([[5.5, 8.0], [2.0, 6.0], [0.0, 0.0], [2.0, -6.0], [5.5, -8.0]])


def polyline(vertices: np.ndarray, n_points: int) -> np.ndarray:
    """n_points evenly spaced by arc length along the polyline through ``vertices``."""
    seg = np.linalg.norm(np.diff(vertices, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, s[-1], n_points)
    return np.stack([np.interp(t, s, vertices[:, j]) for j in range(vertices.shape[1])], axis=1)


def linear_path(x0, x1, n_points: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n_points)[:, None]
    return (1.0 - t) * x0 + t * x1


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastgeo.models.gallery", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, choices=sorted(SPECS))
    p.add_argument("--out", required=True, help="folder for the PNG files")
    p.add_argument("--weights-dir", default=None,
                   help="load <model>.pt/.json from this folder instead of the package")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    model = load(args.model, args.weights_dir)
    prior, G, name = model.prior, model.generator, model.name
    data = torch.from_numpy(load_digit_images())
    rng = np.random.default_rng(args.seed)
    out = lambda suffix: os.path.join(args.out, f"{name}-{suffix}.png")  # noqa: E731

    def decode(z):
        with torch.no_grad():
            return G(torch.as_tensor(z, dtype=torch.float32))

    def closeness(images) -> float:
        return float(nearest_distances(images, data).mean())

    z = prior.sample(100, seed=rng)
    images = decode(z)
    image_grid(images, out("samples"), title=f"{name}: decoded prior samples")
    samples = closeness(decode(prior.sample(1000, seed=rng)))
    print(f"prior samples: mean distance to nearest digit {samples:.3f}")
    far = decode(3.0 * prior.sample(1000, seed=rng))
    image_grid(far[:100], out("far"), title=f"{name}: decoded 3 x prior samples")
    print(f"3 x prior samples: {closeness(far):.3f}")
    noise = torch.rand(1000, *model.image_shape, generator=torch.Generator().manual_seed(0))
    print(f"uniform random images: {closeness(noise):.3f}")

    ends = prior.sample(6, seed=rng)
    strips, decoded, lri = {}, {}, {}
    for k in range(3):
        path = linear_path(ends[2 * k], ends[2 * k + 1], 51)
        strips[f"pair {k}"] = decode(path)
        decoded[f"pair {k}"] = strips[f"pair {k}"]
        lri[f"pair {k}"] = log_ri(path, prior)
    image_strips(strips, 5, out("linear"), title=f"{name}: linear paths between prior samples")
    distance_and_ri_plot(decoded, lri, out("linear-ri"), title=f"{name}: linear paths")
    for key, g in strips.items():
        print(f"linear {key}: mean distance to nearest digit {closeness(g):.3f}, "
              f"min log ri {lri[key].min():.2f}")

    if args.model == "semicircle":
        along = np.zeros((51, prior.dim))
        along[:, :2] = polyline(HORSESHOE_SPINE, 51)
        across = linear_path(along[0], along[-1], 51)
        paths = {"linear": across, "along the horseshoe": along}
        image_strips({k: decode(v) for k, v in paths.items()}, 5, out("horseshoe"),
                     title="semicircle: between the horseshoe's tips")
        projection_plot(paths, out("horseshoe-plane"), prior_samples=prior.sample(3000, seed=rng),
                        title="semicircle: between the horseshoe's tips")
        for k, v in paths.items():
            print(f"{k}: mean distance to nearest digit {closeness(decode(v)):.3f}, "
                  f"min log ri {log_ri(v, prior).min():.2f}")
    print(f"wrote {args.out}/{name}-*.png")


if __name__ == "__main__":
    main()
