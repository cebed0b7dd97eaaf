"""Dotted paths into JSON bodies: ``data.items``, ``meta.next_cursor``, ``links.0.href``."""

from __future__ import annotations

from typing import Any

__all__ = ["MISSING", "get_path"]

MISSING = object()


def get_path(body: Any, path: str | None) -> Any:
    """The value at ``path`` (None or "" = the body itself); MISSING if absent."""
    if not path:
        return body
    value = body
    for part in path.split("."):
        if isinstance(value, dict):
            if part not in value:
                return MISSING
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            if not -len(value) <= index < len(value):
                return MISSING
            value = value[index]
        else:
            return MISSING
    return value
