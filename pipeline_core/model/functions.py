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

The control plane (``serve``, the API) runs no user code: under :func:`static_references`
a reference is checked by reading the module's source (it parses, and defines the
name at its top level) and stands for a placeholder; only an execution imports it.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import importlib
import importlib.util
import os
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from pipeline_core.config.converter import FieldError

__all__ = [
    "allowed_function_dirs",
    "check_reference",
    "import_callable",
    "static_references",
]

_STATIC = contextvars.ContextVar("static_references", default=False)
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
#: after the ':' — a function or a class attribute; never a private or dunder name
#: (``fn.__globals__`` would reach everything the module imported)
_ATTRS = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")


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
    if not sep or not _MODULE.fullmatch(module_name) or not _ATTRS.fullmatch(attr_path):
        raise FieldError(
            f"expected 'module:function' (dotted names; no '_' names after the ':'), got {ref!r}",
            field,
        )
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


@contextlib.contextmanager
def static_references() -> Iterator[None]:
    """Within: :func:`import_callable` checks references without importing anything."""
    token = _STATIC.set(True)
    try:
        yield
    finally:
        _STATIC.reset(token)


def _top_level_names(tree: ast.Module) -> tuple[set[str], set[str]] | None:
    """(names a module defines, names it imports) at its top level (inside top-level
    if/try/with too); None when it cannot be known statically (``from x import *``)."""
    defined: set[str] = set()
    imported: set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                defined.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                imported.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for part in ("body", "orelse", "finalbody", "handlers"):
                body.extend(getattr(node, part, []))
        elif isinstance(node, ast.ExceptHandler):
            body.extend(node.body)
    return defined, imported - defined


def _check_statically(ref: str, home: Path | None, field: str) -> Callable[..., Any]:
    module_name, _, attr_path = ref.partition(":")
    if home is None:  # an allowed installed package: found, not imported
        if importlib.util.find_spec(module_name.split(".")[0]) is None:
            raise FieldError(f"cannot import {ref!r}: no installed package {module_name!r}", field)
    else:
        base = home.joinpath(*module_name.split("."))
        source = next(
            (f for f in (base.with_suffix(".py"), base / "__init__.py") if f.is_file()), None
        )
        if source is None:
            raise FieldError(f"cannot import {ref!r}: no module {module_name!r} in {home}", field)
        try:
            tree = ast.parse(source.read_bytes(), filename=str(source))
        except SyntaxError as exc:
            raise FieldError(
                f"cannot import {ref!r}: {source.name} line {exc.lineno}: {exc.msg}", field
            ) from None
        names = _top_level_names(tree)
        first = attr_path.split(".")[0]
        if names is not None and first in names[1]:
            raise FieldError(
                f"{ref!r} is refused: {first!r} is imported into {source.name}, not defined "
                "there; name a function defined in the referenced module",
                field,
            )
        if names is not None and first not in names[0]:
            raise FieldError(
                f"cannot import {ref!r}: {source.name} has no attribute {first!r}", field
            )

    def placeholder(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError(f"{ref} was checked, not imported (the control plane runs no user code)")

    return placeholder


def _defined_here(obj: Any, ref: str, top: str, field: str) -> None:
    """The path after ':' stays inside the allowed module: it may not pass through an
    imported module (``fns:os.system``) or end at something the module only imported
    (``fns:run`` after ``from subprocess import run``)."""
    if isinstance(obj, types.ModuleType):
        raise FieldError(
            f"{ref!r} is refused: it reaches the module {obj.__name__!r} through an import; "
            "name a function defined in the referenced module",
            field,
        )
    home = getattr(obj, "__module__", None)
    if not isinstance(home, str):
        home = type(obj).__module__
    if home.split(".")[0] != top:
        raise FieldError(
            f"{ref!r} is refused: it is defined in {home!r}, not in {top!r} (reference a "
            "function where it is defined, from an allowed place)",
            field,
        )


def import_callable(
    ref: str, base_dir: str | None = None, field: str = "function"
) -> Callable[..., Any]:
    """Import ``"package.module:attr.path"`` from an allowed place (see the module
    docstring); FieldError naming the reference otherwise."""
    home = check_reference(ref, base_dir, field)
    if _STATIC.get():
        return _check_statically(ref, home, field)
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
    parts = attr_path.split(".")
    for i, part in enumerate(parts):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            where = getattr(obj, "__file__", None) or module_name
            raise FieldError(
                f"cannot import {ref!r}: {Path(str(where)).name} has no attribute {part!r}", field
            ) from None
        if isinstance(obj, types.ModuleType) or i < len(parts) - 1:
            _defined_here(obj, ref, top, field)
    if not callable(obj):
        raise FieldError(f"{ref!r} is not callable (it is a {type(obj).__name__})", field)
    _defined_here(obj, ref, top, field)
    return cast(Callable[..., Any], obj)
