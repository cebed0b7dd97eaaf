"""State API and backends: semantics, serializers, and 1,000,000-key snapshot/restore."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline_core.state.api import StateManager
from pipeline_core.state.backend import StateBackend, StateBackendConfig
from pipeline_core.state.lmdb_backend import LmdbStateBackend, LmdbStateConfig
from pipeline_core.state.memory import MemoryStateBackend


def make(kind: str, tmp_path: Path, serializer: str = "pickle") -> StateBackend:  # type: ignore[type-arg]
    backend: StateBackend = (  # type: ignore[type-arg]
        MemoryStateBackend(StateBackendConfig(serializer=serializer))  # type: ignore[arg-type]
        if kind == "memory"
        else LmdbStateBackend(LmdbStateConfig(serializer=serializer))  # type: ignore[arg-type]
    )
    backend.open(tmp_path / f"work-{kind}-{time.monotonic_ns()}")
    return backend


@pytest.fixture(params=["memory", "lmdb"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_value_list_map_state_per_key(kind: str, tmp_path: Path) -> None:
    state = StateManager(make(kind, tmp_path)).keyed("op")
    for key in ("alice", "bob"):
        state._set_key(key)
        state.value("count", 0).update(len(key))
        state.list("seen").add(1)
        state.list("seen").add(2)
        state.map("totals").put("eur", 10)
        state.map("totals").put("usd", 5)
        state.map("totals").remove("usd")
    state._set_key("alice")
    assert state.value("count", 0).value() == 5
    assert state.list("seen").get() == [1, 2]
    assert dict(state.map("totals").entries()) == {"eur": 10}
    assert state.map("totals").contains("eur") and not state.map("totals").contains("usd")
    state.value("count").clear()
    assert state.value("count", 0).value() == 0
    state._set_key("bob")
    assert state.value("count", 0).value() == 3  # other keys untouched
    state._set_key("carol")
    assert state.value("count", 42).value() == 42 and state.list("seen").get() == []


@pytest.mark.parametrize("serializer", ["pickle", "json"])
def test_snapshot_and_restore_one_million_keys(kind: str, serializer: str, tmp_path: Path) -> None:
    backend = make(kind, tmp_path, serializer)
    n = 1_000_000
    for i in range(n):
        backend.put("op/count", f"user-{i}", i)
    backend.put("op/tuple-keys", ("a", 1), {"nested": [1, 2]})
    snap = tmp_path / f"snap-{kind}-{serializer}"
    snap.mkdir()
    size = backend.snapshot(snap)
    assert size > 1_000_000
    backend.put("op/count", "user-7", -1)  # changes after the snapshot are not in it
    backend.put("op/count", "late", 1)

    fresh = make(kind, tmp_path, serializer)
    fresh.restore(snap)
    assert fresh.get("op/count", "user-7") == 7
    assert fresh.get("op/count", "late") is None
    assert fresh.get("op/count", f"user-{n - 1}") == n - 1
    items = dict(fresh.items("op/count"))
    assert len(items) == n and items["user-123456"] == 123456
    # tuple keys survive JSON too (the memory backend turns lists back into tuples)
    assert fresh.get("op/tuple-keys", ("a", 1)) == {"nested": [1, 2]}
    fresh.close()
    backend.close()


def test_restore_replaces_everything(kind: str, tmp_path: Path) -> None:
    a = make(kind, tmp_path)
    a.put("ns", "k", 1)
    snap = tmp_path / "snap"
    snap.mkdir()
    a.snapshot(snap)
    b = make(kind, tmp_path)
    b.put("ns", "other", 2)
    b.restore(snap)
    assert dict(b.items("ns")) == {"k": 1}
