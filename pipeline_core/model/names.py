"""Names of jobs (and of what they refer to: dependencies, savepoints).

They go into URLs, metric labels, checkpoint paths and file names, so they are kept to a
safe character set everywhere a name comes in."""

from __future__ import annotations

import re
from typing import Any

from pipeline_core.config.converter import FieldError

__all__ = ["NAME_PATTERN", "check_name"]

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_name(value: Any, what: str = "name") -> str:
    """``value`` if it is a safe name, else FieldError saying what is allowed."""
    if not isinstance(value, str) or not value.strip():
        raise FieldError("must not be empty", what)
    if not NAME_PATTERN.fullmatch(value):
        raise FieldError(
            f"{value[:60]!r} is not a valid name: 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            what,
        )
    return value
