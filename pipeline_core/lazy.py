"""Module attributes that load on first use: a package exports names without importing
what they need until someone reads one (``module.__getattr__``, PEP 562)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(module: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A ``__getattr__`` for the module named ``module``: ``exports`` maps each name to the
    module it is imported from when first read."""

    def __getattr__(name: str) -> object:
        source = exports.get(name)
        if source is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return getattr(importlib.import_module(source), name)

    return __getattr__
