"""Incremental checkpoints: LMDB deltas, composing them on restore, and retention."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from pipeline_core import PipelineJob
from pipeline_core.checkpoint import CheckpointStorage, InMemoryCheckpointRepository
from pipeline_core.checkpoint.chain import chain_of
from pipeline_core.checkpoint.repository import CheckpointInfo
from pipeline_core.checkpoint.retention import prune
from pipeline_core.errors import CheckpointError
from pipeline_core.runtime.runner import Checkpointing
from pipeline_core.state.lmdb_backend import LmdbStateBackend, LmdbStateConfig
from pipeline_core.testing import ListSink, MemorySource, run


def lmdb(tmp_path: Path, name: str, cache_entries: int = 1 << 18) -> LmdbStateBackend:
    backend = LmdbStateBackend(LmdbStateConfig(cache_entries=cache_entries))
    backend.open(tmp_path / name)
    return backend


def contents(backend: LmdbStateBackend, *namespaces: str) -> dict[str, dict[Any, Any]]:
    return {ns: dict(backend.items(ns)) for ns in namespaces}


def snap(backend: LmdbStateBackend, directory: Path, delta: bool = False) -> int | None:
    directory.mkdir()
    return backend.snapshot_delta(directory) if delta else backend.snapshot(directory)


# --- deltas ----------------------------------------------------------------------------


def test_deltas_hold_only_changes_and_compose_to_each_checkpoint(tmp_path: Path) -> None:
    backend = lmdb(tmp_path, "live", cache_entries=300)  # smaller than the state: evicts
    for k in range(10_000):
        backend.put("op/n", f"key-{k}", k)
        backend.put("op/s", f"key-{k}", str(k))
    full = snap(backend, tmp_path / "base")
    assert full is not None
    states = []
    for step in range(3):
        for k in range(step, 10_000, 100):  # 1 % of the keys
            backend.put("op/n", f"key-{k}", -k)
        backend.delete("op/s", f"key-{step}")
        backend.put("op/new", step, {"step": step})
        size = snap(backend, tmp_path / f"d{step}", delta=True)
        assert size is not None and size < full * 0.05, (size, full)
        states.append(contents(backend, "op/n", "op/s", "op/new"))

    for upto in range(3):
        fresh = lmdb(tmp_path, f"restored-{upto}")
        fresh.restore(tmp_path / "base")
        for step in range(upto + 1):
            fresh.restore_delta(tmp_path / f"d{step}")
        assert contents(fresh, "op/n", "op/s", "op/new") == states[upto], upto
        assert fresh.get("op/s", f"key-{upto}") is None  # the tombstone applied
        fresh.close()


def test_values_a_delta_took_from_the_cache_reach_the_next_full_snapshot(
    tmp_path: Path,
) -> None:
    """A delta writes dirty cached values from memory and leaves LMDB behind; the next
    full snapshot (and a restore of either) must still have them."""
    backend = lmdb(tmp_path, "live")  # no eviction: nothing reaches LMDB before the full
    for k in range(1000):
        backend.put("ns", k, k)
    snap(backend, tmp_path / "base")
    backend.put("ns", 1, "one")
    backend.delete("ns", 2)
    assert snap(backend, tmp_path / "d1", delta=True) is not None
    backend.put("ns", 3, "three")
    assert snap(backend, tmp_path / "d2", delta=True) is not None
    snap(backend, tmp_path / "full")
    expected = {k: k for k in range(1000) if k != 2} | {1: "one", 3: "three"}
    composed = lmdb(tmp_path, "composed")
    composed.restore(tmp_path / "base")
    composed.restore_delta(tmp_path / "d1")
    composed.restore_delta(tmp_path / "d2")
    full = lmdb(tmp_path, "full-restored")
    full.restore(tmp_path / "full")
    assert dict(composed.items("ns")) == dict(full.items("ns")) == expected


def test_a_delta_is_declined_when_most_of_the_state_changed(tmp_path: Path) -> None:
    backend = lmdb(tmp_path, "live")
    for k in range(100):
        backend.put("ns", k, k)
    snap(backend, tmp_path / "base")
    for k in range(60):
        backend.put("ns", k, -k)
    assert snap(backend, tmp_path / "d", delta=True) is None
    assert list((tmp_path / "d").iterdir()) == []  # wrote nothing
    # too many changed keys to remember (more than the cache holds): declined too
    small = lmdb(tmp_path, "small", cache_entries=10)
    for k in range(1000):
        small.put("ns", k, k)
    snap(small, tmp_path / "base2")
    for k in range(20):
        small.put("ns", k, -k)
    assert small._changed is None
    assert snap(small, tmp_path / "d2", delta=True) is None


def test_a_truncated_delta_is_refused(tmp_path: Path) -> None:
    backend = lmdb(tmp_path, "live")
    for k in range(100):
        backend.put("ns", k, k)
    snap(backend, tmp_path / "base")
    backend.put("ns", 1, "changed")
    snap(backend, tmp_path / "d", delta=True)
    data = (tmp_path / "d" / "state.delta").read_bytes()
    (tmp_path / "d" / "state.delta").write_bytes(data[:-3])
    fresh = lmdb(tmp_path, "fresh")
    fresh.restore(tmp_path / "base")
    with pytest.raises(ValueError, match="truncated"):
        fresh.restore_delta(tmp_path / "d")


# --- through the coordinator -------------------------------------------------------------

# 2,000 keys first, then records over 20 of them: later checkpoints change 1 % of the state.
# Integer keys: a str's hash (so the order dirty keys reach LMDB, so the database's
# layout and a full checkpoint's size, so which checkpoints are full) differs per process.
RECORDS = [{"user": i, "amount": i} for i in range(2000)] + [
    {"user": i % 20, "amount": i} for i in range(2000)
]


def count_and_sum(record: dict[str, Any], state: Any) -> dict[str, Any]:
    count, total = state.value("count", 0), state.value("sum", 0)
    count.update(count.value() + 1)
    total.update(total.value() + record["amount"])
    return {"user": record["user"], "count": count.value(), "sum": total.value()}


def job(sink: ListSink, **config: Any) -> PipelineJob:
    return (
        PipelineJob.builder()
        .name("incremental")
        .source(MemorySource.of(RECORDS, batch_size=100))
        .transform(lambda s: s.key_by(lambda r: r["user"]).map(count_and_sum))
        .sink(sink)
        .config(state_backend="lmdb", **config)
        .build()
    )


def completed(repo: InMemoryCheckpointRepository) -> list[CheckpointInfo]:
    """Oldest first."""
    return [r for r in reversed(repo.list("incremental")) if r.status == "COMPLETED"]


def test_checkpoints_are_deltas_and_every_one_restores_exactly(tmp_path: Path) -> None:
    storage = CheckpointStorage(str(tmp_path / "chk"))
    reference = ListSink()
    run(
        job(reference),
        checkpointing=Checkpointing(repository=InMemoryCheckpointRepository(), storage=storage),
    )
    repo, first = InMemoryCheckpointRepository(), ListSink()
    run(
        job(first, checkpoint_every_records=200, checkpoint_retention=100),
        checkpointing=Checkpointing(repository=repo, storage=storage),
    )
    rows = completed(repo)
    assert len(rows) == 20
    kinds = [r.state_data["operator_state"]["incremental"] for r in rows]
    assert kinds[0] is False and kinds[-5:] == [True] * 5, kinds
    for r in rows:
        chain = chain_of(r)
        assert (chain == []) is (not r.state_data["operator_state"]["incremental"])
        if chain:  # base first, then each delta up to the one before this
            assert (
                chain_of(next(x for x in rows if x.checkpoint_id == chain[0]["checkpoint_id"]))
                == []
            )
            assert [m["checkpoint_id"] for m in chain] == list(
                range(chain[0]["checkpoint_id"], r.checkpoint_id)
            )
    last_full = max(r.storage_size_bytes or 0 for r in rows if not chain_of(r))
    assert all((r.storage_size_bytes or 0) < last_full * 0.2 for r in rows[-5:])

    for chk in rows:
        resumed = ListSink()
        run(
            job(resumed),
            checkpointing=Checkpointing(
                repository=InMemoryCheckpointRepository(), storage=storage, restore_from=chk
            ),
        )
        upto = chk.state_data["sink_state"][0]["written"]
        assert first.written[:upto] + resumed.committed == reference.committed, chk.checkpoint_id


def test_a_resumed_run_continues_the_chain(tmp_path: Path) -> None:
    storage, repo = CheckpointStorage(str(tmp_path / "chk")), InMemoryCheckpointRepository()
    run(
        job(ListSink(), checkpoint_every_records=200, checkpoint_retention=100),
        checkpointing=Checkpointing(repository=repo, storage=storage),
    )
    # a delta with room for more deltas on its base
    middle = next(r for r in completed(repo)[10:] if 2 <= len(chain_of(r)) <= 5)
    repo2 = InMemoryCheckpointRepository()
    run(
        job(ListSink(), checkpoint_every_records=200),
        checkpointing=Checkpointing(
            repository=repo2, storage=storage, restore_from=middle, first_checkpoint_id=100
        ),
    )
    after = completed(repo2)[0]
    assert [m["checkpoint_id"] for m in chain_of(after)] == [
        *(m["checkpoint_id"] for m in chain_of(middle)),
        middle.checkpoint_id,
    ]


def test_a_savepoint_is_full(tmp_path: Path) -> None:
    import asyncio

    from pipeline_core import load_plugins, prepare
    from pipeline_core.runtime.runner import execute

    repo, storage = InMemoryCheckpointRepository(), CheckpointStorage(str(tmp_path / "chk"))
    calls = {"n": 0}

    def count_then_savepoint(record: dict[str, Any], state: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 3000:
            coordinator[0].request(savepoint="s")
        return count_and_sum(record, state)

    coordinator: list[Any] = []
    j = attrs.evolve(
        job(ListSink(), checkpoint_every_records=200, checkpoint_retention=100),
        transform=lambda s: s.key_by(lambda r: r["user"]).map(count_then_savepoint),
    )
    plugins = load_plugins()
    asyncio.run(
        execute(
            prepare(j, plugins),
            plugins,
            checkpointing=Checkpointing(repository=repo, storage=storage),
            on_coordinator=coordinator.append,
        )
    )
    saved = repo.savepoint("incremental", "s")
    assert saved is not None and chain_of(saved) == []
    assert saved.state_data["operator_state"]["incremental"] is False


def test_retention_keeps_what_kept_checkpoints_build_on(tmp_path: Path) -> None:
    repo, storage = InMemoryCheckpointRepository(), CheckpointStorage(str(tmp_path / "chk"))
    run(
        job(ListSink(), checkpoint_every_records=200, checkpoint_retention=100),
        checkpointing=Checkpointing(repository=repo, storage=storage),
    )
    newest = completed(repo)[-1]
    needed = {m["checkpoint_id"] for m in chain_of(newest)}
    assert len(needed) >= 3
    prune(repo, storage, "incremental", keep=2)
    left = {r.checkpoint_id for r in completed(repo)}
    second = completed(repo)[-2].checkpoint_id
    assert left == needed | {newest.checkpoint_id, second} | {
        m["checkpoint_id"] for m in chain_of(completed(repo)[-2])
    }
    for r in completed(repo):
        assert r.storage_path is not None and Path(r.storage_path).is_dir()
    # the newest still restores from what is left
    resumed = ListSink()
    run(
        job(resumed),
        checkpointing=Checkpointing(
            repository=InMemoryCheckpointRepository(), storage=storage, restore_from=newest
        ),
    )
    assert resumed.committed == []  # it covered the end of input: nothing left to do
    # a newer full checkpoint frees the old chain
    sink = ListSink()
    run(
        job(sink, checkpoint_every_records=200),
        checkpointing=Checkpointing(repository=repo, storage=storage, first_checkpoint_id=100),
    )
    prune(repo, storage, "incremental", keep=1)
    rows = completed(repo)
    assert [r.checkpoint_id for r in rows] == [
        *(m["checkpoint_id"] for m in chain_of(rows[-1])),
        rows[-1].checkpoint_id,
    ]
    assert all(r.checkpoint_id >= 100 for r in rows)
    assert newest.storage_path is not None and not Path(newest.storage_path).exists()
    assert not Path(chain_of(newest)[0]["path"]).exists()


def test_a_missing_base_is_a_clear_error(tmp_path: Path) -> None:
    import shutil

    repo, storage = InMemoryCheckpointRepository(), CheckpointStorage(str(tmp_path / "chk"))
    run(
        job(ListSink(), checkpoint_every_records=200, checkpoint_retention=100),
        checkpointing=Checkpointing(repository=repo, storage=storage),
    )
    newest = completed(repo)[-1]
    base = chain_of(newest)[0]
    shutil.rmtree(base["path"])
    with pytest.raises(CheckpointError, match=f"built on checkpoints {base['checkpoint_id']}, "):
        run(
            job(ListSink()),
            checkpointing=Checkpointing(
                repository=InMemoryCheckpointRepository(), storage=storage, restore_from=newest
            ),
        )
