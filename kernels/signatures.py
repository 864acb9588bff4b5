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

A kernel for several dtypes is an :class:`OnDemand`: one such dispatcher per dtype, made on
the first call with that dtype, so that a call compiles (or loads from the cache) only the
signature it needs, not every listed one at import (bench/first_call.py).
"""
import threading

import numpy as np
from numba import njit, types
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


class OnDemand:
    """A kernel compiled for one dtype at a time, when a call first needs it.

    ``njit([sig_float32, sig_float64], ...)`` compiles every listed signature when the module
    is imported (a parallel one takes seconds), though a call needs one. This holds one
    dispatcher per dtype of the argument at ``dtype_at``, each made with the single explicit
    signature ``signature_of(dtype name)`` (so read-only inputs keep working as above, and the
    machine code is the same as before) on the first call with that dtype; ``cache=True``
    then loads it from disk in later processes.
    """

    def __init__(self, func, signature_of, dtype_at=0, dtypes=("float32", "float64"), **options):
        self.py_func = func
        self.__name__, self.__doc__ = func.__name__, func.__doc__
        self._signature_of, self._at, self._dtypes, self._options = signature_of, dtype_at, dtypes, options
        self._lock = threading.Lock()
        self._by_char = {}

    def __call__(self, *args):
        kernel = self._by_char.get(args[self._at].dtype.char)
        if kernel is None:
            kernel = self.dispatcher(args[self._at].dtype)
        return kernel(*args)

    def dispatcher(self, dtype):
        """The Numba dispatcher for ``dtype`` (compiled or loaded from the cache now if need be)."""
        dtype = np.dtype(dtype)
        with self._lock:
            kernel = self._by_char.get(dtype.char)
            if kernel is None:
                if dtype.name not in self._dtypes:
                    raise TypeError(f"{self.__name__}: no kernel for {dtype.name} arrays "
                                    f"(only {', '.join(self._dtypes)})")
                kernel = njit([self._signature_of(dtype.name)], **self._options)(self.py_func)
                self._by_char[dtype.char] = kernel
        return kernel


def on_demand(signature_of, dtype_at=0, dtypes=("float32", "float64"), **options):
    """Decorator form of :class:`OnDemand`."""
    return lambda func: OnDemand(func, signature_of, dtype_at, dtypes, **options)
