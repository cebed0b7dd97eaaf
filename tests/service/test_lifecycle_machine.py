"""The lifecycle state machine: legal edges pass, illegal ones are refused, on both DBs."""

from __future__ import annotations

import itertools

import pytest

from pipeline_core import ExecutionStatus as S
from pipeline_core.errors import LifecycleError
from pipeline_core.runtime.lifecycle import TRANSITIONS, can_transition, check_transition
from pipeline_core.store import MetadataStore

JOB = {
    "name": "orders",
    "source": {"type": "file", "config": {"path": "in.jsonl"}},
    "sink": {"type": "file", "config": {"path": "out"}},
}

ORIGINAL_EDGES = {
    (S.REGISTERED, S.SCHEDULED),
    (S.SCHEDULED, S.INITIALIZING),
    (S.INITIALIZING, S.RUNNING),
    (S.INITIALIZING, S.FAILED),
    (S.RUNNING, S.CHECKPOINTING),
    (S.CHECKPOINTING, S.RUNNING),
    (S.CHECKPOINTING, S.FAILED),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.FAILED, S.SCHEDULED),
}
#: cancelling before the run started (documented in runtime/lifecycle.py)
ADDED_EDGES = {(S.SCHEDULED, S.CANCELLED), (S.INITIALIZING, S.CANCELLED)}


def test_the_machine_is_the_original_design_plus_two_cancel_edges() -> None:
    edges = {(a, b) for a, targets in TRANSITIONS.items() if a is not None for b in targets}
    assert edges == ORIGINAL_EDGES | ADDED_EDGES
    for a, b in itertools.product(S, S):
        assert can_transition(a, b) == ((a, b) in edges)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.COMPLETED, S.RUNNING),
        (S.CANCELLED, S.SCHEDULED),
        (S.SCHEDULED, S.RUNNING),
        (S.CHECKPOINTING, S.COMPLETED),
        (S.RUNNING, S.SCHEDULED),
        (S.FAILED, S.RUNNING),
    ],
)
def test_illegal_transitions_are_refused_and_named(current: S, target: S) -> None:
    with pytest.raises(LifecycleError, match=f"illegal transition {current} → {target}"):
        check_transition(current, target, "e-1")


def test_store_refuses_illegal_transitions_and_keeps_every_legal_one(
    store: MetadataStore,
) -> None:
    store.registry.register(JOB)
    ex = store.executions
    ex.create("orders", "e-1")
    with pytest.raises(LifecycleError, match="SCHEDULED → RUNNING"):
        ex.transition("e-1", S.RUNNING)
    path = [S.INITIALIZING, S.RUNNING, S.CHECKPOINTING, S.RUNNING, S.FAILED, S.SCHEDULED]
    path += [S.INITIALIZING, S.RUNNING, S.COMPLETED]
    for status in path:
        ex.transition("e-1", status)
    with pytest.raises(LifecycleError, match="COMPLETED → RUNNING"):
        ex.transition("e-1", S.RUNNING)
    history = ex.transitions("e-1")
    assert [t.to_status for t in history] == [S.SCHEDULED, *path]
    assert [t.from_status for t in history] == [None, S.SCHEDULED, *path[:-1]]
    times = [t.time for t in history]
    assert times == sorted(times)
    record = ex.get("e-1")
    assert record.status is S.COMPLETED and record.end_time is not None


def test_finish_leaves_an_abandoned_checkpoint_through_running(store: MetadataStore) -> None:
    store.registry.register(JOB)
    ex = store.executions
    ex.create("orders", "e-2")
    for status in (S.INITIALIZING, S.RUNNING, S.CHECKPOINTING):
        ex.transition("e-2", status)
    ex.finish("e-2", S.CANCELLED, message="cancelled")
    assert [t.to_status for t in ex.transitions("e-2")][-2:] == [S.RUNNING, S.CANCELLED]


def test_a_write_by_an_instance_that_lost_the_execution_is_refused(
    store: MetadataStore,
) -> None:
    from pipeline_core.store.executions import LostOwnership

    store.registry.register(JOB)
    ex = store.executions
    ex.create("orders", "e-3", owner_instance="a")
    ex.transition("e-3", S.INITIALIZING, owner="a")
    with pytest.raises(LostOwnership, match="owned by 'a'"):
        ex.transition("e-3", S.RUNNING, owner="b")
    assert ex.get("e-3").status is S.INITIALIZING
