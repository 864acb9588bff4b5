"""fastgeo: realism-aware interpolation in the latent spaces of generative models.

Compiled kernels (Numba CPU, CUDA) for the realism index of Struski et al. and the energy
of ri-optimal paths, behind a backend dispatcher, checked against a float64 reference.
"""
__version__ = "0.1.0"

from . import priors
from ._config import set_backend, use_backend
from ._info import info
from .backends import BackendUnavailable
from .kde import KDE
from .path import energy_and_grads, path_energy, path_log_index
from .realism import grad_log_ri, log_ri, log_ri_and_grad, ri

__all__ = [
    "priors", "ri", "log_ri", "grad_log_ri", "log_ri_and_grad", "KDE", "info",
    "path_energy", "path_log_index", "energy_and_grads",
    "interpolate", "InterpolationResult", "DEFAULT_ALPHA", "linear_path", "slerp_path", "matched_linear_path",
    "GeneratorError", "interpolate_many", "use_backend", "set_backend", "BackendUnavailable", "__version__",
]


# Parts that need torch or matplotlib load on first use, so that `import fastgeo` stays light:
# the path solvers and baselines (torch), the embedded models (torch), the report (matplotlib),
# the torch modules (fastgeo.nn), fastgeo.special (whose kernels compile on their first call).
_LAZY = {"interpolate": "interpolation", "InterpolationResult": "_result",
         "DEFAULT_ALPHA": "interpolation", "linear_path": "baselines", "slerp_path": "baselines",
         "matched_linear_path": "baselines", "GeneratorError": "_errors", "interpolate_many": "many"}
_LAZY_MODULES = ("models", "report", "nn", "special")


def __getattr__(name):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
