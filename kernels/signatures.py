"""Explicit Numba signatures that take read-only input arrays.

A kernel compiled only for writable arrays refuses a read-only one ("No matching definition
for ... readonly array"), so every caller would have to remember to copy read-only inputs:
a memory-mapped file, a broadcast view, a numpy array with ``flags.writeable = False``.
Declaring the arrays a kernel only reads as read-only settles it once, at the kernel: Numba
converts a writable array to the read-only type of the same dtype and layout (a safe
conversion), so one compiled signature takes both and nothing is copied.

A kernel wanted for two layouts of one input (C-contiguous, vectorised; and any strides) is
compiled as two dispatchers of one Python function, ``name`` and ``name_strided``, and the
backend picks by the input's layout. One dispatcher holding both read-only layouts would
refuse a writable contiguous array as ambiguous (it converts equally well to both), and one
holding a writable contiguous and a read-only strided variant would send read-only
contiguous arrays down the strided code, whose sums round differently.
"""
from numba import types
from numba.core.sigutils import normalize_signature


def reading(signature, *positions):
    """``signature`` (a Numba signature string or object) with the array arguments at
    ``positions`` (0-based) declared read-only."""
    args, ret = normalize_signature(signature)
    args = list(args)
    for i in positions:
        if not isinstance(args[i], types.Array):
            raise TypeError(f"argument {i} of {signature!r} is not an array")
        args[i] = args[i].copy(readonly=True)
    return (ret or types.void)(*args)
