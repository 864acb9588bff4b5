"""The path solver behind :func:`fastgeo.interpolate`, in parts.

- :mod:`.loop`: the round loop (:class:`~.loop.Solver`): batching, retiring converged and
  failed paths, histories, the decoded-output cache (:mod:`.rows` copies its rows), timings,
  progress (:mod:`.progress`);
- :mod:`.directions`: interchangeable search directions (steepest descent, L-BFGS in torch
  products or in a backend's compiled kernels), and :mod:`.gauss_newton` ("lbfgs-gn": L-BFGS,
  then L-BFGS on the Gauss-Newton metric of :mod:`.metric`), chosen by method and backend
  (:mod:`.methods`);
- :mod:`.steps`: step rules (Armijo backtracking, the paper's halving fixed step);
- :mod:`.lbfgs`: the L-BFGS curvature-pair memory and the path-Laplacian preconditioner;
- :mod:`.scales`: the path-Laplacian model's scales, shared by directions and step rules;
- :mod:`.gaps`: the estimate of how far a path's energy is above its minimum.
"""
from .loop import CONVERGED, STATUS_NAMES, SolveOutput, Solver
from .rows import copy_rows

__all__ = ["CONVERGED", "STATUS_NAMES", "SolveOutput", "Solver", "copy_rows"]
