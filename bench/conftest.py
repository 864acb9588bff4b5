"""Benchmark conventions (pytest-benchmark).

Run a benchmark file with its results saved as JSON, for example::

    python -m pytest bench/test_bench_radial.py --benchmark-enable \
        --benchmark-json bench/results/radial-cpu.json

Every benchmark records, in ``benchmark.extra_info``:

- ``role``: "kernel" (ours), "reference" (what users would otherwise call) or "copy" (a plain
  copy of the same input: the machine's memory-bandwidth limit, measured in the same run);
- ``bytes``: the bytes the operation must move at least (reads + writes), so that
  bandwidth = bytes / time;
- optionally ``items`` (queries, rows, paths) for a throughput; when a kernel and a reference
  both give ``items``, the speed-up compares throughputs (so a slow reference can run a
  smaller batch).

The inputs, the implementations compared, their float64 references and checks are defined in
``fastgeo.benchmarks`` (one module per benchmark); every test checks the result it times once,
outside the timed calls, so that a fast wrong result fails.

The session hook below then adds a ``fastgeo`` section to the JSON: the machine's
description and, per benchmark group, each kernel's speed-up over each reference and its
fraction of the copy bandwidth, all from the same run (minimum times).
"""
from __future__ import annotations

import numpy as np
import pytest

from fastgeo.benchmarks import check_that, describe_machine


def _speedup(kernel, reference) -> float:
    """Time ratio; per item when both declare ``items`` (a reference may run a smaller batch)."""
    ratio = reference["stats"]["min"] / kernel["stats"]["min"]
    ki, ri = kernel["extra_info"].get("items"), reference["extra_info"].get("items")
    return ratio * ki / ri if ki and ri else ratio


def summarize(benchmarks) -> dict:
    """Ratios within each group: speed-up over references, fraction of copy bandwidth."""
    groups: dict[str, list] = {}
    for b in benchmarks:
        groups.setdefault(b["group"] or b["name"], []).append(b)
    out = {}
    for group, items in groups.items():
        by_role = {}
        for b in items:
            by_role.setdefault(b["extra_info"].get("role", "kernel"), []).append(b)
        copies = by_role.get("copy", [])
        copy_bw = None
        if copies:
            c = copies[0]
            copy_bw = c["extra_info"]["bytes"] / c["stats"]["min"]
        rows = {}
        for k in by_role.get("kernel", []):
            t = k["stats"]["min"]
            row = {"min_s": t}
            if "items" in k["extra_info"]:
                row["items_per_s"] = k["extra_info"]["items"] / t
            if "bytes" in k["extra_info"]:
                row["bandwidth_gb_s"] = k["extra_info"]["bytes"] / t / 1e9
                if copy_bw:
                    row["fraction_of_copy_bandwidth"] = (k["extra_info"]["bytes"] / t) / copy_bw
            row["speedup_over"] = {r["name"]: _speedup(k, r) for r in by_role.get("reference", [])}
            rows[k["name"]] = row
        out[group] = {"copy_bandwidth_gb_s": None if copy_bw is None else copy_bw / 1e9, "kernels": rows}
    return out


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["fastgeo"] = {"machine": describe_machine(), "groups": summarize(output_json["benchmarks"])}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    bs = getattr(config, "_benchmarksession", None)
    if bs is None or not bs.benchmarks:
        return
    data = [b.as_dict(include_data=False) for b in bs.benchmarks if b.has_error is False and b.stats]
    if not data:
        return
    terminalreporter.write_sep("-", "fastgeo: ratios measured in this run (min times)")
    for group, g in summarize(data).items():
        bw = g["copy_bandwidth_gb_s"]
        terminalreporter.write_line(f"[{group}] copy bandwidth: {bw:.2f} GB/s" if bw else f"[{group}]")
        for name, row in g["kernels"].items():
            parts = [f"{row['min_s'] * 1e3:.3f} ms"]
            if "items_per_s" in row:
                parts.append(f"{row['items_per_s']:.3g} items/s")
            if "fraction_of_copy_bandwidth" in row:
                parts.append(f"{100 * row['fraction_of_copy_bandwidth']:.0f}% of copy bandwidth")
            parts += [f"{v:.1f}x vs {k}" for k, v in row["speedup_over"].items()]
            terminalreporter.write_line(f"  {name}: " + ", ".join(parts))


@pytest.fixture
def copy_bench(benchmark):
    """Benchmark a plain copy of ``arr`` (read + write) as the group's bandwidth limit; the
    copy is then checked against ``arr``."""

    def run(arr):
        out = np.empty_like(arr)
        benchmark.extra_info.update(role="copy", bytes=2 * arr.nbytes)
        benchmark(np.copyto, out, arr)
        check_that(np.array_equal(out, arr), "copy: differs from its input")

    return run
