"""The training data (scikit-learn's bundled 8x8 digits) and a cheap sample-quality measure."""
from __future__ import annotations

import numpy as np
import torch


def load_digit_images(dtype=np.float32) -> np.ndarray:
    """The 1797 bundled 8x8 digits as an (n, 1, 8, 8) array scaled from 0..16 to [0, 1].

    Needs scikit-learn (the ``train`` and ``test`` extras), which ships the data: nothing is
    downloaded.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the digits data needs scikit-learn: pip install 'fastgeo[train]'") from err
    images = load_digits().images.astype(dtype) / dtype(16.0)
    return images[:, None, :, :]


def load_digit_labels() -> np.ndarray:
    """The digit (0-9) of each image of :func:`load_digit_images`, in the same order."""
    from sklearn.datasets import load_digits

    return load_digits().target.copy()


def nearest_neighbours(queries, references, chunk: int = 4096):
    """(distance, index) of each query image's nearest reference image, in Euclidean distance.

    queries (M, ...) and references (R, ...) are flattened per item; returns float64 (M,)
    distances and int64 (M,) indices into references.
    """
    q = torch.as_tensor(queries).reshape(len(queries), -1).to(torch.float64)
    r = torch.as_tensor(references).reshape(len(references), -1).to(torch.float64)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} values per item but references have {r.shape[1]}")
    parts = [torch.cdist(q[i:i + chunk], r).min(dim=1) for i in range(0, len(q), chunk)]
    return torch.cat([p.values for p in parts]), torch.cat([p.indices for p in parts])


def nearest_distances(queries, references, chunk: int = 4096) -> torch.Tensor:
    """Distance from each query image to its nearest reference image: (M,) float64."""
    return nearest_neighbours(queries, references, chunk)[0]
