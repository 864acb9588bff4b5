"""The paper's diagnostic figures (MATH.md 4), drawn from plain arrays.

- :func:`image_grid`: a grid of images (decoded prior samples, for a look at a model).
- :func:`image_strips`: decoded images along each path, every fifth point and both ends,
  one row per method (the paper's Figs. 2, 3, 4, 7).
- :func:`distance_and_ri_plot`: consecutive decoded distances |G(x_{i+1}) - G(x_i)| and
  ri(x_i) along each path, methods overlaid (Figs. 5, 8, 9).
- :func:`projection_plot`: each path in the plane of its endpoints and the origin, eq. (4)
  (Figs. 3b, 6, 7 right); optionally also over a scatter of prior samples in two latent
  coordinates (Fig. 1).

Every function takes ``{method name: array}`` dicts of numpy arrays or torch tensors. With
``path`` it writes a PNG (or any format matplotlib knows from the suffix) and returns the path
as a string; without it, it returns the :class:`matplotlib.figure.Figure`. Figures are built
with matplotlib's object API and the Agg renderer: no display, no pyplot global state.
"""
from __future__ import annotations

import math
import os
import textwrap

import numpy as np

from .._arrays import check_finite
from .metrics import project_onto_endpoints, step_distances, to_numpy

#: the paper's colours: linear paths green, ri-optimal paths red
METHOD_COLORS = {"linear": "tab:green", "optimal": "tab:red", "ri-optimal": "tab:red"}
_OTHER_COLORS = ("tab:blue", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
LN10 = math.log(10.0)
SEPARATOR_COLOR = (0.45, 0.45, 0.6)


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _finish(fig, path, dpi=120):
    if path is None:
        return fig
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name (str or os.PathLike) or None, got {type(path).__name__}")
    fig.savefig(path, dpi=dpi)
    return os.fspath(path)


def _colors(names):
    out, others = {}, iter(_OTHER_COLORS * (1 + len(names) // len(_OTHER_COLORS)))
    for name in names:
        out[name] = METHOD_COLORS.get(str(name).lower()) or next(others)
    return out


def _check_methods(by_method, what: str) -> dict:
    if not isinstance(by_method, dict) or not by_method:
        raise TypeError(f"{what} must be a non-empty dict {{method name: array}}, got "
                        f"{type(by_method).__name__ if not isinstance(by_method, dict) else 'an empty dict'}")
    return {str(name): to_numpy(arr, f"{what}[{name!r}]") for name, arr in by_method.items()}


def strip_indices(n_points: int, every: int) -> list:
    """0, every, 2 every, ... and always the last point n_points - 1 (the paper: 0, 5, .., 50)."""
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    idx = list(range(0, n_points, int(every)))
    if idx[-1] != n_points - 1:
        idx.append(n_points - 1)
    return idx


def image_strips(paths_by_method, every=5, path=None, *, cmap="gray", title=None, dpi=120):
    """Decoded images along each path: one row per method, every ``every``-th point plus both ends.

    Parameters
    ----------
    paths_by_method : {name: images}, images of shape (K+1, H, W) or (K+1, C, H, W) with C = 1
        or 3, the same shape for every method (rows are drawn in the dict's order, so put
        "linear" first to have it above "optimal", as in the paper).
    every : the spacing of the shown points (the paper shows every fifth of 51).
    path : where to write the figure; None returns the Figure.
    cmap : colour map for one-channel images. Values in [0, 1] are shown on that fixed range;
        anything else on the range of all shown images together.
    """
    images = _check_methods(paths_by_method, "paths_by_method")
    for name, arr in list(images.items()):
        if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[1] not in (1, 3)):
            raise ValueError(f"paths_by_method[{name!r}] must have shape (K+1, H, W) or (K+1, C, H, W) "
                             f"with C in (1, 3), got {arr.shape}")
        if arr.shape[0] < 2:
            raise ValueError(f"paths_by_method[{name!r}] must hold at least 2 images, got {arr.shape[0]}")
        check_finite(arr, f"paths_by_method[{name!r}]")
        if arr.ndim == 4 and arr.shape[1] == 1:  # one channel: the same as (K+1, H, W)
            images[name] = arr[:, 0]
    shapes = {name: arr.shape for name, arr in images.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"all methods need the same number and shape of images, got {shapes}")
    idx = strip_indices(next(iter(shapes.values()))[0], every)
    k = next(iter(shapes.values()))[0] - 1
    shown = np.concatenate([arr[idx].ravel() for arr in images.values()])
    lo, hi = (0.0, 1.0) if shown.min() >= 0 and shown.max() <= 1 else (float(shown.min()), float(shown.max()))

    n_rows, n_cols = len(images), len(idx)
    labels = {name: textwrap.fill(name, 12) for name in images}
    label_lines = max(label.count("\n") + 1 for label in labels.values())
    fig = _figure(0.75 * n_cols + 0.3 + 0.15 * label_lines, 0.8 * n_rows + (0.5 if title else 0.25))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, (name, arr) in enumerate(images.items()):
        for c, i in enumerate(idx):
            ax = axes[r, c]
            img = arr[i]
            if img.ndim == 3:  # RGB: scale to [0, 1] by hand
                ax.imshow(np.clip((np.moveaxis(img, 0, -1) - lo) / ((hi - lo) or 1.0), 0, 1),
                          interpolation="nearest")
            else:
                ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"i={i}", fontsize=7)
        axes[r, 0].set_ylabel(labels[name], fontsize=8)
    if title:
        fig.suptitle(f"{title} (K = {k})", fontsize=9)
    return _finish(fig, path, dpi)


def image_grid(images, path=None, *, ncols=10, cmap="gray", title=None, dpi=120):
    """A grid of images (M, H, W) or (M, C, H, W) with C in (1, 3), ``ncols`` per row.

    For looking at decoded samples. Values in [0, 1] are shown on that fixed range, anything
    else on the images' own range. Returns the path written, or the Figure when path is None.
    """
    arr = to_numpy(images, "images")
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[1] != 3) or arr.shape[0] == 0:
        raise ValueError(f"images must have shape (M, H, W) or (M, C, H, W) with C in (1, 3) and M >= 1, "
                         f"got {arr.shape}")
    check_finite(arr, "images")
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    lo, hi = (0.0, 1.0) if arr.min() >= 0 and arr.max() <= 1 else (float(arr.min()), float(arr.max()))
    m = arr.shape[0]
    ncols = min(int(ncols), m)
    nrows = -(-m // ncols)
    h, w = arr.shape[-2:]
    pad = 1
    canvas = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad) + ((3,) if arr.ndim == 4 else ()),
                     np.nan if arr.ndim == 3 else 0.5)
    for k in range(m):
        r, c = divmod(k, ncols)
        tile = arr[k] if arr.ndim == 3 else np.clip((np.moveaxis(arr[k], 0, -1) - lo) / ((hi - lo) or 1.0),
                                                    0, 1)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        canvas[top:top + h, left:left + w] = tile
    fig = _figure(0.45 * ncols + 0.2, 0.45 * nrows + (0.4 if title else 0.1))
    ax = fig.subplots()
    if arr.ndim == 3:
        from matplotlib import colormaps

        cm = colormaps[cmap].with_extremes(bad=SEPARATOR_COLOR)  # lines between the images
        ax.imshow(canvas, cmap=cm, vmin=lo, vmax=hi, interpolation="nearest")
    else:
        ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return _finish(fig, path, dpi)


def _log10_ri(log_ri: np.ndarray) -> np.ndarray:
    out = log_ri / LN10
    return np.where(np.isneginf(out), np.nan, out)  # ri = 0 (zero density) leaves a gap


def distance_and_ri_plot(decoded_by_method, log_ri_by_method, path=None, *, log_scale="auto",
                         title=None, dpi=120):
    """Consecutive decoded distances and the realism index along each path (Fig. 5).

    Parameters
    ----------
    decoded_by_method : {name: decoded}, decoded (K+1, ...) outputs G(x_i) of each path.
    log_ri_by_method : {name: log_ri}, (K+1,) values of log ri(x_i); same names and K+1.
    log_scale : True plots log10 ri, False plots ri on [0, 1]; "auto" (default) picks the
        log scale when some ri along the paths is below 1e-2. Points with ri = 0 (log ri =
        -inf, outside a bounded support) leave a gap in the log plot.
    path : where to write the figure; None returns the Figure.

    Left panel: |G(x_{i+1}) - G(x_i)| against the segment index i = 0 .. K-1. Right panel:
    ri(x_i) against the point index i = 0 .. K. Methods are overlaid, each in one colour.
    """
    decoded = _check_methods(decoded_by_method, "decoded_by_method")
    log_ri = _check_methods(log_ri_by_method, "log_ri_by_method")
    if set(decoded) != set(log_ri):
        raise ValueError(f"decoded_by_method and log_ri_by_method name different methods: "
                         f"{sorted(decoded)} vs {sorted(log_ri)}")
    if log_scale not in (True, False, "auto"):
        raise ValueError(f"log_scale must be True, False or 'auto', got {log_scale!r}")
    steps = {}
    for name, g in decoded.items():
        l = log_ri[name]
        if l.ndim != 1 or g.ndim < 1 or g.shape[0] != l.shape[0]:
            raise ValueError(f"method {name!r}: decoded must be (K+1, ...) and log_ri (K+1,), got "
                             f"{g.shape} and {l.shape}")
        if np.isnan(l).any() or np.isposinf(l).any():
            raise ValueError(f"log_ri_by_method[{name!r}] contains NaN or +inf")
        steps[name] = step_distances(g)
    lowest = min(float(np.min(l)) for l in log_ri.values())
    use_log = lowest < math.log(1e-2) if log_scale == "auto" else bool(log_scale)

    colors = _colors(list(decoded))
    fig = _figure(9.0, 3.2 + (0.3 if title else 0))
    ax_d, ax_r = fig.subplots(1, 2)
    for name in decoded:
        ax_d.plot(np.arange(len(steps[name])), steps[name], ".-", color=colors[name], label=name, lw=1, ms=3)
        l = log_ri[name]
        y = _log10_ri(l) if use_log else np.exp(l)
        ax_r.plot(np.arange(len(l)), y, ".-", color=colors[name], label=name, lw=1, ms=3)
    ax_d.set_xlabel("segment i")
    ax_d.set_ylabel(r"$\|G(x_{i+1}) - G(x_i)\|$")
    ax_d.set_ylim(bottom=0)
    ax_d.set_title("consecutive decoded distances", fontsize=9)
    ax_r.set_xlabel("point i")
    if use_log:
        ax_r.set_ylabel(r"$\log_{10}\ \mathrm{ri}(x_i)$")
        ax_r.axhline(0.0, color="0.7", lw=0.8)
    else:
        ax_r.set_ylabel(r"$\mathrm{ri}(x_i)$")
        ax_r.set_ylim(-0.02, 1.02)
    ax_r.set_title("realism index", fontsize=9)
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_d, ax_r):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _finish(fig, path, dpi)


def projection_plot(latent_by_method, path=None, *, prior_samples=None, coords=(0, 1), title=None,
                    dpi=120):
    """Each path in the plane of its endpoints and the origin (eq. 4), optionally also over
    prior samples in two latent coordinates (Fig. 1).

    Parameters
    ----------
    latent_by_method : {name: latent}, (K+1, D) latent points of each path; all methods must
        share the endpoints x_0 and x_K (K may differ).
    prior_samples : optional (n, D) samples of the prior. When given, a second panel draws
        the paths in the latent coordinates ``coords`` over a scatter of these samples (for
        priors with a 2-D structure, such as the semicircle in its first two coordinates).
    coords : the two latent coordinates of the second panel.
    path : where to write the figure; None returns the Figure.

    First panel: (a_i, b_i) = (X^T X)^{-1} X^T x_i with X = [x_0, x_K]; x_0 sits at (1, 0),
    x_K at (0, 1) and the linear path on the segment between them.
    """
    latents = _check_methods(latent_by_method, "latent_by_method")
    dims = set()
    for name, z in latents.items():
        if z.ndim != 2 or z.shape[0] < 2:
            raise ValueError(f"latent_by_method[{name!r}] must have shape (K+1, D) with K >= 1, "
                             f"got {z.shape}")
        dims.add(z.shape[1])
    if len(dims) > 1:
        raise ValueError(f"all methods need the same latent dimension, got {sorted(dims)}")
    first = next(iter(latents.values()))
    x0, xK = first[0], first[-1]
    scale = max(float(np.abs(first[[0, -1]]).max()), 1.0)
    for name, z in latents.items():
        tol = 1e-6 * scale
        if not (np.allclose(z[0], x0, rtol=0, atol=tol) and np.allclose(z[-1], xK, rtol=0, atol=tol)):
            raise ValueError(f"method {name!r} has other endpoints than {next(iter(latents))!r}; the "
                             "projection needs one pair of endpoints")
    coefs = {name: project_onto_endpoints(z, x0, xK) for name, z in latents.items()}

    samples = None
    if prior_samples is not None:
        samples = to_numpy(prior_samples, "prior_samples")
        d = next(iter(dims))
        if samples.ndim != 2 or samples.shape[1] != d:
            raise ValueError(f"prior_samples must have shape (n, {d}), got {samples.shape}")
        integers = all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in coords)
        if len(coords) != 2 or not integers or not all(0 <= c < d for c in coords) or coords[0] == coords[1]:
            raise ValueError(f"coords must be two different latent coordinates in 0..{d - 1}, got {coords!r}")

    colors = _colors(list(latents))
    n_panels = 1 if samples is None else 2
    fig = _figure(4.2 * n_panels, 4.0 + (0.3 if title else 0))
    axes = np.atleast_1d(fig.subplots(1, n_panels))
    ax = axes[0]
    for name, ab in coefs.items():
        ax.plot(ab[:, 0], ab[:, 1], ".-", color=colors[name], label=name, lw=1.2, ms=3)
    ax.plot([1, 0], [0, 1], "o", color="k", ms=5, label=r"$x_0,\ x_K$")
    ax.plot([0], [0], "+", color="k", ms=8, label="origin")
    ax.set_xlabel(r"$a$ (coefficient of $x_0$)")
    ax.set_ylabel(r"$b$ (coefficient of $x_K$)")
    ax.set_title("plane of the endpoints and the origin, eq. (4)", fontsize=9)
    ax.set_aspect("equal", adjustable="datalim")
    if samples is not None:
        i, j = int(coords[0]), int(coords[1])
        ax2 = axes[1]
        ax2.scatter(samples[:, i], samples[:, j], s=2, color="0.6", alpha=0.4, lw=0, label="prior samples")
        for name, z in latents.items():
            ax2.plot(z[:, i], z[:, j], ".-", color=colors[name], label=name, lw=1.2, ms=3)
        ax2.plot(first[[0, -1], i], first[[0, -1], j], "o", color="k", ms=5)
        ax2.set_xlabel(f"$z_{{{i}}}$")
        ax2.set_ylabel(f"$z_{{{j}}}$")
        ax2.set_title(f"latent coordinates {i} and {j}", fontsize=9)
        ax2.set_aspect("equal", adjustable="datalim")
    for a in axes:
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _finish(fig, path, dpi)
