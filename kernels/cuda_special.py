"""CUDA elementwise kernel of :mod:`fastgeo.special`: one thread per element, calling the
scalar :func:`.special_sf.sf_and_dlog`, the same source as the CPU kernel (cpu_special.py).
Compiled on first launch.
"""
from numba import cuda

from .cuda_launch import THREADS, blocks_for, launch_grid
from .special_sf import sf_and_dlog


@cuda.jit(cache=True)
def special_sf(code, p0, p1, p2, out, grad):
    """out[i], grad[i] as kernels/cpu_special.special_sf, element i on thread i."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        v, g = sf_and_dlog(code, p0[i], p1[i], p2[i])
        out[i] = v
        if grad.shape[0] == out.shape[0]:
            grad[i] = g


KERNELS = {"special_sf": special_sf}


def signature():
    """The kernel's one signature: int64 code, float64 C-contiguous arrays."""
    return "void(int64, float64[::1], float64[::1], float64[::1], float64[::1], float64[::1])"


def launch_special(code, p0, p1, p2, out, grad, stream=0):
    """special_sf[blocks, THREADS, stream](...) with one thread per element of ``out``."""
    n = out.shape[0]
    if n:
        launch_grid(special_sf, blocks_for(n), THREADS, stream, code, p0, p1, p2, out, grad)
