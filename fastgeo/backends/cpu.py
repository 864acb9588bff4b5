"""Numba CPU backend: thin wrappers that allocate outputs and call :mod:`fastgeo.kernels`.

The path energy's dE/dG (as large as the decoded outputs) comes from a :class:`BufferPool`:
an optimiser loop that drops each gradient before the next call gets the same memory back
instead of paying the operating system's page faults on 80 MB of fresh memory per call.
"""
from __future__ import annotations

import math

import numpy as np

from .._arrays import check_finite, check_not_nan
from .._buffers import BufferPool
from ..kernels.codes import KDE_WHAT as _KDE_WHAT
from ..kernels.codes import RADIAL_WHAT as _WHAT
from .base import Backend, finish_path_energy_ends

# Column blocks of the fused path pass: enough tasks for every thread when B is small, but
# no block under MIN_PATH_BLOCK columns (short rows waste the prefetchers' run-up).
MIN_PATH_BLOCK = 2048
TASKS_PER_THREAD = 4
# dE/dG of the path energy: reused between calls once the caller has dropped it
GRADIENTS = BufferPool(keep=2)


def unavailable_reason():
    try:
        import numba  # noqa: F401
    except ImportError as err:  # pragma: no cover - numba is a hard dependency
        return f"numba is not installed ({err})"
    return None


def make():
    return CPUBackend()


# Below this many input elements a batch runs on the calling thread: waking Numba's thread
# pool costs more than a smaller batch's work, and far more on a busy machine.
PARALLEL_MIN_ELEMENTS = 1 << 16
# ... counting each row of a radial realism index as this many elements besides its own: its
# survival function costs about as much as streaming that many, so that the solver's batches
# (many short rows) share out their survival functions (the measurement that chose it is in
# the commit message: git log -S RADIAL_ROW_ELEMENTS)
RADIAL_ROW_ELEMENTS = 128


def runs_parallel(size):
    """Whether a kernel over ``size`` elements should use Numba's thread pool: not for small
    inputs (waking the pool costs more), nor with one thread (the pool would only add the
    cost of entering a parallel region to every call; the solver calls kernels every
    round)."""
    import numba

    return size >= PARALLEL_MIN_ELEMENTS and numba.get_num_threads() > 1


def pick(parallel_kernel, serial_kernel, size):
    return parallel_kernel if runs_parallel(size) else serial_kernel


def pick_for(module, name, a, size):
    """``module.name`` as compiled for the array a and a batch of ``size`` elements: the
    ``_serial`` variant where the thread pool does not pay (:func:`runs_parallel`), the
    ``_strided`` one where a is not C-contiguous (kernels/signatures.py)."""
    suffix = ("" if runs_parallel(size) else "_serial") + ("" if a.flags.c_contiguous else "_strided")
    return getattr(module, name + suffix)


def path_block(nb, n, threads):
    """Columns per task of the fused path pass (a multiple of 64, at least 1)."""
    want_blocks = -(-TASKS_PER_THREAD * threads // max(nb, 1))
    nblk = max(1, min(want_blocks, n // MIN_PATH_BLOCK))
    block = -(-n // nblk)
    return max(1, -(-block // 64) * 64)


def raise_if_marked(out, x, name="z"):
    """Kernels mark rows with non-finite input by NaN; name the first offending entry."""
    if np.isnan(out).any():
        check_finite(x, name)
        raise ValueError(f"{name} produced NaN in a kernel")  # pragma: no cover - a kernel bug


class CPUBackend(Backend):
    name = "cpu"
    devices = ("cpu",)
    # one pass per path keeps its curvature pairs in cache (kernels/cpu_lbfgs.py)
    compiled_lbfgs = True

    def radial(self, y, family, dim, p0, p1, log_alpha, what, need_grad):
        from ..kernels import cpu_radial

        m, d = y.shape
        out = np.empty(m, dtype=y.dtype)
        grad = np.empty((m if need_grad else 0, d), dtype=y.dtype)
        # a row's survival function costs about as much as streaming RADIAL_ROW_ELEMENTS elements
        kernel = pick_for(cpu_radial, "radial_index", y, y.size + RADIAL_ROW_ELEMENTS * m)
        args = (float(dim), float(p0), float(p1), float(log_alpha), _WHAT[what], out, grad)
        if kernel(y, family, *args):
            # rows whose |y|^2 overflowed, marked +inf: from their radius (kernels/cpu_radial.py)
            cpu_radial.far_rows(y, family, np.flatnonzero(out == np.inf), *args)
        raise_if_marked(out, y)
        return out, (grad if need_grad else None)

    def box(self, z, low, high, log_alpha, what):
        from ..kernels import cpu_box

        out = np.empty(z.shape[0], dtype=z.dtype)
        pick_for(cpu_box, "box_index", z, z.size)(z, low, high, float(log_alpha), int(what == "ri"), out)
        raise_if_marked(out, z)
        return out

    def kde(self, x, kde, what, need_grad):
        from ..kernels.cpu_kde import kde_query

        t = kde.table
        out = np.empty(x.shape[0], dtype=x.dtype)
        dout = np.empty(x.shape[0] if need_grad else 0, dtype=x.dtype)
        nan = kde_query(x, _KDE_WHAT[what], int(need_grad), t.values, t.counts, t.cumulative,
                        float(t.n), t.bandwidth, math.log(t.n), math.log(t.n * t.bandwidth), t.x0,
                        1.0 / t.dx, t.coef, t.flags, t.j_middle, t.j_upper, out, dout)
        if nan:
            check_not_nan(x, "x")
            raise ValueError("x produced NaN in a kernel")  # pragma: no cover - a kernel bug
        return out, (dout if need_grad else None)

    def mixture_log_density(self, z, whiten, means, log_norm, need_grad, first=None):
        """The compiled one-pass kernel (kernels/cpu_mixture.py)."""
        from ..kernels import cpu_mixture
        from ..kernels.mixture import first_columns

        if not isinstance(z, np.ndarray):  # another library's CPU array: the formula in that library
            return super().mixture_log_density(z, whiten, means, log_norm, need_grad)
        if first is None:
            first = first_columns(whiten)
        m, d = z.shape
        out = np.empty(m)
        grad = np.empty((m if need_grad else 0, d))
        # a row costs at most about K D^2 multiply-adds (twice with the gradient)
        work = m * means.shape[0] * (d * d + 2 * d) * (2 if need_grad else 1)
        kernel = pick_for(cpu_mixture, "mixture_log_density", z, work)
        kernel(z, whiten, first, means, log_norm, int(need_grad), out, grad)
        return out, (grad if need_grad else None)

    def _path_segments(self, G3, l, log_alpha, need_grads):
        """log a (B, K), d (B, K) float64 and (with need_grads) dE/dG from one fused pass."""
        import numba

        from ..kernels import cpu_path

        nb, n_points, n = G3.shape
        log_a = np.empty((nb, n_points - 1))
        cpu_path.segment_log_a_rows(l, float(log_alpha), log_a)
        parallel = runs_parallel(G3.size)
        block = path_block(nb, n, numba.get_num_threads()) if parallel else max(n, 1)
        d_part = np.empty((nb, max(1, -(-n // block)), n_points - 1))
        grad = GRADIENTS.empty(G3.shape if need_grads else (0, 0, 0), G3.dtype)
        kernel = pick_for(cpu_path, "path_pass", G3, G3.size)
        if parallel:
            with numba.parallel_chunksize(1):  # tasks handed out one by one: balanced under load
                kernel(G3, log_a, block, bool(need_grads), d_part, grad)
        else:
            kernel(G3, log_a, block, bool(need_grads), d_part, grad)
        d = d_part.sum(axis=1) if d_part.shape[1] > 1 else d_part[:, 0]
        if not np.isfinite(d).all():
            # NaN or inf in G makes its segments' d NaN or inf: name the entry
            check_finite(G3, "decoded")
            raise ValueError("decoded: a squared difference |G_{i+1} - G_i|^2 overflows float64")
        return log_a, np.ascontiguousarray(d), (grad if need_grads else None)

    def path_energy(self, G3, l, log_alpha, need_grads):
        from ..kernels.cpu_path import path_reduce

        log_a, d, grad = self._path_segments(G3, l, log_alpha, need_grads)
        energy = np.empty(G3.shape[0])
        dl = np.empty(l.shape)
        path_reduce(d, l, log_a, energy, dl)
        with np.errstate(over="ignore"):  # an energy beyond float32 is +inf in float32
            return energy.astype(G3.dtype), grad, dl

    def path_energy_ends(self, G0, Gfree, GK, l, log_alpha, need_grads):
        """:meth:`Backend.path_energy_ends` from one fused pass over the three arrays (no
        whole-path copy); dE/dGfree comes from the :data:`GRADIENTS` pool."""
        import numba

        from ..kernels.cpu_path import path_pass_ends, path_pass_ends_serial, path_reduce, segment_log_a_rows

        nb, n_free, n = Gfree.shape
        log_a = np.empty((nb, n_free + 1))
        segment_log_a_rows(l, float(log_alpha), log_a)
        parallel = runs_parallel(Gfree.size + 2 * G0.size)
        block = path_block(nb, n, numba.get_num_threads()) if parallel else max(n, 1)
        d_part = np.empty((nb, max(1, -(-n // block)), n_free + 1))
        grad = GRADIENTS.empty(Gfree.shape if need_grads else (0, 0, 0), Gfree.dtype)
        args = (G0, Gfree, GK, log_a, block, bool(need_grads), d_part, grad)
        if parallel:
            with numba.parallel_chunksize(1):
                path_pass_ends(*args)
        else:
            path_pass_ends_serial(*args)
        d = np.ascontiguousarray(d_part.sum(axis=1)) if d_part.shape[1] > 1 else d_part[:, 0]
        energy = np.empty(nb)
        dl = np.empty(l.shape)
        path_reduce(d, l, log_a, energy, dl)  # NaN in, NaN out: nothing raises inside
        broken = ~np.isfinite(d).all(axis=1) | np.isnan(l).any(axis=1) | np.isposinf(l).any(axis=1)
        zero = np.isneginf(l).any(axis=1)
        energy, grad, dl = finish_path_energy_ends(np, energy, grad if need_grads else None, dl, broken, zero)
        return energy, grad, dl, log_a

    def path_log_index(self, G3, l):
        from ..kernels.cpu_path import path_log_index_reduce

        _, d, _ = self._path_segments(G3, l, 0.0, False)
        out = np.empty(G3.shape[0])
        path_log_index_reduce(d, l, out)
        with np.errstate(over="ignore"):
            return out.astype(G3.dtype)

    def lbfgs_accept(self, memory, rows, src, x, grad, x_new, g_new):
        from ..kernels.cpu_lbfgs import accept_iterates, accept_iterates_serial

        gmax = np.empty(len(rows))
        kernel = pick(accept_iterates, accept_iterates_serial, len(rows) * memory.S[0].numel())
        kernel(_int64(rows), _int64(src), _rows_view(x), _rows_view(grad), _rows_copy(x_new), _rows_copy(g_new),
               memory.S.numpy(), memory.Y.numpy(), memory.rho, memory.gram, memory.sg, memory.head,
               memory.n_pairs, memory.curvature, gmax)
        return gmax

    def lbfgs_directions(self, memory, rows, g, weights, precondition, gamma, out):
        from ..kernels.cpu_lbfgs import lbfgs_directions, lbfgs_directions_serial

        gamma_used, slope = np.empty(len(rows)), np.empty(len(rows))
        kernel = pick(lbfgs_directions, lbfgs_directions_serial, len(rows) * memory.S[0].numel())
        kernel(_int64(rows), _rows_view(g), memory.S.numpy(), memory.Y.numpy(), weights, bool(precondition),
               np.ascontiguousarray(gamma, dtype=np.float64), memory.rho, memory.gram, memory.sg, memory.head,
               memory.n_pairs, _rows_view(out), gamma_used, slope)
        return gamma_used, slope

    def held_gauss_newton_directions(self, rows, chol, coupling, pairs_s, pairs_y, n_pairs, g, out):
        from ..kernels.cpu_gauss_newton import held_directions

        held = (t.contiguous().numpy() for t in (chol, coupling, pairs_s, pairs_y))  # views: allocated contiguous
        held_directions(_int64(rows), *held, _int64(n_pairs), g.contiguous().numpy(), out.numpy())


def _int64(rows):
    return np.ascontiguousarray(rows, dtype=np.int64)


def _rows_view(t):
    """A (B, n) numpy view of a C-contiguous CPU tensor (B, ...) (the kernels write through it)."""
    return t.detach().view(t.shape[0], -1).numpy()


def _rows_copy(t):
    """(B, n) numpy rows of a CPU tensor (B, ...), a copy only if its layout needs one."""
    return t.detach().reshape(t.shape[0], -1).contiguous().numpy()
