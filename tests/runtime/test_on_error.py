"""on_error: fail | skip | dead_letter, and failed_records counting."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_core import ComponentSpec, OnError, PipelineJob, RecordError
from pipeline_core.testing import ListSink, MemorySource, run


def invert(x: int) -> float:
    return 1 / x


def make(on_error: OnError, sink: ListSink, dead: Any = None) -> PipelineJob:
    return (
        PipelineJob.builder()
        .name("errors")
        .source(MemorySource.of([1, 2, 0, 4, 0, 5], batch_size=4))
        .transform(lambda s: s.map(invert, name="invert"))
        .sink(sink)
        .config(on_error=on_error.value, dead_letter=dead)
        .build()
    )


def test_fail_stops_the_job_naming_step_and_record() -> None:
    sink = ListSink()
    result = run(make(OnError.FAIL, sink), expect=None)
    assert result.status.value == "FAILED"
    assert isinstance(result.exception, RecordError)
    assert result.error == "invert: record 0 failed: ZeroDivisionError: division by zero"
    assert sink.committed == []  # nothing is committed by a failed run
    assert sink.closed == 1


def test_skip_counts_and_continues() -> None:
    sink = ListSink()
    result = run(make(OnError.SKIP, sink))
    assert sink.committed == [1.0, 0.5, 0.25, 0.2]
    assert result.failed_records == 2
    assert result.records_read == 6


def test_dead_letter_receives_failed_records_with_reason() -> None:
    sink, dead = ListSink(), ListSink()
    job = (
        PipelineJob.builder()
        .name("errors")
        .source(MemorySource.of([1, 2, 0, 4, 0, 5], batch_size=4))
        .transform(lambda s: s.map(invert, name="invert"))
        .sink(sink)
        .build()
    )
    # The dead-letter sink is a spec in job files; an instance works for a single run.
    import attrs

    job = attrs.evolve(
        job, config=attrs.evolve(job.config, on_error=OnError.DEAD_LETTER, dead_letter=dead)
    )
    result = run(job)
    assert result.failed_records == 2
    assert sink.committed == [1.0, 0.5, 0.25, 0.2]
    assert dead.committed == [
        {"where": "invert", "error": "ZeroDivisionError: division by zero", "record": 0},
        {"where": "invert", "error": "ZeroDivisionError: division by zero", "record": 0},
    ]


def test_dead_letter_spec_without_sink_is_rejected() -> None:
    from pipeline_core import ConfigError

    with pytest.raises(ConfigError, match="no dead_letter sink is configured"):
        PipelineJob.builder().name("x").source("file", path="x").sink("file", path="y").config(
            on_error="dead_letter"
        )


def test_dead_letter_spec_is_structured() -> None:
    job = (
        PipelineJob.builder()
        .name("x")
        .source("file", path="x")
        .sink("file", path="y")
        .config(on_error="dead_letter", dead_letter={"type": "file", "config": {"path": "dlq"}})
        .build()
    )
    assert job.config.dead_letter == ComponentSpec(type="file", config={"path": "dlq"})
