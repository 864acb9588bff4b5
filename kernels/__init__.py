"""fastgeo's compiled kernels (installed as ``fastgeo.kernels``).

- :mod:`.families`, :mod:`.codes`: plain Python integer codes (the radial families; what a
  query kernel computes) that the priors, the backends and the kernels share.
- :mod:`.special`, :mod:`.radial`: scalar math, the one source of truth, compiled by
  Numba for the CPU kernels and for the CUDA kernels alike.
- ``cpu_*``: Numba CPU kernels (parallel over the batch, cached on disk).
- ``cuda_*``: GPU kernels, loaded only when a GPU backend is used.

``import fastgeo`` loads this package and :mod:`.families` only (fastgeo.priors and
fastgeo.realism name the family codes); neither imports Numba, so importing fastgeo never
compiles. The backends import the kernel modules on first use. Importing this package deletes
cached kernels compiled from older sources (:mod:`.cache_freshness`) and makes Numba's cache
writes take a lock once Numba is imported (:mod:`.cache_lock`).
"""
from .cache_freshness import refresh as _refresh
from .cache_lock import install as _install_cache_lock

_refresh()  # cached kernels compiled from older sources are deleted (see cache_freshness)
_install_cache_lock()  # one process at a time adds to a cache index (see cache_lock)
