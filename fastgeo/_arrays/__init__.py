"""The array layer: every array type fastgeo accepts, and everything done to one.

fastgeo accepts numpy arrays, torch tensors and CuPy arrays (and gives the CUDA backend's
kernels Numba device arrays). A public function normalises its inputs with
:func:`as_array`, computes on a numpy (or, on a GPU, a torch or CuPy) view of the same
memory with the operations of :mod:`.ops`, and returns results through
:meth:`ArrayKind.wrap`: numpy comes back as numpy, a torch tensor as a torch tensor of the
same dtype on the same device. Nothing here copies data between devices: mixing devices is
an error.

- :mod:`.kinds`: :class:`ArrayKind` (library, device), the registry of
  :class:`ArrayLibrary` objects (:func:`register` teaches fastgeo a new array type), and
  conversion in and out; numpy's library;
- :mod:`.libraries`: the libraries of torch, CuPy and Numba device arrays, registered here;
- :mod:`.ops`: the numpy-like operations and the checks (:func:`check_finite`) on compute
  arrays of any library;
- :mod:`.memory`: prior constants on devices, free memory of a device or the host, and
  out-of-memory errors.
"""
from .kinds import (FLOAT_DTYPES, ArrayKind, ArrayLibrary, as_array, check_float_dtype, common_kind, is_torch,
                    kind_of, library_named, library_of, register, unregister)
from .libraries import CupyLibrary, NumbaLibrary, TorchLibrary
from .memory import (available_bytes, format_bytes, free_bytes, host_available_bytes, is_out_of_memory, on_device,
                     require_bytes)
from .ops import (LOG_RI_ERROR, add_scalar, astype, check_finite, check_last_dim, check_not_nan, contiguous,
                  contiguous_float64, empty, every, exp, first_nonfinite, first_true, isfinite, isnan, largest, log,
                  log_sum_exp, matmul, namespace, nonfinite_message, numpy_dtype, swap_last, to_host, total, where,
                  zeros_like)

__all__ = [
    "FLOAT_DTYPES", "ArrayKind", "ArrayLibrary", "CupyLibrary", "NumbaLibrary", "TorchLibrary", "as_array", "check_float_dtype", "common_kind", "is_torch",
    "kind_of", "library_named", "library_of", "register", "unregister",
    "available_bytes", "format_bytes", "free_bytes", "host_available_bytes", "is_out_of_memory", "on_device",
    "require_bytes",
    "LOG_RI_ERROR", "add_scalar", "astype", "check_finite", "check_last_dim", "check_not_nan", "contiguous",
    "contiguous_float64", "empty", "every", "exp", "first_nonfinite", "first_true", "isfinite", "isnan", "largest",
    "log", "log_sum_exp", "matmul", "namespace", "nonfinite_message", "numpy_dtype", "swap_last", "to_host", "total", "where",
    "zeros_like",
]

for _library in (TorchLibrary(), CupyLibrary(), NumbaLibrary()):
    register(_library, first=False)
del _library
