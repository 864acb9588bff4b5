"""Which direction strategy each solver method gets (:func:`choose`)."""
from __future__ import annotations

from .. import backends
from .._arrays import kind_of
from .directions import LBFGS, CompiledLBFGS, SteepestDescent
from .gauss_newton import LBFGSThenGaussNewton


def choose(method, solver, memory=10, precondition=True):
    """The direction strategy of ``method`` for the paths of ``solver``, on the backend that
    runs its problem (``solver.problem.backend``) for tensors like ``solver.x``."""
    if method == "gd":
        return SteepestDescent(solver)
    backend = backends.select(solver.problem.backend, kind_of(solver.x))
    cls = CompiledLBFGS if backend.compiled_lbfgs else LBFGS
    lbfgs = cls(solver, memory, precondition, backend)
    return LBFGSThenGaussNewton(solver, lbfgs) if method == "lbfgs-gn" else lbfgs
