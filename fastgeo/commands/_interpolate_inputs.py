"""The checks of ``fastgeo interpolate``'s inputs, each failure a one-line UserError naming its option.

The pairs (:func:`load_pairs`), the prior spec, the dtype and device against the generator and
the backend, the generator's first output, the memory a run needs, the endpoints' density in
the run's dtype, and the settings a resumed run must match (:func:`settings_of`). The
command itself is :mod:`fastgeo.commands.interpolate`.
"""
from __future__ import annotations

import hashlib

from . import UserError


def load_pairs(path):
    """The endpoint pairs of a .npy file as a float64 array (B, 2, D); UserError if unusable."""
    import numpy as np

    from .._many_inputs import listed_pairs

    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"--pairs: no such file {path!r}") from None
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f"--pairs: {path!r} is not a readable numeric .npy file: "
                        f"{' '.join(str(err).split())}") from None
    if not isinstance(arr, np.ndarray):
        raise UserError(f"--pairs: {path!r} holds several arrays (an .npz?); give one .npy array of shape (B, 2, D)")
    if arr.dtype.kind not in "fiu":
        raise UserError(f"--pairs: {path!r} holds {arr.dtype} values; expected real numbers")
    if arr.ndim != 3 or arr.shape[1] != 2 or arr.shape[0] < 1 or arr.shape[2] < 1:
        raise UserError(f"--pairs: {path!r} has shape {arr.shape}; expected (B, 2, D): B >= 1 pairs of two "
                        "D-dimensional endpoints")
    arr = arr.astype(np.float64)
    listed = listed_pairs(~np.isfinite(arr).all(axis=(1, 2)))
    if listed:
        raise UserError(f"--pairs: {path!r} contains NaN or inf (pairs {listed})")
    return arr


def load_prior(spec):
    from ..priors import spec as prior_spec

    try:
        return prior_spec.parse(spec), prior_spec.canonical(spec)
    except (ValueError, TypeError) as err:
        raise UserError(f"--prior: {err}") from None


def resolve_dtype_device(args, generator):
    import torch

    from ..generators import dtype_and_device

    g_dtype, g_device = dtype_and_device(generator)
    dtype = (g_dtype or torch.float32) if args.dtype == "auto" else getattr(torch, args.dtype)
    if args.device == "auto":
        device = g_device or torch.device("cpu")
    else:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda: torch sees no CUDA GPU here")
    if isinstance(generator, torch.nn.Module) and (g_device not in (None, device) or g_dtype not in (None, dtype)):
        generator.to(device=device, dtype=dtype)
    if device.type == "cuda" and args.backend in ("cpu", "reference"):
        raise UserError(f"--backend {args.backend} runs on the CPU but the paths are on {device}; use auto or cuda")
    if device.type != "cuda" and args.backend == "cuda":
        raise UserError("--backend cuda needs the paths on a GPU: add --device cuda")
    return dtype, device


def check_generator(generator, pairs, dtype, device):
    """Decode the first endpoint: the generator must accept (1, D) and return finite (1, ...).
    Returns (the shape of one output, the bytes of one of its values)."""
    import torch

    d = pairs.shape[2]
    z = torch.as_tensor(pairs[:1, 0], dtype=dtype, device=device)
    try:
        with torch.no_grad():
            out = generator(z)
    except Exception as err:
        from .._errors import one_line

        raise UserError(f"--generator failed on a ({1}, {d}) batch of the pairs' endpoints (is it a generator for "
                        f"{d}-dimensional latents?): {one_line(err)}") from None
    if not isinstance(out, torch.Tensor):
        raise UserError(f"--generator returned a {type(out).__name__}, not a torch tensor")
    if out.ndim < 2 or out.shape[0] != 1:
        raise UserError(f"--generator mapped a (1, {d}) batch to shape {tuple(out.shape)}; it must map (M, D) "
                        "latents to (M, ...) outputs")
    if not torch.isfinite(out).all():
        raise UserError("--generator returned NaN or inf at the first endpoint")
    return tuple(out.shape[1:]), out.element_size()


def check_memory(args, n_pairs, dim, out_shape, itemsize, device):
    """Refuse, before anything is computed, a run whose arrays cannot fit: one batch's paths in
    the solver (fastgeo.interpolation.solver_copies, a lower bound) on the paths' device, and
    every method's paths and outputs for all pairs (held twice while they are joined) on the
    host."""
    import math

    import torch

    from .._arrays import kind_of
    from .._arrays import require_bytes
    from .._path_problem import path_bytes
    from ..interpolation import BASELINE_COPIES, solver_copies

    n_out = math.prod(out_shape)
    batch = min(args.batch_size, n_pairs)
    optimal = "optimal" in args.methods
    copies = solver_copies(args.solver) if optimal else BASELINE_COPIES
    # the solver holds every start of the batch's pairs at once
    solver = path_bytes(batch * (args.starts if optimal else 1), args.n_points, dim, n_out, itemsize, *copies)
    joined = 2 * len(args.methods)  # every method's paths and outputs, held twice while joined
    results = path_bytes(n_pairs, args.n_points, dim, n_out, itemsize, joined, joined)
    try:
        if device.type == "cpu":  # the solver's batch and the results so far share the host's memory
            require_bytes(kind_of(torch.empty(0)), solver + results,
                          f"--n-points {args.n_points} for {n_pairs} pair(s) in batches of {batch}")
        else:
            require_bytes(kind_of(torch.empty(0, device=device)), solver,
                          f"--n-points {args.n_points} with batches of {batch} pair(s)")
            require_bytes(kind_of(torch.empty(0)), results,
                          f"the results of {n_pairs} pair(s) x {len(args.methods)} method(s) x "
                          f"{args.n_points} points")
    except MemoryError as err:
        raise UserError(f"{err}; use fewer --n-points, a smaller --batch-size or fewer pairs per "
                        "run") from None


def check_endpoint_density(pairs, prior, backend, dtype):
    """Every endpoint, rounded to the run's dtype as the solver will see it, must have ri > 0
    (a float64 point just inside a ball's edge may round to one just outside in float32)."""
    import numpy as np

    from .. import log_ri
    from .._many_inputs import listed_pairs

    z = pairs.reshape(-1, pairs.shape[2]).astype(str(dtype).replace("torch.", ""))
    lr = np.asarray(log_ri(z, prior, backend=backend)).reshape(len(pairs), 2)
    listed = listed_pairs(np.isneginf(lr).any(axis=1))
    if listed:
        raise UserError(f"--pairs: endpoints of pairs {listed} lie outside the support of {prior!r} (ri = 0): "
                        "no path from them has a finite energy")


def starts_option(args):
    """{"starts": N} where --starts is not 1, else {}: what the run's settings (and a Zarr
    store's options) record, so that folders and stores of runs made before --starts resume."""
    return {"starts": args.starts} if args.starts > 1 else {}


def settings_of(args, prior_canonical, pairs, dtype, device, backend, alpha):
    """Everything a saved batch's numbers depend on: a rerun resumes only with all of them
    equal (the backend as resolved, whether by --backend or FASTGEO_BACKEND; the thread count
    changes the last bits of parallel sums only, and is left out). The run store adds its
    format (fastgeo.runstore.MANIFEST_FORMAT)."""
    import numpy as np

    from ..generators import file_digest

    digest = hashlib.sha256(np.ascontiguousarray(pairs).tobytes()).hexdigest()
    return {**starts_option(args), "generator": args.generator,
            "generator_file_sha256": file_digest(args.generator),
            "prior": prior_canonical, "pairs_sha256": digest, "pairs_shape": list(pairs.shape),
            "methods": list(args.methods), "n_points": args.n_points, "alpha": alpha, "solver": args.solver,
            "max_iter": args.max_iter, "batch_size": args.batch_size,
            "dtype": str(dtype).replace("torch.", ""), "backend": backend, "device": str(device)}
