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

import contextlib
import functools
import importlib.util
import math

import numpy as np

from .. import _arrays
from .._arrays import isfinite, isnan
from .._errors import one_line
from ..kernels.codes import KDE_WHAT as _KDE_WHAT
from ..kernels.codes import RADIAL_WHAT as _WHAT
from .base import Backend

#: the KDE table's arrays that the query kernels read (fastgeo.kde.KDETable)
KDE_TABLE = ("values", "counts", "cumulative", "coef", "flags")

INSTALL_HINT = ("install the GPU extra that matches the NVIDIA driver's CUDA version "
                "(nvidia-smi shows it): pip install 'fastgeo[gpu-cu12]' or 'fastgeo[gpu-cu13]'")

NOT_YET_ON_GPU = ("{what} does not run on GPU inputs yet. Compute it on the CPU for now (move the "
                  "input with .cpu() or cupy.asnumpy), or use a prior with a closed-form realism "
                  "index or a GPU log-density (GaussianMixture, semicircle)")


def compiler_unavailable_reason() -> str | None:
    """Why Numba cannot compile CUDA kernels here (NVVM or NVRTC missing), or None."""
    try:
        from numba.cuda.cudadrv import nvrtc, nvvm

        if not nvvm.is_available():
            return "NVVM (libnvvm, the CUDA compiler library) was not found"
        nvvm.NVVM()
    except Exception as err:
        return f"NVVM (libnvvm, the CUDA compiler library) cannot be loaded: {one_line(err)}"
    try:
        nvrtc.get_supported_ccs()
    except Exception as err:
        return f"NVRTC (libnvrtc) cannot be loaded: {one_line(err)}"
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
        return f"numba-cuda cannot be imported ({one_line(err)}); {INSTALL_HINT}"
    if config.ENABLE_CUDASIM:
        return ("Numba's CUDA simulator is on (NUMBA_ENABLE_CUDASIM=1): it runs kernels as Python "
                "on the CPU, for tests only; unset the variable to use a GPU")
    try:
        from numba.cuda.cudadrv.driver import driver

        count = driver.get_device_count()
    except Exception as err:
        detail = one_line(err, with_type=False).removeprefix("Error at driver init:").strip(" :")
        return f"no usable CUDA driver (is an NVIDIA driver installed?): {detail}"
    if count == 0:
        return "no CUDA GPU found: the driver reports 0 devices (check CUDA_VISIBLE_DEVICES)"
    reason = compiler_unavailable_reason()
    if reason:
        return f"{reason}; {INSTALL_HINT}"
    return None


def make():
    return CUDABackend()


# -- one call's arrays: allocation, stream, device, Numba views ---------------------------------

class _Launch:
    """What a kernel launch needs from the library of the arrays of one call (fastgeo._arrays):
    outputs allocated by that library on its device, the caller's current stream, and
    zero-copy Numba views."""

    def __init__(self, like):
        self.like = like
        self.lib = _arrays.library_of(like)
        self.kind = self.lib.kind(like)

    def device(self):
        """A context manager selecting the input's device for Numba."""
        from numba import cuda

        index = self.lib.device_index(self.kind)
        return contextlib.nullcontext() if index is None else cuda.gpus[index]

    def stream(self):
        """The caller's current stream, as a Numba stream (0: the legacy default stream)."""
        from numba import cuda

        handle = self.lib.stream_handle(self.like)
        return 0 if handle == 0 else cuda.external_stream(handle)

    def view(self, a):
        return self.lib.numba_view(a)

    def empty(self, shape, dtype=None):
        return self.lib.empty(self.kind, shape, self.lib.dtype(self.like) if dtype is None else dtype)

    def flag(self, n=1):
        """n int32 flags set to 0, for the kernels to raise."""
        return self.lib.zeros(self.kind, (n,), np.int32)

    def read_flags(self, flag):
        return self.lib.to_host(flag).tolist()  # waits for the stream the kernel ran on

    def first_where(self, predicate, x):
        """(index, value) of the first entry of x where ``predicate`` (elementwise, any array
        library) holds, or None; for error messages (it synchronises)."""
        if self.lib.xp is None:  # Numba arrays have no operations: look on the host
            x = self.lib.to_host(x)
        return _arrays.first_true(predicate(x), x)

    def constants(self, owner, names):
        """``owner``'s host arrays ``names`` on this device: copied once, then cached."""
        return _arrays.on_device(owner, self.kind, *names)


def nonfinite(x):
    return ~isfinite(x)


def log_ri_invalid(l):
    """Where log ri is NaN or +inf (the values path energies refuse), in l's library."""
    return isnan(l) | (l == math.inf)


def _raise_nonfinite(arrays, x, name):
    found = arrays.first_where(nonfinite, x)
    if found is None:  # pragma: no cover - a kernel bug
        raise ValueError(f"{name}: a CUDA kernel flagged a non-finite row but none was found")
    raise ValueError(_arrays.nonfinite_message(name, *found))


class CUDABackend(Backend):
    name = "cuda"
    devices = ("cuda",)

    def radial(self, y, family, dim, p0, p1, log_alpha, what, need_grad):
        from ..kernels.cuda_radial import radial_index

        arrays = _Launch(y)
        m, d = y.shape
        out = arrays.empty((m,))
        grad = arrays.empty((m if need_grad else 0, d))
        bad = arrays.flag()
        with arrays.device():
            radial_index(arrays.view(y), family, dim, p0, p1, log_alpha, _WHAT[what],
                         arrays.view(out), arrays.view(grad), arrays.view(bad), arrays.stream())
        if arrays.read_flags(bad)[0]:
            _raise_nonfinite(arrays, y, "z")
        return out, (grad if need_grad else None)

    def box(self, z, low, high, log_alpha, what):
        from ..kernels.cuda_box import box_index

        arrays = _Launch(z)
        out = arrays.empty((z.shape[0],))
        bad = arrays.flag()
        with arrays.device():
            box_index(arrays.view(z), arrays.view(low), arrays.view(high), log_alpha,
                      int(what == "ri"), arrays.view(out), arrays.view(bad), arrays.stream())
        if arrays.read_flags(bad)[0]:
            _raise_nonfinite(arrays, z, "z")
        return out

    def mixture_log_density(self, z, whiten, means, log_norm, need_grad, first=None):
        """One thread per row (kernels/cuda_mixture.py); the parameters are on z's device
        (first is looked up on the host when not given: a synchronisation)."""
        from ..kernels.cuda_mixture import mixture_log_density
        from ..kernels.mixture import first_columns

        arrays = _Launch(z)
        if first is None:
            first = arrays.lib.to_device(first_columns(arrays.lib.to_host(whiten)), arrays.kind)
        m, d = z.shape
        out = arrays.empty((m,), np.float64)
        grad = arrays.empty((m if need_grad else 0, d), np.float64)
        with arrays.device():
            mixture_log_density(arrays.view(z), arrays.view(whiten), arrays.view(first), arrays.view(means),
                                arrays.view(log_norm), int(need_grad), arrays.view(out), arrays.view(grad),
                                arrays.stream())
        return out, (grad if need_grad else None)

    def kde(self, x, kde, what, need_grad):
        """The KDE's two query passes (kernels/cuda_kde.py) on the table, copied to x's device
        once per table and device. x may have any stride; ±inf are answered as on the CPU."""
        from ..kernels.cuda_kde import MAX_QUERIES, kde_query

        t = kde.table
        arrays = _Launch(x)
        m = x.shape[0]
        vals, cnts, cum, coef, flags = arrays.constants(t, KDE_TABLE)
        out = arrays.empty((m,))
        dout = arrays.empty((m if need_grad else 0,))
        bad = arrays.flag()
        scalars = (float(t.n), t.bandwidth, math.log(t.n), math.log(t.n * t.bandwidth), t.x0, 1.0 / t.dx)
        table = tuple(arrays.view(a) for a in (vals, cnts, cum))
        with arrays.device():
            stream = arrays.stream()
            coef_v, flags_v, bad_v = arrays.view(coef), arrays.view(flags), arrays.view(bad)
            for start in range(0, m, MAX_QUERIES):
                stop = min(m, start + MAX_QUERIES)
                todo = arrays.empty((stop - start,), np.int32)
                count = arrays.flag()
                kde_query(arrays.view(x[start:stop]), _KDE_WHAT[what], int(need_grad), *table, *scalars, coef_v,
                          flags_v, t.j_middle, t.j_upper, arrays.view(out[start:stop]),
                          arrays.view(dout[start:stop] if need_grad else dout), arrays.view(todo),
                          arrays.view(count), bad_v, stream)
        if arrays.read_flags(bad)[0]:
            found = arrays.first_where(isnan, x)
            if found is None:  # pragma: no cover - a kernel bug
                raise ValueError("x: a CUDA kernel flagged a NaN query but none was found")
            raise ValueError(f"x contains NaN (first at index {found[0]})")
        return out, (dout if need_grad else None)

    # -- path energy (kernels/cuda_path.py) ----------------------------------------------------
    def _raise_path_errors(self, arrays, bad, G3, l):
        """After the kernels: the errors the CPU raises, from the flags they set (one read)."""
        from ..kernels.cuda_path import BAD_LOG_RI, BAD_SEGMENT

        flags = arrays.read_flags(bad)
        if flags[BAD_LOG_RI]:
            found = arrays.first_where(log_ri_invalid, l)
            raise ValueError(_arrays.LOG_RI_ERROR.format(index=found[0], value=found[1]))
        if flags[BAD_SEGMENT]:  # NaN or inf in G, or finite entries too far apart
            found = arrays.first_where(nonfinite, G3)
            if found is not None:
                raise ValueError(_arrays.nonfinite_message("decoded", *found))
            raise ValueError("decoded: a squared difference |G_{i+1} - G_i|^2 overflows float64")

    def path_energy(self, G3, l, log_alpha, need_grads):
        from ..kernels import cuda_path

        arrays = _Launch(G3)
        nb, n_points, n = G3.shape
        ntiles = cuda_path.tiles_for(n)
        log_a = arrays.empty((nb, n_points - 1), np.float64)
        d_part = arrays.empty((nb, ntiles, n_points - 1), np.float64)
        grad = arrays.empty(G3.shape if need_grads else (0, 0, 0))
        energy = arrays.empty((nb,))
        dl = arrays.empty((nb, n_points), np.float64)
        bad = arrays.flag(2)
        with arrays.device():
            cuda_path.path_energy(arrays.view(G3), arrays.view(l), log_alpha, need_grads, arrays.view(log_a),
                                  arrays.view(d_part), arrays.view(grad), arrays.view(energy), arrays.view(dl),
                                  arrays.view(bad), arrays.stream())
        self._raise_path_errors(arrays, bad, G3, l)
        return energy, (grad if need_grads else None), dl

    def path_log_index(self, G3, l):
        from ..kernels import cuda_path

        arrays = _Launch(G3)
        nb, n_points, n = G3.shape
        d_part = arrays.empty((nb, cuda_path.tiles_for(n), n_points - 1), np.float64)
        out = arrays.empty((nb,))
        bad = arrays.flag(2)
        with arrays.device():
            cuda_path.path_log_index(arrays.view(G3), arrays.view(l), arrays.view(arrays.empty((0, 0), np.float64)),
                                     arrays.view(d_part), arrays.view(arrays.empty((0, 0, 0))), arrays.view(out),
                                     arrays.view(bad), arrays.stream())
        self._raise_path_errors(arrays, bad, G3, l)
        return out

