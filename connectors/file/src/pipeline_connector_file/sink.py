"""The ``file`` sink: JSON Lines or CSV part files, rolled by size or count, published
atomically (write to a hidden temp file, rename on commit).

Unfinished parts of attempts that died (SIGKILL, power loss) are swept by a later attempt
writing into the same directory. Which attempts are dead is told by a lock, not guessed
from ages or process ids: while an attempt may write parts it holds a shared ``flock`` on
the hidden file ``.{prefix}-{run}.lock`` in the directory. The kernel drops that lock when
the process dies, so a sweeper that gets an exclusive lock on it knows nobody writes those
parts any more. flock locks belong to an open file, not to a process: a live attempt in
the same process (the service runs many) is told apart just as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import fcntl
import functools
import glob
import gzip
import io
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, cast

import orjson

from pipeline_connector_file.config import FileSinkConfig
from pipeline_core import FatalConnectorError, RuntimeContext, Sink

__all__ = ["FileSink"]

log = logging.getLogger("pipeline_connector_file")

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


# --- attempt locks ---------------------------------------------------------------------

#: ``.{prefix}-{run}-{index}.{format}[.gz].inprogress`` → ``{prefix}-{run}``, the key of
#: the attempt's lock file ``.{key}.lock`` (the index is the part after the last dash).
_UNFINISHED = re.compile(r"\.(?P<key>.+)-\d+\.[^-]+\.inprogress")

#: Lock descriptors this process holds. A forked child (a process-pool worker) closes its
#: copies, so that a worker outliving a killed parent does not keep the parent's attempt
#: "alive" (closing a copy does not unlock: the parent's descriptor still holds it).
_held: set[int] = set()


def _close_held_in_child() -> None:
    for fd in _held:
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_close_held_in_child)


def _is_current(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (a sweeper may have unlinked
    it between our open and our flock)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


def _hold_lock(path: Path) -> int:
    """Take a shared lock on ``path`` (created if missing) and return its descriptor.
    Shared, so that a second sink with the same run id does not fail: its part names
    collide anyway, but the lock protects them as long as either lives."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a sweeper removes a dead run
            if _is_current(fd, path):
                _held.add(fd)
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # swept meanwhile: lock the new file


def _release_lock(fd: int, path: Path) -> None:
    """Unlock; remove the lock file unless another holder of the same run id lives."""
    _held.discard(fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if _is_current(fd, path):
            path.unlink(missing_ok=True)
    except OSError:
        pass  # another sink holds it (or the file is gone): leave it
    finally:
        os.close(fd)


def _sweep_dead(directory: Path, prefix: str, own: str) -> int:
    """Delete the unfinished parts (and lock files) of every attempt writing
    ``.{prefix}-*`` into ``directory`` whose lock is free: the attempts that died. Parts of
    live attempts, other than ``own``'s, are left alone; committed parts are never looked at.
    Returns how many part files were deleted."""
    pattern = glob.escape(f".{prefix}-")
    runs: dict[str, list[Path]] = {}
    for part in directory.glob(pattern + "*.inprogress"):
        m = _UNFINISHED.fullmatch(part.name)
        if m is not None:
            runs.setdefault(m["key"], []).append(part)
    for lock in directory.glob(pattern + "*.lock"):
        runs.setdefault(lock.name[1 : -len(".lock")], [])
    removed = 0
    for key, parts in runs.items():
        if key == own:
            continue
        path = directory / f".{key}.lock"
        try:
            # created when missing: parts written before attempts took locks are dead too
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            continue
        _held.add(fd)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live attempt
            if not _is_current(fd, path):
                continue  # another sweeper just did it
            for part in parts:
                try:
                    part.unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("cannot delete unfinished part %s: %s", part, exc.strerror)
            path.unlink(missing_ok=True)  # still locked: nobody can take it over meanwhile
        except OSError as exc:
            log.warning("cannot sweep %s: %s", path, exc.strerror)
        finally:
            _held.discard(fd)
            os.close(fd)
    return removed


def _live_runs(directory: Path, prefix: str) -> set[str]:
    """The ``{prefix}-{run}`` keys of the attempts that hold their lock: still writing."""
    live = set()
    for lock in directory.glob(glob.escape(f".{prefix}-") + "*.lock"):
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            live.add(lock.name[1 : -len(".lock")])
        finally:
            os.close(fd)  # closing drops a lock we got
    return live


def _remove_earlier_output(directory: Path, prefix: str, keep: set[Path]) -> int:
    """``mode: overwrite``: delete the committed parts ``{prefix}-{run}-{index}.{ext}``
    that are not in ``keep`` (this attempt's) and not an attempt's that still writes."""
    final = re.compile(re.escape(prefix) + r"-(?P<run>[^-.]+)-\d+\.(jsonl|csv)(\.gz)?")
    live = _live_runs(directory, prefix)
    removed = 0
    for part in directory.glob(glob.escape(f"{prefix}-") + "*"):
        m = final.fullmatch(part.name)
        if m is None or part in keep or f"{prefix}-{m['run']}" in live:
            continue
        try:
            part.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


class FileSink(Sink[FileSinkConfig]):
    """Writes part files ``{prefix}-{run}-{index:05d}.{format}[.gz]`` into ``path``.

    Two-phase: ``prepare_commit`` finishes the open part (flush + fsync) and stages every
    finished part; ``on_checkpoint_complete`` renames the staged parts to their final
    names. ``close`` deletes whatever was not committed, so a failed or cancelled run
    leaves only complete files.

    Attempts that were killed cannot clean up; the next attempt into the directory does,
    sparing attempts that still live (see the module docstring): ``restore_commit``
    publishes what the restored checkpoint prepared, then sweeps; an attempt that restores
    nothing sweeps once its first checkpoint completed. Not in ``open``: a restore comes
    after it and needs the prepared parts of a dead attempt; and until this attempt's
    first checkpoint, a dead one's checkpoint may still be the one a ``--resume`` restores.
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
        self._lock: tuple[int, Path] | None = None
        self._swept = False

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
        lock = self.directory / f".{self._key}.lock"
        try:
            self._lock = await asyncio.to_thread(_hold_lock, lock), lock
        except OSError as exc:
            raise FatalConnectorError(
                f"cannot lock {str(lock)!r} in the output directory: {exc.strerror}",
                component=ctx.component,
            ) from None

    @property
    def _key(self) -> str:
        """Names this attempt's parts and its lock file."""
        return f"{self.config.prefix}-{self.run}"

    def _sweep(self) -> None:
        self._swept = True
        removed = _sweep_dead(self.directory, self.config.prefix, self._key)
        if removed:
            log.info(
                "deleted %d unfinished part file%s of dead attempts in %s",
                removed,
                "s" * (removed != 1),
                self.directory,
            )

    def _overwrite(self) -> None:
        removed = _remove_earlier_output(self.directory, self.config.prefix, set(self.committed))
        if removed:
            log.info(
                "mode overwrite: deleted %d part file%s of earlier runs in %s",
                removed,
                "s" * (removed != 1),
                self.directory,
            )

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
        if not self._swept:
            # A checkpoint of this attempt is durable, so no restore needs a dead
            # attempt's prepared parts any more: they are garbage now. For the same
            # reason an overwrite may now drop the earlier output: this attempt started
            # from the beginning (it restored nothing) and has output of its own.
            if self.config.mode == "overwrite":
                await asyncio.to_thread(self._overwrite)
            await asyncio.to_thread(self._sweep)

    async def restore_commit(self, checkpoint_id: int, prepared: dict[str, Any] | None) -> None:
        """Publish the files the restored checkpoint prepared (if the crash came before
        they were renamed) and delete every other unfinished part of this prefix, except
        those of attempts that still live."""
        await asyncio.to_thread(self._recover, (prepared or {}).get("files", []))

    def _recover(self, files: list[str]) -> None:
        for name in files:
            final = Path(name)
            temp = final.with_name(f".{final.name}.inprogress")
            if temp.exists():
                os.replace(temp, final)
        self._sweep()
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
        if self._lock is not None:  # after the discards: our parts are never unlocked
            lock, self._lock = self._lock, None
            _release_lock(*lock)
