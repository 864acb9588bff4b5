"""interpolate: ``fastgeo.interpolate`` for a fixed number of iterations (ftol = 0) through a
generator with random weights, against its floor, the generator's forward passes and VJPs
alone; the solver overhead is 1 - (generator forward + VJP) / total.

Generators: the DCGAN of :mod:`fastgeo.models.dcgan` (64x64x3 outputs, feature width ngf)
and a tanh MLP (:func:`mlp`). Checks: a solved batch's energies are those of its decoded
points (recomputed by ``fastgeo.path_energy``); they started at the linear paths' energies
(decoded apart by ``fastgeo.linear_path``) and never went up. The generator's VJPs match
those of a float64 copy of the generator.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from .._arrays import kind_of
from .checks import check_close, check_that, to_host
from .timing import Row

#: paths of the interpolate benchmark on a CPU at most: a DCGAN decodes B (K+1) 64x64x3 images
#: per iteration, far too many for a CPU at the GPU's B = 256
CPU_INTERPOLATE_PATHS = 4
#: energies recomputed from the same float32 decoded points
RTOL = 1e-4
#: energies of points decoded apart (other batches) on a GPU: cuDNN picks other algorithms,
#: and torch lets them round through TF32 (torch.backends.cudnn.allow_tf32)
RTOL_GPU_DECODING = 5e-2
#: float32 VJPs through a generator against its float64 copy, relative to the largest entry
RTOL_VJP = 1e-3
CHECK_POINTS = 4


def mlp(d=32, hidden=512, out=784, seed=0, dtype=None):
    """A fixed random tanh MLP decoder R^d -> R^out (an MNIST-size fully connected generator)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, hidden),
                              torch.nn.Tanh(), torch.nn.Linear(hidden, out))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (1.5 / math.sqrt(p.shape[-1])))
    return net.to(dtype or torch.float32).eval()


def normal_endpoints(b, d, seed, dtype=None, device="cpu"):
    """(z0, z1, StandardNormal(d)): b standard normal endpoint pairs; ``seed``: an int or a
    numpy Generator."""
    import torch

    from fastgeo.priors import StandardNormal

    z = np.random.default_rng(seed).standard_normal((2, b, d))
    z0, z1 = (torch.as_tensor(z[i], dtype=dtype or torch.float32, device=device) for i in (0, 1))
    return z0, z1, StandardNormal(d)


def solve(generator, z0, z1, prior, n_points, iterations, **options):
    """``fastgeo.interpolate`` for exactly ``iterations`` iterations (ftol = 0), no progress bar."""
    import fastgeo

    return fastgeo.interpolate(generator, z0, z1, prior, n_points=n_points, max_iter=iterations, ftol=0.0,
                               progress=False, **options)


def linear_free_points(z0, z1, n_points):
    """The free points (B (n_points - 2), D) of the linear paths from z0 to z1."""
    import torch

    t = torch.linspace(0, 1, n_points, dtype=z0.dtype, device=z0.device)[1:-1]
    return ((1 - t)[None, :, None] * z0[:, None] + t[None, :, None] * z1[:, None]).reshape(-1, z0.shape[1])


def generator_alone(generator, x, calls):
    """``calls`` forward passes (with graph) and VJPs at points x, nothing else: the solver's
    floor. Returns the last VJP (the gradient of the outputs' sum at x)."""
    import torch

    grad = None
    for _ in range(calls):
        leaf = x.detach().requires_grad_(True)
        out = generator(leaf)
        (grad,) = torch.autograd.grad(out, leaf, torch.ones_like(out))
    return grad


def reference(generator, z0, z1, prior, n_points, **options):
    """float64 energies (B,) of the linear paths the solver starts from (``fastgeo.linear_path``)."""
    import fastgeo

    start = fastgeo.linear_path(generator, z0, z1, prior, n_points=n_points, **options)
    return to_host(start.energy).astype(np.float64)


def check(result, reference, rtol=RTOL):
    """A solved batch (an InterpolationResult): its energies are those of its decoded points,
    its energy history starts at the linear paths' energies ``reference`` and never goes up,
    and ends at its energies."""
    import fastgeo

    energy = to_host(result.energy).astype(np.float64)
    history = to_host(result.energy_history).astype(np.float64)
    check_that(np.all(np.isfinite(energy)), f"interpolate: energies not finite: {energy}")
    recomputed = fastgeo.path_energy(result.decoded, result.log_ri, result.alpha)
    check_close("interpolate: energy of the decoded path", recomputed, energy, rtol=rtol)
    apart = RTOL_GPU_DECODING if kind_of(result.decoded).is_cuda else rtol
    check_close("interpolate: first energy (the linear path's)", history[:, 0], reference, rtol=apart)
    check_that(np.all(np.diff(history, axis=1) <= rtol * np.abs(history[:, :1])),
               "interpolate: the energy went up during the iterations")
    check_close("interpolate: last energy of the history", history[:, -1], energy, rtol=apart)


def vjp_reference(generator, x):
    """float64 VJP of the outputs' sum at the first CHECK_POINTS points of x, by a float64
    copy of the generator."""
    import torch

    wide = copy.deepcopy(generator).to(torch.float64)
    return to_host(generator_alone(wide, x[:CHECK_POINTS].to(torch.float64), 1))


def check_vjp(result, reference, rtol=RTOL_VJP):
    check_close("generator VJP", result, reference, rtol=rtol, atol=rtol * float(np.abs(reference).max()))


def bench_interpolate(runner, device, shape, rng):
    """fastgeo.interpolate through a DCGAN generator: time per call and the solver overhead."""
    b, k, ngf, iters = shape
    nz = 100
    name = f"interpolate DCGAN-64x64x3 ngf={ngf} B={b} K={k} float32, {iters} iterations"
    runner.say(f"[{name}] on {device.name}")
    paths = b if device.name == "cuda" else min(b, CPU_INTERPOLATE_PATHS)
    note = "" if paths == b else f"measured on {paths} of {b} paths (CPU)"
    if device.name == "cuda" and device.lib != "torch":
        runner.rows.append(Row(name, "fastgeo.interpolate", device.name, "kernel",
                               note="skipped: needs torch with CUDA (the generator is a torch module)"))
        return
    import torch

    from fastgeo.models.dcgan import dcgan

    where = "cuda" if device.name == "cuda" else "cpu"
    gen = dcgan(nz, ngf).to(where)
    z0, z1, prior = normal_endpoints(paths, nz, rng, device=where)

    def run(p):
        return solve(gen, z0[:p], z1[:p], prior, k + 1, iters, synchronize=device.name == "cuda")

    try:
        run(1)  # warm-up: compilation, cuDNN algorithm choice, the allocator
        best = min((run(paths) for _ in range(max(1, min(runner.repeats, 3)))),
                   key=lambda res: res.timings["total"])
        check(best, reference(gen, z0, z1, prior, k + 1))
    except Exception as err:
        runner.skip(name, "fastgeo.interpolate", device, "kernel", err)
        return
    t = best.timings
    generator = t["generator_forward"] + t["generator_vjp"]
    overhead = 1.0 - generator / t["total"]
    parts = {key: t[key] for key in ("generator_forward", "generator_vjp", "realism_index", "path_energy",
                                     "total") if key in t}
    row = Row(name, "fastgeo.interpolate", device.name, "kernel", items=paths, seconds=t["total"],
              note="; ".join(filter(None, [note, f"solver overhead {100 * overhead:.1f}% "
                                                 f"(1 - generator forward+VJP / total)"])),
              extra={"solver_overhead_fraction": overhead, "timings_s": parts,
                     "generator_calls": best.n_calls,
                     "iterations_per_path": torch.as_tensor(best.iterations).cpu().reshape(-1).tolist()})
    runner.say(f"  {name} | fastgeo.interpolate ({device.name}): {t['total'] * 1e3:.1f} ms, "
               f"solver overhead {100 * overhead:.1f}%")
    runner.rows.append(row)
