"""Numba CPU kernel of :mod:`fastgeo.special`: one loop over flat float64 arrays calling the
scalar :func:`.special_sf.sf_and_dlog` (the same function the CUDA kernel in
cuda_special.py calls). Compiled on first call (``cache=True``: later processes load it
from ``__pycache__``); nothing is compiled at import.
"""
from numba import njit

from .special_sf import BETA_UPPER, F_RATIO, GAMMA, sf_and_dlog

__all__ = ["special_sf", "GAMMA", "F_RATIO", "BETA_UPPER"]


@njit(cache=True, nogil=True)
def special_sf(code, p0, p1, p2, out, grad):
    """out[i], grad[i] = log S, d/dx log S of function ``code`` (special_sf.GAMMA: p0 = a,
    p1 = t, p2 unread; F_RATIO: x, dfn, dfd; BETA_UPPER: a, b, x) at element i. grad is
    written when it has the length of out (pass an empty array otherwise). Runs on the
    calling thread (``nogil``: callers may thread over chunks)."""
    want = grad.shape[0] == out.shape[0]
    for i in range(out.shape[0]):
        v, g = sf_and_dlog(code, p0[i], p1[i], p2[i])
        out[i] = v
        if want:
            grad[i] = g
