"""fastgeo's compiled kernels (installed as ``fastgeo.kernels``).

- :mod:`.special`, :mod:`.radial`: scalar math, the one source of truth, compiled by
  Numba for the CPU kernels and for the CUDA kernels alike.
- ``cpu_*``: Numba CPU kernels (parallel over the batch, cached on disk).
- ``cuda_*`` and ``*.cu``: GPU kernels, loaded only when a GPU backend is used.

Nothing here is imported by ``import fastgeo``: the backends import kernels on first use,
so that importing fastgeo never compiles.
"""
