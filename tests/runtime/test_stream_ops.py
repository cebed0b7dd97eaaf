"""The Stream operators, run through the real runtime with the in-memory doubles."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from pipeline_core import ConfigError, PipelineJob, Stream
from pipeline_core.testing import ListSink, MemorySource, run


def job_of(records: list[Any], transform: Any, sink: ListSink, **config: Any) -> PipelineJob:
    return (
        PipelineJob.builder()
        .name("ops")
        .source(MemorySource.of(records, batch_size=config.pop("batch_size", 7)))
        .transform(transform)
        .sink(sink)
        .config(**config)
        .build()
    )


def committed(records: list[Any], transform: Any, **config: Any) -> list[Any]:
    sink = ListSink()
    run(job_of(records, transform, sink, **config))
    return sink.committed


def test_map_filter_flat_map_select() -> None:
    recs = [{"n": i, "junk": "x"} for i in range(20)]
    out = committed(
        recs,
        lambda s: (
            s.filter(lambda r: r["n"] % 2 == 0)
            .map(lambda r: {**r, "sq": r["n"] ** 2})
            .flat_map(lambda r: [r, r] if r["n"] < 4 else [r])
            .select("n", "sq")
        ),
    )
    assert out == [
        {"n": 0, "sq": 0},
        {"n": 0, "sq": 0},
        {"n": 2, "sq": 4},
        {"n": 2, "sq": 4},
        *({"n": n, "sq": n * n} for n in range(4, 20, 2)),
    ]


def test_upper_and_filter_like_the_original_design() -> None:
    words = ["apple", "kiwi", "banana", "fig", "cherry", "plum"]
    out = committed(words, lambda s: s.map(str.upper).filter(lambda x: len(x) > 5))
    assert out == ["BANANA", "CHERRY"]


def test_distinct_with_and_without_key() -> None:
    recs = [{"id": i % 5, "v": i} for i in range(30)]
    by_key = committed(recs, lambda s: s.distinct(lambda r: r["id"]))
    assert [r["v"] for r in by_key] == [0, 1, 2, 3, 4]
    whole = committed([{"a": 1}, {"a": 1}, {"a": 2}, {"a": 1}], lambda s: s.distinct())
    assert whole == [{"a": 1}, {"a": 2}]


def test_batch_groups_across_source_batches_and_flushes_the_rest() -> None:
    out = committed(list(range(23)), lambda s: s.batch(5), batch_size=3)
    assert out == [list(range(i, min(i + 5, 23))) for i in range(0, 23, 5)]
    assert [len(b) for b in out] == [5, 5, 5, 5, 3]


def test_rate_limit_holds_the_rate() -> None:
    t0 = time.monotonic()
    out = committed(list(range(60)), lambda s: s.rate_limit(200), batch_size=10)
    elapsed = time.monotonic() - t0
    assert out == list(range(60))
    # 60 records at 200/s: the last chunk may leave at ~0.27 s; never much earlier.
    assert elapsed >= 0.25


def test_map_async_bounds_concurrency_and_keeps_order() -> None:
    in_flight = 0
    peak = 0

    async def enrich(x: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (x % 3))
        in_flight -= 1
        return x * 10

    out = committed(list(range(50)), lambda s: s.map_async(enrich, concurrency=4), batch_size=25)
    assert out == [x * 10 for x in range(50)]
    assert peak == 4


def _square(x: int) -> int:
    import os

    return x * x + 0 * os.getpid()


def test_cpu_map_runs_in_worker_processes_with_parallelism() -> None:
    out = committed(list(range(100)), lambda s: s.map(_square, cpu=True), parallelism=2)
    assert out == [x * x for x in range(100)]


def test_stream_is_immutable_and_rebuilt_per_execution() -> None:
    base = Stream().distinct()
    a = base.map(lambda x: x + 1)
    assert len(base) == 1 and len(a) == 2
    ops1, ops2 = a.build(), a.build()
    assert ops1[0] is not ops2[0]  # distinct's seen-set never leaks across executions


def test_transform_must_return_a_stream() -> None:
    sink = ListSink()
    with pytest.raises(ConfigError, match="must return a Stream, got list"):
        run(job_of([1], lambda s: [s], sink))


def test_invalid_operator_arguments_fail_early() -> None:
    with pytest.raises(ValueError, match="concurrency must be > 0"):
        Stream().map_async(lambda x: x, concurrency=0)
    with pytest.raises(ValueError, match="batch size must be > 0"):
        Stream().batch(0)
