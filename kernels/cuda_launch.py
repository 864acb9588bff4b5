"""Launch geometry shared by the CUDA kernels, and a launcher that keeps small grids quiet.

Every row kernel gives each block ``THREADS`` rows. Rows of width ``d <= NARROW_D`` are
summed by one thread each (a warp then reads 32 consecutive rows: one contiguous span);
wider rows are read by whole warps, 32 lanes side by side, so each load instruction reads
128 consecutive elements of one row (coalesced), and each lane then owns one row for the
scalar phase (see cuda_radial.py). Both numbers are starting points to tune on a GPU.
"""
import warnings

THREADS = 128  # threads per block = rows per block; the wide kernels' shared tables scale with it
WARPS = THREADS // 32
WARP = 32
PADDED = WARP + 1  # row length of the wide kernels' shared tables (staggers the banks)
NARROW_D = 16  # up to this row width, one thread per row

# Numba warns about grids under 128 blocks ("GPU under-utilization"). A small batch gives a
# small grid by design; the warning would only be noise for fastgeo's callers.
_QUIET_BELOW = 128


def _performance_warning():
    try:
        from numba.cuda.core.errors import NumbaPerformanceWarning
    except ImportError:  # pragma: no cover - older numba-cuda
        from numba.core.errors import NumbaPerformanceWarning
    return NumbaPerformanceWarning


def kernel(launch_bounds=None):
    """``cuda.jit(cache=True)``, with ``launch_bounds`` (threads per block, blocks per SM) on a
    GPU: they cap the registers per thread so that that many blocks fit on a multiprocessor.
    The simulator knows no launch bounds and ignores them."""
    from numba import cuda
    from numba.cuda.core import config

    if launch_bounds is None or config.ENABLE_CUDASIM:
        return cuda.jit(cache=True)
    return cuda.jit(cache=True, launch_bounds=launch_bounds)


def blocks_for(rows: int) -> int:
    return (rows + THREADS - 1) // THREADS


def launch(kernel, rows, stream, *args):
    """kernel[blocks, THREADS, stream](*args) with one block per THREADS rows."""
    launch_grid(kernel, blocks_for(rows), THREADS, stream, *args)


def launch_grid(kernel, blocks, threads, stream, *args):
    """kernel[blocks, threads, stream](*args), without Numba's warning about small grids."""
    if blocks >= _QUIET_BELOW:
        kernel[blocks, threads, stream](*args)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _performance_warning())
        kernel[blocks, threads, stream](*args)
