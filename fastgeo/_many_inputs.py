"""The client side's checks of :func:`fastgeo.interpolate_many`'s arguments, before any task runs.

The pairs (numpy, Dask or Zarr; their shape, dtype, NaN and inf, a token of their contents),
the prior (converted, its KDE table built here so that it pickles along), the generator
(a spec made absolute or a picklable factory, built once here to learn its output shape)
and the options ``fastgeo.interpolate`` takes; a fingerprint of the prior for the store's
settings. The driver is :mod:`fastgeo.many`.
"""
from __future__ import annotations

import hashlib
import inspect
import os
import pickle

import numpy as np

from ._errors import one_line
from ._many_worker import _Generator


def _pairs_kind(pairs):
    """("dask" | "zarr" | "numpy", the pairs as a Dask array or a numpy array)."""
    mod = type(pairs).__module__ or ""
    if mod.startswith("dask."):
        return "dask", pairs
    if mod.startswith("zarr."):
        import dask.array as da

        return "zarr", da.from_zarr(pairs)
    from ._arrays import to_host

    try:
        arr = to_host(pairs) if not isinstance(pairs, np.ndarray) else pairs
    except TypeError:
        arr = np.asarray(pairs)
    return "numpy", np.asarray(arr)


def _check_pairs(kind, pairs, dim):
    if pairs.ndim != 3 or pairs.shape[1] != 2 or pairs.shape[0] < 1 or pairs.shape[2] < 1:
        raise ValueError(f"pairs must have shape (P, 2, D) with P >= 1, got {tuple(pairs.shape)}")
    if pairs.shape[2] != dim:
        raise ValueError(f"pairs hold {pairs.shape[2]}-dimensional endpoints but the prior is {dim}-dimensional")
    if np.dtype(pairs.dtype).kind not in "fiu":
        raise TypeError(f"pairs must be real numbers, got {pairs.dtype}")
    if kind == "numpy":
        _raise_nonfinite(~np.isfinite(pairs).all(axis=(1, 2)))


def listed_pairs(bad) -> str:
    """The pairs flagged in ``bad`` (a boolean (P,) array) for a message, the first five and a
    count of the rest ("3, 7, 8, 9, 12 and 4 more"); "" when none is (also the CLI's --pairs)."""
    idx = np.flatnonzero(bad)
    if not len(idx):
        return ""
    more = f" and {len(idx) - 5} more" if len(idx) > 5 else ""
    return f"{', '.join(map(str, idx[:5]))}{more}"


def _raise_nonfinite(bad):
    listed = listed_pairs(bad)
    if listed:
        raise ValueError(f"pairs {listed} contain NaN or inf")


def _pairs_token(kind, pairs):
    if kind == "numpy":
        return hashlib.sha256(np.ascontiguousarray(pairs).tobytes()).hexdigest()
    from dask.base import tokenize

    return f"{kind}:{tokenize(pairs)}"


def _prepare_prior(prior):
    """The fastgeo prior, with its KDE table built here when its index needs it (so workers
    never build it: the table pickles along)."""
    from ._specs import Estimated
    from .priors import as_prior

    prior = as_prior(prior)
    if isinstance(prior.index(), Estimated):
        prior.kde.table  # noqa: B018 - builds and caches the table
    return prior


def prior_fingerprint(prior) -> str:
    """sha256 of what the prior's numbers depend on: its public attributes (the private ones
    are caches derived from them, some built on first use), a KDE as its samples and
    bandwidth (its table is derived from them, and records its own build time)."""
    from .kde import KDE

    state = {}
    for key, value in sorted(vars(prior).items()):
        if key.startswith("_"):
            continue
        if isinstance(value, KDE):
            value = (hashlib.sha256(np.ascontiguousarray(value.samples).tobytes()).hexdigest(), value.bandwidth)
        state[key] = value
    return hashlib.sha256(pickle.dumps((type(prior).__module__, type(prior).__qualname__, state))).hexdigest()


def _probe(source: _Generator, gen, first_point):
    """The shape of one decoded output of ``gen`` (the generator as built here, a check)."""
    import torch

    gen = source.prepared(gen)
    z = torch.as_tensor(first_point[None], dtype=getattr(torch, source.dtype), device=source.device)
    with torch.no_grad():
        out = gen(z)
    if not isinstance(out, torch.Tensor) or out.ndim < 2 or out.shape[0] != 1:
        raise ValueError(f"the generator {source.name} must map (M, D) latents to (M, ...) tensors; it mapped "
                         f"(1, {z.shape[1]}) to {type(out).__name__} {tuple(getattr(out, 'shape', ()))}")
    return tuple(out.shape[1:])


def _resolve_generator(generator, dtype, device):
    """(where workers get the generator, the generator built here once)."""
    import torch

    from .generators import dtype_and_device, load

    if isinstance(generator, str):
        from .generators import is_file_spec

        where, sep, attr = generator.rpartition(":")
        # workers in other folders (or on other nodes sharing the file system) find the file,
        # and a relative and an absolute spec of one file are the same run
        spec, factory = (f"{os.path.abspath(where)}:{attr}" if sep and is_file_spec(where) else generator), None
        built = load(spec)
    elif callable(generator):
        spec, factory = None, generator
        try:
            pickle.dumps(generator)
        except Exception as err:
            raise TypeError(f"the generator factory must pickle (workers build the generator from it): "
                            f"{one_line(err)}") from None
        built = generator()
    else:
        raise TypeError("generator must be a 'module:attr' / 'file.py:attr' spec or a picklable factory, "
                        f"got {type(generator).__name__}")
    g_dtype, g_device = dtype_and_device(built) if isinstance(built, torch.nn.Module) else (None, None)
    dtype = str(dtype or g_dtype or torch.float32).replace("torch.", "")
    device = str(device or g_device or "cpu")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return _Generator(spec, factory, dtype, device), built


def _interpolate_options(options):
    from .interpolation import interpolate

    allowed = set(inspect.signature(interpolate).parameters) - {"generator", "z0", "z1", "prior", "init",
                                                                "progress"}
    bad = sorted(set(options) - allowed)
    if bad:
        raise TypeError(f"interpolate_many got options fastgeo.interpolate does not take: {', '.join(bad)}")
    return options
