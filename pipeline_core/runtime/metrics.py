"""Counters of one execution, read by progress bars, summaries and (later) Prometheus."""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline_core.io import SourceProgress

__all__ = ["RunMetrics"]


class RunMetrics:
    """Plain counters updated once per batch by the runtime (never per record)."""

    __slots__ = (
        "batches_read",
        "before",
        "buffer_capacity_batches",
        "buffered_batches",
        "buffered_records",
        "dropped_records",
        "failed_records",
        "first_failure",
        "records_processed",
        "records_read",
        "records_written",
        "source_progress",
        "started_at",
        "stopped_at",
    )

    def __init__(self) -> None:
        self.records_read = 0
        #: records taken out of the buffer and through the steps (≤ records_read)
        self.records_processed = 0
        #: the execution's counts before this attempt (from the restored checkpoint)
        self.before: dict[str, int] = {}
        self.records_written = 0
        self.failed_records = 0
        self.dropped_records = 0
        self.batches_read = 0
        self.buffered_records = 0
        self.buffered_batches = 0
        self.buffer_capacity_batches = 0
        self.first_failure: str | None = None
        self.started_at = time.monotonic()
        self.stopped_at: float | None = None
        #: The running source's ``progress`` method, for progress bars.
        self.source_progress: Callable[[], SourceProgress | None] | None = None

    @property
    def total_read(self) -> int:
        """Records read by the execution: earlier attempts (up to the checkpoint this
        one resumed from) plus this attempt."""
        return self.before.get("records_read", 0) + self.records_read

    @property
    def total_written(self) -> int:
        return self.before.get("records_written", 0) + self.records_written

    @property
    def total_failed(self) -> int:
        return self.before.get("failed_records", 0) + self.failed_records

    def counts_at_barrier(self) -> dict[str, int]:
        """The execution's totals as of a checkpoint barrier (records still in the buffer
        are not counted: a resumed attempt reads them again)."""
        return {
            "records_read": self.before.get("records_read", 0) + self.records_processed,
            "records_written": self.total_written,
            "failed_records": self.total_failed,
            "dropped_records": self.before.get("dropped_records", 0) + self.dropped_records,
        }

    @property
    def elapsed(self) -> float:
        end = self.stopped_at if self.stopped_at is not None else time.monotonic()
        return end - self.started_at

    @property
    def buffer_full(self) -> bool:
        """The source buffer is full: backpressure is acting (the source waits or drops)."""
        return 0 < self.buffer_capacity_batches <= self.buffered_batches

    @property
    def throughput(self) -> float:
        """Records read per second since the start."""
        elapsed = self.elapsed
        return self.records_read / elapsed if elapsed > 0 else 0.0
