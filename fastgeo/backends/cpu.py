"""Numba CPU backend: thin wrappers that allocate outputs and call :mod:`fastgeo.kernels`."""
from __future__ import annotations

import math

import numpy as np

from .._arrays import check_finite, check_not_nan
from .base import Backend

_WHAT = {"log_ri": 0, "ri": 1, "log_density": 2}
_KDE_WHAT = {"cdf": 0, "log_cdf": 1, "pdf": 2, "log_pdf": 3}  # kernels.kde.CDF ...


def unavailable_reason():
    try:
        import numba  # noqa: F401
    except ImportError as err:  # pragma: no cover - numba is a hard dependency
        return f"numba is not installed ({err})"
    return None


def make():
    return CPUBackend()


# Below this many input elements a batch runs on the calling thread: waking Numba's thread
# pool costs tens of microseconds on an idle machine and milliseconds on a busy one.
PARALLEL_MIN_ELEMENTS = 1 << 16


def pick(parallel_kernel, serial_kernel, size):
    return parallel_kernel if size >= PARALLEL_MIN_ELEMENTS else serial_kernel


def writable(a):
    """Numba's compiled signatures take writable arrays; a read-only input is copied once."""
    return a if a.flags.writeable else np.array(a)


def raise_if_marked(out, x, name="z"):
    """Kernels mark rows with non-finite input by NaN; name the first offending entry."""
    if np.isnan(out).any():
        check_finite(x, name)
        raise ValueError(f"{name} produced NaN in a kernel")  # pragma: no cover - a kernel bug


class CPUBackend(Backend):
    name = "cpu"
    devices = ("cpu",)

    def radial(self, y, family, dim, p0, p1, log_alpha, what, need_grad):
        from ..kernels.cpu_radial import radial_index, radial_index_serial

        m, d = y.shape
        out = np.empty(m, dtype=y.dtype)
        grad = np.empty((m if need_grad else 0, d), dtype=y.dtype)
        kernel = pick(radial_index, radial_index_serial, y.size)
        kernel(writable(y), family, float(dim), float(p0), float(p1), float(log_alpha), _WHAT[what], out, grad)
        raise_if_marked(out, y)
        return out, (grad if need_grad else None)

    def box(self, z, low, high, log_alpha, what):
        from ..kernels.cpu_box import box_index, box_index_serial

        out = np.empty(z.shape[0], dtype=z.dtype)
        pick(box_index, box_index_serial, z.size)(writable(z), writable(low), writable(high), float(log_alpha), int(what == "ri"), out)
        raise_if_marked(out, z)
        return out

    def kde(self, x, kde, what, need_grad):
        from ..kernels.cpu_kde import kde_query

        t = kde.table
        out = np.empty(x.shape[0], dtype=x.dtype)
        dout = np.empty(x.shape[0] if need_grad else 0, dtype=x.dtype)
        nan = kde_query(writable(x), _KDE_WHAT[what], int(need_grad), t.values, t.counts, t.cumulative,
                        float(t.n), t.bandwidth, math.log(t.n), math.log(t.n * t.bandwidth), t.x0,
                        1.0 / t.dx, t.coef, t.flags, t.j_middle, t.j_upper, out, dout)
        if nan:
            check_not_nan(x, "x")
            raise ValueError("x produced NaN in a kernel")  # pragma: no cover - a kernel bug
        return out, (dout if need_grad else None)
