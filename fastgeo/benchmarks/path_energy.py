"""path-energy: eq. (3) and both its gradients, E, dE/dG and dE/dl, of B float32 paths of
K + 1 points decoded to N values (MATH.md 3).

Implementations compared: ``fastgeo.energy_and_grads`` on each backend (the fused pass), the
same through torch autograd (``fastgeo.path_energy``), the CPU pass alone into a
preallocated gradient; torch eager autograd of the plain formula and ``torch.compile`` of
it. Every implementation returns (E, dE/dG, dE/dl), None where it computes no such array.
Reference for the check: fastgeo's float64 reference backend on the first ``CHECK_PATHS``
paths.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .checks import check_close, check_that
from .device import backends_for
from .timing import Row, short_reason

ALPHA = 0.5
CHECK_PATHS = 2
#: float32 arithmetic against float64; gradients also absolutely, relative to their largest entry
RTOL = 1e-4


def random_walk_inputs(rng, b, k, n):
    """Decoded paths (b, k+1, n) float32 as random walks, log ri (b, k+1) float64 in (-inf, 0]."""
    decoded = np.cumsum(0.05 * rng.standard_normal((b, k + 1, n), dtype=np.float32), axis=1)
    return decoded, -np.abs(rng.standard_normal((b, k + 1)))


def noise_inputs(rng, b, k, n):
    """Decoded points (b, k+1, n) float32 standard normal, log ri (b, k+1) float32 in [-20, 0]."""
    decoded = rng.standard_normal((b, k + 1, n), dtype=np.float32)
    return decoded, rng.uniform(-20.0, 0.0, (b, k + 1)).astype(np.float32)


def fastgeo_energy_and_grads(decoded, log_ri, alpha, backend):
    import fastgeo

    return fastgeo.energy_and_grads(decoded, log_ri, alpha, backend=backend)


def fastgeo_autograd(decoded, log_ri, alpha, backend="cpu"):
    """``fastgeo.path_energy`` of torch leaves, then its gradients by torch autograd."""
    import torch

    import fastgeo

    energy = fastgeo.path_energy(decoded, log_ri, alpha, backend=backend)
    grads = torch.autograd.grad(energy.sum(), (decoded, log_ri))
    return (energy.detach(), *grads)


def torch_path_energy(decoded, log_ri, log_alpha):
    """E = sum_i (log a_i)^2 |G_{i+1} - G_i|^2 written in torch (MATH.md 3)."""
    import torch

    diff = decoded[:, 1:] - decoded[:, :-1]
    d = (diff * diff).flatten(2).sum(-1)
    log_a = log_alpha + torch.logaddexp(log_ri[:, :-1], log_ri[:, 1:]) - math.log(2.0)
    return (log_a * log_a * d).sum(1)


def torch_eager_energy_and_grads(decoded, log_ri, alpha, energy=torch_path_energy):
    """Eq. (3) in torch (``energy``: torch_path_energy or a compiled copy), forward and
    autograd backward, on torch leaves: what a user writes without fastgeo."""
    import torch

    e = energy(decoded, log_ri, math.log(alpha))
    grads = torch.autograd.grad(e.sum(), (decoded, log_ri))
    return (e.detach(), *grads)


def torch_leaves(decoded, log_ri, device="cpu"):
    """Copies of host arrays as torch tensors that require gradients."""
    import torch

    return (torch.as_tensor(decoded, device=device).requires_grad_(True),
            torch.as_tensor(log_ri, device=device).requires_grad_(True))


def preallocated_pass(decoded, log_ri, alpha):
    """The CPU backend's fused pass alone, writing dE/dG into a buffer reused between calls:
    a call returning (None, dE/dG, None)."""
    import numba

    from fastgeo.backends import cpu as cpu_backend
    from fastgeo.kernels.cpu_path import path_pass, segment_log_a_rows

    b, n_points, n = decoded.shape
    log_a = np.empty((b, n_points - 1))
    segment_log_a_rows(np.asarray(log_ri, dtype=np.float64), math.log(alpha), log_a)
    block = cpu_backend.path_block(b, n, numba.get_num_threads())
    d_part = np.empty((b, -(-n // block), n_points - 1))
    grad = np.empty_like(decoded)

    def run():
        with numba.parallel_chunksize(1):
            path_pass(decoded, log_a, block, True, d_part, grad)
        return None, grad, None

    return run


def reference(decoded, log_ri, alpha):
    """float64 (E, dE/dG, dE/dl) of the first CHECK_PATHS of host arrays (fastgeo's reference backend)."""
    head = [np.asarray(a[:CHECK_PATHS], dtype=np.float64) for a in (decoded, log_ri)]
    return fastgeo_energy_and_grads(*head, alpha, "reference")


def check(result, reference, rtol=RTOL):
    """Compare an implementation's (E, dE/dG, dE/dl) with the reference; None entries are
    arrays the implementation does not compute."""
    check_that(any(got is not None for got in result), "path energy: the implementation returned no array")
    for what, got, want in zip(("E", "dE/dG", "dE/dl"), result, reference):
        if got is not None:
            want = np.asarray(want, dtype=np.float64)
            check_close(f"path energy {what}", got, want, rtol=rtol, atol=rtol * float(np.abs(want).max()))


def bench_path(runner, device, shape, rng, torch_compile):
    """Rows of path-energy on ``device``: a copy of the decoded paths, energy_and_grads per
    backend, torch eager autograd and (torch_compile) torch.compile of it."""
    b, k, n = shape
    host, host_l = random_walk_inputs(rng, b, k, n)
    decoded, log_ri = device.put(host), device.put(host_l)
    truth = reference(host, host_l, ALPHA)
    name = f"path-energy B={b} K={k} N={n} float32"
    per_path = 2 * 4 * (k + 1) * n + 2 * 8 * (k + 1)  # read G, write dE/dG; l and dE/dl
    runner.say(f"[{name}] on {device.name}")
    runner.measure(name, "copy of decoded", device, "copy", lambda p: device.copier(decoded[:p]), b,
                   2 * 4 * (k + 1) * n,
                   check=lambda out: check_close("copy of decoded", out, host[:CHECK_PATHS], rtol=0.0))
    for backend in backends_for(device.name):
        runner.measure(name, f"fastgeo.energy_and_grads (backend={backend})", device, "kernel",
                       lambda p, be=backend: (lambda: fastgeo_energy_and_grads(decoded[:p], log_ri[:p], ALPHA,
                                                                               be)),
                       b, per_path, check=lambda out: check(out, truth))
    try:
        import torch
    except ImportError:
        return
    if device.name == "cuda" and device.lib != "torch":
        return
    where = "cuda" if device.name == "cuda" else "cpu"

    def eager(energy):
        def make(p):
            g, l = torch_leaves(host[:p], host_l[:p], where)
            return lambda: torch_eager_energy_and_grads(g, l, ALPHA, energy)

        return make

    runner.measure(name, "torch eager autograd", device, "reference", eager(torch_path_energy), b, per_path,
                   check=lambda out: check(out, truth))
    label = "torch.compile autograd"
    if not torch_compile:
        runner.rows.append(Row(name, label, device.name, "reference",
                               note="skipped: torch.compile is off for this size (--torch-compile on)"))
        return
    compiled = eager(torch.compile(torch_path_energy, dynamic=False))
    runner.say(f"  {name} | {label} ({device.name}): compiling...")
    t0 = time.perf_counter()
    try:
        compiled(b)()  # the first call compiles
        device.sync()
    except Exception as err:  # no C++ compiler, no Triton, an unsupported platform...
        runner.rows.append(Row(name, label, device.name, "reference",
                               note=f"skipped: torch.compile failed here: {short_reason(err)}"))
        return
    compile_s = time.perf_counter() - t0
    row = runner.measure(name, label, device, "reference", compiled, b, per_path,
                         check=lambda out: check(out, truth))
    if row.seconds is not None:
        row.note = f"compilation took {compile_s:.1f} s (not in the time)"
