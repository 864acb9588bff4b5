"""Several starting paths per pair, the lowest minimum kept (``fastgeo.interpolate(starts=)``).

The path energy has many local minima on some generators: on the Kilcher demo model the
default solver, started from the linear path, ends above the lowest minimum that any of five
runs reached by more than 1e-3 on 38 of 64 pairs, at over twice that energy on six of them
(docs/solver-diagnosis.md, bench/results/solver-starts-cpu.json). Starting each pair from
several paths and keeping the lowest converged energy is the remedy a local method has; the
starts run as one batch of ``starts * B`` paths (one generator call per evaluation for all).

Start 0 is the linear path (or ``init``); start s >= 1 the smooth detour

    x_i + sin(pi i / K) xi_s,    xi_s ~ N(0, (0.5 |z1 - z0|)^2 / D I),

one xi per pair and start, drawn in float64 on the CPU from a generator seeded by ``seed`` and
the pair's endpoints (a hash of their float64 values), then cast to the path's dtype and
device: a pair gets the same detours in any batch, at any position, on any device.
"""
from __future__ import annotations

import hashlib
import math

import torch

#: halvings of a detour that leaves the prior's support before it falls back to start 0
SHRINKS = 8


def with_detours(x0, z0, z1, starts, seed, log_ri):
    """The free points (starts * B, K-1, D) of every start, start-major (row s * B + b),
    from start 0's free points x0 (B, K-1, D) and the endpoints z0, z1 (B, D). A detour with a
    point where ri = 0 (``log_ri``: latents (..., D) -> log ri (...)) is halved until it has
    none, at most SHRINKS times, else replaced by start 0."""
    if starts == 1:
        return x0
    b, n_free, d = x0.shape
    draws = [torch.randn((starts - 1, d), generator=torch.Generator().manual_seed(s), dtype=torch.float64)
             for s in pair_seeds(z0, z1, seed)]
    xi = torch.stack(draws, dim=1) if draws else torch.zeros((starts - 1, 0, d), dtype=torch.float64)
    scale = 0.5 * torch.linalg.vector_norm((z1 - z0).to(torch.float64).cpu(), dim=1) / math.sqrt(d)
    xi = (xi * scale[None, :, None]).to(device=x0.device, dtype=x0.dtype)
    k = n_free + 1
    t = torch.arange(1, k, dtype=x0.dtype, device=x0.device) / k
    bump = torch.sin(math.pi * t)[None, None, :, None]

    def outside(points):
        return torch.isneginf(log_ri(points)).any(dim=2)  # (starts - 1, B)

    detours = x0[None] + bump * xi[:, :, None]
    bad = outside(detours)
    for _ in range(SHRINKS):
        if not bad.any():
            break
        xi = torch.where(bad[..., None], xi / 2, xi)
        detours = x0[None] + bump * xi[:, :, None]
        bad = outside(detours)
    detours = torch.where(bad[..., None, None], x0[None], detours)
    return torch.cat([x0[None], detours]).reshape(starts * b, n_free, d)


def pair_seeds(z0, z1, seed):
    """One 63-bit seed per pair (z0, z1 (B, D)) from ``seed`` and the pair's endpoints."""
    ends = torch.cat([z0, z1], dim=1).detach().to(device="cpu", dtype=torch.float64).numpy()
    key = int(seed).to_bytes(8, "little")
    return [int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8, key=key).digest(), "little") >> 1
            for row in ends]


def lowest(energy, starts):
    """(rows (B,), start (B,)): for each pair the row of its start with the lowest finite energy
    (start 0 where none is finite), from the energies (starts * B,) of :func:`with_detours`'s
    rows."""
    b = energy.shape[0] // starts
    per_start = energy.reshape(starts, b)
    per_start = torch.where(torch.isfinite(per_start), per_start, torch.inf)
    start = per_start.argmin(dim=0)
    return start * b + torch.arange(b, device=energy.device), start
