"""The run store (fastgeo.runstore) on its own: atomic writes, the manifest, batches."""
import json
import os

import numpy as np
import pytest

from fastgeo import compare, runstore
from fastgeo.runstore import MANIFEST_FORMAT, RunStore, RunStoreError

N_POINTS, DIM = 6, 3
SETTINGS = {"prior": "normal:3", "alpha": 0.5, "methods": ["linear", "optimal"], "n_points": N_POINTS}


def random_batch(rng, n_pairs):
    """{method: arrays} shaped like compare.result_arrays: random values, a string status."""
    out = {}
    for method in SETTINGS["methods"]:
        out[method] = {"latents": rng.standard_normal((n_pairs, N_POINTS, DIM)),
                       "decoded": rng.standard_normal((n_pairs, N_POINTS, 2, 2)).astype(np.float32),
                       "energy": rng.standard_normal(n_pairs), "seconds": np.asarray(rng.uniform(0.1, 9))}
    out["optimal"]["status"] = rng.choice(["converged", "max_iter"], n_pairs).astype(str)
    out["optimal"]["iterations"] = rng.integers(1, 500, n_pairs)
    return out


def assert_same(got, want):
    assert set(got) == set(want)
    for method in want:
        assert set(got[method]) == set(want[method])
        for key, value in want[method].items():
            assert got[method][key].dtype == value.dtype and got[method][key].shape == value.shape, key
            np.testing.assert_array_equal(got[method][key], value)


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path)
    assert s.open(SETTINGS) is False
    return s


def test_a_batch_round_trips_bit_for_bit(store, rng):
    first, second = random_batch(rng, 4), random_batch(rng, 3)
    store.save_batch(0, 0, 4, first)
    store.save_batch(1, 4, 7, second)
    assert sorted(os.listdir(store.batches_folder)) == ["batch-00000.npz", "batch-00001.npz"]
    methods = SETTINGS["methods"]
    got = [store.load_batch(i, s, e, methods, N_POINTS, DIM) for i, (s, e) in enumerate([(0, 4), (4, 7)])]
    assert [why for _, why in got] == [None, None]
    assert_same(got[0][0], first)
    assert_same(got[1][0], second)
    joined = runstore.concatenate([b["optimal"] for b, _ in got])
    np.testing.assert_array_equal(joined["latents"], np.concatenate([first["optimal"]["latents"],
                                                                     second["optimal"]["latents"]]))
    assert float(joined["seconds"]) == pytest.approx(float(first["optimal"]["seconds"])
                                                     + float(second["optimal"]["seconds"]))


def test_batches_of_an_older_version_join_without_the_arrays_they_lack(rng):
    """A resumed run can hold batches saved before an array existed (``solver``, ``start``):
    the joined result leaves it out instead of failing, whichever batch comes first."""
    new, old = random_batch(rng, 2)["optimal"], random_batch(rng, 3)["optimal"]
    new["start"] = rng.integers(0, 4, 2)
    for parts in ([new, old], [old, new]):
        joined = runstore.concatenate(parts)
        assert "start" not in joined and joined["latents"].shape[0] == 5
    both = runstore.concatenate([new, dict(old, start=rng.integers(0, 4, 3))])
    assert both["start"].shape == (5,)


def test_a_batch_that_is_not_the_expected_one_is_reported(store, rng):
    store.save_batch(0, 0, 4, random_batch(rng, 4))
    methods = SETTINGS["methods"]
    assert store.load_batch(1, 4, 8, methods, N_POINTS, DIM) == (None, "missing")
    assert store.load_batch(0, 4, 8, methods, N_POINTS, DIM) == (None, "it holds pairs 0..3")
    assert store.load_batch(0, 0, 4, ["slerp", *methods], N_POINTS, DIM) == (None, "it has no slerp paths")
    arrays, why = store.load_batch(0, 0, 4, methods, N_POINTS + 1, DIM)
    assert arrays is None and why == f"its linear arrays do not have the shapes of 4 paths of {N_POINTS + 1} points"


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_a_damaged_batch_is_detected(store, rng, damage):
    store.save_batch(0, 0, 5, random_batch(rng, 5))
    path = store.batch_path(0)
    data = bytearray(open(path, "rb").read())
    if damage == "truncate":
        data = data[:len(data) * 2 // 3]
    elif damage == "flip":  # a byte inside the first array's values: the CRC-32 check catches it
        data[200 + int(rng.integers(0, 100))] ^= 0x10
    else:
        data = b""
    with open(path, "wb") as fh:
        fh.write(bytes(data))
    arrays, why = store.load_batch(0, 0, 5, SETTINGS["methods"], N_POINTS, DIM)
    assert arrays is None and why.startswith("unreadable (")


class Boom(Exception):
    pass


@pytest.mark.parametrize("writer", ["npz", "json"])
def test_an_interrupted_write_leaves_the_old_file_and_no_partial_one(tmp_path, rng, monkeypatch, writer):
    path = tmp_path / f"out.{writer}"
    old = rng.standard_normal(5)
    write = runstore.write_npz if writer == "npz" else runstore.write_json
    write(path, {"x": old})
    before = path.read_bytes()

    def savez(fh, **arrays):  # np.savez dies half way through the new file
        fh.write(b"PK\x03\x04 half a zip")
        raise Boom

    def fsync(fd):  # the text is written, then the disk fails before the rename
        raise Boom

    if writer == "npz":
        monkeypatch.setattr(np, "savez", savez)
    else:
        monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(Boom):
        write(path, {"x": rng.standard_normal(7)})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_json_is_strict_and_the_compare_names_still_work(tmp_path):
    path = runstore.write_json(tmp_path / "m.json", {"a": np.float32(1.5), "b": float("nan"), "c": np.arange(2)})
    assert json.loads(open(path).read()) == {"a": 1.5, "b": None, "c": [0, 1]}
    assert compare.write_json is runstore.write_json and compare.write_npz is runstore.write_npz


def test_the_manifest_is_written_then_resumed_then_completed(tmp_path, store):
    assert json.loads(open(store.manifest_path).read()) == {
        "settings": {"format": MANIFEST_FORMAT, **SETTINGS}, "complete": False}
    stale = os.path.join(store.batches_folder, ".tmp-killed.npz")  # a write cut short by SIGKILL
    open(stale, "wb").close()
    again = RunStore(tmp_path)
    assert again.open(dict(SETTINGS)) is True
    assert not os.path.exists(stale)
    again.finish()
    assert json.loads(open(store.manifest_path).read())["complete"] is True
    assert RunStore(tmp_path).open(SETTINGS) is True  # a complete run still resumes


def test_other_settings_are_refused_naming_each_difference(tmp_path, store):
    before = open(store.manifest_path).read()
    with pytest.raises(RunStoreError) as err:
        RunStore(tmp_path).open({**SETTINGS, "alpha": 0.25, "solver": "lbfgs"})
    assert str(err.value) == (f"{tmp_path} holds a run with other settings (alpha: 0.25 now, 0.5 there; "
                              "solver: 'lbfgs' now, None there); choose another --out or delete that folder to "
                              "start over")
    assert open(store.manifest_path).read() == before


def test_a_manifest_of_another_format_is_refused_as_other_settings(tmp_path, store):
    old = {"settings": {**SETTINGS, "format": MANIFEST_FORMAT - 1}, "complete": True}
    runstore.write_json(store.manifest_path, old)
    with pytest.raises(RunStoreError, match=f"other settings \\(format: {MANIFEST_FORMAT} now, "
                                            f"{MANIFEST_FORMAT - 1} there\\)"):
        RunStore(tmp_path).open(SETTINGS)


@pytest.mark.parametrize("text", ['{"settings": null}', '{"settings": [1]}', '{"complete": true}', '{"sett', ""])
def test_a_damaged_manifest_is_refused(tmp_path, store, text):
    with open(store.manifest_path, "w") as fh:
        fh.write(text)
    with pytest.raises(RunStoreError) as err:
        RunStore(tmp_path).open(SETTINGS)
    assert str(err.value) == (f"{store.manifest_path} is not a fastgeo manifest (unreadable or damaged); choose "
                              "another --out or remove it")
