"""The Zarr run store: the results of many interpolations in one Zarr group, written batch by
batch by any number of processes, resumable after any interruption, readable with zarr alone.

Layout of the group (P pairs, K+1 points per path, D latent dimensions, batches of ``batch_size``
pairs; every array of P rows is chunked by batches, so two batches never write the same chunk):

- attributes: ``fastgeo`` = {"format": FORMAT, "settings": {...}, "layout": {...}}, everything the
  numbers depend on; a rerun with other settings is refused, naming the differences;
- ``batch_done`` (n_batches,) bool, one chunk per batch: written last, after every array of the
  batch, so a batch counts as done only once all of it is on disk;
- one group per method (``linear``, ``slerp``, ``optimal``, ...) with ``latents`` (P, K+1, D),
  ``ri`` and ``log_ri`` (P, K+1), ``distances`` (P, K), ``energy`` and ``path_log_index`` (P,),
  ``seconds`` (n_batches,); for the optimal paths also ``status`` and ``solver`` (P,) strings
  (``solver``: the method that ran, "auto" resolved), ``iterations``, ``start`` (the start each
  path came from), ``converged`` and ``gap`` (P,); ``decoded`` (P, K+1, ...) only when the run keeps it; and
  ``metrics/<name>`` (P,) the per-pair metrics of fastgeo.compare (computed where the batch ran).

Every array carries dimension names (``pair``, ``point``, ``dim``, ``step``, ``batch``,
``output_0`` ...), so xarray opens a method's group as a Dataset. Latents and decoded outputs
keep the run's dtype; every other number is float64 (exact for a float32 run). A worker killed in the middle of a write leaves chunks of a batch whose
``batch_done`` is still false: the batch is recomputed and its chunks overwritten.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from .runstore import differences

FORMAT = 1
DONE = "batch_done"
#: the per-pair metrics kept (fastgeo.compare.pair_metrics' numeric ones)
METRICS = ("energy", "log_index", "min_log_ri", "min_ri", "decoded_length", "latent_length",
           "max_step_over_mean")


class ZarrStoreError(Exception):
    """A store that cannot be used for this run (other settings, damaged, not writable); the
    message is one line for the user."""


def _zarr():
    try:
        import zarr
    except ImportError:
        raise ImportError("the Zarr run store needs zarr: pip install 'fastgeo[distributed]'") from None
    return zarr


def _canonical(obj):
    """JSON-normal form (tuples as lists, numpy scalars as Python numbers) for comparisons."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))


def layout(n_pairs, n_points, dim, batch_size, methods, dtype, out_shape=None):
    """The shapes the store is made with (stored with the settings): ``out_shape`` is the
    shape of one decoded output when the run keeps them, else None."""
    return _canonical({"n_pairs": int(n_pairs), "n_points": int(n_points), "dim": int(dim),
                       "batch_size": int(batch_size), "methods": list(methods), "dtype": str(dtype),
                       "decoded_shape": None if out_shape is None else list(out_shape)})


class ZarrStore:
    """The run store at ``path`` (a folder; made if missing)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.settings = None
        self.layout = None

    @classmethod
    def attached(cls, path, shape: dict) -> "ZarrStore":
        """The store at ``path`` as opened elsewhere (a worker's view: no checks)."""
        store = cls(path)
        store.layout = shape
        return store

    # -- opening ----------------------------------------------------------------------------------
    def open(self, settings: dict, shape: dict) -> bool:
        """Check the store against ``settings`` and ``shape`` (:func:`layout`), or make it;
        returns whether it already held this run. Raises ZarrStoreError for another run's
        store, a damaged one, or a path that cannot be written."""
        zarr = _zarr()
        settings, shape = _canonical(settings), _canonical(shape)
        exists = os.path.exists(os.path.join(self.path, "zarr.json"))
        if exists:
            self._check(zarr, settings, shape)
        else:
            if os.path.exists(self.path) and (not os.path.isdir(self.path) or os.listdir(self.path)):
                raise ZarrStoreError(f"{self.path} exists and is not a Zarr store; choose another store path")
            try:
                self._create(zarr, settings, shape)
            except OSError as err:
                raise ZarrStoreError(f"cannot write the store {self.path}: {err.strerror or err}") from None
        self.settings, self.layout = settings, shape
        return exists

    def _check(self, zarr, settings, shape):
        try:
            meta = dict(zarr.open_group(self.path, mode="r").attrs)["fastgeo"]
            old_settings, old_shape = meta["settings"], meta["layout"]
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
        except Exception as err:
            raise ZarrStoreError(f"{self.path} is not a fastgeo store of format {FORMAT} (unreadable or damaged: "
                                 f"{type(err).__name__}); choose another store path or delete it") from None
        new, old = {**settings, **shape}, {**old_settings, **old_shape}
        if new != old:
            raise ZarrStoreError(f"{self.path} holds a run with other settings ({differences(new, old)}); choose "
                                 "another store path or delete that one to start over")
        if not os.access(self.path, os.W_OK):
            raise ZarrStoreError(f"cannot write the store {self.path}: permission denied")

    def _create(self, zarr, settings, shape):
        n, k1, d, bs = shape["n_pairs"], shape["n_points"], shape["dim"], shape["batch_size"]
        nb = math.ceil(n / bs)
        root = zarr.open_group(self.path, mode="w")

        def array(group, name, dims, rows, dtype, fill=None, **extra):
            # dimension names: xarray opens each method's group as a Dataset
            rest = extra.pop("rest", ())
            group.create_array(name, shape=(rows, *rest), chunks=(1 if dims[0] == "batch" else bs, *rest),
                               dtype=dtype, fill_value=fill, dimension_names=dims)

        array(root, DONE, ("batch",), nb, bool, False)
        for method in shape["methods"]:
            g = root.create_group(method)
            run = shape["dtype"]
            array(g, "latents", ("pair", "point", "dim"), n, run, np.nan, rest=(k1, d))
            array(g, "ri", ("pair", "point"), n, "float64", np.nan, rest=(k1,))
            array(g, "log_ri", ("pair", "point"), n, "float64", np.nan, rest=(k1,))
            array(g, "distances", ("pair", "step"), n, "float64", np.nan, rest=(k1 - 1,))
            for name in ("energy", "path_log_index"):
                array(g, name, ("pair",), n, "float64", np.nan)
            array(g, "seconds", ("batch",), nb, "float64", np.nan)
            if method == "optimal":
                array(g, "status", ("pair",), n, str)
                array(g, "solver", ("pair",), n, str)
                array(g, "start", ("pair",), n, "int64", -1)
                array(g, "iterations", ("pair",), n, "int64", -1)
                array(g, "converged", ("pair",), n, bool, False)
                array(g, "gap", ("pair",), n, "float64", np.nan)
            if shape["decoded_shape"] is not None:
                out = tuple(shape["decoded_shape"])
                array(g, "decoded", ("pair", "point", *(f"output_{i}" for i in range(len(out)))), n, run, np.nan,
                      rest=(k1, *out))
            metrics = g.create_group("metrics")
            for name in METRICS + (("relative_gap",) if method == "optimal" else ()):
                array(metrics, name, ("pair",), n, "float64", np.nan)
        # the settings go in last: a store whose creation was cut short has no fastgeo
        # attributes and is reported damaged rather than half-used
        root.attrs["fastgeo"] = {"format": FORMAT, "settings": settings, "layout": shape}

    # -- batches ----------------------------------------------------------------------------------
    @property
    def n_batches(self) -> int:
        return math.ceil(self.layout["n_pairs"] / self.layout["batch_size"])

    def bounds(self, i: int):
        """(start, stop) of batch i's pairs."""
        bs = self.layout["batch_size"]
        return i * bs, min((i + 1) * bs, self.layout["n_pairs"])

    def done(self) -> np.ndarray:
        """(n_batches,) bool: which batches are complete. A mask chunk that cannot be read (a
        write cut short) counts as not done."""
        zarr = _zarr()
        mask = zarr.open_array(self.path, path=DONE, mode="r")
        try:
            return np.asarray(mask[:], dtype=bool)
        except Exception:
            out = np.zeros(self.n_batches, dtype=bool)
            for i in range(self.n_batches):
                try:
                    out[i] = bool(mask[i])
                except Exception:  # left False
                    pass
            return out

    def write_batch(self, i: int, arrays: dict, metrics: dict):
        """Write batch ``i``: ``arrays`` {method: fastgeo.compare.result_arrays(...)} and
        ``metrics`` {method: {name: (n,) float}}; then mark it done."""
        zarr = _zarr()
        start, stop = self.bounds(i)
        root = zarr.open_group(self.path, mode="r+")
        for method, arr in arrays.items():
            g = root[method]
            for name, value in arr.items():
                if name == "seconds":
                    g["seconds"][i] = float(value)
                elif name in g:  # decoded outputs only where the run keeps them
                    _check_rows(name, value, stop - start)
                    g[name][start:stop] = np.asarray(value, dtype=str if name in ("status", "solver") else g[name].dtype)
            folder = g["metrics"]
            for name, value in metrics.get(method, {}).items():
                if name in folder:
                    folder[name][start:stop] = np.asarray(value, dtype=np.float64)
        root[DONE][i] = True

    def read_metrics(self, method: str) -> dict:
        """One method's per-pair metrics ``metrics/<name>``, and ``status``, ``iterations`` and
        ``solver`` where it has them: what a report needs, without the paths."""
        zarr = _zarr()
        g = zarr.open_group(self.path, mode="r")[method]
        out = {f"metrics/{name}": np.asarray(a[:]) for name, a in g["metrics"].arrays()}
        out.update({name: np.asarray(g[name][:]) for name in ("status", "iterations", "solver") if name in g})
        return out

    def saved_settings(self) -> dict:
        """The settings the store was made with."""
        return dict(_zarr().open_group(self.path, mode="r").attrs)["fastgeo"]["settings"]


def _check_rows(name, value, rows):
    value = np.asarray(value)
    if value.ndim and value.shape[0] != rows:
        raise ValueError(f"batch array {name} has {value.shape[0]} rows, expected {rows}")
