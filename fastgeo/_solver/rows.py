"""Copying scattered rows of the solver's tensors (:func:`copy_rows`)."""
from __future__ import annotations

import numpy as np

from .lbfgs import index_on

# a GPU copies scattered rows in one index_copy_ rather than in more than this many copies
MAX_ROW_RUNS_GPU = 8


def copy_rows(dst, dst_rows, src, src_rows, max_runs=None):
    """dst[dst_rows] = src[src_rows] for sorted numpy row numbers: one slice copy per run of
    rows consecutive in both (on the CPU index_put_ moves rows slower than copy_ does,
    and the usual case, every row in order, is a single copy), or one index_copy_ where
    there are more than ``max_runs`` runs (default: no limit on the CPU, else
    MAX_ROW_RUNS_GPU)."""
    if max_runs is None:
        max_runs = len(dst_rows) if dst.device.type == "cpu" else MAX_ROW_RUNS_GPU
    cut = np.flatnonzero((np.diff(dst_rows) != 1) | (np.diff(src_rows) != 1)) + 1
    starts, stops = np.r_[0, cut], np.r_[cut, len(dst_rows)]
    if len(starts) > max_runs:
        picked = src.index_select(0, index_on(src_rows, src.device))
        dst.index_copy_(0, index_on(dst_rows, dst.device), picked)
        return
    for start, stop in zip(starts.tolist(), stops.tolist()):
        d, s, n = int(dst_rows[start]), int(src_rows[start]), stop - start
        dst[d:d + n].copy_(src[s:s + n])
