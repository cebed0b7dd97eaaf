"""The ``file`` sink: JSON Lines or CSV part files, rolled by size or count, published
atomically (write to a hidden temp file, rename on commit)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import gzip
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, cast

import orjson

from pipeline_connector_file.config import FileSinkConfig
from pipeline_core import FatalConnectorError, RuntimeContext, Sink

__all__ = ["FileSink"]


_dumps_line = functools.partial(orjson.dumps, option=orjson.OPT_APPEND_NEWLINE)


class _Part:
    """One output file: its final path, its temporary path and open handles."""

    __slots__ = ("final", "handle", "raw", "records", "size", "temp")

    def __init__(self, final: Path, compress: bool) -> None:
        self.final = final
        self.temp = final.with_name(f".{final.name}.inprogress")
        self.raw: IO[bytes] = open(self.temp, "wb", buffering=1 << 20)  # noqa: SIM115
        self.handle: IO[bytes] = (
            cast(IO[bytes], gzip.GzipFile(fileobj=self.raw, mode="wb", compresslevel=6, mtime=0))
            if compress
            else self.raw
        )
        self.records = 0
        self.size = 0  # uncompressed bytes

    def write(self, data: bytes, records: int) -> None:
        self.handle.write(data)
        self.size += len(data)
        self.records += records

    def finish(self, fsync: bool) -> None:
        if self.handle is not self.raw:
            self.handle.close()
        self.raw.flush()
        if fsync:
            os.fsync(self.raw.fileno())
        self.raw.close()

    def discard(self) -> None:
        for h in (self.handle, self.raw):
            with contextlib.suppress(OSError, ValueError):
                h.close()
        self.temp.unlink(missing_ok=True)


class FileSink(Sink[FileSinkConfig]):
    """Writes part files ``{prefix}-{run}-{index:05d}.{format}[.gz]`` into ``path``.

    Two-phase: ``prepare_commit`` finishes the open part (flush + fsync) and stages every
    finished part; ``on_checkpoint_complete`` renames the staged parts to their final
    names. ``close`` deletes whatever was not committed, so a failed or cancelled run
    leaves only complete files.
    """

    type_name = "file"
    config_cls = FileSinkConfig

    def __init__(self, config: FileSinkConfig) -> None:
        super().__init__(config)
        self.directory = Path(config.path)
        self.current: _Part | None = None
        self.finished: list[_Part] = []
        self.staged: dict[int, list[_Part]] = {}
        self.index = 0
        self.fields: list[str] | None = config.csv_fields
        self.committed: list[Path] = []

    async def open(self, ctx: RuntimeContext) -> None:
        await super().open(ctx)
        try:
            await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise FatalConnectorError(
                f"cannot create output directory {str(self.directory)!r}: {exc.strerror}",
                component=ctx.component,
            ) from None
        self.run = ctx.run_id[:8]

    # --- encoding ------------------------------------------------------------------

    def _encode_csv(self, records: list[Any]) -> list[bytes]:
        if self.fields is None:
            first = records[0]
            if not isinstance(first, dict):
                raise FatalConnectorError(
                    f"CSV output needs dict records, got {type(first).__name__}",
                    component=self.ctx.component,
                )
            self.fields = list(first)
        fields = self.fields
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=self.config.csv_delimiter, lineterminator="\n")
        encoding = self.config.encoding
        out = []  # small bytes objects: cheap to hold, unlike orjson's output
        for r in records:
            try:
                writer.writerow([r[f] for f in fields])
            except (KeyError, TypeError) as exc:
                raise FatalConnectorError(
                    f"record {r!r:.200} does not fit the CSV columns {fields}: missing {exc}",
                    component=self.ctx.component,
                ) from None
            if len(r) != len(fields):
                extra = sorted(set(r) - set(fields))
                raise FatalConnectorError(
                    f"record {r!r:.200} has fields not in the CSV columns: {extra}",
                    component=self.ctx.component,
                )
            out.append(buf.getvalue().encode(encoding))
            buf.seek(0)
            buf.truncate()
        return out

    def _csv_header(self) -> bytes:
        buf = io.StringIO()
        csv.writer(buf, delimiter=self.config.csv_delimiter, lineterminator="\n").writerow(
            self.fields or []
        )
        return buf.getvalue().encode(self.config.encoding)

    # --- parts ---------------------------------------------------------------------

    def _new_part(self) -> _Part:
        suffix = self.config.format + (".gz" if self.config.compression == "gzip" else "")
        final = self.directory / f"{self.config.prefix}-{self.run}-{self.index:05d}.{suffix}"
        self.index += 1
        part = _Part(final, self.config.compression == "gzip")
        if self.config.format == "csv":
            part.write(self._csv_header(), 0)
        return part

    def _roll(self) -> None:
        if self.current is not None:
            self.current.finish(self.config.fsync)
            self.finished.append(self.current)
            self.current = None

    def _check_jsonl(self, records: list[Any]) -> None:
        """Name the record orjson cannot serialise (only called after a failure)."""
        for r in records:
            try:
                orjson.dumps(r)
            except TypeError as exc:
                raise FatalConnectorError(
                    f"cannot write record {r!r:.200} as JSON: {exc}", component=self.ctx.component
                ) from None

    def _part(self) -> _Part:
        if self.current is None:
            self.current = self._new_part()
        return self.current

    async def write(self, records: list[Any]) -> None:
        if not records:
            return
        try:
            if self.config.format == "csv":
                self._write_lines(self._encode_csv(records))
            elif self.config.max_bytes_per_file is not None:
                self._write_lines(map(_dumps_line, records))
            else:
                self._write_jsonl_by_count(records)
        except TypeError:
            self._check_jsonl(records)
            raise

    def _write_jsonl_by_count(self, records: list[Any]) -> None:
        # writelines over a lazy map: each encoded line is freed right after it is
        # written. Holding a batch of them in a list costs 2x here (malloc churn).
        limit = self.config.max_records_per_file
        start = 0
        while start < len(records):
            part = self._part()
            room = len(records) if limit is None else limit - part.records
            stop = min(len(records), start + room)
            chunk = records[start:stop] if start or stop < len(records) else records
            part.handle.writelines(map(_dumps_line, chunk))
            part.records += stop - start
            start = stop
            if limit is not None and part.records >= limit:
                self._roll()

    def _write_lines(self, lines: Iterable[bytes]) -> None:
        """Write encoded lines one by one, rolling by record count and byte size."""
        max_records = self.config.max_records_per_file
        max_bytes = self.config.max_bytes_per_file
        for line in lines:
            part = self._part()
            # A record larger than a whole file still gets written, alone.
            if max_bytes is not None and part.records and part.size + len(line) > max_bytes:
                self._roll()
                part = self._part()
            part.write(line, 1)
            if max_records is not None and part.records >= max_records:
                self._roll()

    # --- two-phase commit ----------------------------------------------------------

    async def prepare_commit(self, checkpoint_id: int) -> dict[str, Any] | None:
        self._roll()
        staged, self.finished = self.finished, []
        self.staged[checkpoint_id] = staged
        return {"files": [str(p.final) for p in staged]}

    async def on_checkpoint_complete(self, checkpoint_id: int) -> None:
        published = False
        for cid in sorted(k for k in self.staged if k <= checkpoint_id):
            for part in self.staged.pop(cid):
                os.replace(part.temp, part.final)
                self.committed.append(part.final)
                published = True
        if published and self.config.fsync:
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)  # make the renames durable
            finally:
                os.close(fd)

    async def restore_commit(self, checkpoint_id: int, prepared: dict[str, Any] | None) -> None:
        """Publish the files the restored checkpoint prepared (if the crash came before
        they were renamed) and delete every other unfinished part of this prefix."""
        await asyncio.to_thread(self._recover, (prepared or {}).get("files", []))

    def _recover(self, files: list[str]) -> None:
        for name in files:
            final = Path(name)
            temp = final.with_name(f".{final.name}.inprogress")
            if temp.exists():
                os.replace(temp, final)
        for leftover in self.directory.glob(f".{self.config.prefix}-*.inprogress"):
            leftover.unlink(missing_ok=True)
        if self.config.fsync:
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def describe_output(self) -> str | None:
        n = len(self.committed)
        return f"{n} file{'s' * (n != 1)} in {self.directory}/" if n else "no records, no files"

    async def close(self) -> None:
        parts = [*self.finished, *(p for ps in self.staged.values() for p in ps)]
        if self.current is not None:
            parts.append(self.current)
        for part in parts:
            part.discard()
        self.current, self.finished, self.staged = None, [], {}
