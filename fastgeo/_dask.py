"""Dask arrays through the realism index: a lazy Dask array back, one task per block.

A Dask array z of shape (..., D) (numpy or CuPy blocks) becomes one ``map_blocks`` over its
blocks, each block computed by :func:`fastgeo._evaluator.compute` exactly as an in-memory
call would compute it. The checked :class:`~fastgeo._evaluator.Request` (the prior, its
index spec and constants, the KDE table) is one key of the graph that every block task
depends on, so a distributed scheduler ships it to each worker once. Dask itself is
imported only when a Dask array arrives.
"""
from __future__ import annotations

import math
import sys
import uuid

import numpy as np

from ._arrays import check_last_dim, contiguous, namespace
from ._evaluator import Request, compute
from ._specs import Estimated

UNSPLIT_LAST_AXIS = ("the last axis of z (the {d} coordinates of a point) is split into {n} chunks {chunks}; "
                     "fastgeo needs each point in one chunk: pass z.rechunk({{-1: -1}})")


def is_dask_array(z) -> bool:
    """Whether z is a Dask array; a process that never imported dask.array holds none, so
    this never imports it."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(z, module.Array)


def evaluate(z, prior, what, alpha, backend, method, need_grad):
    """``what`` (and its gradient, when need_grad) of a Dask array z (..., D), lazily: a Dask
    array of z's chunks less the last axis (and one with z's chunks), of z's block type."""
    request = Request.make(prior, what, alpha, backend, method, need_grad)
    check_blocks(z, prior.dim)
    # the in-memory checks (dtype, backend for this array type) on an empty block, now rather
    # than at compute time; its result has the output's type and dtype
    empty = compute(_empty_block(z), request)
    shared = _shared(request)
    if need_grad:
        return _with_grad(z, shared, empty, what)
    return _index_only(z, shared, empty, what)


def check_blocks(z, dim):
    """A ValueError unless z is (..., dim) with its last axis of known size in one chunk."""
    if z.ndim and math.isnan(z.shape[-1]):
        raise ValueError("the size of z's last axis is unknown; call z.compute_chunk_sizes() first")
    check_last_dim(z, dim)
    chunks = z.chunks[-1]
    if len(chunks) > 1:
        raise ValueError(UNSPLIT_LAST_AXIS.format(d=z.shape[-1], n=len(chunks), chunks=chunks))


def _empty_block(z):
    """An empty (0, D) array of z's block type and dtype."""
    from dask.array.utils import meta_from_array

    return meta_from_array(z._meta, ndim=2, dtype=z.dtype).reshape((0, z.shape[-1]))


def _shared(request):
    """The request as one key for every block task. The KDE table is built here, before
    pickling, so that workers receive it instead of each building its own.

    With a distributed Client as the default scheduler the request is scattered to every
    worker (broadcast) and held there as long as the lazy array refers to it: a plain graph key
    is released from a worker once its tasks there are done and fetched again for the next
    ones (seen: twice on one worker of two under load)."""
    import dask

    if isinstance(request.spec, Estimated):
        request.spec.prior.kde.table
    client = _default_client()
    if client is not None:
        return client.scatter(request, broadcast=True, hash=False)
    # a fresh name: tokenizing the request would pickle the prior and its table
    return dask.delayed(request, name=f"fastgeo-request-{uuid.uuid4().hex}", traverse=False)


def _default_client():
    """The distributed Client that computes Dask collections by default, if any (without
    importing distributed when nothing did)."""
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


def _resolved(request):
    """A request scattered by one client and computed by another scheduler arrives as a
    Future: fetch it."""
    return request if isinstance(request, Request) else request.result()


def _index_only(z, shared, empty, what):
    from dask.array.utils import meta_from_array

    return z.map_blocks(_block, shared, drop_axis=z.ndim - 1, dtype=empty.dtype,
                        meta=meta_from_array(empty, ndim=z.ndim - 1), token="fastgeo-" + what.replace("_", "-"))


def _with_grad(z, shared, empty, what):
    """(log ri, grad) as two slices of one map_blocks whose blocks hold both, (..., D + 1):
    computing the two arrays runs each block's kernel once."""
    from dask.array.utils import meta_from_array

    out, grad = empty
    if out.dtype != grad.dtype:  # one block holds both: they must share a dtype
        raise TypeError(f"log ri is {out.dtype} but its gradient {grad.dtype}")
    chunks = z.chunks[:-1] + ((z.shape[-1] + 1,),)
    both = z.map_blocks(_block_with_grad, shared, chunks=chunks, dtype=out.dtype,
                        meta=meta_from_array(grad, ndim=z.ndim), token="fastgeo-" + what.replace("_", "-") + "-and-grad")
    return both[..., 0], both[..., 1:]


def _block(block, request):
    return _as_array(compute(_whole_rows(block), _resolved(request)))


def _block_with_grad(block, request):
    out, grad = compute(_whole_rows(block), _resolved(request))
    return namespace(grad).concatenate((_as_array(out)[..., None], grad), axis=-1)


def _whole_rows(block):
    """The block in C order: a block cut from the middle axes of a larger array is a strided
    view, which the kernels' strided variants round differently from the contiguous ones
    that an in-memory call on the whole array runs."""
    return contiguous(block)


def _as_array(out):
    """A block's result as an array: compute hands a numpy point's value back as a scalar."""
    return np.asarray(out) if isinstance(out, np.generic) else out
