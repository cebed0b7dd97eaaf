"""Execution records on both databases."""

from __future__ import annotations

import pytest

from pipeline_core import ExecutionNotFound, ExecutionStatus, JobNotFound, JobResult
from pipeline_core.store import MetadataStore

JOB = {
    "name": "orders",
    "source": {"type": "file", "config": {"path": "in.jsonl"}},
    "sink": {"type": "file", "config": {"path": "out"}},
}
S = ExecutionStatus


def result(status: ExecutionStatus, error: str | None = None) -> JobResult:
    return JobResult(
        job_name="orders",
        execution_id="x",
        status=status,
        records_read=120,
        records_written=100,
        failed_records=3,
        dropped_records=0,
        duration_s=1.5,
        error=error,
        error_trace="Traceback...\nValueError: boom" if error else None,
    )


def test_lifecycle_is_recorded_with_times_counts_and_errors(store: MetadataStore) -> None:
    store.registry.register(JOB)
    ex = store.executions
    rec = ex.create("orders", "e-1", triggered_by="MANUAL")
    assert (rec.status, rec.job_version, rec.triggered_by, rec.retry_count) == (
        S.SCHEDULED,
        1,
        "MANUAL",
        0,
    )
    ex.transition("e-1", S.INITIALIZING)
    ex.transition("e-1", S.RUNNING)
    owned, _ = store.ownership.beat(rec.owner_instance or "", {"e-1": (50, 1, 50, 1)})
    assert owned == {"e-1"}
    assert ex.get("e-1").processed_records == 50
    done = ex.transition(
        "e-1", S.FAILED, message="boom", result=result(S.FAILED, "ValueError: boom")
    )
    assert done.status is S.FAILED
    assert (done.processed_records, done.failed_records) == (120, 3)
    assert done.error_message == "ValueError: boom"
    assert done.error_stack_trace is not None and "Traceback" in done.error_stack_trace
    assert done.end_time is not None and done.duration_ms is not None and done.duration_ms >= 0
    steps = [(t.from_status, t.to_status) for t in ex.transitions("e-1")]
    assert steps == [
        (None, "SCHEDULED"),
        ("SCHEDULED", "INITIALIZING"),
        ("INITIALIZING", "RUNNING"),
        ("RUNNING", "FAILED"),
    ]
    times = [t.time for t in ex.transitions("e-1")]
    assert times == sorted(times)


def test_queries_by_job_and_status_newest_first(store: MetadataStore) -> None:
    store.registry.register(JOB)
    store.registry.register({**JOB, "name": "other"})
    ex = store.executions
    for i, (job, final) in enumerate(
        [
            ("orders", S.COMPLETED),
            ("other", S.COMPLETED),
            ("orders", S.FAILED),
            ("orders", S.COMPLETED),
        ]
    ):
        ex.create(job, f"e-{i}")
        ex.transition(f"e-{i}", S.INITIALIZING)
        ex.transition(f"e-{i}", S.RUNNING)
        ex.transition(f"e-{i}", final, result=result(final))
    assert [r.execution_id for r in ex.query(job="orders")] == ["e-3", "e-2", "e-0"]
    assert [r.execution_id for r in ex.query(status=S.COMPLETED)] == ["e-3", "e-1", "e-0"]
    assert [r.execution_id for r in ex.query(job="orders", status="FAILED")] == ["e-2"]
    assert len(ex.query(limit=2)) == 2


def test_execution_of_unknown_job_or_id(store: MetadataStore) -> None:
    with pytest.raises(JobNotFound, match="no job named 'ghost'"):
        store.executions.create("ghost", "e-1")
    with pytest.raises(ExecutionNotFound, match="no execution 'nope'"):
        store.executions.get("nope")
