"""Schedules and trigger firing in the database (every backend the metadata store
supports: SQLite, PostgreSQL, MySQL/MariaDB), with injected clocks."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from pipeline_core import ExecutionStatus as S
from pipeline_core.config.converter import FieldError
from pipeline_core.errors import JobAlreadyRunning, JobDisabled
from pipeline_core.model.cron import Cron
from pipeline_core.model.schedule import ScheduleConfig, ScheduleType
from pipeline_core.store import MetadataStore

T0 = dt.datetime(2026, 11, 28, 10, 0, 0)


@pytest.fixture
def db_url(every_db_url: str) -> str:
    """The schedules' claims (SKIP LOCKED) and trigger times on every metadata backend."""
    return every_db_url


def job(name: str, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "source": {"type": "file", "config": {"path": "in.jsonl"}},
        "sink": {"type": "file", "config": {"path": "out"}},
        **extra,
    }


def cron(expr: str, tz: str = "UTC") -> ScheduleConfig:
    return ScheduleConfig(type=ScheduleType.CRON, cron=expr, timezone=tz)


def test_cron_next_times_follow_the_time_zone_and_dst() -> None:
    berlin = Cron("30 2 * * *", "Europe/Berlin")
    # winter: 02:30 CET = 01:30 UTC
    assert berlin.next_after(dt.datetime(2026, 1, 10, 0, 0)) == dt.datetime(2026, 1, 10, 1, 30)
    # 2026-03-29 has no 02:30 in Berlin: it runs at the first moment after the gap
    assert berlin.next_after(dt.datetime(2026, 3, 28, 23, 0)) == dt.datetime(2026, 3, 29, 1, 0)
    # summer: 02:30 CEST = 00:30 UTC
    assert berlin.next_after(dt.datetime(2026, 7, 1, 0, 0)) == dt.datetime(2026, 7, 1, 0, 30)
    seconds = Cron("*/5 * * * * *")
    assert seconds.next_after(T0) == T0 + dt.timedelta(seconds=5)
    with pytest.raises(FieldError, match="expected 5"):
        Cron("* * *")


def test_a_definition_with_a_schedule_block_sets_the_schedule(store: MetadataStore) -> None:
    store.registry.register(job("nightly", schedule={"type": "CRON", "cron": "0 3 * * *"}))
    rec = store.schedules.get("nightly")
    assert rec is not None and rec.config.type is ScheduleType.CRON
    assert rec.next_trigger_time is not None and rec.next_trigger_time.hour == 3
    assert store.schedules.next_trigger_time("nightly") == rec.next_trigger_time
    store.schedules.put("nightly", ScheduleConfig(type=ScheduleType.MANUAL))
    assert store.schedules.next_trigger_time("nightly") is None
    assert store.schedules.delete("nightly") and store.schedules.get("nightly") is None


def test_each_due_tick_fires_once_and_missed_ticks_fire_once(store: MetadataStore) -> None:
    store.registry.register(job("every-minute"))
    store.schedules.put("every-minute", cron("* * * * *"))
    sched = store.schedules
    # pretend the schedule was set at T0 (next tick T0+1min), then the service was down
    # for ten minutes: one execution, for the oldest missed tick, and the next tick is
    # in the future
    from sqlalchemy import update

    from pipeline_core.store import models as m

    with store.engine.begin() as conn:
        conn.execute(update(m.JobSchedule).values(next_trigger_time=T0 + dt.timedelta(minutes=1)))
    assert sched.fire_due_cron(now=T0) == []
    fired = sched.fire_due_cron(now=T0 + dt.timedelta(minutes=10, seconds=30))
    assert [(f.job_name, f.scheduled_time, f.skipped) for f in fired] == [
        ("every-minute", T0 + dt.timedelta(minutes=1), None)
    ]
    assert sched.get("every-minute").next_trigger_time == T0 + dt.timedelta(minutes=11)
    assert sched.fire_due_cron(now=T0 + dt.timedelta(minutes=10, seconds=40)) == []
    # the next tick finds the first execution still SCHEDULED: recorded as skipped
    again = sched.fire_due_cron(now=T0 + dt.timedelta(minutes=11))
    assert len(again) == 1 and again[0].skipped and fired[0].execution_id in again[0].skipped
    skipped = store.executions.get(again[0].execution_id)
    assert skipped.status is S.CANCELLED and "still active" in (skipped.error_message or "")
    assert skipped.triggered_by == "CRON"


def test_concurrent_firing_from_many_threads_fires_each_tick_once(store: MetadataStore) -> None:
    for i in range(5):
        store.registry.register(job(f"j{i}"))
        store.schedules.put(f"j{i}", cron("* * * * *"))
    now = dt.datetime.utcnow() + dt.timedelta(minutes=2)
    results: list[int] = []
    errors: list[BaseException] = []

    def fire() -> None:
        try:
            results.append(len(store.schedules.fire_due_cron(now=now)))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=fire) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(results) == 5
    assert len(store.executions.query(limit=100)) == 5


def test_disabled_jobs_never_run(store: MetadataStore) -> None:
    store.registry.register(job("off"))
    store.schedules.put("off", cron("* * * * *"))
    store.registry.disable("off")
    assert store.schedules.fire_due_cron(now=dt.datetime.utcnow() + dt.timedelta(minutes=5)) == []
    with pytest.raises(JobDisabled, match="job 'off' is disabled"):
        store.schedules.trigger("off")
    assert store.executions.query(job="off") == []


def test_manual_trigger_refuses_overlap_unless_allowed(store: MetadataStore) -> None:
    store.registry.register(job("single"))
    store.registry.register(job("multi", config={"allow_concurrent": True}))
    first = store.schedules.trigger("single")
    with pytest.raises(JobAlreadyRunning, match=first.execution_id):
        store.schedules.trigger("single")
    statuses = sorted(r.status for r in store.executions.query(job="single"))
    assert statuses == [S.CANCELLED, S.SCHEDULED]
    a = store.schedules.trigger("multi")
    b = store.schedules.trigger("multi")
    assert a.skipped is None and b.skipped is None


def test_dependency_fires_when_all_upstream_completed_since_last_run(
    store: MetadataStore,
) -> None:
    for name in ("a", "b", "c"):
        store.registry.register(job(name))
    store.schedules.put("c", ScheduleConfig(type=ScheduleType.DEPENDENCY, dependencies=("a", "b")))
    ex, sched = store.executions, store.schedules

    def complete(name: str) -> None:
        eid = sched.trigger(name).execution_id
        for status in (S.INITIALIZING, S.RUNNING, S.COMPLETED):
            ex.transition(eid, status)

    complete("a")
    assert sched.fire_dependencies() == []  # b has not run yet
    complete("b")
    fired = sched.fire_dependencies()
    assert [f.job_name for f in fired] == ["c"] and fired[0].triggered_by == "DEPENDENCY"
    assert sched.fire_dependencies() == []  # nothing new since c's last trigger
    complete("a")
    assert sched.fire_dependencies() == []  # b again too
