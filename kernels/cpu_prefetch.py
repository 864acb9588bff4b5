"""A software prefetch hint for the CPU row kernels (LLVM's ``llvm.prefetch``).

The row kernels alternate a streaming reduction over one row with scalar work on its result
(a survival function). While a core does the scalar work it issues no loads, and the
hardware prefetcher, which only follows the loads it sees, falls behind: the streaming and
the arithmetic then add up instead of overlapping. Hinting the lines of a row a few
kilobytes ahead keeps the memory busy during the arithmetic, so that the radial index runs
close to a plain copy of its input (see bench/results/radial-cpu.json).

A prefetch never faults and never changes a result; it is a hint for the memory system.
"""
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

CACHE_LINE_BYTES = 64
PREFETCH_AHEAD_BYTES = 4096  # best of 1-16 KiB at D = 64, 512, 4096 (float32)


@intrinsic
def prefetch_element(typingctx, array, i, j):
    """Hint that ``array[i, j]`` will be read soon (into every cache level)."""
    if not (isinstance(array, types.Array) and array.ndim == 2):
        return None
    sig = types.void(array, i, j)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        arr = context.make_array(array_type)(context, builder, args[0])
        indices = [context.cast(builder, v, t, types.intp)
                   for v, t in zip(args[1:], signature.args[1:])]
        ptr = cgutils.get_item_pointer(context, builder, array_type, arr, indices)
        i8_ptr = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8_ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read (0), highest locality (3), data cache (1)
        builder.call(fn, [i8_ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def rows_ahead(y):
    """How many rows of the 2-d array y lie PREFETCH_AHEAD_BYTES ahead (at least 1)."""
    row_bytes = max(1, abs(y.strides[0]))
    return max(1, PREFETCH_AHEAD_BYTES // row_bytes)


@njit(cache=True, nogil=True, inline="always")
def prefetch_row(y, i):
    """Hint every cache line of row i of y (a no-op past the last row)."""
    if i >= y.shape[0]:
        return
    step = max(1, CACHE_LINE_BYTES // max(1, abs(y.strides[1])))
    for j in range(0, y.shape[1], step):
        prefetch_element(y, i, j)
