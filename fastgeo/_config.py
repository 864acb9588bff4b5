"""Which backend runs a call: the ``backend=`` argument, a block setting, or the environment.

Precedence: an explicit ``backend="cpu"`` (or any name other than "auto") on the call wins;
"auto" defers to the innermost ``with fastgeo.use_backend(...)`` block, then to
``fastgeo.set_backend(...)``, then to the ``FASTGEO_BACKEND`` environment variable; if
all of those say "auto" too, the best backend for the input's device is chosen.
"""
from __future__ import annotations

import contextvars
import os
from contextlib import contextmanager

BACKEND_NAMES = ("auto", "cpu", "reference", "cuda")
ENV_VAR = "FASTGEO_BACKEND"

_block: contextvars.ContextVar[str | None] = contextvars.ContextVar("fastgeo_backend", default=None)
_global: list[str | None] = [None]


def check_backend_name(name) -> str:
    if not isinstance(name, str) or name.lower() not in BACKEND_NAMES:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKEND_NAMES))}; got {name!r}")
    return name.lower()


def requested_backend(backend: str = "auto") -> str:
    """The backend name in force for a call that passed ``backend``."""
    backend = check_backend_name(backend)
    if backend != "auto":
        return backend
    for setting in (_block.get(), _global[0]):
        if setting is not None and setting != "auto":
            return setting
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        try:
            return check_backend_name(env)
        except ValueError as err:
            raise ValueError(f"environment variable {ENV_VAR}: {err}") from None
    return "auto"


@contextmanager
def use_backend(name: str):
    """Run a block of code with ``backend="auto"`` meaning ``name``::

        with fastgeo.use_backend("reference"):
            fastgeo.log_ri(z, prior)   # float64 numpy/scipy
    """
    token = _block.set(check_backend_name(name))
    try:
        yield
    finally:
        _block.reset(token)


def set_backend(name: str | None) -> None:
    """Set the process-wide default that ``backend="auto"`` defers to (None clears it)."""
    _global[0] = None if name is None else check_backend_name(name)
