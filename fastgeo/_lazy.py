"""A torch.autograd.Function built on first use, so that importing fastgeo never imports torch."""
from __future__ import annotations


class LazyAutogradFunction:
    """Stands in for the Function that ``build()`` returns; ``apply`` builds it once."""

    def __init__(self, build):
        self._build = build
        self._fn = None

    def apply(self, *args):
        if self._fn is None:
            self._fn = self._build()
        return self._fn.apply(*args)
