"""One rule for relative paths: a job file's paths resolve from the job file's folder.

A config class marks the fields that name files or directories with
``attrs.field(metadata={"path": True})`` (``{"path": "sqlite-url"}`` for a database URL
whose SQLite form holds a file path). Before a component's config is structured, the
relative values of those fields are joined to the job's ``base_dir`` — the same folder
``module:function`` references are imported from. A job without a folder (built in
Python) keeps them as they are: relative to the working directory. A value holding a
secret reference (``${env:…}``) is left alone; it means whatever it resolves to.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs

__all__ = ["resolve_paths"]

#: ``sqlite:///relative.db``, ``sqlite+pysqlite:///rel/x.db`` (four slashes: absolute)
_SQLITE_RELATIVE = re.compile(r"^(sqlite(?:\+\w+)?:///)(?!/)(?!:memory:)(.+)$")


def _join(value: str, base_dir: str, kind: Any) -> str:
    if "${" in value:
        return value
    if kind == "sqlite-url":
        m = _SQLITE_RELATIVE.match(value)
        if not m or m.group(2).startswith(("file:", "?")):
            return value
        return m.group(1) + str(Path(base_dir) / m.group(2))
    p = Path(value).expanduser()
    return value if p.is_absolute() else str(Path(base_dir) / p)


def resolve_paths(config: Any, config_cls: type, base_dir: str | None) -> Any:
    """``config`` with the relative values of ``config_cls``'s path fields joined to
    ``base_dir`` (a new dict; anything not a dict of a known shape is returned as is,
    for structuring to report)."""
    if base_dir is None or not isinstance(config, dict) or not attrs.has(config_cls):
        return config
    resolved = dict(config)
    for field in attrs.fields(config_cls):
        kind = field.metadata.get("path")
        value = config.get(field.name)
        if not kind or value is None:
            continue
        if isinstance(value, str):
            resolved[field.name] = _join(value, base_dir, kind)
        elif isinstance(value, list):
            resolved[field.name] = [
                _join(v, base_dir, kind) if isinstance(v, str) else v for v in value
            ]
    return resolved
