"""The machinery behind fastgeo.special's functions: argument checks, broadcasting, the
caller's array type, the kernels (Numba CPU, or CUDA for GPU arrays), and torch autograd.

A function is a :class:`Spec`: its parameter names, which one is x, the domain of each, the
kernel and the transforms around it. :func:`evaluate` runs one:

1. arrays (numpy, torch, CuPy) must share one library and device (``_arrays.common_kind``);
   Python and numpy scalars join any of them;
2. each argument is checked (NaN anywhere, and each parameter's domain) and a ValueError
   names the argument and its first bad entry;
3. the arguments are broadcast, copied to contiguous float64 and flattened; the kernel
   writes log S (and d/dx log S when asked) in float64;
4. the result is cast to the arguments' dtype (float32 only if every array argument is
   float32) and handed back as their type, shape the broadcast shape (a numpy scalar for
   scalar inputs, as scipy does).

Torch tensors that require grad go through :class:`_SpecialFunction`; its backward is
``grad_out * d/dx log S`` summed down to x's shape, and asking for the gradient of a shape
parameter raises NotImplementedError.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import _arrays

_SCALARS = (int, float, np.integer, np.floating)


@dataclass(frozen=True)
class Spec:
    name: str  # the public function's name, for messages
    params: tuple  # parameter names in call order
    x: str  # the one parameter the result is differentiated in
    domains: dict  # name -> (test of bad entries on a float64 array, words for the message)
    code: str  # the name of the function's code in kernels/special_sf.py (GAMMA, F_RATIO, BETA_UPPER)
    prepare: Callable  # dict of float64 arrays -> the kernel's input arrays (broadcast shape)
    grad_factor: Callable = None  # dict of float64 arrays -> factor of the kernel's derivative


def _is_scalar(v):
    return isinstance(v, _SCALARS) and not isinstance(v, bool)


def _inputs(spec, values):
    """(compute arrays by name, their ArrayKind, the result dtype)."""
    values = [v.astype(np.float64) if isinstance(v, np.ndarray) and v.dtype.kind in "iu" else v for v in values]
    arrays = {n: v for n, v in zip(spec.params, values) if not _is_scalar(v)}
    if arrays:
        kind = _arrays.common_kind(*arrays.values(), names=list(arrays))
    else:
        kind = _arrays.ArrayKind("numpy", "cpu")
    views = {}
    for n, v in zip(spec.params, values):
        if _is_scalar(v):
            views[n] = None
        else:
            views[n] = _arrays.as_array(v, n)[0]
    dtypes = {_arrays.numpy_dtype(v) for v in views.values() if v is not None}
    dtype = np.dtype(np.float32) if dtypes == {np.dtype(np.float32)} else np.dtype(np.float64)
    lib = kind.lib
    for n, v in zip(spec.params, values):
        if views[n] is None:
            host = np.asarray(float(v), dtype=np.float64)
            views[n] = host if not kind.is_cuda else lib.to_device(host, kind)
        else:
            views[n] = _arrays.astype(views[n], np.float64)
    return views, kind, dtype


def _check(spec, views):
    for n, v in views.items():
        nan = _arrays.isnan(v)
        if not bool(_arrays.every(~nan)):
            idx, _ = _arrays.first_true(nan, v)
            raise ValueError(f"{spec.name}: {n} contains NaN (first at index {idx}); "
                             "fastgeo raises instead of returning NaN")
        if n in spec.domains:
            test, words = spec.domains[n]
            bad = test(v)
            if not bool(_arrays.every(~bad)):
                idx, val = _arrays.first_true(bad, v)
                raise ValueError(f"{spec.name}: {n} must be {words} (first bad entry at index {idx}: {val!r})")


def _broadcast(kind, views, names):
    """({name: contiguous flat float64 array of the broadcast size}, the broadcast shape)."""
    lib = _compute_library(kind)
    parts = [views[n] for n in names]
    shape = tuple(np.broadcast_shapes(*[tuple(p.shape) for p in parts]))
    flat = {}
    for n, p in zip(names, parts):
        if tuple(p.shape) != shape:
            full = lib.empty(kind, shape, np.float64)
            full[...] = p
            p = full
        flat[n] = _arrays.contiguous(p).reshape(-1)
    return flat, shape


def compute(spec, values, need_grad):
    """(log S, d/dx log S or None) as the arguments' array type; no autograd."""
    views, kind, dtype = _inputs(spec, values)
    _check(spec, views)
    flat, shape = _broadcast(kind, views, spec.params)
    inputs = list(spec.prepare(flat))
    inputs += inputs[-1:] * (3 - len(inputs))  # the kernels read three arguments
    n = inputs[0].shape[0]
    from ..kernels import special_sf  # noqa: PLC0415 - Numba is imported on the first call only

    code = getattr(special_sf, spec.code)
    lib = _compute_library(kind)
    out = lib.empty(kind, (n,), np.float64)
    grad = lib.empty(kind, (n if need_grad else 0,), np.float64)
    if kind.is_cuda:
        from ..backends.cuda import _Launch  # noqa: PLC0415 - the CUDA backend's device, stream and views
        from ..kernels import cuda_special  # noqa: PLC0415 - compiled on first GPU call only

        launch = _Launch(out)
        with launch.device():  # the arrays' device, the caller's current stream
            cuda_special.launch_special(code, *[launch.view(a) for a in (*inputs, out, grad)], stream=launch.stream())
    else:
        from ..kernels import cpu_special  # noqa: PLC0415 - imported (not compiled) on first call

        _run_cpu(cpu_special.special_sf, code, inputs, out, grad)
    if need_grad and spec.grad_factor is not None:
        grad = grad * spec.grad_factor(flat)
    out = _finish(out, shape, dtype, kind)
    return out, (_finish(grad, shape, dtype, kind) if need_grad else None)


#: elements per thread of the CPU kernel (below two chunks it runs on the calling thread)
CPU_CHUNK = 1 << 16


def _run_cpu(kernel, code, inputs, out, grad):
    """The CPU kernel over out's elements, in chunks on numba.get_num_threads() threads when
    there are several chunks (the kernel releases the GIL; contiguous slices keep its one
    compiled signature)."""
    n = out.shape[0]
    chunks = [slice(i, min(i + CPU_CHUNK, n)) for i in range(0, n, CPU_CHUNK)]
    import numba

    threads = min(numba.get_num_threads(), len(chunks))
    if threads < 2:
        kernel(code, *inputs, out, grad)
        return
    from concurrent.futures import ThreadPoolExecutor

    def run(s):
        kernel(code, *[a[s] for a in inputs], out[s], grad[s] if grad.shape[0] else grad)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, chunks))


def _compute_library(kind):
    """The library computed in: numpy on the CPU (torch CPU tensors are numpy views), the
    array's own on a GPU."""
    return kind.lib if kind.is_cuda else _arrays.library_named("numpy")


def _finish(a, shape, dtype, kind):
    a = a.reshape(shape)
    if dtype != np.float64:
        a = _compute_library(kind).astype(a, dtype)
    if kind.library == "numpy" and a.ndim == 0:
        return a[()]
    return kind.wrap(a)


def evaluate(spec, values):
    """The public call: through torch autograd when a torch argument requires grad."""
    if any(getattr(v, "requires_grad", False) for v in values):
        import torch

        if torch.is_grad_enabled():
            return _SpecialFunction.apply(spec, *values)
    return compute(spec, values, False)[0]


def _make_function():
    import torch
    from torch.autograd.function import once_differentiable

    class SpecialFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, spec, *values):
            xi = spec.params.index(spec.x)
            want = ctx.needs_input_grad[1 + xi]
            out, grad = compute(spec, values, want)
            ctx.spec = spec
            ctx.x_shape = tuple(values[xi].shape) if isinstance(values[xi], torch.Tensor) else None
            if want:
                ctx.save_for_backward(grad)
            return out

        @staticmethod
        @once_differentiable  # second derivatives are not implemented: a clear error, not a wrong zero
        def backward(ctx, grad_out):
            spec = ctx.spec
            grads = [None] * len(spec.params)
            for i, n in enumerate(spec.params):
                if not ctx.needs_input_grad[1 + i]:
                    continue
                if n != spec.x:
                    raise NotImplementedError(
                        f"fastgeo.special.{spec.name}: the gradient with respect to {n} is not implemented "
                        f"(only with respect to {spec.x}); pass {n} with requires_grad=False or detach it")
                (grad,) = ctx.saved_tensors
                grads[i] = (grad_out * grad).sum_to_size(ctx.x_shape)
            return (None, *grads)

    return SpecialFunction


class _Lazy:
    """The torch Function, made on first use (importing fastgeo.special does not import torch)."""

    _fn = None

    def apply(self, *args):
        if _Lazy._fn is None:
            _Lazy._fn = _make_function()
        return _Lazy._fn.apply(*args)


_SpecialFunction = _Lazy()
