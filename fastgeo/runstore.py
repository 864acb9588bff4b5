"""The run store: a folder of results written batch by batch, resumable after any interruption.

``fastgeo interpolate`` writes through it (and a distributed run is meant to). A run folder holds:

- ``manifest.json``: ``{"settings": {...}, "complete": false|true}``, strict JSON. ``settings``
  is everything the saved numbers depend on, stamped with ``"format": MANIFEST_FORMAT``; it is
  written first, and ``complete`` turns true once the run's final files are written.
- ``batches/batch-NNNNN.npz`` (N from 0, five digits): one uncompressed .npz per finished batch,
  holding ``<method>.<name>`` arrays (first axis: the batch's pairs, or 0-d like ``seconds``)
  and the 0-d integers ``start`` and ``stop``, the pairs ``start .. stop - 1`` it covers.
- ``.tmp-*``: a write in progress (or one cut short by SIGKILL); removed when a run opens.
- whatever else the caller writes with :func:`write_json` and :func:`write_npz` (the CLI's
  ``<method>.npz`` and ``metrics.json``).

Guarantees:

- atomic: every file is written to a temporary name in its folder, flushed to disk and renamed
  into place, so a reader sees the old file or the complete new one, never half a file;
- resumable: a batch is saved as soon as it is computed; a rerun with equal settings
  (:meth:`RunStore.open` returns True) reloads the finished batches instead of recomputing them;
- checked: a rerun with other settings, or into a folder whose manifest is damaged, is refused
  with a :class:`RunStoreError` naming the differences (nothing is mixed or overwritten); a
  saved batch that is truncated, corrupt (the .npz's CRC-32 of every array is checked on
  reading) or not the batch expected (pairs, methods, shapes) is reported by
  :meth:`RunStore.load_batch` with the reason, for the caller to recompute it.
"""
from __future__ import annotations

import glob
import json
import math
import os
import tempfile

import numpy as np

#: 2: the backend and the device are among the settings
MANIFEST_FORMAT = 2
MANIFEST = "manifest.json"
BATCHES = "batches"


class RunStoreError(Exception):
    """A run folder that cannot be used: another run's settings, or a damaged manifest. The
    message is one line for the user."""


# -- atomic writes ----------------------------------------------------------------------------------

def jsonable(obj):
    """obj with numpy scalars/arrays as Python values and non-finite floats as None (null):
    strict JSON has no NaN or Infinity."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _atomic(path, write):
    """Write via a temporary file in the same folder and rename it into place, so that an
    interrupted run leaves either the old file or the complete new one, never half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return os.fspath(path)


def write_json(path, obj) -> str:
    """Strict JSON (non-finite numbers as null), written atomically."""
    text = json.dumps(jsonable(obj), indent=1, allow_nan=False) + "\n"
    return _atomic(path, lambda fh: fh.write(text.encode()))


def write_npz(path, arrays: dict) -> str:
    """An uncompressed .npz of ``arrays``, written atomically."""
    return _atomic(path, lambda fh: np.savez(fh, **arrays))


def differences(new: dict, old: dict) -> str:
    """``key: new now, old there`` for every setting that differs, joined by "; "."""
    return "; ".join(f"{k}: {new.get(k)!r} now, {old.get(k)!r} there" for k in sorted(set(old) | set(new))
                     if old.get(k) != new.get(k))


# -- the store --------------------------------------------------------------------------------------

class RunStore:
    """The run folder ``folder``: its manifest (:meth:`open`, :meth:`finish`) and its batches
    (:meth:`save_batch`, :meth:`load_batch`). The folder must exist."""

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self.manifest_path = os.path.join(self.folder, MANIFEST)
        self.batches_folder = os.path.join(self.folder, BATCHES)
        self.settings = None

    def open(self, settings: dict) -> bool:
        """Check the manifest against ``settings`` (stamped with the format), or write it if
        there is none; returns whether an earlier run of the same settings exists. Raises
        RunStoreError for other settings or a damaged manifest. Then makes ``batches/`` and
        removes the temporary files a killed write left there."""
        settings = {"format": MANIFEST_FORMAT, **settings}
        resumed = self._check(settings)
        if not resumed:
            write_json(self.manifest_path, {"settings": settings, "complete": False})
        self.settings = settings
        os.makedirs(self.batches_folder, exist_ok=True)
        for stale in glob.glob(os.path.join(self.batches_folder, ".tmp-*")):
            os.unlink(stale)
        return resumed

    def _check(self, settings):
        path = self.manifest_path
        if not os.path.exists(path):
            return False
        try:
            with open(path) as fh:
                old = json.load(fh)["settings"]
            if not isinstance(old, dict):
                raise TypeError("settings is not a mapping")
        except (OSError, ValueError, KeyError, TypeError):
            raise RunStoreError(f"{path} is not a fastgeo manifest (unreadable or damaged); choose another --out "
                                "or remove it") from None
        if old != settings:
            raise RunStoreError(f"{self.folder} holds a run with other settings ({differences(settings, old)}); "
                                "choose another --out or delete that folder to start over")
        return True

    def finish(self) -> str:
        """Mark the run complete in the manifest (after its final files are written)."""
        return write_json(self.manifest_path, {"settings": self.settings, "complete": True})

    def batch_path(self, i: int) -> str:
        return os.path.join(self.batches_folder, f"batch-{i:05d}.npz")

    def save_batch(self, i: int, start: int, stop: int, arrays: dict) -> str:
        """Save batch ``i``, pairs ``start .. stop - 1``: ``arrays`` is {method: {name: array}}."""
        flat = {f"{m}.{k}": v for m, arr in arrays.items() for k, v in arr.items()}
        return write_npz(self.batch_path(i), {**flat, "start": np.asarray(start), "stop": np.asarray(stop)})

    def load_batch(self, i: int, start: int, stop: int, methods, n_points: int, dim: int):
        """(the saved arrays of a finished batch, None) or (None, why it cannot be used): missing,
        unreadable (truncated, a flipped byte: the zip's CRC-32 of each array is checked on
        reading), or not the batch this run expects (pairs, methods, shapes)."""
        from ._errors import one_line

        path = self.batch_path(i)
        if not os.path.exists(path):
            return None, "missing"
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["start"]) != start or int(data["stop"]) != stop:
                    return None, f"it holds pairs {int(data['start'])}..{int(data['stop']) - 1}"
                arrays = {m: {} for m in methods}
                for key in data.files:
                    method, _, name = key.partition(".")
                    if method in arrays:
                        arrays[method][name] = data[key]
        except Exception as err:  # any damage at all: the batch is recomputed, never trusted
            return None, f"unreadable ({one_line(err)})"
        missing = [m for m, a in arrays.items() if "latents" not in a]
        if missing:
            return None, f"it has no {', '.join(missing)} paths"
        want = (stop - start, n_points, dim)
        for m, a in arrays.items():
            if a["latents"].shape != want or any(v.ndim and v.shape[0] != want[0] for v in a.values()):
                return None, f"its {m} arrays do not have the shapes of {want[0]} paths of {n_points} points"
        return arrays, None


def concatenate(parts: list) -> dict:
    """One method's arrays of consecutive batches joined along the pairs; ``seconds`` summed.
    Arrays that some batch lacks (one saved by a version before the array existed, in a
    resumed run) are left out."""
    out = {}
    for key in [k for k in parts[0] if all(k in p for p in parts[1:])]:
        if key == "seconds":
            out[key] = np.asarray(sum(float(p[key]) for p in parts))
        else:
            out[key] = np.concatenate([p[key] for p in parts])
    return out
