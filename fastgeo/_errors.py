"""Errors shared by the API and the CLI: the user's generator at fault, and one-line messages."""
from __future__ import annotations


class GeneratorError(TypeError, ValueError):
    """The user's generator raised, or broke its contract (``_path_problem.check_output``): a
    mistake in the generator, not in fastgeo. Both a TypeError and a ValueError, the types
    these checks raised before it existed; an exception the generator raised is its
    ``__cause__``."""


def one_line(err: BaseException) -> str:
    """``Type: message`` of an exception, its message's white space folded to single spaces."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
