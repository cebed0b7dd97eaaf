"""Format readers: turn lines of one open binary file into batches of records.

Each reader is a generator of ``(records, failures, consumed_bytes, line_number)`` per
batch, where ``consumed_bytes`` is how far the batch moved the (uncompressed) byte offset
and ``line_number`` the last physical line it consumed. Lines that cannot be decoded become
:class:`FailedRecord` values carrying the raw line and ``path:line``; a bad line costs that
line only, and the rest of the file is read. Their ``error`` texts never quote the line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from itertools import islice
from typing import IO, Any

import orjson

from pipeline_core import FailedRecord

__all__ = ["CsvHeaderError", "ReadStep", "read_csv", "read_csv_header", "read_jsonl", "read_text"]

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


class _Lines:
    """The physical lines of a CSV file as the csv module reads them, kept so that a
    broken record can be taken back: every raw line handed out since the batch began
    (``held``), and lines to hand out again before reading on (``replay``).

    The csv module asks for a line only when the record it parses needs one, so after
    each record ``held`` ends exactly with that record's last line: the byte offset and
    line number after any record are known, even when quoted fields span lines.
    """

    __slots__ = ("encoding", "f", "held", "replay")

    def __init__(self, f: IO[bytes], encoding: str) -> None:
        self.f = f
        self.encoding = encoding
        self.held: list[bytes] = []
        #: in reverse order: the next line to hand out is the last
        self.replay: list[bytes] = []

    def __iter__(self) -> Iterator[str]:
        readline, held, replay, encoding = self.f.readline, self.held, self.replay, self.encoding
        while True:
            raw = replay.pop() if replay else readline()
            if not raw:
                return
            held.append(raw)  # before decoding: a line that does not decode is held too
            yield raw.decode(encoding)

    def take_back(self, keep: int) -> None:
        """Hand out again every held line after the first ``keep``."""
        self.replay.extend(reversed(self.held[keep:]))
        del self.held[keep:]


class _CsvDialect:
    """How to parse one CSV file, and what to make of a record that does not parse.

    A record spans lines only where a quoted field contains line ends. A multi-line
    record that is broken — still open at the end of the file, malformed further down,
    of the wrong width, or longer than ``max_lines`` — almost always comes from a quote
    never closed on its first line, which made the csv module swallow the lines after
    it as one field. So only that first line fails, and reading resumes at the line
    after it, which is read as the start of a record again. A broken one-line record
    fails alone.
    """

    __slots__ = ("delimiter", "encoding", "max_lines", "quotechar")

    def __init__(self, encoding: str, delimiter: str, quotechar: str, max_lines: int) -> None:
        self.encoding = encoding
        self.delimiter = delimiter
        self.quotechar = quotechar
        self.max_lines = max_lines

    def reader(self, lines: _Lines) -> Iterator[list[str]]:
        # strict: a quote inside a quoted field must be doubled or end the field, which
        # makes a runaway field fail at the next quote it meets
        return csv.reader(
            iter(lines), delimiter=self.delimiter, quotechar=self.quotechar, strict=True
        )

    def bad_row(self, span: int, row: list[str], width: int | None) -> str | None:
        """Why ``row``, a record of ``span`` lines, is broken; None if it is not (a blank
        line, ``[]``, is not broken: it is skipped)."""
        if span > self.max_lines:
            return (
                f"invalid CSV: unclosed quote: the record starting here spans {span} "
                f"lines, more than csv_max_record_lines ({self.max_lines})"
            )
        if width is None or len(row) == width or not row:
            return None
        if span == 1:
            return f"expected {width} fields, got {len(row)}"
        return (
            f"invalid CSV: unclosed quote: the record starting here spans {span} lines "
            f"and has {len(row)} fields, expected {width}"
        )

    def bad_parse(self, span: int, exc: Exception, last_line: int) -> str:
        """Why a record of ``span`` lines ending at line ``last_line`` did not parse."""
        if isinstance(exc, UnicodeDecodeError):
            if span == 1:
                return f"not {self.encoding}: {exc}"
            return (
                f"invalid CSV: unclosed quote: the record starting here runs to line "
                f"{last_line}, which is not {self.encoding}"
            )
        if str(exc) == "unexpected end of data":  # the csv module's words for it
            return (
                "invalid CSV: unclosed quote: the record starting here runs to the end of the file"
            )
        if span == 1:
            return f"invalid CSV: {exc}"
        return (
            f"invalid CSV: unclosed quote: the record starting here runs to line "
            f"{last_line}, where: {exc}"
        )


def _line(raw: bytes, encoding: str) -> str | bytes:
    """A failed line as the dead-letter sink gets it: text if it decodes, else bytes."""
    try:
        return raw.decode(encoding).rstrip("\r\n")
    except UnicodeDecodeError:
        return raw.rstrip(b"\r\n")


class CsvHeaderError(Exception):
    """The header line of a CSV file cannot be read (``line``: its line number)."""

    def __init__(self, line: int, why: str) -> None:
        super().__init__(why)
        self.line = line


def read_csv_header(
    f: IO[bytes], encoding: str, delimiter: str, quotechar: str, max_record_lines: int
) -> tuple[list[str] | None, int, int]:
    """(column names, bytes consumed, lines consumed) of the header; names None if the
    file is empty. CsvHeaderError if it is broken: without it no row can be read."""
    dialect = _CsvDialect(encoding, delimiter, quotechar, max_record_lines)
    lines = _Lines(f, encoding)
    try:
        row = next(dialect.reader(lines), None)
    except (csv.Error, UnicodeDecodeError) as exc:
        why = dialect.bad_parse(len(lines.held), exc, len(lines.held))
    else:
        if row is None:
            return None, 0, 0
        bad = dialect.bad_row(len(lines.held), row, None)
        if bad is None:
            return row, sum(map(len, lines.held)), len(lines.held)
        why = bad
    raise CsvHeaderError(1, f"invalid CSV header: {why.removeprefix('invalid CSV: ')}")


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
    max_record_lines: int,
) -> Iterator[ReadStep]:
    dialect = _CsvDialect(encoding, delimiter, quotechar, max_record_lines)
    lines = _Lines(f, encoding)
    held = lines.held
    reader = dialect.reader(lines)
    width = len(columns)
    while True:
        records: list[Any] = []
        failures: list[FailedRecord] | None = None
        ended = False
        for _ in range(batch_size):
            start = len(held)
            try:
                row = next(reader)
            except StopIteration:
                ended = True
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                why = dialect.bad_parse(len(held) - start, exc, line_no + len(held))
            else:
                if len(row) == width and len(held) - start <= max_record_lines:  # fast path
                    records.append(dict(zip(columns, row, strict=True)))
                    continue
                bad = dialect.bad_row(len(held) - start, row, width)
                if bad is None:  # a blank line
                    continue
                why = bad
            failures = failures or []
            failures.append(
                FailedRecord(_line(held[start], encoding), why, f"{where}:{line_no + start + 1}")
            )
            lines.take_back(start + 1)  # the lines after its first are read again
            # the old reader may have ended with the exception; it holds no lines
            reader = dialect.reader(lines)
        consumed = sum(map(len, held))
        if consumed == 0:
            return
        line_no += len(held)
        held.clear()
        yield records, failures, consumed, line_no
        if ended:
            return
