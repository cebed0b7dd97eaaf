"""Checkpoints in-process: triggers, what a checkpoint holds, exact restore of state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline_core import PipelineJob
from pipeline_core.checkpoint import CheckpointStorage, InMemoryCheckpointRepository
from pipeline_core.runtime.runner import Checkpointing
from pipeline_core.testing import ListSink, MemorySource, run

RECORDS = [{"user": f"u{i % 7}", "amount": i} for i in range(1000)]


def count_and_sum(record: dict[str, Any], state: Any) -> dict[str, Any]:
    count, total = state.value("count", 0), state.value("sum", 0)
    count.update(count.value() + 1)
    total.update(total.value() + record["amount"])
    return {
        "user": record["user"],
        "n": record["amount"],
        "count": count.value(),
        "sum": total.value(),
    }


def job(sink: ListSink, backend: str, **config: Any) -> PipelineJob:
    return (
        PipelineJob.builder()
        .name("keyed")
        .source(MemorySource.of(RECORDS, batch_size=25))
        .transform(lambda s: s.key_by(lambda r: r["user"]).map(count_and_sum).batch(3))
        .sink(sink)
        .config(state_backend=backend, **config)
        .build()
    )


@pytest.fixture(params=["memory", "lmdb"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_record_count_trigger_and_state_data(backend: str, tmp_path: Path) -> None:
    repo, storage = InMemoryCheckpointRepository(), CheckpointStorage(str(tmp_path / "chk"))
    sink = ListSink()
    result = run(
        job(sink, backend, checkpoint_every_records=100, checkpoint_retention=20),
        checkpointing=Checkpointing(repository=repo, storage=storage),
    )
    done = [r for r in reversed(repo.list("keyed")) if r.status == "COMPLETED"]
    # 10 record-count checkpoints, and a final one: batch(3) flushed its remainder at the end
    assert [r.checkpoint_id for r in done] == list(range(1, 12)) == list(result.checkpoints)
    first = done[0]
    assert first.checkpoint_type == "ROLLER"
    assert first.state_data["source_state"] == {"index": 100}
    assert first.state_data["operator_state"]["backend"] == backend
    assert first.state_data["operator_state"]["operators"] == ["transform step 2 (batch)"]
    assert first.storage_path is not None and Path(first.storage_path).is_dir()
    assert done[-1].state_data["source_state"] == {"index": 1000}
    assert len(sink.committed) == 334  # 1000 records in lists of 3


def test_restore_continues_exactly(backend: str, tmp_path: Path) -> None:
    repo, storage = InMemoryCheckpointRepository(), CheckpointStorage(str(tmp_path / "chk"))
    reference = ListSink()
    run(job(reference, backend), checkpointing=Checkpointing(repository=repo, storage=storage))

    repo2 = InMemoryCheckpointRepository()
    first = ListSink()
    run(
        job(first, backend, checkpoint_every_records=100, checkpoint_retention=20),
        checkpointing=Checkpointing(repository=repo2, storage=storage),
    )
    for chk in [c for c in repo2.list("keyed") if c.status == "COMPLETED"]:
        committed_at_chk = chk.state_data["sink_state"][0]["written"]
        resumed = ListSink()
        run(
            job(resumed, backend),
            checkpointing=Checkpointing(
                repository=InMemoryCheckpointRepository(), storage=storage, restore_from=chk
            ),
        )
        # what was committed up to the checkpoint, then what the resumed run wrote
        assert first.written[:committed_at_chk] + resumed.committed == reference.committed, (
            chk.checkpoint_id
        )


def test_manual_checkpoint_and_savepoint(tmp_path: Path) -> None:
    repo, storage = InMemoryCheckpointRepository(), CheckpointStorage(str(tmp_path / "chk"))
    seen: list[Any] = []

    def on_coordinator(c: Any) -> None:
        seen.append(c)
        c.request()
        c.request(savepoint="before-upgrade")

    import asyncio

    from pipeline_core import load_plugins, prepare
    from pipeline_core.runtime.runner import execute

    plugins = load_plugins()
    prepared = prepare(job(ListSink(), "memory"), plugins)
    asyncio.run(
        execute(
            prepared,
            plugins,
            checkpointing=Checkpointing(repository=repo, storage=storage),
            on_coordinator=on_coordinator,
        )
    )
    rows = repo.list("keyed")
    assert any(r.savepoint_name == "before-upgrade" and r.is_savepoint for r in rows)
    assert len([r for r in rows if r.status == "COMPLETED"]) == 3  # manual, savepoint, final
    assert repo.savepoint("keyed", "before-upgrade") is not None
