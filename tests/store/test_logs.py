"""Execution log lines in the metadata database (every backend): numbered per execution,
the newest ``keep`` kept, read as a tail or after a seq, never written by a lost owner."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from pipeline_core import ExecutionNotFound
from pipeline_core.store import MetadataStore
from pipeline_core.store import models as m

JOB = {
    "name": "orders",
    "source": {"type": "file", "config": {"path": "in.jsonl"}},
    "sink": {"type": "file", "config": {"path": "out"}},
}
T0 = dt.datetime(2026, 12, 5, 10, 0, 0, 123456)


def lines(start: int, n: int) -> list[tuple[dt.datetime, str, str, str]]:
    return [
        (T0 + dt.timedelta(seconds=i), "INFO", "orders.fns", f"line {i} — ünïcode")
        for i in range(start, start + n)
    ]


def stored(store: MetadataStore, execution_id: str) -> int:
    g = m.ExecutionLog
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(g).where(g.execution_id == execution_id)
            ).scalar()
            or 0
        )


def test_lines_are_numbered_kept_bounded_and_read_back(store: MetadataStore) -> None:
    store.registry.register(JOB)
    owner = store.executions.create("orders", "e-1").owner_instance
    other = store.executions.create("orders", "e-2")
    logs = store.logs
    assert logs.append("e-1", lines(0, 30), keep=50, attempt=1, owner=owner) == 30
    assert logs.append("e-1", lines(30, 40), keep=50, attempt=2, owner=owner) == 40
    # the newest 50 of 70 stay, numbered on from 1 across the batches
    assert stored(store, "e-1") == 50
    tail = logs.tail("e-1", limit=500)
    assert tail.last_seq == 70
    assert [r.seq for r in tail.lines] == list(range(21, 71))
    first = tail.lines[0]
    assert (first.attempt, first.level, first.logger) == (1, "INFO", "orders.fns")
    assert first.message == "line 20 — ünïcode"
    assert first.time == T0 + dt.timedelta(seconds=20)  # microseconds kept (MariaDB too)
    assert tail.lines[-1].attempt == 2
    # the newest few; then the oldest after a seq
    assert [r.seq for r in logs.tail("e-1", limit=3).lines] == [68, 69, 70]
    assert [r.seq for r in logs.tail("e-1", after=30, limit=3).lines] == [31, 32, 33]
    assert logs.tail("e-1", after=70).lines == []
    # a batch larger than the bound keeps only its newest lines
    assert logs.append("e-1", lines(70, 120), keep=50, owner=owner) == 50
    assert stored(store, "e-1") == 50
    assert logs.tail("e-1").last_seq == 120
    # other executions are untouched; an execution without lines is an empty tail
    assert logs.tail(other.execution_id).lines == []
    assert logs.tail(other.execution_id).last_seq == 0
    with pytest.raises(ExecutionNotFound):
        logs.tail("nope")


def test_a_lost_owner_writes_no_lines(store: MetadataStore) -> None:
    store.registry.register(JOB)
    store.executions.create("orders", "e-1", owner_instance="a:1")
    assert store.logs.append("e-1", lines(0, 3), keep=10, owner="b:2") == 0
    assert store.logs.append("e-1", lines(0, 3), keep=10, owner="a:1") == 3
    assert store.logs.append("nope", lines(0, 3), keep=10) == 0
    assert store.logs.append("e-1", lines(0, 3), keep=0) == 0
    assert stored(store, "e-1") == 3
