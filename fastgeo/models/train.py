"""Train an embedded generator on the 8x8 digits: ``python -m fastgeo.models.train --model NAME``.

A GAN whose latent distribution is the model's prior (fastgeo.models.specs). The
discriminator sees real digits and G(z), z ~ prior; the generator learns to make the two
indistinguishable, so G becomes a generator *for that prior*: prior samples decode to digits.

- losses: the non-saturating GAN loss, with the R1 penalty (gamma/2) E|grad_x D(x)|^2 on real
  digits (Mescheder et al. 2018), which keeps this small GAN from oscillating;
- the shipped generator is an exponential moving average of the trained one's weights
  (decay ``--ema``), which removes the step-to-step jitter of GAN training;
- every source of randomness is seeded (numpy for prior samples, torch for the rest), torch
  runs on ``--threads`` threads with deterministic algorithms, so a rerun with the same
  arguments on the same machine and torch version gives the same weights.

Writes ``<out>/<name>.pt`` (the generator's state_dict, float32) and ``<out>/<name>.json``
(architecture, prior, training configuration, final losses and sample-quality figures).
Training is not part of the test suite; each model takes a few minutes on two CPU cores.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .data import load_digit_images, nearest_distances
from .nets import MLPGenerator
from .specs import IMAGE_SHAPE, SPECS, build_prior

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
FORMAT_VERSION = 1


class Discriminator(nn.Module):
    def __init__(self, n_in: int, hidden=(256, 256)):
        super().__init__()
        widths = (n_in,) + tuple(hidden)
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        layers.append(nn.Linear(widths[-1], 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.reshape(x.shape[0], -1)).squeeze(1)


class Progress:
    """A one-line progress bar on stderr (or nothing, when disabled)."""

    def __init__(self, total: int, enabled: bool, width: int = 30):
        self.total, self.enabled, self.width = total, enabled, width
        self.start = time.perf_counter()

    def update(self, done: int, note: str = ""):
        if not self.enabled:
            return
        filled = int(self.width * done / self.total)
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} "
                         f"{elapsed:5.0f}s {note}")
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\n")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastgeo.models.train", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, choices=sorted(SPECS), help="which embedded model to train")
    p.add_argument("--out", default=DEFAULT_OUT, help="folder for <model>.pt and <model>.json")
    p.add_argument("--dim", type=int, default=None, help="override the latent dimension (experiments only)")
    p.add_argument("--steps", type=int, default=20000, help="training steps (one D and one G update each)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--betas", type=float, nargs=2, default=(0.5, 0.99))
    p.add_argument("--r1", type=float, default=1.0, help="R1 penalty weight gamma")
    p.add_argument("--ema", type=float, default=0.999, help="decay of the shipped weight average")
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256], help="hidden widths of G and D")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch.set_num_threads (1: these small layers gain little from more)")
    p.add_argument("--log-every", type=int, default=1000)
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    return p.parse_args(argv)


def sample_quality(generator, prior, data: torch.Tensor, n: int = 1000, seed: int = 12345) -> dict:
    """Mean nearest-neighbour distances between n decoded prior samples and the digits.

    ``fake_to_data``: how far samples lie from the nearest real digit (are samples digits?);
    ``data_to_fake``: how far real digits lie from the nearest sample (are all digits made?).
    """
    z = torch.as_tensor(prior.sample(n, seed=seed), dtype=torch.float32)
    with torch.no_grad():
        fake = generator(z)
    return {"fake_to_data": float(nearest_distances(fake, data).mean()),
            "data_to_fake": float(nearest_distances(data, fake).mean())}


@contextlib.contextmanager
def torch_settings(threads: int, seed: int):
    """Seeded, deterministic torch on ``threads`` threads; the caller's settings come back after."""
    saved_threads, saved_deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            torch.set_num_threads(saved_threads)
            torch.use_deterministic_algorithms(saved_deterministic)


def train(args) -> dict:
    with torch_settings(args.threads, args.seed):
        return _train(args)


def _train(args) -> dict:
    spec = SPECS[args.model]
    params = dict(spec.prior_params)
    if args.dim is not None:
        params["dim"] = args.dim
    prior = build_prior(spec.prior_name, params)
    dim = prior.dim

    rng = np.random.default_rng(args.seed)
    gen_batches = torch.Generator().manual_seed(args.seed + 1)

    data = torch.from_numpy(load_digit_images())
    n_pixels = int(np.prod(IMAGE_SHAPE))
    G = MLPGenerator(dim, args.hidden, IMAGE_SHAPE, **spec.generator_options)
    D = Discriminator(n_pixels, args.hidden)
    G_ema = MLPGenerator(dim, args.hidden, IMAGE_SHAPE, **spec.generator_options)
    G_ema.load_state_dict(G.state_dict())
    G_ema.requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), lr=args.lr, betas=tuple(args.betas))
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr, betas=tuple(args.betas))

    def prior_batch():
        return torch.as_tensor(prior.sample(args.batch, seed=rng), dtype=torch.float32)

    print(f"training {args.model!r}: {prior!r}, D = {dim}, {len(data)} digits, {args.steps} steps, "
          f"{args.threads} threads", flush=True)
    history = {"loss_d": [], "loss_g": [], "r1": []}
    log = []
    bar = Progress(args.steps, not args.no_progress)
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        real = data[torch.randint(len(data), (args.batch,), generator=gen_batches)].requires_grad_(True)
        with torch.no_grad():
            fake = G(prior_batch())
        d_real = D(real)
        loss_d = F.softplus(-d_real).mean() + F.softplus(D(fake)).mean()
        (grad_real,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
        r1 = grad_real.pow(2).flatten(1).sum(1).mean()
        opt_d.zero_grad(set_to_none=True)
        (loss_d + 0.5 * args.r1 * r1).backward()
        opt_d.step()

        loss_g = F.softplus(-D(G(prior_batch()))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        with torch.no_grad():
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.lerp_(p, 1.0 - args.ema)

        history["loss_d"].append(loss_d.item())
        history["loss_g"].append(loss_g.item())
        history["r1"].append(r1.item())
        if step % 50 == 0 or step == args.steps:
            bar.update(step, f"loss_d {loss_d.item():.3f} loss_g {loss_g.item():.3f}")
        if step % args.log_every == 0 or step == args.steps:
            quality = sample_quality(G_ema, prior, data)
            entry = {"step": step, "seconds": round(time.perf_counter() - t0, 1),
                     **{k: round(float(np.mean(v[-args.log_every:])), 4) for k, v in history.items()},
                     **{k: round(v, 4) for k, v in quality.items()}}
            log.append(entry)
            if not args.no_progress:
                sys.stderr.write("\n")
            print(json.dumps(entry), flush=True)
    bar.close()
    seconds = time.perf_counter() - t0

    tail = min(500, args.steps)
    final = {k: float(np.mean(v[-tail:])) for k, v in history.items()}
    quality = sample_quality(G_ema, prior, data)
    random_images = torch.rand(1000, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(7))
    meta = {
        "format_version": FORMAT_VERSION,
        "name": args.model,
        "description": spec.description,
        "model_type": "GAN generator (exponential moving average of the trained weights)",
        "architecture": {"class": "MLPGenerator", **G_ema.config()},
        "prior": {"name": spec.prior_name, "params": params, "repr": repr(prior)},
        "dim": dim,
        "data": {"source": "sklearn.datasets.load_digits", "n": len(data),
                 "shape": list(IMAGE_SHAPE), "scaling": "pixel / 16, in [0, 1]"},
        "training": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()
                     if k not in ("out", "no_progress", "log_every")}
                    | {"seconds": round(seconds, 1), "torch": torch.__version__},
        "final_losses": {f"{k}_last{tail}_mean": round(v, 4) for k, v in final.items()},
        "quality": {**{k: round(v, 4) for k, v in quality.items()},
                    "random_images_to_data": round(float(nearest_distances(random_images, data).mean()), 4)},
        "log": log,
    }
    os.makedirs(args.out, exist_ok=True)
    state = {k: v.detach().clone().contiguous() for k, v in G_ema.state_dict().items()}
    torch.save(state, os.path.join(args.out, f"{args.model}.pt"))
    with open(os.path.join(args.out, f"{args.model}.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")
    print(f"done in {seconds:.0f}s: final {json.dumps(meta['final_losses'])}, "
          f"quality {json.dumps(meta['quality'])}")
    print(f"wrote {os.path.join(args.out, args.model)}.pt and .json")
    return meta


def main(argv=None) -> dict:
    return train(parse_args(argv))


if __name__ == "__main__":
    main()
