"""The benchmarks ``fastgeo bench`` and ``bench/gpu_bench.py`` run: sizes and the run itself."""
from __future__ import annotations

from dataclasses import asdict

import numpy as np

from .device import Device, available_devices
from .interpolate import bench_interpolate
from .kde_cdf import bench_kde
from .machine import describe_device, describe_machine
from .path_energy import bench_path
from .radial_ri import bench_radial
from .report import summarize
from .timing import Runner

#: problem sizes: radial (M, D), kde (n samples, Q queries), path (B, K, N)
#: interpolate (B paths, K segments, DCGAN width ngf, iterations)
SIZES = {
    "tiny": {"radial": (2_000, 64), "kde": (500, 2_000), "path": (2, 8, 256), "interpolate": (2, 5, 8, 2),
             "repeats": 3, "budget_s": 0.2},
    "quick": {"radial": (100_000, 512), "kde": (5_000, 20_000), "path": (16, 50, 3072),
              "interpolate": (4, 11, 16, 3), "repeats": 5, "budget_s": 1.0},
    "full": {"radial": (524_288, 512), "kde": (5_000, 10_000_000), "path": (256, 50, 12288),
             "interpolate": (256, 51, 64, 5), "repeats": 10, "budget_s": 3.0},
}
BENCHMARKS = ("radial", "kde", "path", "interpolate")


def run(size="quick", only=BENCHMARKS, devices=None, shapes=None, repeats=None, torch_compile=None,
        progress=True, seed=0) -> dict:
    """Run the benchmarks; return a JSON-ready dict (machine, options, rows with ratios).

    A row whose result failed its check has no time and a note starting "wrong result".
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    unknown = [b for b in only if b not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    preset = SIZES[size]
    shapes = {**{k: preset[k] for k in BENCHMARKS}, **(shapes or {})}
    repeats = preset["repeats"] if repeats is None else repeats
    torch_compile = (size == "full") if torch_compile is None else torch_compile
    devices = devices or available_devices()
    runner = Runner(repeats, preset["budget_s"], progress)
    runner.say(f"fastgeo bench: size {size}, devices {', '.join(devices)}, {repeats} repeats")
    for device_name in devices:
        device = Device(device_name)
        for bench in only:
            rng = np.random.default_rng(seed)
            if bench == "radial":
                bench_radial(runner, device, shapes["radial"], rng)
            elif bench == "kde":
                bench_kde(runner, device, shapes["kde"], rng)
            elif bench == "path":
                bench_path(runner, device, shapes["path"], rng, torch_compile)
            else:
                bench_interpolate(runner, device, shapes["interpolate"], rng)
    summarize(runner.rows)
    return {"size": size, "shapes": {k: list(v) for k, v in shapes.items()}, "repeats": repeats,
            "devices": devices, "device_descriptions": {d: describe_device(d) for d in devices},
            "machine": describe_machine(), "rows": [asdict(r) for r in runner.rows]}
