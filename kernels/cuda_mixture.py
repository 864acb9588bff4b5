"""CUDA kernel of a Gaussian mixture's log-density and gradient: one thread per row, from the
same scalar function as the CPU kernel (:func:`.mixture.mixture_row`, which Numba compiles
for the GPU). The parameters (whitening matrices, means, log normalisers) are a few
kilobytes, read by every thread from the cache.
"""
from numba import cuda

from .cuda_launch import launch
from .mixture import mixture_row


@cuda.jit(cache=True)
def mixture_rows(z, whiten, first, means, log_norm, want_grad, out, grad):
    """out[i] = log f(z_i), grad[i] = grad log f(z_i) (when want_grad), float64."""
    i = cuda.grid(1)
    if i < z.shape[0]:
        out[i] = mixture_row(z, i, whiten, first, means, log_norm, want_grad, grad)


KERNELS = {"mixture_rows": mixture_rows}


def signature(name: str, dtype: str, layout: str = "C") -> str:
    """The signature of kernel ``name`` for z of ``dtype`` and ``layout`` ("C" or "A"); used
    to compile PTX ahead of time in tests."""
    z = f"{dtype}[:, ::1]" if layout == "C" else f"{dtype}[:, :]"
    return (f"void({z}, float64[:, :, ::1], int64[:, ::1], float64[:, ::1], float64[::1], int64, "
            "float64[::1], float64[:, ::1])")


def mixture_log_density(z, whiten, first, means, log_norm, want_grad, out, grad, stream=0):
    """Launch on ``stream``: z (M, D) any float dtype and strides; first (K, D) int64
    (:func:`.mixture.first_columns`); out (M,) and grad ((M, D) or (0, D)) float64 on the
    same device."""
    if z.shape[0] == 0:
        return
    launch(mixture_rows, z.shape[0], stream, z, whiten, first, means, log_norm, want_grad, out, grad)
