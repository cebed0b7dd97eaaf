"""Importing the ``module:function`` references that job files use for transform steps.

A reference runs code, so where it may come from is the operator's decision, not the job
author's: a module is imported only when it lives in

- the job file's folder (``base_dir``: a job ships its functions next to it),
- a directory of ``PIPELINE_FUNCTION_PATH`` (``os.pathsep``-separated), or
- an installed package named in ``PIPELINE_FUNCTION_PACKAGES`` (comma-separated
  top-level names, e.g. ``acme_transforms``).

Everything else — ``os:system``, ``subprocess:run``, ``builtins:eval``, any installed
package nobody allowed — is refused *before* anything is imported, at registration as at
run time.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from pipeline_core.config.converter import FieldError

__all__ = ["allowed_function_dirs", "check_reference", "import_callable"]


def _packages() -> set[str]:
    raw = os.environ.get("PIPELINE_FUNCTION_PACKAGES", "")
    return {p.strip() for p in raw.split(",") if p.strip()}


def allowed_function_dirs(base_dir: str | None) -> list[Path]:
    """The job's folder, then ``PIPELINE_FUNCTION_PATH``, resolved."""
    dirs = [base_dir] if base_dir else []
    dirs += [d for d in os.environ.get("PIPELINE_FUNCTION_PATH", "").split(os.pathsep) if d]
    return [Path(d).expanduser().resolve() for d in dirs]


def _home(top: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        if (d / f"{top}.py").is_file() or (d / top / "__init__.py").is_file():
            return d
    return None


def _where(dirs: list[Path]) -> str:
    return ", ".join(map(str, dirs)) or "none: the job has no folder"


def check_reference(ref: Any, base_dir: str | None, field: str = "function") -> Path | None:
    """Refuse ``ref`` unless its module comes from an allowed place (no import happens
    here); returns the directory it will be imported from (None: an allowed package)."""
    if not isinstance(ref, str):
        raise FieldError(f"expected 'module:function', got {ref!r}", field)
    module_name, sep, attr_path = ref.partition(":")
    if not sep or not module_name or not attr_path:
        raise FieldError(f"expected 'module:function', got {ref!r}", field)
    top = module_name.split(".")[0]
    if top in _packages():
        return None
    dirs = allowed_function_dirs(base_dir)
    home = _home(top, dirs)
    if home is not None:
        return home
    if top in sys.stdlib_module_names:
        raise FieldError(
            f"{ref!r} is refused: {top!r} is a standard-library module; step functions "
            "come only from the job's folder, PIPELINE_FUNCTION_PATH or "
            "PIPELINE_FUNCTION_PACKAGES",
            field,
        )
    raise FieldError(
        f"cannot import {ref!r}: no module {top!r} in the job's folder or "
        f"PIPELINE_FUNCTION_PATH ({_where(dirs)}); an installed package needs "
        f"PIPELINE_FUNCTION_PACKAGES={top}",
        field,
    )


def _import_from(top: str, home: Path) -> None:
    """Make ``top`` import from ``home``: first on the path, and a module of that name
    loaded from elsewhere (another job's folder) forgotten, so this job gets its own."""
    loaded = sys.modules.get(top)
    origin = getattr(loaded, "__file__", None) if loaded is not None else None
    if origin is not None and not Path(origin).resolve().is_relative_to(home):
        for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[name]
    if sys.path[:1] != [str(home)]:
        if str(home) in sys.path:
            sys.path.remove(str(home))
        sys.path.insert(0, str(home))
        importlib.invalidate_caches()


def import_callable(
    ref: str, base_dir: str | None = None, field: str = "function"
) -> Callable[..., Any]:
    """Import ``"package.module:attr.path"`` from an allowed place (see the module
    docstring); FieldError naming the reference otherwise."""
    home = check_reference(ref, base_dir, field)
    module_name, _, attr_path = ref.partition(":")
    top = module_name.split(".")[0]
    if home is not None:
        _import_from(top, home)
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
