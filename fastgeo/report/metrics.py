"""Numbers that describe an interpolation path (MATH.md 2-4), from plain arrays.

A path is K+1 latent points x_0 .. x_K (shape (K+1, D)), their decoded outputs
G_i = G(x_i) (shape (K+1, ...), flattened to N values) and log realism indices
l_i = log ri(x_i) (shape (K+1,)). A batch of B paths adds a leading axis to all three.

    step_i          = |G_{i+1} - G_i|                       (consecutive decoded distances)
    decoded length  = sum_i step_i
    energy          = sum_i (log a_i)^2 step_i^2,  a_i = alpha (r_i + r_{i+1}) / 2      (eq. 3)
    log index       = sum_i log((r_i + r_{i+1}) / 2) step_i                         (MATH.md 2)
    (a_i, b_i)      = (X^T X)^{-1} X^T x_i,  X = [x_0, x_K]                         (eq. 4)

Inputs may be numpy arrays or torch tensors (on any device): these functions are for
reporting, so they read values into float64 numpy arrays on the host and return numpy
arrays or Python floats.
"""
from __future__ import annotations

import numpy as np

from .._arrays import check_finite, to_host
from ..path import path_energy, path_log_index


def to_numpy(x, name: str) -> np.ndarray:
    """A float64 numpy copy of a numpy array, torch tensor or CuPy array (any device) or nested list."""
    arr = np.array(to_host(x), dtype=np.float64)
    if arr.dtype == object:  # pragma: no cover - np.array raises first for ragged input
        raise TypeError(f"{name} must be a numeric array")
    return arr


def step_distances(decoded) -> np.ndarray:
    """|G_{i+1} - G_i| along one path: decoded (K+1, ...) -> (K,).

    The first axis indexes the points; everything after it is flattened (a 1-D input is
    read as K+1 scalar outputs).
    """
    g = to_numpy(decoded, "decoded")
    if g.ndim == 0 or g.shape[0] < 2:
        raise ValueError(f"decoded must hold at least 2 points along its first axis, got shape {g.shape}")
    check_finite(g, "decoded")
    flat = g.reshape(g.shape[0], -1)
    return np.linalg.norm(flat[1:] - flat[:-1], axis=1)


def project_onto_endpoints(latent, x0=None, xK=None) -> np.ndarray:
    """Coordinates (a_i, b_i) of each point in the basis of the endpoints (paper eq. 4).

    ``latent`` is (K+1, D); the basis is X = [x0, xK] (D x 2), by default the path's own
    first and last points. Returns (K+1, 2) with rows (X^T X)^{-1} X^T x_i: the least-squares
    coefficients, so a_i x0 + b_i xK is the orthogonal projection of x_i onto span(x0, xK)
    and any component orthogonal to that plane is ignored. x0 itself maps to (1, 0), xK to
    (0, 1), the origin to (0, 0).

    Raises ValueError when x0 and xK are (numerically) parallel, or either is zero: then the
    plane of the endpoints and the origin is not defined.
    """
    z = to_numpy(latent, "latent")
    if z.ndim != 2 or z.shape[0] < 1:
        raise ValueError(f"latent must have shape (K+1, D), got {z.shape}")
    check_finite(z, "latent")
    a = z[0] if x0 is None else to_numpy(x0, "x0")
    b = z[-1] if xK is None else to_numpy(xK, "xK")
    for name, v in (("x0", a), ("xK", b)):
        if v.shape != (z.shape[1],):
            raise ValueError(f"{name} must have shape ({z.shape[1]},), got {v.shape}")
        check_finite(v, name)
    X = np.stack([a, b], axis=1)
    sv = np.linalg.svd(X, compute_uv=False)
    if sv[-1] <= 1e-12 * max(sv[0], np.finfo(np.float64).tiny):
        raise ValueError("the endpoints x0 and xK are parallel (or zero): they span no plane through "
                         "the origin, so the projection of eq. (4) is undefined")
    coef, *_ = np.linalg.lstsq(X, z.T, rcond=None)
    return coef.T


def _as_batch(latent, decoded, log_ri):
    z = to_numpy(latent, "latent")
    g = to_numpy(decoded, "decoded")
    l = to_numpy(log_ri, "log_ri")
    single = l.ndim == 1
    if single:
        z, g, l = z[None], g[None], l[None]
    if l.ndim != 2 or z.ndim != 3 or g.ndim < 3:
        raise ValueError(
            "expected one path as latent (K+1, D), decoded (K+1, ...), log_ri (K+1,) or a batch as "
            f"(B, K+1, D), (B, K+1, ...), (B, K+1); got latent {z.shape}, decoded {g.shape}, log_ri "
            f"{l.shape}"
        )
    if not (z.shape[:2] == g.shape[:2] == l.shape):
        raise ValueError(f"latent {z.shape}, decoded {g.shape} and log_ri {l.shape} disagree on the "
                         "number of paths or points")
    if l.shape[1] < 2:
        raise ValueError(f"a path needs at least 2 points, got K+1 = {l.shape[1]}")
    check_finite(z, "latent")
    check_finite(g, "decoded")
    if np.isnan(l).any() or np.isposinf(l).any():
        raise ValueError("log_ri contains NaN or +inf")
    return single, z, g, l


def path_metrics(latent, decoded, log_ri, alpha):
    """Summary numbers of one path, or of each path in a batch.

    Parameters
    ----------
    latent : (K+1, D) latent points x_i, or (B, K+1, D).
    decoded : (K+1, ...) decoded outputs G(x_i), or (B, K+1, ...).
    log_ri : (K+1,) log ri(x_i), or (B, K+1). -inf is allowed (zero density).
    alpha : the scale of eq. (3), in (0, 1).

    Returns
    -------
    For one path a dict of floats; for a batch a list of such dicts, one per path:

    - ``energy``: E of eq. (3) (:func:`fastgeo.path_energy`).
    - ``log_index``: log ri(path) (:func:`fastgeo.path_log_index`), <= 0.
    - ``min_log_ri``, ``min_ri``: the smallest log ri(x_i) and ri(x_i) along the path
      (``min_ri`` underflows to 0 far from the prior; ``min_log_ri`` does not).
    - ``decoded_length``: sum_i |G_{i+1} - G_i|.
    - ``latent_length``: sum_i |x_{i+1} - x_i|.
    - ``max_step_over_mean``: max_i |G_{i+1} - G_i| / mean_i |G_{i+1} - G_i|; 1 for an evenly
      spaced path (and, by convention, for a path whose points all decode alike).
    - ``n_points``: K+1.
    """
    single, z, g, l = _as_batch(latent, decoded, log_ri)
    energy = path_energy(g, l, alpha)
    log_index = path_log_index(g, l)
    flat = g.reshape(g.shape[0], g.shape[1], -1)
    steps = np.linalg.norm(flat[:, 1:] - flat[:, :-1], axis=2)
    latent_steps = np.linalg.norm(z[:, 1:] - z[:, :-1], axis=2)
    out = []
    for b in range(l.shape[0]):
        mean_step = steps[b].mean()
        out.append({
            "energy": float(energy[b]),
            "log_index": float(log_index[b]),
            "min_log_ri": float(l[b].min()),
            "min_ri": float(np.exp(l[b].min())),
            "decoded_length": float(steps[b].sum()),
            "latent_length": float(latent_steps[b].sum()),
            "max_step_over_mean": float(steps[b].max() / mean_step) if mean_step > 0 else 1.0,
            "n_points": int(l.shape[1]),
        })
    return out[0] if single else out
