"""In-memory source and sink test doubles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import attrs

from pipeline_core.errors import RetriableConnectorError
from pipeline_core.io import Batch, RuntimeContext, Sink, Source, SourceProgress

__all__ = ["ABORT", "EOF", "PAUSE", "ListSink", "MemorySource", "SourceAborted"]


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: In a MemorySource's records: the input ends here (without it, an ``unbounded`` source
#: waits for more records forever, like a broker).
EOF = _Sentinel("EOF")
#: In a MemorySource's records: the source fails here with :class:`SourceAborted`.
ABORT = _Sentinel("ABORT")
#: In a MemorySource's records: the source waits here until ``source.proceed()`` is called
#: (what comes before it has been emitted) — for tests that act mid-stream.
PAUSE = _Sentinel("PAUSE")


class SourceAborted(RetriableConnectorError):
    """Raised by a MemorySource that reached an ABORT sentinel."""


@attrs.define(frozen=True, kw_only=True)
class MemorySourceConfig:
    records: list[Any] = attrs.field(factory=list)
    batch_size: int | None = None
    #: Keep waiting for records appended later instead of ending after the last one.
    unbounded: bool = False


class MemorySource(Source[MemorySourceConfig]):
    """Emits ``config.records`` in batches; position ``{"index": n}`` = next record."""

    type_name = "memory"
    config_cls = MemorySourceConfig

    def __init__(self, config: MemorySourceConfig) -> None:
        super().__init__(config)
        self.records = list(config.records)
        self.index = 0
        self.opened = self.closed = 0
        self.completed_checkpoints: list[tuple[int, dict[str, Any]]] = []
        self._proceed: asyncio.Event | None = None
        #: True while waiting at a PAUSE sentinel
        self.paused = False

    def proceed(self) -> None:
        """Continue past the PAUSE sentinel the source is waiting at."""
        if self._proceed is not None:
            self._proceed.set()

    @classmethod
    def of(cls, records: list[Any], **options: Any) -> MemorySource:
        return cls(MemorySourceConfig(records=list(records), **options))

    async def open(self, ctx: RuntimeContext, restored_position: dict[str, Any] | None) -> None:
        await super().open(ctx, restored_position)
        self.opened += 1
        self.batch_size = self.config.batch_size or ctx.batch_size
        self.index = int(restored_position["index"]) if restored_position else 0

    async def read(self) -> AsyncIterator[Batch]:
        while True:
            chunk: list[Any] = []
            while self.index < len(self.records) and len(chunk) < self.batch_size:
                item = self.records[self.index]
                if item is EOF or item is ABORT or item is PAUSE:
                    break
                chunk.append(item)
                self.index += 1
            if chunk:
                yield Batch(chunk, {"index": self.index})
                continue
            if self.index < len(self.records):
                if self.records[self.index] is ABORT:
                    raise SourceAborted(f"ABORT sentinel at index {self.index}")
                if self.records[self.index] is PAUSE:
                    self._proceed = asyncio.Event()
                    self.paused = True
                    await self._proceed.wait()
                    self.paused = False
                    self.index += 1
                    continue
                return  # EOF
            if not self.config.unbounded:
                return
            await asyncio.sleep(0.01)

    async def on_checkpoint_complete(self, checkpoint_id: int, position: dict[str, Any]) -> None:
        self.completed_checkpoints.append((checkpoint_id, position))

    async def close(self) -> None:
        self.closed += 1

    def progress(self) -> SourceProgress | None:
        return SourceProgress(self.index, len(self.records), "records")


@attrs.define(frozen=True, kw_only=True)
class ListSinkConfig:
    #: Seconds to sleep per write: a slow sink, for backpressure tests.
    delay: float = 0.0


class ListSink(Sink[ListSinkConfig]):
    """Keeps ``written`` (every write) and ``committed`` (what completed checkpoints cover)."""

    type_name = "list"
    config_cls = ListSinkConfig

    def __init__(self, config: ListSinkConfig | None = None) -> None:
        super().__init__(config or ListSinkConfig())
        self.written: list[Any] = []
        self.committed: list[Any] = []
        self._staged: dict[int, int] = {}
        self.opened = self.closed = 0
        self.writes = 0

    async def open(self, ctx: RuntimeContext) -> None:
        await super().open(ctx)
        self.opened += 1

    async def write(self, records: list[Any]) -> None:
        if self.config.delay:
            await asyncio.sleep(self.config.delay)
        self.writes += 1
        self.written.extend(records)

    async def prepare_commit(self, checkpoint_id: int) -> dict[str, Any] | None:
        self._staged[checkpoint_id] = len(self.written)
        return {"written": len(self.written)}

    async def on_checkpoint_complete(self, checkpoint_id: int) -> None:
        upto = self._staged.pop(checkpoint_id)
        self.committed = self.written[:upto]

    async def close(self) -> None:
        self.closed += 1
