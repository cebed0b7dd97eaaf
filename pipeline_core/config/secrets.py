"""Secret references: ``${env:NAME}`` (``${env:NAME:-default}`` with a default) and
``${file:path}`` in config strings.

Job definitions keep the references (so a stored or exported definition never holds a
secret); they are resolved only when a component is created for an execution.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pipeline_core.config.converter import FieldError

__all__ = ["resolve_references"]

_REF = re.compile(r"\$\{(env|file):([^}]+)\}")


def _resolve_one(kind: str, name: str, field: str) -> str:
    if kind == "env":
        name, has_default, default = name.partition(":-")
        value = os.environ.get(name.strip(), default if has_default else None)
        if value is None:
            raise FieldError(f"environment variable {name!r} is not set", field)
        return value
    try:
        return Path(name).expanduser().read_text().rstrip("\n")
    except OSError as exc:
        raise FieldError(f"cannot read secret file {name!r}: {exc.strerror}", field) from None


def resolve_references(value: Any, field: str = "") -> Any:
    """Return ``value`` with every ``${env:…}`` / ``${file:…}`` in its strings replaced."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        return _REF.sub(lambda m: _resolve_one(m.group(1), m.group(2).strip(), field), value)
    if isinstance(value, dict):
        return {
            k: resolve_references(v, f"{field}.{k}" if field else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [resolve_references(v, f"{field}[{i}]") for i, v in enumerate(value)]
    return value
