"""Checking a benchmarked result once, outside the timed calls.

Every benchmark compares what it times with a float64 reference (or a property the result
must have) before its time counts: a fast wrong answer is not a result. A check raises
:class:`WrongResult`; ``fastgeo bench`` then reports the row as a wrong result, without a
time, and the pytest-benchmark files fail.
"""
from __future__ import annotations

import numpy as np

from .._arrays import to_host


class WrongResult(AssertionError):
    """A benchmarked call returned a result that its check rejects."""


def check_close(what, result, reference, rtol, atol=0.0):
    """Raise WrongResult unless the leading ``len(reference)`` entries of ``result`` (any
    array type) equal ``reference`` (float64 numpy) within ``rtol`` and ``atol``
    (``numpy.isclose``; infinities must match exactly, NaN never does)."""
    reference = np.asarray(reference, dtype=np.float64)
    if len(result) < len(reference):
        raise WrongResult(f"{what}: {len(result)} rows, fewer than the {len(reference)} checked")
    got = to_host(result[:len(reference)]).astype(np.float64)
    if got.shape != reference.shape:
        raise WrongResult(f"{what}: shape {tuple(got.shape)} where {tuple(reference.shape)} is checked")
    bad = ~np.isclose(got, reference, rtol=rtol, atol=atol)
    if bad.any():
        i = np.unravel_index(np.argmax(bad), bad.shape)
        raise WrongResult(f"{what}: {int(bad.sum())} of {bad.size} checked values off the float64 "
                          f"reference by more than rtol {rtol:g}, atol {atol:g} (first at "
                          f"{tuple(int(j) for j in i)}: {got[i]!r}, expected {reference[i]!r})")


def check_that(condition, what):
    """Raise WrongResult(what) unless ``condition`` holds (for a property, not a comparison)."""
    if not condition:
        raise WrongResult(what)
