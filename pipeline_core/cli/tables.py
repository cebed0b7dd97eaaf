"""Rendering records as rich tables or JSON (``--json``) for scripts.

A table fits the console (a terminal's width, else ``$COLUMNS``, else 80 — piped output
too) without cutting a word: each column is at least as wide as its longest word (its
longest value for the columns that never wrap), and when those minimums do not fit,
the columns a listing names as optional are left out — the empty ones first, then in
the listing's order, and then those that fit in the room left are taken back, the last
left out first — with a caption saying which. Only a single word wider than the
whole table is ever folded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from rich import box
from rich.cells import cell_len
from rich.table import Table

from pipeline_core.cli.output import out

__all__ = ["column_widths", "fmt_time", "print_json", "print_table", "short_path"]

#: a wrapping column gets this many cells (or its longest value, if shorter) before any
#: optional column is shown, so a description is not one word per line
COMFORT = 20


def fmt_time(value: dt.datetime | None) -> str:
    return value.strftime("%m-%d %H:%M:%S") if value else "-"


def short_path(value: str) -> str:
    """A path under the working directory, relative to it (the listings' width is
    better spent on anything else); any other string unchanged."""
    if not value.startswith("/"):
        return value
    try:
        return str(Path(value).relative_to(Path.cwd()))
    except ValueError:
        return value


def print_json(value: Any) -> None:
    out.print_json(
        orjson.dumps(value, default=str, option=orjson.OPT_NAIVE_UTC).decode(), highlight=False
    )


def _longest_word(text: str) -> int:
    return max((cell_len(w) for w in text.split()), default=0)


def _longest_line(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


def _overhead(n: int) -> int:
    return 3 * max(n - 1, 0)  # between two columns: a space, a rule, a space


def column_widths(
    width: int,
    columns: Sequence[str],
    cells: Sequence[Sequence[str]],
    keep: Sequence[str] = (),
    optional: Sequence[str] = (),
) -> dict[str, int]:
    """The content width of each column shown in a table ``width`` cells wide; a column
    left out has no entry. Every word fits whole whenever that is possible at all."""
    lowest: dict[str, int] = {}
    comfortable: dict[str, int] = {}
    widest: dict[str, int] = {}
    for i, name in enumerate(columns):
        values = [row[i] for row in cells]
        widest[name] = max([_longest_line(name), *map(_longest_line, values)])
        if name in keep:
            lowest[name] = comfortable[name] = widest[name]
        else:
            lowest[name] = max([_longest_word(name), *map(_longest_word, values)], default=1)
            comfortable[name] = max(lowest[name], min(widest[name], COMFORT))
    shown = list(columns)
    # optional columns with nothing to say go first
    empty = [c for c in optional if all(row[columns.index(c)] == "-" for row in cells)]
    dropped: list[str] = []
    for name in [*empty, *(c for c in optional if c not in empty)]:
        if sum(comfortable[c] for c in shown) + _overhead(len(shown)) <= width:
            break
        if name in shown:
            shown.remove(name)
            dropped.append(name)
    # then take back what fits in the room left, the last left out (the most wanted) first:
    # leaving out a wide column may have made room for narrower ones left out before it
    for name in reversed(dropped):
        if name in empty:
            continue
        again = [c for c in columns if c in shown or c == name]
        if sum(comfortable[c] for c in again) + _overhead(len(again)) <= width:
            shown = again
    room = width - _overhead(len(shown))
    if sum(widest[c] for c in shown) <= room:
        return {c: widest[c] for c in shown}
    base = comfortable if sum(comfortable[c] for c in shown) <= room else lowest
    widths = {c: base[c] for c in shown}
    spare = room - sum(widths.values())
    wants = {c: widest[c] - widths[c] for c in shown if widest[c] > widths[c]}
    total = sum(wants.values())
    if spare > 0 and total:
        for c, want in wants.items():
            widths[c] += spare * want // total
        leftover = room - sum(widths.values())
        for c in sorted(wants, key=lambda c: widest[c] - widths[c], reverse=True):
            if leftover <= 0:
                break
            if widths[c] < widest[c]:
                widths[c] += 1
                leftover -= 1
    return widths


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    keep: Sequence[str] = (),
    optional: Sequence[str] = (),
) -> None:
    """Columns named in ``keep`` stay on one line; the others wrap between words when
    space is short. ``optional`` columns are left out, first first, when the others
    would not fit whole otherwise."""
    if not rows:  # a header over nothing looks like a failure to list
        out.print(f"{title}: none", markup=False)
        return
    cells = [["-" if v is None else str(v) for v in row] for row in rows]
    widths = column_widths(out.width, columns, cells, keep, optional)
    hidden = [c for c in columns if c not in widths]
    caption = (
        f"not shown at {out.width} columns: {', '.join(hidden)} (all of them with --json)"
        if hidden
        else None
    )
    # A rule under the header and none around the edges: plain lines are easier to read
    # and to grep when piped, and the width goes to the values.
    table = Table(
        title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False
    )
    for name in columns:
        if name in widths:
            table.add_column(name, width=widths[name], no_wrap=name in keep, overflow="fold")
    shown = [i for i, name in enumerate(columns) if name in widths]
    for row in cells:
        table.add_row(*(row[i] for i in shown))
    out.print(table)
