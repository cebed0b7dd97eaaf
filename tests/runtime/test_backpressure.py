"""Backpressure between a fast source and a slow sink: BUFFER, DROP, LATEST, ERROR."""

from __future__ import annotations

import pytest

from pipeline_core import BackpressureError, ExecutionStatus, PipelineJob
from pipeline_core.testing import ListSink, ListSinkConfig, MemorySource, run

N = 2000


def make(strategy: str, sink: ListSink) -> PipelineJob:
    return (
        PipelineJob.builder()
        .name(f"bp-{strategy}")
        .source(MemorySource.of(list(range(N)), batch_size=10))
        .sink(sink)
        # a 3-batch buffer and a sink that takes 2 ms per 10-record batch
        .config(backpressure=strategy, buffer_size=30, source_batch_size=10, sink_batch_size=10)
        .build()
    )


def slow_sink() -> ListSink:
    return ListSink(ListSinkConfig(delay=0.002))


def test_buffer_is_lossless() -> None:
    sink = slow_sink()
    result = run(make("BUFFER", sink))
    assert sink.committed == list(range(N))
    assert result.dropped_records == 0


def test_drop_discards_the_newest_and_counts_them() -> None:
    sink = slow_sink()
    result = run(make("DROP", sink))
    assert result.dropped_records > 0
    assert result.records_written + result.dropped_records == N
    assert sink.committed == sorted(sink.committed)  # order kept, only gaps
    assert sink.committed[0] == 0  # the first batches fit in the buffer
    # the position still advanced to the end: a restart would not re-read dropped records
    assert result.last_position == {"index": N}


def test_latest_discards_the_oldest_and_keeps_the_newest() -> None:
    sink = slow_sink()
    result = run(make("LATEST", sink))
    assert result.dropped_records > 0
    assert result.records_written + result.dropped_records == N
    assert sink.committed == sorted(sink.committed)
    assert sink.committed[-1] == N - 1  # the newest record always survives


def test_error_fails_the_job() -> None:
    sink = slow_sink()
    result = run(make("ERROR", sink), expect=None)
    assert result.status is ExecutionStatus.FAILED
    assert isinstance(result.exception, BackpressureError)
    assert "buffer full (3 batches" in (result.error or "")
    assert sink.committed == []


def test_buffer_never_overflows_its_capacity() -> None:
    from pipeline_core import RunMetrics

    sink = slow_sink()
    metrics = RunMetrics()
    peak = 0

    original = sink.write

    async def watching_write(records: list[int]) -> None:
        nonlocal peak
        peak = max(peak, metrics.buffered_records)
        await original(records)

    sink.write = watching_write  # type: ignore[method-assign]
    run(make("BUFFER", sink), metrics=metrics)
    assert metrics.buffer_capacity_batches == 3
    assert 0 < peak <= 30


@pytest.mark.parametrize("strategy", ["DROP", "LATEST"])
def test_lossy_strategies_lose_nothing_when_the_sink_keeps_up(strategy: str) -> None:
    sink = ListSink()
    result = run(make(strategy, sink))
    assert result.dropped_records == 0
    assert sink.committed == list(range(N))
