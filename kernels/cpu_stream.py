"""Streaming (non-temporal) stores for CPU kernels that write large outputs once.

A plain store to memory that is not in cache first reads the line in (read-for-ownership),
so writing an output costs twice its size in memory traffic. A non-temporal store writes
whole lines straight to memory. LLVM only emits vector non-temporal stores at full vector
alignment, which its loop vectoriser cannot prove for array slices, so :func:`stream_copy`
issues them itself: 8-element vector stores at 32-byte aligned addresses, plain stores for
the unaligned head and the tail. Kernels compute a chunk into a small buffer that stays in
L1, then stream it out; :func:`store_fence` orders the streamed stores before the kernel
returns (they are weakly ordered).
"""
import platform

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
LANES = 8
ALIGN = 32  # bytes: one AVX vector of float32; two of float64 (LLVM splits those)


@intrinsic
def _stream_store8(typingctx, dst, x, src, y):
    """dst[x:x+8] = src[y:y+8] as one non-temporal vector store; dst + x must be 32-byte aligned."""
    if not all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" for a in (dst, src)):
        return None  # the vector load and store need contiguous 1-D arrays
    if dst.dtype != src.dtype:
        return None

    def codegen(context, builder, sig, args):
        dst_ty, _, src_ty, _ = sig.args
        dst_arr = context.make_array(dst_ty)(context, builder, args[0])
        src_arr = context.make_array(src_ty)(context, builder, args[2])
        dst_ptr = cgutils.get_item_pointer(context, builder, dst_ty, dst_arr, [args[1]], wraparound=False)
        src_ptr = cgutils.get_item_pointer(context, builder, src_ty, src_arr, [args[3]], wraparound=False)
        elem = context.get_data_type(dst_ty.dtype)
        vec = ir.VectorType(elem, LANES)
        itemsize = context.get_abi_sizeof(elem)
        value = builder.load(builder.bitcast(src_ptr, vec.as_pointer()), align=itemsize)
        store = builder.store(value, builder.bitcast(dst_ptr, vec.as_pointer()), align=ALIGN)
        store.set_metadata("nontemporal", builder.module.add_metadata([ir.IntType(32)(1)]))
        return context.get_dummy_value()

    return types.void(dst, x, src, y), codegen


@intrinsic
def store_fence(typingctx):
    """A full fence: streamed stores are visible to every thread once it has run."""

    def codegen(context, builder, sig, args):
        module = builder.module
        if _X86:
            # sfence is what orders non-temporal stores on x86 (LLVM may lower a seq_cst
            # fence to a locked instruction instead of mfence)
            sfence = cgutils.get_or_insert_function(module, ir.FunctionType(ir.VoidType(), []),
                                                    "llvm.x86.sse.sfence")
            builder.call(sfence, [])
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@njit(cache=True, nogil=True)
def stream_copy(dst, src):
    """dst[:] = src[:] (1-D, same dtype), with non-temporal stores where aligned.

    The caller runs :func:`store_fence` once after its last streamed store.
    """
    m = dst.shape[0]
    itemsize = dst.itemsize
    head = min(m, ((ALIGN - dst.ctypes.data % ALIGN) % ALIGN) // itemsize)
    if (dst.ctypes.data + head * itemsize) % ALIGN != 0:  # not even itemsize-aligned: plain
        head = m
    for x in range(head):
        dst[x] = src[x]
    x = head
    while x + LANES <= m:
        _stream_store8(dst, x, src, x)
        x += LANES
    for y in range(x, m):
        dst[y] = src[y]

