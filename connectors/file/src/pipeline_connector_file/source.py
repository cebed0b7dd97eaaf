"""The ``file`` source: JSON Lines, CSV or text from a file, a glob or a directory."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import glob
import gzip
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any, cast

from pipeline_connector_file.config import FileSourceConfig, Format
from pipeline_connector_file.readers import (
    CsvHeaderError,
    ReadStep,
    read_csv,
    read_csv_header,
    read_jsonl,
    read_text,
)
from pipeline_core import (
    Batch,
    FatalConnectorError,
    RuntimeContext,
    Source,
    SourceProgress,
)

__all__ = ["FileSource"]

_GLOB_CHARS = frozenset("*?[")


def infer_format(path: str) -> Format:
    name = path[:-3] if path.endswith(".gz") else path
    suffix = os.path.splitext(name)[1].lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    return "text"


class FileSource(Source[FileSourceConfig]):
    """Reads files in sorted path order, in batches.

    Position (after each batch): ``{"file": path, "offset": bytes, "line": n,
    "total_read": records}`` — ``offset`` is in the uncompressed stream. A restored source
    resumes in that file at that offset; files that sort before it count as done, so
    files added later that sort after it are picked up. Files whose name starts with a
    dot (such as a file sink's in-progress parts) are skipped when listing a directory.
    """

    type_name = "file"
    config_cls = FileSourceConfig

    def __init__(self, config: FileSourceConfig) -> None:
        super().__init__(config)
        self.files: list[str] = []
        self._raw: IO[bytes] | None = None
        self._done_bytes = 0
        self._total_bytes = 0
        self._sizes: dict[str, int] = {}

    def identity(self, job_name: str) -> dict[str, Any]:
        """The paths and the pattern: a position names a file in that listing."""
        paths = self.config.path if isinstance(self.config.path, list) else [self.config.path]
        return {"type": self.type_name, "path": sorted(paths), "pattern": self.config.pattern}

    # --- listing -------------------------------------------------------------------

    def _expand(self, spec: str) -> list[str]:
        if _GLOB_CHARS & set(spec):
            return [p for p in glob.glob(spec, recursive=True) if os.path.isfile(p)]
        p = Path(spec)
        if p.is_dir():
            walk = (
                p.rglob(self.config.pattern)
                if self.config.recursive
                else p.glob(self.config.pattern)
            )
            return [
                str(f)
                for f in walk
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
            ]
        if p.is_file():
            return [str(p)]
        raise FatalConnectorError(f"path {spec!r} does not exist", component=self._label())

    def check(self) -> list[str]:
        """Every path that does not exist, and a listing that matches no file."""
        specs = [self.config.path] if isinstance(self.config.path, str) else self.config.path
        problems, found = [], False
        for spec in specs:
            try:
                found = bool(self._expand(spec)) or found
            except FatalConnectorError as exc:
                problems.append(exc.args[0].removeprefix(f"{self._label()}: "))
        if not problems and not found:
            problems.append(f"no files match {self.config.path!r}")
        return problems

    def _list_files(self) -> list[str]:
        specs = [self.config.path] if isinstance(self.config.path, str) else self.config.path
        files = sorted({os.path.abspath(f) for spec in specs for f in self._expand(spec)})
        if not files:
            raise FatalConnectorError(
                f"no files match {self.config.path!r}", component=self._label()
            )
        return files

    def _list_files_with_sizes(self) -> tuple[list[str], dict[str, int]]:
        files = self._list_files()
        return files, {f: os.path.getsize(f) for f in files}

    def _label(self) -> str:
        ctx = getattr(self, "ctx", None)
        return ctx.component if ctx is not None else "source (file)"

    # --- contract ------------------------------------------------------------------

    async def open(self, ctx: RuntimeContext, restored_position: dict[str, Any] | None) -> None:
        await super().open(ctx, restored_position)
        self.batch_size = self.config.batch_size or ctx.batch_size
        # Listing a large directory must not stall the event loop.
        self.files, self._sizes = await asyncio.to_thread(self._list_files_with_sizes)
        self._total_bytes = sum(self._sizes.values())
        self._start_index, self._start_offset, self._start_line = 0, 0, 0
        self.total_read = 0
        if restored_position:
            self._restore(restored_position)

    def _restore(self, position: dict[str, Any]) -> None:
        path = os.path.abspath(str(position["file"]))
        self.total_read = int(position.get("total_read", 0))
        if path in self._sizes:
            self._start_index = self.files.index(path)
            self._start_offset = int(position["offset"])
            self._start_line = int(position.get("line", 0))
        else:  # the file went away: continue with the next one in order
            self._start_index = bisect.bisect_right(self.files, path)
        self._done_bytes = sum(self._sizes[f] for f in self.files[: self._start_index])

    def _open_file(self, path: str) -> tuple[IO[bytes], IO[bytes]]:
        """(stream to read, underlying raw file for progress)."""
        raw: IO[bytes] = open(path, "rb", buffering=1 << 20)  # noqa: SIM115 - closed by read()
        compressed = self.config.compression == "gzip" or (
            self.config.compression == "auto" and path.endswith(".gz")
        )
        if compressed:
            return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")), raw
        return raw, raw

    def _steps(
        self, f: IO[bytes], path: str, offset: int, line: int
    ) -> tuple[Iterator[ReadStep], int]:
        """The reader for one file, positioned at ``offset``; and the offset it starts at."""
        cfg = self.config
        fmt = cfg.format or infer_format(path)
        if fmt != "csv":
            if offset:
                f.seek(offset)
            if fmt == "jsonl":
                return read_jsonl(f, path, line, self.batch_size), offset
            return read_text(f, path, line, self.batch_size, cfg.encoding), offset
        columns = cfg.csv_columns
        header_bytes = header_lines = 0
        if columns is None:
            # The header is always read from the top; its bytes count in the offset.
            try:
                header, header_bytes, header_lines = read_csv_header(
                    f, cfg.encoding, cfg.csv_delimiter, cfg.csv_quotechar, cfg.csv_max_record_lines
                )
            except CsvHeaderError as exc:  # no row of the file can be read without it
                raise FatalConnectorError(
                    f"{path}:{exc.line}: {exc}", component=self._label()
                ) from None
            if header is None:
                return iter(()), offset
            columns = header
        if offset > header_bytes:
            f.seek(offset)
        else:
            offset, line = header_bytes, header_lines
        reader = read_csv(
            f,
            path,
            line,
            self.batch_size,
            columns=columns,
            encoding=cfg.encoding,
            delimiter=cfg.csv_delimiter,
            quotechar=cfg.csv_quotechar,
            max_record_lines=cfg.csv_max_record_lines,
        )
        return reader, offset

    async def read(self) -> AsyncIterator[Batch]:
        for index in range(self._start_index, len(self.files)):
            path = self.files[index]
            first = index == self._start_index
            f, raw = self._open_file(path)
            self._raw = raw
            try:
                steps, offset = self._steps(
                    f, path, self._start_offset if first else 0, self._start_line if first else 0
                )
                # One batch of look-ahead, so the last batch of a file can say that a
                # file (a "page" of this source) is complete: a natural checkpoint.
                previous: Batch | None = None
                for records, failures, consumed, line in steps:
                    offset += consumed
                    self.total_read += len(records)
                    if previous is not None:
                        yield previous
                    position = {
                        "file": path,
                        "offset": offset,
                        "line": line,
                        "total_read": self.total_read,
                    }
                    previous = Batch(records, position, failures)
                if previous is not None:
                    previous.checkpoint_after = True
                    yield previous
            except (OSError, EOFError) as exc:  # EOFError: truncated gzip
                raise FatalConnectorError(
                    f"reading {path!r} failed: {exc}", component=self._label()
                ) from exc
            finally:
                self._raw = None
                f.close()
                raw.close()
            self._done_bytes += self._sizes[path]

    async def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def progress(self) -> SourceProgress | None:
        done = self._done_bytes
        raw = self._raw
        if raw is not None and not raw.closed:
            with contextlib.suppress(OSError, ValueError):
                done += raw.tell()
        return SourceProgress(done=min(done, self._total_bytes), total=self._total_bytes)
