"""A run's rows as ratios and tables: throughput, bandwidth, fraction of the copy bandwidth,
speed-ups; markdown, CSV and the three files ``fastgeo bench`` writes."""
from __future__ import annotations

import csv
import io
import json
import os

from .timing import Row


def summarize(rows):
    """Fill throughput, bandwidth, fraction of the same run's copy bandwidth and speed-ups."""
    for row in rows:
        if row.seconds:
            row.items_per_s = row.items / row.seconds if row.items else None
            row.gb_per_s = row.bytes / row.seconds / 1e9 if row.bytes else None
    for row in rows:
        if row.role != "kernel" or not row.seconds:
            continue
        copy = next((c for c in rows if c.benchmark == row.benchmark and c.device == row.device
                     and c.role == "copy" and c.gb_per_s), None)
        if copy and row.gb_per_s:
            row.fraction_of_copy = row.gb_per_s / copy.gb_per_s
        for ref in rows:
            if ref.benchmark == row.benchmark and ref.role == "reference" and ref.items_per_s and row.items_per_s:
                row.speedup[f"{ref.implementation} ({ref.device})"] = row.items_per_s / ref.items_per_s
    return rows


COLUMNS = ("benchmark", "implementation", "device", "role", "items", "time_ms", "items_per_s", "gb_per_s",
           "pct_of_copy_bandwidth", "speedup_over_references", "note")


def table_rows(rows):
    for r in rows:
        yield {
            "benchmark": r.benchmark, "implementation": r.implementation, "device": r.device, "role": r.role,
            "items": "" if r.items is None else r.items,
            "time_ms": "" if r.seconds is None else f"{r.seconds * 1e3:.3f}",
            "items_per_s": "" if r.items_per_s is None else f"{r.items_per_s:.3g}",
            "gb_per_s": "" if r.gb_per_s is None else f"{r.gb_per_s:.2f}",
            "pct_of_copy_bandwidth": "" if r.fraction_of_copy is None else f"{100 * r.fraction_of_copy:.0f}%",
            "speedup_over_references": "; ".join(f"{v:.2f}x vs {k}" for k, v in r.speedup.items()),
            "note": r.note,
        }


def markdown(result) -> str:
    m = result["machine"]
    lines = [f"# fastgeo bench ({result['size']})", "",
             f"- CPU: {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB), numba threads {m['numba_threads']}",
             f"- GPU: {', '.join(m['gpus']) or 'none'}",
             f"- fastgeo {m['fastgeo']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
             f"- {result['repeats']} repeats, minimum time; ratios from this run; bandwidth = least bytes "
             "moved / time, compared with a plain copy of the same input on the same device", ""]
    header = ["benchmark", "implementation", "device", "items", "time (ms)", "items/s", "GB/s",
              "% of copy BW", "speed-up over references", "note"]
    keys = ["benchmark", "implementation", "device", "items", "time_ms", "items_per_s", "gb_per_s",
            "pct_of_copy_bandwidth", "speedup_over_references", "note"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for row in table_rows([Row(**r) for r in result["rows"]]):
        lines.append("| " + " | ".join(str(row[k]).replace("|", "/") for k in keys) + " |")
    return "\n".join(lines) + "\n"


def to_csv(result) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(table_rows([Row(**r) for r in result["rows"]]))
    return buf.getvalue()


def save_json(result, path):
    """Write ``result`` to ``path`` as indented JSON (the bench/ scripts' results), making its
    folder if need be."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w") as fh:
        json.dump(result, fh, indent=1)


def write(result, directory) -> dict:
    """Write bench.json, bench.md and bench.csv into ``directory``; return their paths."""
    os.makedirs(directory, exist_ok=True)
    paths = {ext: os.path.join(directory, f"bench.{ext}") for ext in ("json", "md", "csv")}
    with open(paths["json"], "w") as fh:
        json.dump(result, fh, indent=2)
    with open(paths["md"], "w") as fh:
        fh.write(markdown(result))
    with open(paths["csv"], "w", newline="") as fh:
        fh.write(to_csv(result))
    return paths
