"""The ``fastgeo`` command: info, bench (end to end at --size tiny), and one-line errors."""
import csv
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from fastgeo import benchmarks, cli

ROOT = Path(__file__).resolve().parents[1]


def run_fastgeo(*args, timeout=300):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "fastgeo", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_entry_point_is_cli_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["fastgeo"] == "fastgeo.cli:main"
    assert "fastgeo.commands" in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


def test_info(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backends:" in out and "cuda" in out


def test_bench_tiny_end_to_end(tmp_path):
    proc = run_fastgeo("bench", "--size", "tiny", "--out", str(tmp_path), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # --no-progress: nothing on stderr
    result = json.loads((tmp_path / "bench.json").read_text())
    rows = result["rows"]
    assert result["size"] == "tiny" and result["machine"]["cpu"]
    for prefix in ("radial-ri", "kde-cdf", "path-energy"):
        mine = [r for r in rows if r["benchmark"].startswith(prefix)]
        copy = [r for r in mine if r["role"] == "copy"]
        kernels = [r for r in mine if r["role"] == "kernel" and r["seconds"]]
        refs = [r for r in mine if r["role"] == "reference" and r["seconds"]]
        assert len(copy) == 1 and copy[0]["gb_per_s"] > 0
        assert kernels and refs
        for k in kernels:
            assert k["seconds"] > 0 and k["items_per_s"] > 0 and 0 < k["fraction_of_copy"]
            assert set(k["speedup"]) == {f"{r['implementation']} ({r['device']})" for r in refs}
    table = (tmp_path / "bench.md").read_text().splitlines()
    body = [line for line in table if line.startswith("| ") and "---" not in line]
    assert len(body) == len(rows) + 1  # header + one line per row
    with open(tmp_path / "bench.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)
    assert "| benchmark | implementation |" in proc.stdout and "written:" in proc.stdout


@pytest.mark.parametrize("argv", [
    ["bench", "--size", "huge"],
    ["bench", "--radial", "10xq"],
    ["bench", "--path", "2x3"],
    ["bench", "--only", "radial,nope"],
    ["bench", "--repeats", "0"],
    ["bench", "--frobnicate"],
    ["demo", "--models", "semicircle,nosuch"],
    ["demo", "--pairs", "0"],
    ["demo", "--alpha", "1.5"],
    ["demo", "--n-points", "2"],
    ["demo", "--backend", "gpu"],
    ["demo", "--figures", "-1"],
    ["interpolate", "--prior", "normal:4", "--pairs", "p.npy"],
    ["frobnicate"],
    [],
])
def test_bad_options_give_one_line_and_status_2(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("fastgeo") and "error:" in err


def test_unavailable_device_is_a_one_line_error(capsys, monkeypatch):
    from fastgeo import backends

    monkeypatch.setattr(backends, "availability", lambda: {"reference": None, "cpu": None, "cuda": "no GPU here"})
    assert cli.main(["bench", "--device", "cuda", "--size", "tiny"]) == 2  # the user's choice: a UserError
    err = capsys.readouterr().err
    assert err.strip() == "fastgeo bench: error: --device cuda: the CUDA backend is not available here: no GPU here"


def test_summarize_ratios():
    rows = [benchmarks.Row("b", "copy", "cpu", "copy", items=10, bytes=800, seconds=1e-6),
            benchmarks.Row("b", "ours", "cpu", "kernel", items=10, bytes=400, seconds=2e-6),
            benchmarks.Row("b", "theirs", "cpu", "reference", items=5, seconds=4e-6),
            benchmarks.Row("b", "broken", "cpu", "reference", note="skipped: x")]
    benchmarks.summarize(rows)
    ours = rows[1]
    assert ours.items_per_s == pytest.approx(5e6)
    assert ours.fraction_of_copy == pytest.approx(0.25)  # 200 MB/s of 800 MB/s
    assert ours.speedup == {"theirs (cpu)": pytest.approx(4.0)}  # 5e6 vs 1.25e6 items/s


def test_gpu_bench_target_verdicts():
    """bench/gpu_bench.py judges each target from the rows of its run: PASS, FAIL or OWED."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "bench" / "gpu_bench.py")
    gpu_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_bench)

    def row(bench, impl, **kw):
        base = dict(benchmark=bench, implementation=impl, device="cuda", role="kernel", seconds=1e-3,
                    items_per_s=1.0, fraction_of_copy=None, speedup={}, note="")
        return {**base, **kw}

    rows = [row("radial-ri 524288x512 float32", "fastgeo.ri (backend=cuda)", fraction_of_copy=0.83),
            row("path-energy B=256", "fastgeo.energy_and_grads (backend=cuda)", fraction_of_copy=0.75,
                speedup={"torch eager autograd (cuda)": 2.5}),
            row("kde-cdf n=5000", "fastgeo.KDE.cdf (backend=cuda)", seconds=None,
                note="skipped: NotImplementedError: not yet")]
    lines = gpu_bench.check_targets({"size": "full", "rows": rows})
    assert [line.split()[0] for line in lines] == ["PASS", "FAIL", "OWED", "OWED"]
    assert "NotImplementedError" in lines[2]
    assert gpu_bench.check_targets({"size": "quick", "rows": rows})[0].startswith("INFO")
