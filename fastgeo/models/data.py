"""The training data (the 1797 8x8 digits of UCI's optical recognition of handwritten digits
set, as scikit-learn bundles them) and a cheap sample-quality measure.

The digits ship with fastgeo (datasets/digits.npz: the images as uint8 0..16 and their labels,
45 KB compressed), so that the demo's data-space measure works on a plain install; tests
check that they equal ``sklearn.datasets.load_digits()`` where scikit-learn is installed.
"""
from __future__ import annotations

import functools
import os

import numpy as np
import torch

DIGITS_FILE = os.path.join(os.path.dirname(__file__), "datasets", "digits.npz")


@functools.lru_cache(maxsize=1)
def _digits():
    with np.load(DIGITS_FILE, allow_pickle=False) as data:
        images, labels = data["images"], data["labels"]
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_digit_images(dtype=np.float32) -> np.ndarray:
    """The 1797 8x8 digits as a new (n, 1, 8, 8) array scaled from 0..16 to [0, 1]."""
    images = _digits()[0].astype(dtype) / dtype(16.0)
    return images[:, None, :, :]


def load_digit_labels() -> np.ndarray:
    """The digit (0-9) of each image of :func:`load_digit_images`, in the same order (int64)."""
    return _digits()[1].astype(np.int64)


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
