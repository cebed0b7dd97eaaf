"""Retention, fsspec storage URLs, and the per-file ("page") trigger."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import attrs
import fsspec
import pytest

from pipeline_core import PipelineJob
from pipeline_core.checkpoint import CheckpointStorage, InMemoryCheckpointRepository, coordinator
from pipeline_core.checkpoint.retention import prune
from pipeline_core.runtime.runner import Checkpointing
from pipeline_core.testing import ListSink, MemorySource, run


def job(sink: ListSink, n: int = 100, **config: object) -> PipelineJob:
    return (
        PipelineJob.builder()
        .name("ret")
        .source(MemorySource.of(list(range(n)), batch_size=10))
        .transform(lambda s: s.distinct())
        .sink(sink)
        .config(**config)
        .build()
    )


def test_retention_keeps_newest_and_savepoints_and_deletes_files_with_rows(tmp_path: Path) -> None:
    repo, storage = InMemoryCheckpointRepository(), CheckpointStorage(str(tmp_path / "chk"))
    run(
        job(ListSink(), checkpoint_every_records=10, checkpoint_retention=100),
        checkpointing=Checkpointing(repository=repo, storage=storage),
    )
    rows = [r for r in repo.list("ret") if r.status == "COMPLETED"]
    assert len(rows) == 10
    # make one of the old ones a savepoint: it must survive
    saved = rows[-2]
    repo.rows[repo._find(saved.execution_id, saved.checkpoint_id)] = attrs.evolve(
        saved, is_savepoint=True, savepoint_name="keep-me"
    )
    deleted = prune(repo, storage, "ret", keep=3)
    assert len(deleted) == 6
    left = [r for r in repo.list("ret")]
    assert [r.checkpoint_id for r in left] == [10, 9, 8, 2]
    for row in deleted:
        assert row.storage_path is not None and not Path(row.storage_path).exists()
    for row in left:
        assert row.storage_path is not None and Path(row.storage_path).exists()


def test_max_age_never_deletes_the_newest(tmp_path: Path) -> None:
    repo, storage = InMemoryCheckpointRepository(), CheckpointStorage(str(tmp_path / "chk"))
    run(
        job(ListSink(), checkpoint_every_records=50),
        checkpointing=Checkpointing(repository=repo, storage=storage),
    )
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=30)
    prune(repo, storage, "ret", keep=10, max_age=dt.timedelta(days=1), now=later)
    assert [r.checkpoint_id for r in repo.list("ret")] == [2]


def test_checkpoints_to_an_fsspec_url(tmp_path: Path) -> None:
    repo = InMemoryCheckpointRepository()
    storage = CheckpointStorage("memory://pipeline-test/checkpoints")
    sink = ListSink()
    run(
        job(sink, checkpoint_every_records=50),
        checkpointing=Checkpointing(repository=repo, storage=storage),
    )
    first = next(r for r in repo.list("ret") if r.checkpoint_id == 1)
    assert first.storage_path is not None and first.storage_path.startswith(
        "/pipeline-test/checkpoints/ret/"
    )
    fs = fsspec.filesystem("memory")
    assert fs.exists(f"{first.storage_path}/_metadata.json")
    resumed = ListSink()
    run(
        job(resumed),
        checkpointing=Checkpointing(
            repository=InMemoryCheckpointRepository(), storage=storage, restore_from=first
        ),
    )
    assert resumed.committed == list(range(50, 100))


def _three_files_job(tmp_path: Path, sink: ListSink) -> tuple[PipelineJob, Checkpointing]:
    for i in range(3):
        (tmp_path / f"{i}.jsonl").write_text(
            "".join(f'{{"n": {i * 100 + j}}}\n' for j in range(25))
        )
    job = (
        PipelineJob.builder()
        .name("pages")
        .source("file", path=str(tmp_path), batch_size=10)
        .sink(sink)
        .build()
    )
    storage = CheckpointStorage(str(tmp_path / ".chk"))
    return job, Checkpointing(repository=InMemoryCheckpointRepository(), storage=storage)


def _positions(checkpointing: Checkpointing) -> list[tuple[str, int]]:
    return [
        (Path(r.state_data["source_state"]["file"]).name, r.state_data["source_state"]["line"])
        for r in reversed(checkpointing.repository.list("pages"))
    ]


def test_each_completed_file_triggers_a_checkpoint_while_checkpoints_are_cheap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a share of 1: checkpoints may take all the time, so every page end gets one
    monkeypatch.setattr(coordinator, "PAGE_CHECKPOINT_SHARE", 1.0)
    sink = ListSink()
    job, checkpointing = _three_files_job(tmp_path, sink)
    run(job, checkpointing=checkpointing)
    # one per completed file; the last covers the end of input, so no extra final one
    assert _positions(checkpointing) == [("0.jsonl", 25), ("1.jsonl", 25), ("2.jsonl", 25)]
    assert len(sink.committed) == 75


def test_page_ends_soon_after_a_costly_checkpoint_are_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a share near 0: after the first checkpoint every page end comes too soon; the end
    # of input still checkpoints everything
    monkeypatch.setattr(coordinator, "PAGE_CHECKPOINT_SHARE", 1e-9)
    sink = ListSink()
    job, checkpointing = _three_files_job(tmp_path, sink)
    run(job, checkpointing=checkpointing)
    assert _positions(checkpointing) == [("0.jsonl", 25), ("2.jsonl", 25)]
    assert len(sink.committed) == 75
