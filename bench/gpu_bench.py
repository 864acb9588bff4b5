"""GPU benchmarks and the performance targets of the GPU issue; run on a machine with a GPU:

    python bench/gpu_bench.py                 # full sizes: bench/results/gpu-<gpu>-full/bench.{json,md,csv}
    python bench/gpu_bench.py --size quick    # a smoke run

Uses the benchmark definitions of ``fastgeo.benchmarks`` (the same as ``fastgeo bench``) on the
GPU (and on the CPU, for comparison), then checks the targets below against the numbers
measured in this run. Every timed result is first checked against its float64 reference; a
kernel whose result is wrong fails its target. Without a GPU it still runs: the CPU part only
(at --size tiny unless told otherwise), every GPU target reported as OWED with the reason, and
the JSON written with the device descriptions -- so the script itself is tested on any machine.
"""
from __future__ import annotations

import argparse
import os
import re
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isfile(os.path.join(_ROOT, "pyproject.toml")):  # run from a checkout: use its fastgeo
    sys.path.insert(0, _ROOT)

from fastgeo import benchmarks  # noqa: E402
from fastgeo.backends import availability  # noqa: E402

# (benchmark prefix, kernel implementation prefix, check, description)
TARGETS = [
    ("radial-ri", "fastgeo.ri", lambda r: r.get("fraction_of_copy") and r["fraction_of_copy"] >= 0.80,
     "radial ri on >= 1 GB float32: >= 80% of device-to-device copy bandwidth"),
    ("path-energy", "fastgeo.energy_and_grads",
     lambda r: (r.get("fraction_of_copy") or 0) >= 0.70
     and (r["speedup"].get("torch eager autograd (cuda)") or 0) >= 3.0,
     "fused energy + gradient, B=256 K=50 N=12288: >= 70% of copy bandwidth and >= 3x torch eager autograd"),
    ("kde-cdf", "fastgeo.KDE.cdf", lambda r: (r.get("items_per_s") or 0) >= 1e9,
     "KDE cdf at n=5000: >= 1e9 queries/s"),
    ("interpolate", "fastgeo.interpolate",
     lambda r: r["extra"].get("solver_overhead_fraction", 1.0) <= 0.10,
     "interpolate with a DCGAN generator (64x64x3, ngf=64), B=256: solver overhead <= 10%"),
]


def check_targets(result):
    lines = []
    for bench, impl, ok, text in TARGETS:
        rows = [r for r in result["rows"] if r["benchmark"].startswith(bench) and r["device"] == "cuda"
                and r["implementation"].startswith(impl) and r["role"] == "kernel"]
        measured = [r for r in rows if r["seconds"]]
        wrong = [r for r in rows if r.get("note", "").startswith(benchmarks.WRONG_RESULT)]
        if wrong and not measured:  # the kernel ran but its check rejected the result
            lines.append(f"FAIL  {text} ({wrong[0]['note']})")
            continue
        if not measured:
            cuda = result.get("device_descriptions", {}).get("cuda", {})
            why = rows[0]["note"] if rows else cuda["description"] if cuda.get("available") is False else "not run"
            lines.append(f"OWED  {text} ({why})")
            continue
        r = measured[0]
        verdict = ("PASS" if ok(r) else "FAIL") if result["size"] == "full" else "INFO (not the target size)"
        pct = f"{100 * r['fraction_of_copy']:.0f}% of copy " if r.get("fraction_of_copy") else ""
        overhead = r.get("extra", {}).get("solver_overhead_fraction")
        pct += f"solver overhead {100 * overhead:.1f}% " if overhead is not None else ""
        lines.append(f"{verdict}  {text}: {r['seconds'] * 1e3:.3f} ms, {r['items_per_s']:.3g} items/s {pct}"
                     + "; ".join(f"{v:.2f}x vs {k}" for k, v in r["speedup"].items()))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default=None, choices=list(benchmarks.SIZES),
                        help="default: full with a GPU, tiny without one")
    parser.add_argument("--no-cpu", action="store_true", help="GPU only (skip the CPU comparison)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    reason = availability()["cuda"]
    size = args.size or ("full" if reason is None else "tiny")
    if reason:
        print(f"gpu_bench: no GPU part here, the CUDA backend is not available: {reason}", file=sys.stderr)
    devices = ([] if reason else ["cuda"]) + ([] if args.no_cpu else ["cpu"])
    result = benchmarks.run(size=size, devices=devices) if devices else {
        "size": size, "devices": [], "device_descriptions": {}, "machine": benchmarks.describe_machine(),
        "rows": [], "repeats": 0}
    result["device_descriptions"].setdefault("cuda", benchmarks.describe_device("cuda"))
    result["targets"] = check_targets(result)
    gpu = re.sub(r"[^a-z0-9]+", "-", (result["machine"]["gpus"] or ["no-gpu"])[0].lower()).strip("-")
    paths = benchmarks.write(result, os.path.join(args.out, f"gpu-{gpu}-{size}"))
    print(benchmarks.markdown(result))
    print("\n".join(["targets:"] + result["targets"]))
    print("written: " + ", ".join(paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
