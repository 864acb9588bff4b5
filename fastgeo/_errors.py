"""Errors shared by the API and the CLI: the user's generator at fault, and one-line messages."""
from __future__ import annotations


class GeneratorError(TypeError, ValueError):
    """The user's generator raised, or broke its contract (``_path_problem.check_output``): a
    mistake in the generator, not in fastgeo. Both a TypeError and a ValueError, the types
    these checks raised before it existed; an exception the generator raised is its
    ``__cause__``."""


def one_line(err: BaseException, *, with_type: bool = True) -> str:
    """``Type: message`` of an exception (without ``with_type``: the message alone), its
    message's white space folded to single spaces; the type's name if the message is empty."""
    text = " ".join(str(err).split())
    if not text:
        return type(err).__name__
    return f"{type(err).__name__}: {text}" if with_type else text
