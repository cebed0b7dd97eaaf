"""Importing the ``module:function`` references that job files use for transform steps."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from pipeline_core.config.converter import FieldError

__all__ = ["import_callable"]


def import_callable(
    ref: str, base_dir: str | None = None, field: str = "function"
) -> Callable[..., Any]:
    """Import ``"package.module:attr.path"``; ``base_dir`` (the job file's folder) is
    importable too, so a job can ship its functions next to it."""
    module_name, sep, attr_path = ref.partition(":")
    if not sep or not module_name or not attr_path:
        raise FieldError(f"expected 'module:function', got {ref!r}", field)
    if base_dir and base_dir not in sys.path:
        sys.path.insert(0, base_dir)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise FieldError(f"cannot import {ref!r}: {exc}", field) from None
    except Exception as exc:  # the module itself is broken
        raise FieldError(
            f"cannot import {ref!r}: module {module_name!r} raised {type(exc).__name__}: {exc}",
            field,
        ) from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            where = getattr(obj, "__file__", None) or module_name
            raise FieldError(
                f"cannot import {ref!r}: {Path(str(where)).name} has no attribute {part!r}", field
            ) from None
    if not callable(obj):
        raise FieldError(f"{ref!r} is not callable (it is a {type(obj).__name__})", field)
    return cast(Callable[..., Any], obj)
