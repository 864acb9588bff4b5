"""Numba's on-disk cache kept in step with the kernels' sources.

Numba keys a cached function on the source of its own file only. The kernels inline scalar
functions from other files (kernels/special_gamma.py into kernels/cpu_radial.py, say), so after
an edit of one of those, or a ``git pull`` in an editable install, a cached kernel would load
its old machine code and compute with the old formula. :func:`refresh` hashes every kernel
source and, where the hash differs from the one recorded beside a folder's cache, deletes that
folder's cached functions (Numba compiles them afresh) and records the new hash.
``import fastgeo.kernels`` refreshes the kernels' folder (half a millisecond: it reads the
sources, about 0.26 MB); a folder elsewhere whose cached functions call the kernels refreshes
its own (fastgeo.benchmarks, the tests). Numba is never imported here.

Where the cache lives: ``__pycache__`` beside the sources, or under ``NUMBA_CACHE_DIR`` when that
is set (Numba's own layout). A folder that cannot be written is left alone: Numba then caches
in the user's cache folder, where its per-file keys see a reinstall (every file rewritten).
"""
from __future__ import annotations

import glob
import hashlib
import os

KERNELS = os.path.dirname(os.path.abspath(__file__))
STAMP = "fastgeo-kernel-sources.sha256"


def sources_digest(sources: str = KERNELS) -> str:
    """sha256 over the sources (every ``sources``/*.py, by name): by default the kernels'."""
    digest = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(sources, "*.py"))):
        digest.update(os.path.basename(path).encode() + b"\0")
        with open(path, "rb") as fh:
            digest.update(fh.read())
        digest.update(b"\0")
    return digest.hexdigest()


def cache_folders(folder: str) -> list:
    """Where Numba caches the functions of the source files in ``folder``."""
    folder = os.path.abspath(folder)
    places = [os.path.join(folder, "__pycache__")]
    user_dir = os.environ.get("NUMBA_CACHE_DIR")
    if user_dir:
        # numba.core.caching: the folder's name and the sha1 of its path
        sub = "_".join([os.path.basename(folder), hashlib.sha1(folder.encode()).hexdigest()])
        places.append(os.path.join(user_dir, sub))
    return places


def refresh(folder: str = KERNELS, sources: str = KERNELS) -> bool:
    """Delete the cached functions of ``folder``'s files if the ``sources`` (by default the
    kernels') changed since they were cached; record their digest. Returns whether anything
    was deleted."""
    digest = sources_digest(sources)
    cleared = False
    for place in cache_folders(folder):
        stamp = os.path.join(place, STAMP)
        try:
            with open(stamp) as fh:
                if fh.read().strip() == digest:
                    continue
        except OSError:
            pass
        try:
            os.makedirs(place, exist_ok=True)
            for pattern in ("*.nbi", "*.nbc"):
                for path in glob.glob(os.path.join(place, pattern)):
                    try:
                        os.remove(path)
                        cleared = True
                    except FileNotFoundError:  # another process cleared it first
                        pass
            # written under another name and renamed: a reader never sees half a digest
            temporary = f"{stamp}.{os.getpid()}"
            with open(temporary, "w") as fh:
                fh.write(digest + "\n")
            os.replace(temporary, stamp)
        except OSError:  # a folder we may not write: Numba does not cache there either
            pass
    return cleared
