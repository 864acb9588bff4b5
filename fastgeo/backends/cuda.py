"""CUDA backend: Numba CUDA kernels run on torch CUDA tensors and CuPy arrays, zero-copy.

Inputs are viewed by Numba through the CUDA array interface (no copy, no host sync);
outputs are allocated by the input's own library on the input's device, so a torch
tensor comes back as a torch tensor and a CuPy array as a CuPy array. Kernels are launched
on the caller's current stream (torch: ``torch.cuda.current_stream()``, CuPy:
``cupy.cuda.get_current_stream()``), so they are ordered with the caller's own work. The
one synchronisation per call is the read of a one-element flag that the kernels set when a
row holds NaN or inf: that error has to be raised here, as on the CPU.

Numba device arrays (and, under ``NUMBA_ENABLE_CUDASIM=1``, the simulator's arrays) are
accepted too; that is how the kernels are tested without a GPU.
"""
from __future__ import annotations

import functools
import importlib.util
import sys

import numpy as np

from .._device import first_nonfinite
from .base import Backend

_WHAT = {"log_ri": 0, "ri": 1, "log_density": 2}

INSTALL_HINT = ("install the GPU extra that matches the NVIDIA driver's CUDA version "
                "(nvidia-smi shows it): pip install 'fastgeo[gpu-cu12]' or 'fastgeo[gpu-cu13]'")

NOT_YET_ON_GPU = ("{what} does not run on GPU inputs yet: its CUDA kernels are part of a later "
                  "release. Compute it on the CPU for now (move the input with .cpu() or "
                  "cupy.asnumpy), or use a prior with a closed-form realism index")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def compiler_unavailable_reason() -> str | None:
    """Why Numba cannot compile CUDA kernels here (NVVM or NVRTC missing), or None."""
    try:
        from numba.cuda.cudadrv import nvrtc, nvvm

        if not nvvm.is_available():
            return "NVVM (libnvvm, the CUDA compiler library) was not found"
        nvvm.NVVM()
    except Exception as err:
        return f"NVVM (libnvvm, the CUDA compiler library) cannot be loaded: {_one_line(err)}"
    try:
        nvrtc.get_supported_ccs()
    except Exception as err:
        return f"NVRTC (libnvrtc) cannot be loaded: {_one_line(err)}"
    return None


@functools.lru_cache(maxsize=None)
def unavailable_reason() -> str | None:
    """None if CUDA kernels can run here, else what is missing, in the order it is needed:
    numba-cuda, the simulator being off, a CUDA driver, a GPU, the NVVM/NVRTC compilers.

    Importing numba.cuda is deferred to this call, so ``import fastgeo`` never does it.
    """
    if importlib.util.find_spec("numba_cuda") is None:
        return f"numba-cuda is not installed; {INSTALL_HINT}"
    try:
        from numba.cuda.core import config
    except Exception as err:
        return f"numba-cuda cannot be imported ({_one_line(err)}); {INSTALL_HINT}"
    if config.ENABLE_CUDASIM:
        return ("Numba's CUDA simulator is on (NUMBA_ENABLE_CUDASIM=1): it runs kernels as Python "
                "on the CPU, for tests only; unset the variable to use a GPU")
    try:
        from numba.cuda.cudadrv.driver import driver

        count = driver.get_device_count()
    except Exception as err:
        detail = _one_line(err).removeprefix("Error at driver init:").strip(" :")
        return f"no usable CUDA driver (is an NVIDIA driver installed?): {detail}"
    if count == 0:
        return "no CUDA GPU found: the driver reports 0 devices (check CUDA_VISIBLE_DEVICES)"
    reason = compiler_unavailable_reason()
    if reason:
        return f"{reason}; {INSTALL_HINT}"
    return None


def make():
    return CUDABackend()


# -- the input's library: allocation, stream, device ---------------------------------------

class _Arrays:
    """What the backend needs from an array library, for the arrays of one call."""

    def __init__(self, like):
        self.like = like

    def device(self):  # a context manager selecting the input's device for Numba
        from numba import cuda

        return cuda.gpus[self.device_index()]

    def stream(self):
        """The caller's current stream, as a Numba stream (0: the legacy default stream)."""
        from numba import cuda

        handle = self.stream_handle()
        return 0 if handle == 0 else cuda.external_stream(handle)

    def view(self, a):
        """A zero-copy Numba view; sync=False: ordering comes from using the same stream."""
        from numba import cuda

        return cuda.as_cuda_array(a, sync=False)

    def first_nonfinite(self, x):
        return first_nonfinite(x)


class _Torch(_Arrays):
    def device_index(self):
        return self.like.device.index

    def stream_handle(self):
        return sys.modules["torch"].cuda.current_stream(self.like.device).cuda_stream

    def empty(self, shape):
        return sys.modules["torch"].empty(shape, dtype=self.like.dtype, device=self.like.device)

    def flag(self):
        return sys.modules["torch"].zeros(1, dtype=sys.modules["torch"].int32, device=self.like.device)

    def read_flag(self, flag):
        return int(flag.item())  # waits for the stream the kernel ran on

    def view(self, a):
        return super().view(a.detach())


class _CuPy(_Arrays):
    def device_index(self):
        return self.like.device.id

    def stream_handle(self):
        return sys.modules["cupy"].cuda.get_current_stream(self.device_index()).ptr

    def empty(self, shape):
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(self.device_index()):
            return cupy.empty(shape, dtype=self.like.dtype)

    def flag(self):
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(self.device_index()):
            return cupy.zeros(1, dtype=np.int32)

    def read_flag(self, flag):
        with sys.modules["cupy"].cuda.Device(self.device_index()):
            return int(flag.get()[0])  # waits for the current stream


class _Numba(_Arrays):
    """Numba device arrays (and the simulator's): Numba allocates, default stream."""

    def device(self):
        import contextlib

        return contextlib.nullcontext()

    def stream_handle(self):
        return 0

    def empty(self, shape):
        from numba import cuda

        return cuda.device_array(shape, dtype=self.like.dtype)

    def flag(self):
        from numba import cuda

        return cuda.to_device(np.zeros(1, dtype=np.int32))

    def view(self, a):
        return a

    def read_flag(self, flag):
        return int(flag.copy_to_host()[0])

    def first_nonfinite(self, x):
        return first_nonfinite(x.copy_to_host())


def arrays_of(x) -> _Arrays:
    from .._arrays import is_cupy, is_torch

    if is_torch(x):
        return _Torch(x)
    if is_cupy(x):
        return _CuPy(x)
    return _Numba(x)


def _raise_nonfinite(arrays, x, name):
    found = arrays.first_nonfinite(x)
    if found is None:  # pragma: no cover - a kernel bug
        raise ValueError(f"{name}: a CUDA kernel flagged a non-finite row but none was found")
    idx, value = found
    raise ValueError(f"{name} contains NaN or inf (first at index {idx}: {value})")


class CUDABackend(Backend):
    name = "cuda"
    devices = ("cuda",)

    def radial(self, y, family, dim, p0, p1, log_alpha, what, need_grad):
        from ..kernels.cuda_radial import radial_index

        arrays = arrays_of(y)
        m, d = y.shape
        out = arrays.empty((m,))
        grad = arrays.empty((m if need_grad else 0, d))
        bad = arrays.flag()
        with arrays.device():
            radial_index(arrays.view(y), family, dim, p0, p1, log_alpha, _WHAT[what],
                         arrays.view(out), arrays.view(grad), arrays.view(bad), arrays.stream())
        if arrays.read_flag(bad):
            _raise_nonfinite(arrays, y, "z")
        return out, (grad if need_grad else None)

    def box(self, z, low, high, log_alpha, what):
        from ..kernels.cuda_box import box_index

        arrays = arrays_of(z)
        out = arrays.empty((z.shape[0],))
        bad = arrays.flag()
        with arrays.device():
            box_index(arrays.view(z), arrays.view(low), arrays.view(high), log_alpha,
                      int(what == "ri"), arrays.view(out), arrays.view(bad), arrays.stream())
        if arrays.read_flag(bad):
            _raise_nonfinite(arrays, z, "z")
        return out

    def kde(self, x, kde, what, need_grad):
        raise NotImplementedError(NOT_YET_ON_GPU.format(what="The KDE estimator (fastgeo.KDE)"))
