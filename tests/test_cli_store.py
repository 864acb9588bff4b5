"""``fastgeo interpolate --store``: the Dask run from the command line (tests/test_many.py covers
interpolate_many itself)."""
import json
import socket

import numpy as np
import zarr
from cli_helpers import assert_one_line, run_cli
from test_many import DIM, GENERATOR


def setup(tmp_path, rng, n=6, poison=None):
    gen = tmp_path / "tinygen.py"
    gen.write_text(GENERATOR)
    pairs = rng.standard_normal((n, 2, DIM)) * 1.5
    if poison is not None:
        pairs[poison, 1, 0] = 7.25  # the generator raises on this exact coordinate
    np.save(tmp_path / "pairs.npy", pairs)
    return ["interpolate", "--generator", f"{gen}:G", "--prior", f"normal:{DIM}", "--pairs",
            str(tmp_path / "pairs.npy"), "--out", str(tmp_path / "results"), "--store", str(tmp_path / "run.zarr"),
            "--batch-size", "3", "--n-points", "6", "--max-iter", "20", "--no-progress"]


def test_store_run_writes_the_store_and_metrics(tmp_path, rng):
    argv = setup(tmp_path, rng)
    status, out, err = run_cli(argv + ["--scheduler", "local:2"])
    assert status == 0, err
    assert "2 of 2 batches in" in out and "| optimal" in out
    root = zarr.open_group(str(tmp_path / "run.zarr"), mode="r")
    assert root["batch_done"][:].all() and root["optimal/latents"].shape == (6, 6, DIM)
    report = json.loads((tmp_path / "results" / "metrics.json").read_text())
    assert len(report["pairs"]) == 6 and report["settings"]["prior_spec"] == f"normal:{DIM}"
    assert report["pairs"][2]["methods"]["optimal"]["energy"] == float(root["optimal/energy"][2])
    assert report["summary"]["optimal"]


def test_failing_batch_exits_nonzero_naming_its_pairs(tmp_path, rng):
    status, out, err = run_cli(setup(tmp_path, rng, poison=4) + ["--scheduler", "local:2"])
    assert status == 1
    assert "1 of 2 batches" in out
    assert "3 pair(s) failed: 3, 4, 5" in err and "Traceback" not in err


def test_store_mistakes_are_one_line(tmp_path, rng):
    argv = setup(tmp_path, rng)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    status, _, err = run_cli(argv + ["--scheduler", f"tcp://127.0.0.1:{port}"])
    assert_one_line(status, err, "no Dask scheduler answered")
    status, _, err = run_cli(argv[:-9] + ["--no-progress", "--scheduler", "local:2"])  # no --store
    assert_one_line(status, err, "--scheduler and --keep-decoded go with --store")
    status, _, err = run_cli(argv + ["--scheduler", "local:0"])
    assert_one_line(status, err, "local:N")
    status, _, err = run_cli(argv + ["--figures", "1"])
    assert_one_line(status, err, "--figures")
