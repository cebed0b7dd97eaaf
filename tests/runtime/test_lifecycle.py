"""Lifecycle: hooks, closing, cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

from pipeline_core import (
    ExecutionStatus,
    PipelineJob,
    execute,
    hookimpl,
    load_plugins,
    prepare,
)
from pipeline_core.testing import ABORT, EOF, ListSink, MemorySource, run
from pipeline_core.testing.doubles import SourceAborted


class Recorder:
    """A third-party listener plugin."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def pipeline_job_started(self, job: Any, execution_id: str) -> None:
        self.calls.append(("started", job.name))

    @hookimpl
    def pipeline_job_finished(self, job: Any, execution_id: str, result: Any) -> None:
        self.calls.append(("finished", result.status))

    @hookimpl
    def pipeline_job_failed(self, job: Any, execution_id: str, error: Any, result: Any) -> None:
        self.calls.append(("failed", type(error).__name__))


def job_with(source: MemorySource, sink: ListSink) -> PipelineJob:
    return PipelineJob.builder().name("life").source(source).sink(sink).build()


def test_hooks_see_start_and_finish(pipeline_plugins: Any) -> None:
    rec = Recorder()
    plugins = pipeline_plugins(rec)
    sink = ListSink()
    result = run(job_with(MemorySource.of([1, 2, 3]), sink), plugins)
    assert rec.calls == [("started", "life"), ("finished", ExecutionStatus.COMPLETED)]
    assert result.records_written == 3 and sink.committed == [1, 2, 3]


def test_hooks_see_failure_and_everything_is_closed(pipeline_plugins: Any) -> None:
    rec = Recorder()
    source, sink = MemorySource.of([1, 2, ABORT, 3]), ListSink()
    result = run(job_with(source, sink), pipeline_plugins(rec), expect=None)
    assert result.status is ExecutionStatus.FAILED
    assert isinstance(result.exception, SourceAborted)
    assert rec.calls[-1] == ("failed", "SourceAborted")
    assert (source.opened, source.closed, sink.opened, sink.closed) == (1, 1, 1, 1)
    assert sink.committed == []


def test_a_broken_listener_does_not_break_the_job(pipeline_plugins: Any) -> None:
    class Broken:
        @hookimpl
        def pipeline_job_started(self, job: Any, execution_id: str) -> None:
            raise RuntimeError("alerting is down")

    sink = ListSink()
    run(job_with(MemorySource.of([1]), sink), pipeline_plugins(Broken()))
    assert sink.committed == [1]


def test_cancel_closes_source_and_sink_and_commits_nothing() -> None:
    source = MemorySource.of(list(range(100)), unbounded=True, batch_size=10)
    sink = ListSink()
    plugins = load_plugins(entry_points=False)
    prepared = prepare(job_with(source, sink), plugins)

    async def main() -> None:
        task = asyncio.create_task(execute(prepared, plugins))
        while len(sink.written) < 100:  # everything read, now waiting for more
            await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return
        raise AssertionError("execute() swallowed the cancellation")

    asyncio.run(main())
    assert source.closed == 1 and sink.closed == 1
    assert sink.written == list(range(100))
    assert sink.committed == []


def test_eof_sentinel_ends_an_unbounded_source() -> None:
    sink = ListSink()
    run(job_with(MemorySource.of([1, 2, EOF, 3], unbounded=True), sink))
    assert sink.committed == [1, 2]


def test_restored_position_resumes_after_it() -> None:
    sink = ListSink()
    source = MemorySource.of(list(range(10)), batch_size=3)
    result = run(job_with(source, sink), restored_position={"index": 6})
    assert sink.committed == [6, 7, 8, 9]
    assert result.last_position == {"index": 10}
    assert source.completed_checkpoints == [(1, {"index": 10})]


def test_pause_sentinel_holds_the_source_until_proceed() -> None:
    import asyncio

    from pipeline_core import PipelineJob, execute, load_plugins, prepare
    from pipeline_core.testing import PAUSE, ListSink, MemorySource

    source = MemorySource.of([1, 2, 3, PAUSE, 4, 5], batch_size=10)
    sink = ListSink()
    job = PipelineJob.builder().name("p").source(source).sink(sink).build()

    async def go() -> None:
        plugins = load_plugins(entry_points=False)
        task = asyncio.create_task(execute(prepare(job, plugins), plugins))
        while not source.paused:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert sink.written == [1, 2, 3] and not task.done()
        source.proceed()
        result = await task
        assert result.records_read == 5

    asyncio.run(go())
    assert sink.committed == [1, 2, 3, 4, 5]
