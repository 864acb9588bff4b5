"""The code on docs/distributed.md runs as written: its python blocks in order, in one
namespace (later blocks read the store that earlier ones wrote), in a temporary folder, on one
local cluster of two worker processes. Blocks that need a GPU or a running scheduler are
fenced ``python-untested`` and not run."""
import pathlib
import re

import pytest

pytest.importorskip("distributed")
pytest.importorskip("zarr")

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "distributed.md"
TEXT = DOC.read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)


def test_the_page_has_its_examples_and_sections():
    assert len(BLOCKS) >= 5
    assert sum('client="local:2"' in b for b in BLOCKS) <= 2  # one cluster start or two, no more
    for heading in ("## Install", "## Where it runs", "## The command line", "## The store",
                    "## Cost model at scale"):
        assert heading in TEXT


def test_the_examples_run_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__doc_example__"}
    for index, block in enumerate(BLOCKS):
        exec(compile(block, f"{DOC.name} block {index + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert f"3 of 3 batches in {tmp_path / 'run.zarr'} (0 reused)" in out
    assert "max_iter: 21 now, 20 there" in out
