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

Registration runs no user code — in any process: ``validate``, ``jobs register`` /
``import``, ``serve --jobs`` and the API all check a reference under
:func:`static_references`, by reading the module's source without importing it. The
name after the ``:`` must be *defined* at the module's top level (``def``,
``async def``, ``class``, or ``name = lambda …``) and bound no other way: a plain
re-binding (``system = os.system``, ``from os import system``) is refused, since what it
names is defined elsewhere. Only an execution imports the module, and checks again what
it got (defined in that module, not reached through an imported one): defence in depth
for what a static reading cannot see (a decorator returning something else).
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
    dirs = allowed_function_dirs(base_dir)
    if top in sys.stdlib_module_names or top == "builtins":
        # refused wherever it is found: a module of the job's folder of that name would be
        # checked, and the standard library's imported at run time (it is loaded already)
        home = _home(top, dirs)
        found = f" (the one in {home} would not be what a run imports)" if home else ""
        raise FieldError(
            f"{ref!r} is refused: {top!r} is a standard-library module name; rename the "
            f"module{found}; step functions come only from the job's folder, "
            "PIPELINE_FUNCTION_PATH or PIPELINE_FUNCTION_PACKAGES",
            field,
        )
    if top in _packages():
        return None
    home = _home(top, dirs)
    if home is not None:
        return home
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


#: how an import within the same top-level package binds a name: (module, its name there)
_Within = tuple[str, str]


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _bindings(tree: ast.Module, package: str) -> tuple[set[str], dict[str, str | _Within]]:
    """What a module's top level (inside top-level if/try/with/for/while too) does with
    each name: (names a ``def``, ``async def``, ``class`` or ``name = lambda …`` defines,
    {name: how anything else binds it — "an assignment", "an import", …, or the module
    of the same top-level package it is imported from}). ``package``: the module's
    package (itself for an ``__init__``), to resolve relative imports."""
    defined: set[str] = set()
    other: dict[str, str | _Within] = {}
    top = package.split(".")[0]

    def bound(target: ast.AST, how: str) -> None:
        for n in ast.walk(target):
            if isinstance(n, ast.Name):
                other.setdefault(n.id, how)

    body = list(tree.body)
    while body:
        node = body.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Lambda):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if all(isinstance(t, ast.Name) for t in targets):
                defined.update(t.id for t in targets if isinstance(t, ast.Name))
            else:
                for t in targets:
                    bound(t, "an assignment")
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                bound(t, "an assignment")
        elif isinstance(node, ast.ImportFrom) and (
            node.level or (node.module or "").split(".")[0] == top
        ):
            for alias in node.names:
                key = "*" if alias.name == "*" else alias.asname or alias.name
                other.setdefault(key, (_absolute(node, package), alias.name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    other.setdefault("*", "an import")
                else:
                    other.setdefault(alias.asname or alias.name.split(".")[0], "an import")
        elif isinstance(node, ast.For | ast.AsyncFor):
            bound(node.target, "a for loop")
            body.extend([*node.body, *node.orelse])
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                if item.optional_vars is not None:
                    bound(item.optional_vars, "a with statement")
            body.extend(node.body)
        elif isinstance(node, ast.If | ast.Try | ast.While):
            for part in ("body", "orelse", "finalbody", "handlers"):
                body.extend(getattr(node, part, []))
        elif isinstance(node, ast.ExceptHandler):
            body.extend(node.body)
    return defined, other


def _module_source(ref: str, home: Path | None, field: str) -> Path:
    """The file the module of ``ref`` would be imported from, found without importing
    anything (an allowed package: through its spec's search locations)."""
    module_name = ref.partition(":")[0]
    parts = module_name.split(".")
    if home is None:
        spec = importlib.util.find_spec(parts[0])  # a top-level name: imports nothing
        if spec is None:
            raise FieldError(f"cannot import {ref!r}: no installed package {parts[0]!r}", field)
        if len(parts) == 1 and spec.origin and spec.origin.endswith(".py"):
            return Path(spec.origin)
        roots = [Path(p) for p in spec.submodule_search_locations or []]
        rest = parts[1:]
    else:
        roots, rest = [home], parts
    for root in roots:
        base = root.joinpath(*rest)
        for f in (base.with_suffix(".py"), base / "__init__.py"):
            if rest and f.is_file():
                return f
    raise FieldError(f"cannot import {ref!r}: no module {module_name!r} in {_where(roots)}", field)


def _is_module(module_name: str, home: Path | None) -> bool:
    try:
        _module_source(f"{module_name}:x", home, "")
    except FieldError:
        return False
    return True


def _check_statically(ref: str, home: Path | None, field: str) -> Callable[..., Any]:
    """The module's source parses and *defines* the first name after the ':' at its top
    level — by ``def``, ``async def``, ``class`` or ``name = lambda …`` — and binds it no
    other way: ``system = os.system`` or ``from os import system`` only re-bind something
    defined elsewhere, which an execution's import-time check refuses too. An import from
    a module of the same top-level package (``from .core import fn``) is followed there,
    as the execution's check accepts what that package defines."""
    module_name, _, attr_path = ref.partition(":")
    first = attr_path.split(".")[0]
    for _hop in range(16):
        source = _module_source(f"{module_name}:{first}", home, field)
        try:
            tree = ast.parse(source.read_bytes(), filename=str(source))
        except SyntaxError as exc:
            raise FieldError(
                f"cannot import {ref!r}: {source.name} line {exc.lineno}: {exc.msg}", field
            ) from None
        package = module_name if source.name == "__init__.py" else module_name.rpartition(".")[0]
        defined, other = _bindings(tree, package or module_name)
        how = other.get(first)
        if isinstance(how, tuple):
            if _is_module(f"{how[0]}.{how[1]}", home):  # ``from . import core``
                raise FieldError(
                    f"{ref!r} is refused: it reaches the module '{how[0]}.{how[1]}' through "
                    "an import; name a function defined in the referenced module",
                    field,
                )
            module_name, first = how
            continue
        if how == "an import":
            raise FieldError(
                f"{ref!r} is refused: {first!r} is imported into {source.name}, not defined "
                "there; name a function defined in the referenced module",
                field,
            )
        if how is not None:
            raise FieldError(
                f"{ref!r} is refused: {first!r} is bound by {how} in {source.name}, not "
                "defined there by def or class; name a function defined in the referenced "
                "module",
                field,
            )
        star = other.get("*")
        if first not in defined and isinstance(star, tuple):
            module_name = star[0]  # ``from .core import *``: look there
            continue
        if first not in defined:
            also = " (only a `from … import *` could bring it in)" if star else ""
            raise FieldError(
                f"cannot import {ref!r}: {source.name} has no attribute {first!r}{also}", field
            )
        break
    else:
        raise FieldError(f"cannot import {ref!r}: too many imports to follow", field)

    def placeholder(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError(f"{ref} was checked, not imported (registration runs no user code)")

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
