"""The bounded buffer between the source task and the pipeline: where backpressure lives."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from pipeline_core.errors import BackpressureError
from pipeline_core.io import Batch
from pipeline_core.model.job import BackpressureStrategy
from pipeline_core.runtime.metrics import RunMetrics

__all__ = ["BatchBuffer", "PositionOnly"]


class BatchBuffer:
    """A FIFO of batches and control items, bounded in batches.

    When full, ``put`` follows the strategy: BUFFER waits, DROP discards the incoming
    batch, LATEST discards the oldest buffered batch, ERROR raises. Control items
    (end of input, and later checkpoint barriers) are never dropped and never wait.
    """

    def __init__(self, capacity: int, strategy: BackpressureStrategy, metrics: RunMetrics) -> None:
        self.capacity = max(1, capacity)
        self.strategy = strategy
        self.metrics = metrics
        self._items: deque[Any] = deque()
        self._batches = 0
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def __len__(self) -> int:
        return self._batches

    async def put(self, batch: Batch) -> None:
        if self._batches >= self.capacity:
            strategy = self.strategy
            if strategy is BackpressureStrategy.BUFFER:
                while self._batches >= self.capacity:
                    self._writable.clear()
                    await self._writable.wait()
            elif strategy is BackpressureStrategy.DROP:
                self.metrics.dropped_records += len(batch.records)
                self._drop_position_only(batch)
                return
            elif strategy is BackpressureStrategy.LATEST:
                self._drop_oldest()
            else:
                raise BackpressureError(
                    f"buffer full ({self.capacity} batches, "
                    f"{self.metrics.buffered_records} records): the pipeline is slower than "
                    "the source and the backpressure strategy is ERROR "
                    "(use BUFFER to make the source wait, or raise buffer_size)"
                )
        self._items.append(batch)
        self._batches += 1
        self.metrics.buffered_batches = self._batches
        self.metrics.buffered_records += len(batch.records)
        self._readable.set()

    def put_control(self, item: object) -> None:
        self._items.append(item)
        self._readable.set()

    async def get(self) -> Any:
        while not self._items:
            self._readable.clear()
            await self._readable.wait()
        item = self._items.popleft()
        if isinstance(item, Batch):
            self._batches -= 1
            self.metrics.buffered_batches = self._batches
            self.metrics.buffered_records -= len(item.records)
            self._writable.set()
        return item

    def _drop_oldest(self) -> None:
        for i, item in enumerate(self._items):
            if isinstance(item, Batch):
                del self._items[i]
                self._batches -= 1
                self.metrics.buffered_records -= len(item.records)
                self.metrics.dropped_records += len(item.records)
                # Its position must still advance with the next batch, which it does:
                # positions are cumulative, so the newer batch's position covers it.
                return

    def _drop_position_only(self, batch: Batch) -> None:
        # The dropped batch's position is newer than anything buffered; remember it so that
        # the pipeline's position does not fall behind what the source has consumed.
        if batch.position is None:
            return
        if self._items and isinstance(self._items[-1], PositionOnly):
            self._items[-1].position = batch.position  # coalesce: stays bounded
        else:
            self.put_control(PositionOnly(batch.position))


class PositionOnly:
    """A dropped batch's position, carried so checkpoints still advance past it."""

    __slots__ = ("position",)

    def __init__(self, position: dict[str, Any]) -> None:
        self.position = position
