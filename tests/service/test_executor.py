"""The executor and scheduler in one process, on both databases, with real connectors
(the counter source of ``flaky_plugin`` and the file sink)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline_core import ExecutionStatus as S
from pipeline_core.model.schedule import ScheduleConfig, ScheduleType
from pipeline_core.plugins.manager import load_plugins
from pipeline_core.service import PipelineService, SingleInstanceError
from pipeline_core.store import MetadataStore
from pipeline_core.testing import trigger as memory_trigger
from pipeline_core.testing import wait_until
from tests.service import flaky_plugin

pytestmark = pytest.mark.timeout(90)


def counter_job(
    name: str, out: Path, *, config: dict[str, Any] | None = None, **source: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STREAMING" if source.pop("streaming", False) else "BATCH_ROLLER",
        "source": {"type": "counter", "config": {"count": 100, **source}},
        "sink": {"type": "file", "config": {"path": str(out)}},
        "config": {"checkpoint_interval": "200ms", "retry_interval": "100ms", **(config or {})},
    }


def output(directory: Path) -> list[int]:
    """Every record the file sink published, sorted (duplicates stay visible)."""
    return sorted(
        orjson.loads(line)["n"]
        for f in directory.glob("*.jsonl")
        for line in f.read_bytes().splitlines()
    )


@pytest.fixture
async def service(store: MetadataStore, tmp_path: Path) -> AsyncIterator[PipelineService]:
    plugins = load_plugins(extra=[flaky_plugin, memory_trigger])
    svc = PipelineService(
        store,
        plugins,
        instance="test-1",
        checkpoint_url=str(tmp_path / "checkpoints"),
        heartbeat_interval=0.2,
        lease=dt.timedelta(seconds=2),
        scheduler_tick=0.1,
    )
    await svc.start()
    svc.executor.poll_interval = 0.1
    try:
        yield svc
    finally:
        await svc.stop(graceful=False)


until = wait_until


def status(store: MetadataStore, eid: str) -> S:
    return store.executions.get(eid).status


async def test_triggered_job_runs_through_the_lifecycle(
    service: PipelineService, store: MetadataStore, tmp_path: Path
) -> None:
    store.registry.register(counter_job("count", tmp_path / "out", delay=0.01))
    eid = service.scheduler.trigger_job("count")
    await until(lambda: status(store, eid) is S.COMPLETED, what="COMPLETED")
    assert output(tmp_path / "out") == list(range(100))
    rec = store.executions.get(eid)
    assert (rec.processed_records, rec.triggered_by, rec.owner_instance) == (
        100,
        "MANUAL",
        "test-1",
    )
    path = [S(t.to_status) for t in store.executions.transitions(eid)]
    assert path[:3] == [S.SCHEDULED, S.INITIALIZING, S.RUNNING] and path[-1] is S.COMPLETED
    assert S.CHECKPOINTING in path
    assert service.executor.get_status(eid) is S.COMPLETED


async def test_retries_resume_from_the_last_checkpoint(
    service: PipelineService, store: MetadataStore, tmp_path: Path
) -> None:
    job = counter_job(
        "flaky",
        tmp_path / "out",
        delay=0.02,
        fail_at=60,
        failures=2,
        attempts_file=str(tmp_path / "attempts"),
        config={"max_retry_times": 3, "checkpoint_interval": "50ms"},
    )
    store.registry.register(job)
    metrics = service.metrics
    eid = service.scheduler.trigger_job("flaky")
    await until(lambda: status(store, eid) is S.COMPLETED, what="COMPLETED after retries")
    rec = store.executions.get(eid)
    assert rec.retry_count == 2
    assert output(tmp_path / "out") == list(range(100))  # exactly once: a 2PC file sink
    path = [S(t.to_status) for t in store.executions.transitions(eid)]
    assert path.count(S.FAILED) == 2 and path.count(S.INITIALIZING) == 3
    retries = [t.message for t in store.executions.transitions(eid) if t.from_status == S.FAILED]
    assert retries[0].startswith("retry 1 of 3") and retries[1].startswith("retry 2 of 3")
    # the execution's count spans its attempts; the later attempts resumed past 0: they
    # did not read everything again
    assert rec.processed_records == 100
    attempts = store.ownership.attempts(eid)
    assert [a.status for a in attempts] == ["FAILED", "FAILED", "COMPLETED"]
    assert attempts[-1].processed_records < 100
    assert len({a.run_id for a in attempts}) == 3 and attempts[0].run_id == eid
    # metrics count executions, not attempts: one execution, completed, all 100 records
    await until(
        lambda: 'job_success_rate{job_name="flaky"} 1.0' in metrics.exposition().decode(),
        what="success rate",
    )
    text = metrics.exposition().decode()
    assert 'job_execution_count_total{job_name="flaky",status="COMPLETED"} 1.0' in text
    assert 'job_execution_count_total{job_name="flaky",status="FAILED"} 0.0' in text
    assert 'records_processed_total{job_name="flaky"} 100.0' in text


async def test_retries_stop_at_the_maximum_and_the_error_is_recorded(
    service: PipelineService, store: MetadataStore, tmp_path: Path
) -> None:
    job = counter_job(
        "doomed",
        tmp_path / "out",
        fail_at=30,
        failures=99,
        attempts_file=str(tmp_path / "attempts"),
        config={"max_retry_times": 2},
    )
    store.registry.register(job)
    eid = service.scheduler.trigger_job("doomed")
    await until(
        lambda: (
            status(store, eid) is S.FAILED
            and store.executions.get(eid).end_time is not None
            and not service.executor.running
        ),
        what="final FAILED",
    )
    rec = store.executions.get(eid)
    assert rec.retry_count == 2
    assert "injected failure 3 at record 30" in (rec.error_message or "")
    assert "RetriableConnectorError" in (rec.error_stack_trace or "")
    assert (tmp_path / "attempts").read_text() == "3"


async def test_pause_stops_reading_and_resume_loses_nothing(
    service: PipelineService, store: MetadataStore, tmp_path: Path
) -> None:
    store.registry.register(
        counter_job("slow", tmp_path / "out", count=300, batch=5, delay=0.02, streaming=True)
    )
    eid = service.scheduler.trigger_job("slow")
    await until(
        lambda: (
            eid in service.executor.running
            and service.executor.running[eid].metrics.records_read >= 20
        ),
        what="reading",
    )
    await service.executor.pause(eid)
    await asyncio.sleep(0.2)
    h = service.executor.running[eid]
    read = h.metrics.records_read
    await asyncio.sleep(0.6)
    assert h.metrics.records_read == read  # nothing pulled while paused
    assert store.executions.get(eid).paused and status(store, eid) in (S.RUNNING, S.CHECKPOINTING)
    await service.executor.resume(eid)
    await until(lambda: status(store, eid) is S.COMPLETED, what="COMPLETED after resume")
    assert output(tmp_path / "out") == list(range(300))
    notes = [t.message for t in store.executions.transitions(eid)]
    assert "paused" in notes and "resumed" in notes


async def test_cancel_ends_cancelled(
    service: PipelineService, store: MetadataStore, tmp_path: Path
) -> None:
    store.registry.register(counter_job("endless", tmp_path / "out", count=10**9, delay=0.01))
    eid = service.scheduler.trigger_job("endless")
    await until(lambda: status(store, eid) is S.RUNNING, what="RUNNING")
    await service.executor.cancel(eid)
    await until(lambda: status(store, eid) is S.CANCELLED, what="CANCELLED")
    assert not service.executor.running


async def test_a_request_from_another_process_cancels(
    service: PipelineService, store: MetadataStore, tmp_path: Path
) -> None:
    store.registry.register(counter_job("endless2", tmp_path / "out", count=10**9, delay=0.01))
    eid = service.scheduler.trigger_job("endless2")
    await until(lambda: status(store, eid) is S.RUNNING, what="RUNNING")
    other = MetadataStore.open(store.url)  # as a second process would
    other.executions.request_control(eid, "cancel")
    await until(lambda: status(store, eid) is S.CANCELLED, what="CANCELLED via the DB")
    other.close()


async def test_event_trigger_from_a_plugin_fires_the_job(
    service: PipelineService, store: MetadataStore, tmp_path: Path
) -> None:
    store.registry.register(counter_job("on-event", tmp_path / "out", count=10))
    service.scheduler.schedule(
        "on-event",
        ScheduleConfig(type=ScheduleType.EVENT, event_trigger="memory", event_topic="go"),
    )
    await service.scheduler.refresh_event_triggers()
    await until(lambda: memory_trigger.MemoryTrigger._queues.get("go"), what="listener")
    assert memory_trigger.MemoryTrigger.publish("go", b"{}") == 1
    await until(
        lambda: [r.status for r in store.executions.query(job="on-event")] == [S.COMPLETED],
        what="the event's execution",
    )
    rec = store.executions.query(job="on-event")[0]
    assert rec.triggered_by == "EVENT"
    assert "event on memory:go (#1)" in store.executions.transitions(rec.execution_id)[0].message


async def test_dependency_chain_runs_in_order(
    service: PipelineService, store: MetadataStore, tmp_path: Path
) -> None:
    store.registry.register(counter_job("a", tmp_path / "a", count=30, delay=0.01))
    for name, upstream in (("b", "a"), ("c", "b")):
        store.registry.register(
            {
                **counter_job(name, tmp_path / name, count=30, delay=0.01),
                "schedule": {"type": "DEPENDENCY", "dependencies": [upstream]},
            }
        )
    service.scheduler.trigger_job("a")
    await until(
        lambda: all(
            [r.status for r in store.executions.query(job=j)] == [S.COMPLETED] for j in "abc"
        ),
        what="a, b and c completed",
    )
    a, b, c = (store.executions.query(job=j)[0] for j in "abc")
    assert a.end_time <= b.start_time and b.end_time <= c.start_time
    assert (b.triggered_by, c.triggered_by) == ("DEPENDENCY", "DEPENDENCY")


async def test_cron_schedule_fires_in_the_service(
    service: PipelineService, store: MetadataStore, tmp_path: Path
) -> None:
    store.registry.register(
        {
            **counter_job("ticker", tmp_path / "out", count=5),
            "schedule": {"type": "CRON", "cron": "* * * * * *"},  # every second
            "config": {"allow_concurrent": True},
        }
    )
    await until(
        lambda: (
            len([r for r in store.executions.query(job="ticker") if r.status is S.COMPLETED]) >= 2
        ),
        what="two cron runs",
    )
    ticks = [r.scheduled_time for r in store.executions.query(job="ticker")]
    assert len(set(ticks)) == len(ticks)  # one execution per tick
    assert all(t.microsecond == 0 for t in ticks)


async def test_graceful_stop_hands_over_at_a_checkpoint(
    store: MetadataStore, tmp_path: Path
) -> None:
    plugins = load_plugins(extra=[flaky_plugin])
    store.registry.register(
        counter_job("long", tmp_path / "out", count=400, batch=5, delay=0.01, streaming=True)
    )

    def make(name: str) -> PipelineService:
        return PipelineService(
            store,
            plugins,
            instance=name,
            checkpoint_url=str(tmp_path / "cp"),
            heartbeat_interval=0.2,
            lease=dt.timedelta(seconds=2),
            scheduler_tick=0.1,
        )

    first = make("first")
    await first.start()
    eid = first.scheduler.trigger_job("long")
    await until(
        lambda: (
            eid in first.executor.running and first.executor.running[eid].metrics.records_read >= 50
        ),
        what="progress",
    )
    await first.stop(graceful=True)
    rec = store.executions.get(eid)
    assert (rec.status, rec.owner_instance) == (S.SCHEDULED, None)
    assert store.checkpoints.latest_completed_of_execution(eid) is not None
    assert "stopped after checkpoint" in store.executions.transitions(eid)[-2].message
    second = make("second")
    await second.start()
    try:
        await until(lambda: status(store, eid) is S.COMPLETED, what="resumed elsewhere")
    finally:
        await second.stop(graceful=False)
    assert output(tmp_path / "out") == list(range(400))
    assert store.executions.get(eid).owner_instance == "second"


async def test_sqlite_refuses_a_second_live_instance(tmp_path: Path) -> None:
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'meta.db'}")
    plugins = load_plugins(entry_points=False)
    first = PipelineService(store, plugins, instance="one")
    await first.start()
    try:
        second = PipelineService(store, plugins, instance="two")
        with pytest.raises(SingleInstanceError, match="SQLite supports one instance"):
            await second.start()
    finally:
        await first.stop()
    third = PipelineService(store, plugins, instance="three")  # the first one stopped
    await third.start()
    await third.stop()
    store.close()
