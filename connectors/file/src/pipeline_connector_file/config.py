"""Configuration of the file source and sink (the ``config`` block in a job file)."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from pipeline_core import FieldError

__all__ = ["FileSinkConfig", "FileSourceConfig", "Format"]

Format = Literal["jsonl", "csv", "text"]


def _positive(_i: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value <= 0:
        raise FieldError(f"expected a number > 0, got {value!r}", attr.name)


def _one_char(_i: Any, attr: attrs.Attribute[Any], value: str) -> None:
    if len(value) != 1:
        raise FieldError(f"expected a single character, got {value!r}", attr.name)


@attrs.define(frozen=True, kw_only=True)
class FileSourceConfig:
    """Read a file, every file matching a glob, or every file in a directory.

    Files are read in sorted path order; ``.gz`` files are decompressed transparently.
    """

    #: A file, a glob (``data/*.jsonl``) or a directory; or a list of them. Relative to
    #: the job file's folder.
    path: str | list[str] = attrs.field(metadata={"path": True})
    #: ``jsonl`` | ``csv`` | ``text``; default: from the extension (.jsonl/.ndjson/.json,
    #: .csv, anything else = text).
    format: Format | None = None
    #: For a directory: which files in it to read.
    pattern: str = "*"
    #: For a directory: also read its subdirectories.
    recursive: bool = False
    encoding: str = "utf-8"
    #: ``auto`` decompresses files ending in .gz.
    compression: Literal["auto", "gzip", "none"] = "auto"
    #: Records per batch; default: the job's ``source_batch_size``.
    batch_size: int | None = attrs.field(default=None, validator=_positive)
    csv_delimiter: str = attrs.field(default=",", validator=_one_char)
    csv_quotechar: str = attrs.field(default='"', validator=_one_char)
    #: CSV: column names to use instead of reading a header line.
    csv_columns: list[str] | None = None
    #: CSV: the most lines one record may span (quoted fields with line ends); a longer
    #: one is taken as an unclosed quote on its first line, which alone fails.
    csv_max_record_lines: int = attrs.field(default=1000, validator=_positive)


@attrs.define(frozen=True, kw_only=True)
class FileSinkConfig:
    """Write records into a directory as part files, each published atomically.

    A part file is written under a hidden temporary name and renamed to its final name
    only when a checkpoint (or the end of the job) commits it, so readers never see a
    half-written file and a cancelled or crashed run leaves no partial output.
    """

    #: The output directory (created if missing). Relative to the job file's folder.
    path: str = attrs.field(metadata={"path": True})
    format: Literal["jsonl", "csv"] = "jsonl"
    #: File names are ``{prefix}-{run}-{index:05d}.{format}[.gz]``.
    prefix: str = "part"
    #: Roll to a new file after this many records.
    max_records_per_file: int | None = attrs.field(default=None, validator=_positive)
    #: Roll to a new file before it would exceed this many (uncompressed) bytes.
    max_bytes_per_file: int | None = attrs.field(default=None, validator=_positive)
    compression: Literal["none", "gzip"] = "none"
    encoding: str = "utf-8"
    #: CSV: the columns, in order; default: the keys of the first record.
    csv_fields: list[str] | None = None
    csv_delimiter: str = attrs.field(default=",", validator=_one_char)
    #: fsync each file before publishing it (durability across power loss).
    fsync: bool = True
    #: ``append``: add part files next to those of earlier runs. ``overwrite``: a run
    #: that starts from the beginning deletes the earlier runs' part files (of this
    #: ``prefix``) once its first checkpoint is committed — at the end of a short job.
    mode: Literal["append", "overwrite"] = "append"
