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


def blocks_for(rows: int) -> int:
    return (rows + THREADS - 1) // THREADS


def launch(kernel, rows, stream, *args):
    """kernel[blocks, THREADS, stream](*args) with one block per THREADS rows."""
    blocks = blocks_for(rows)
    if blocks >= _QUIET_BELOW:
        kernel[blocks, THREADS, stream](*args)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _performance_warning())
        kernel[blocks, THREADS, stream](*args)
