"""One writer at a time for each Numba cache index.

Numba adds an entry to a function's on-disk cache by reading its index, picking the first free
data-file name, writing the data and writing the index back, with no lock (numba issues 4807
and 10128). Two processes that add different entries of one function at once (two signatures,
or two prior families of the radial kernels, which share an index) can both pick the same
data file: the index may then send one signature to the other's machine code, a wrong result
or a crash in every later process. fastgeo's demo runs a compile helper beside the command
(fastgeo/commands/_background.py), and Dask workers compile side by side, so :func:`install`
wraps ``IndexDataCacheFile.save`` in an exclusive lock on a file beside the index (POSIX
``flock``; elsewhere nothing changes). ``import fastgeo.kernels`` installs it as soon as
Numba's caching module is imported, without importing Numba itself.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys

CACHING = "numba.core.caching"


def _locked(save):
    import fcntl

    def locked_save(self, key, data):
        try:
            lock = open(self._index_path + ".lock", "a")
        except OSError:  # a folder we may not write: Numba's own save reports that
            return save(self, key, data)
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return save(self, key, data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    locked_save.fastgeo_unlocked = save
    return locked_save


def patch(caching) -> bool:
    """Wrap ``caching.IndexDataCacheFile.save`` (once). Returns whether it is wrapped."""
    cls = getattr(caching, "IndexDataCacheFile", None)
    save = getattr(cls, "save", None)
    if save is None:
        return False
    if hasattr(save, "fastgeo_unlocked"):
        return True
    try:
        cls.save = _locked(save)
    except ImportError:  # no fcntl (Windows)
        return False
    return True


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when Numba's caching module is about to be imported, it asks the
    other finders for it and patches the module right after it runs."""

    def find_spec(self, name, path, target=None):
        if name != CACHING:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


def install():
    """Patch Numba's caching now if it is imported, else as soon as it is."""
    if CACHING in sys.modules:
        patch(sys.modules[CACHING])
    elif not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())
