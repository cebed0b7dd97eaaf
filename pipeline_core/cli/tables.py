"""Rendering records as rich tables or JSON (``--json``) for scripts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
from rich.table import Table

from pipeline_core.cli.output import out

__all__ = ["fmt_time", "print_json", "print_table"]


def fmt_time(value: dt.datetime | None) -> str:
    return value.strftime("%m-%d %H:%M:%S") if value else "-"


def print_json(value: Any) -> None:
    out.print_json(
        orjson.dumps(value, default=str, option=orjson.OPT_NAIVE_UTC).decode(), highlight=False
    )


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], keep: Sequence[str] = ()
) -> None:
    """Columns named in ``keep`` stay on one line; the others wrap when space is short."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, no_wrap=column in keep, overflow="fold")
    for row in rows:
        table.add_row(*("-" if v is None else str(v) for v in row))
    out.print(table)
