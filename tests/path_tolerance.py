"""Tolerances of the path-energy kernels against the float64 reference, shared by the
simulator tests (tests/cudasim) and the real-GPU tests (tests/gpu): float64 to 1e-12 relative
to the size of the terms, float32 outputs within an ulp of the reference's rounding (they are
float64 results rounded once). Importable because pytest puts tests/ (tests/conftest.py's
folder) on sys.path.
"""
import math

import numpy as np

F32_ULP = 2.0**-23


def term_scale(G, l, log_alpha):
    """|2 w_{j-1} dprev| + |2 w_j dnext| per entry: the size dE/dG's error is measured against
    (infinite weights left out: where they cancel, the finite terms are the value)."""
    G = G.astype(np.float64)
    u = np.abs(log_alpha + np.logaddexp(l[:, :-1], l[:, 1:]) - math.log(2.0))[:, :, None]
    u = np.where(np.isinf(u), 0.0, u)
    with np.errstate(over="ignore"):
        term = 2 * u * (u * np.abs(G[:, 1:] - G[:, :-1]))
    scale = np.zeros_like(G)
    scale[:, 1:] += term
    scale[:, :-1] += term
    return scale


def assert_close(got, want, scale, dtype, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want), err_msg=what)
    assert not np.isnan(got).any(), what
    finite = np.isfinite(want)
    bound = 1e-12 * scale + (F32_ULP * np.abs(want) if dtype == np.float32 else 0.0)
    err = np.abs(np.where(finite, got, 0.0) - np.where(finite, want, 0.0))
    assert np.all(err <= np.where(finite, bound, np.inf)), (what, np.max(err - bound))
