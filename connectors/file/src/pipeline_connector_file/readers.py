"""Format readers: turn lines of one open binary file into batches of records.

Each reader is a generator of ``(records, failures, consumed_bytes, line_number)`` per
batch, where ``consumed_bytes`` is how far the batch moved the (uncompressed) byte offset
and ``line_number`` the last physical line it consumed. Lines that cannot be decoded become
:class:`FailedRecord` values carrying the raw line and ``path:line``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from itertools import islice
from typing import IO, Any

import orjson

from pipeline_core import FailedRecord

__all__ = ["ReadStep", "read_csv", "read_jsonl", "read_text"]

ReadStep = tuple[list[Any], list[FailedRecord] | None, int, int]


def read_jsonl(f: IO[bytes], where: str, line_no: int, batch_size: int) -> Iterator[ReadStep]:
    loads = orjson.loads
    while True:
        lines = list(islice(f, batch_size))
        if not lines:
            return
        consumed = sum(map(len, lines))
        failures: list[FailedRecord] | None = None
        try:
            records = [loads(line) for line in lines]
        except orjson.JSONDecodeError:
            # Slow path, only for a batch with a bad or blank line: find it.
            records, failures = [], []
            for j, line in enumerate(lines, start=line_no + 1):
                if not line.strip():
                    continue
                try:
                    records.append(loads(line))
                except orjson.JSONDecodeError as exc:
                    failures.append(
                        FailedRecord(line.rstrip(b"\r\n"), f"invalid JSON: {exc}", f"{where}:{j}")
                    )
        line_no += len(lines)
        yield records, failures, consumed, line_no


def read_text(
    f: IO[bytes], where: str, line_no: int, batch_size: int, encoding: str
) -> Iterator[ReadStep]:
    while True:
        lines = list(islice(f, batch_size))
        if not lines:
            return
        consumed = sum(map(len, lines))
        failures: list[FailedRecord] | None = None
        try:
            records = [line.decode(encoding).rstrip("\r\n") for line in lines]
        except UnicodeDecodeError:
            records, failures = [], []
            for j, line in enumerate(lines, start=line_no + 1):
                try:
                    records.append(line.decode(encoding).rstrip("\r\n"))
                except UnicodeDecodeError as exc:
                    failures.append(
                        FailedRecord(line.rstrip(b"\r\n"), f"not {encoding}: {exc}", f"{where}:{j}")
                    )
        line_no += len(lines)
        yield records, failures, consumed, line_no


class _CountingLines:
    """Iterates decoded lines and counts the raw bytes handed out, so that the byte
    offset after each CSV row is known even when quoted fields span lines."""

    __slots__ = ("consumed", "encoding", "f")

    def __init__(self, f: IO[bytes], encoding: str) -> None:
        self.f = f
        self.encoding = encoding
        self.consumed = 0

    def __iter__(self) -> Iterator[str]:
        for line in self.f:
            self.consumed += len(line)
            yield line.decode(self.encoding)


def read_csv_header(
    f: IO[bytes], encoding: str, delimiter: str, quotechar: str
) -> tuple[list[str] | None, int, int]:
    """(column names, bytes consumed, lines consumed) of the header; names None if empty."""
    lines = _CountingLines(f, encoding)
    reader = csv.reader(lines, delimiter=delimiter, quotechar=quotechar)
    header = next(reader, None)
    return header, lines.consumed, reader.line_num


def read_csv(
    f: IO[bytes],
    where: str,
    line_no: int,
    batch_size: int,
    *,
    columns: list[str],
    encoding: str,
    delimiter: str,
    quotechar: str,
) -> Iterator[ReadStep]:
    lines = _CountingLines(f, encoding)
    reader = csv.reader(lines, delimiter=delimiter, quotechar=quotechar, strict=True)
    width = len(columns)
    while True:
        before = lines.consumed
        records: list[Any] = []
        failures: list[FailedRecord] | None = None
        try:
            for row in islice(reader, batch_size):
                if len(row) == width:
                    records.append(dict(zip(columns, row, strict=True)))
                elif row:  # blank lines yield [] and are skipped
                    failures = failures or []
                    failures.append(
                        FailedRecord(
                            delimiter.join(row),
                            f"expected {width} fields, got {len(row)}",
                            f"{where}:{line_no + reader.line_num}",
                        )
                    )
        except csv.Error as exc:
            failures = failures or []
            failures.append(
                FailedRecord(None, f"invalid CSV: {exc}", f"{where}:{line_no + reader.line_num}")
            )
        consumed = lines.consumed - before
        if consumed == 0:
            return
        yield records, failures, consumed, line_no + reader.line_num
