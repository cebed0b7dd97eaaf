"""Event-time windows: exact results with out-of-order input, sliding windows, lateness,
per-partition watermarks with idle partitions, and window contents across a crash."""

from __future__ import annotations

import asyncio
import collections
import random
from pathlib import Path
from typing import Any

import pytest

from pipeline_core import ExecutionStatus, PipelineJob, Stream, execute, load_plugins, prepare
from pipeline_core.checkpoint.repository import InMemoryCheckpointRepository
from pipeline_core.checkpoint.storage import CheckpointStorage
from pipeline_core.runtime.runner import Checkpointing
from pipeline_core.testing import ABORT, ListSink, MemorySource, run


def add(acc: int, r: dict[str, Any]) -> int:
    return acc + r["n"]


def events(count: int, *, keys: int = 5, disorder_ms: int = 2000, seed: int = 7) -> list[Any]:
    """Records 1 s apart in event time, shuffled by up to ``disorder_ms``."""
    rnd = random.Random(seed)
    out = [
        {"k": f"k{i % keys}", "ts": i * 1000 + rnd.randint(0, disorder_ms), "n": i}
        for i in range(count)
    ]
    out.sort(key=lambda r: r["ts"] + rnd.randint(-disorder_ms, disorder_ms))
    return out


def expected(records: list[Any], size: int, slide: int) -> dict[tuple[str, int], int]:
    want: dict[tuple[str, int], int] = collections.Counter()
    for r in records:
        last = r["ts"] // slide * slide
        for start in range(last, last - size, -slide):
            if start <= r["ts"] < start + size:
                want[(r["k"], start)] += r["n"]
    return dict(want)


def windowed(transform: Any, records: list[Any], **config: Any) -> list[Any]:
    sink = ListSink()
    job = (
        PipelineJob.builder()
        .name("w")
        .type("STREAMING")
        .source(MemorySource.of(records, batch_size=50))
        .transform(transform)
        .sink(sink)
        .config(**config)
        .build()
    )
    run(job, load_plugins(entry_points=False))
    return sink.written


@pytest.mark.parametrize(("size", "slide"), [(10_000, None), (10_000, 5_000), (6_000, 2_000)])
def test_out_of_order_input_gives_exact_windows(size: int, slide: int | None) -> None:
    records = events(2000)
    out = windowed(
        lambda s: s.key_by(lambda r: r["k"]).window(
            size, slide=slide, timestamp="ts", aggregate=add, initial=0, out_of_orderness="4s"
        ),
        records,
    )
    got = {(r["key"], r["window_start"]): r["value"] for r in out}
    assert len(got) == len(out)  # each window emitted once
    assert got == expected(records, size, slide or size)
    assert all(r["window_end"] - r["window_start"] == size for r in out)


def test_windows_fire_as_the_watermark_passes_not_at_the_end() -> None:
    records = [{"k": "a", "ts": t, "n": 1} for t in range(0, 60_000, 500)]
    seen: list[int] = []

    def mark(r: dict[str, Any]) -> dict[str, Any]:
        seen.append(r["window_start"])
        return r

    op_output = windowed(
        lambda s: (
            s.key_by(lambda r: r["k"])
            .window("10s", timestamp="ts", aggregate=add, initial=0)
            .map(mark)
        ),
        records,
    )
    assert [r["value"] for r in op_output] == [20] * 6
    assert seen == [0, 10_000, 20_000, 30_000, 40_000, 50_000]


def test_late_records_are_dropped_counted_or_emitted_and_lateness_updates() -> None:
    records = [{"k": "a", "ts": t, "n": 1} for t in range(0, 30_000, 1000)]
    # after ts 29 s the watermark is 29 s: window [0,10) closed long ago
    records += [{"k": "a", "ts": 5_000, "n": 100}, {"k": "a", "ts": 25_000, "n": 7}]
    out = windowed(
        lambda s: s.key_by(lambda r: r["k"]).window(
            "10s",
            timestamp="ts",
            aggregate=add,
            initial=0,
            on_late="emit",
            allowed_lateness="5s",
        ),
        records,
    )
    late = [r for r in out if r.get("late")]
    assert [r["record"]["n"] for r in late] == [100]
    results = [(r["window_start"], r["value"]) for r in out if not r.get("late")]
    assert results[:2] == [(0, 10), (10_000, 10)]
    assert (20_000, 17) in results  # the on-time window [20,30) with the late 7 in it
    dropped = windowed(
        lambda s: s.key_by(lambda r: r["k"]).window(
            "10s", timestamp="ts", aggregate=add, initial=0
        ),
        records,
    )
    assert not any(r.get("late") for r in dropped) and len(dropped) == 3


def test_the_slowest_partition_holds_the_watermark_unless_idle() -> None:
    fast = [{"k": "a", "ts": t, "n": 1, "partition": 0} for t in range(0, 50_000, 1000)]
    slow = [{"k": "b", "ts": 1000, "n": 1, "partition": 1}]
    from pipeline_core.model.job import OnError
    from pipeline_core.runtime.errors_policy import FailureCollector
    from pipeline_core.runtime.windows import WindowOp
    from pipeline_core.state.api import StateManager
    from pipeline_core.state.memory import MemoryStateBackend

    def op(idle: float | None) -> WindowOp:
        backend = MemoryStateBackend(MemoryStateBackend.config_cls())
        return WindowOp(
            "w",
            StateManager(backend).keyed("w"),
            lambda r: r["k"],
            size_ms=10_000,
            slide_ms=None,
            timestamp=lambda r: r["ts"],
            aggregate=add,
            initial=lambda: 0,
            idle_timeout_s=idle,
        )

    errors = FailureCollector(OnError.FAIL)
    held = op(None)
    assert held.process(slow, errors) == []
    assert held.process(fast, errors) == []  # partition 1 stuck at 1 s: nothing fires
    released = op(0.05)
    released.process(slow, errors)
    import time

    time.sleep(0.1)  # partition 1 goes idle
    fired = released.process(fast, errors)
    assert [r["window_start"] for r in fired] == [0, 0, 10_000, 20_000, 30_000] or [
        r["window_start"] for r in fired
    ] == [0, 10_000, 20_000, 30_000, 0]
    assert {r["key"] for r in fired} == {"a", "b"}


@pytest.mark.parametrize("backend", ["memory", "lmdb"])
def test_window_contents_survive_a_crash(backend: str, tmp_path: Path) -> None:
    records = events(3000, keys=3)
    transform: Any = lambda s: s.key_by(lambda r: r["k"]).window(  # noqa: E731
        "20s", timestamp="ts", aggregate=add, initial=0, out_of_orderness="4s"
    )
    want = expected(records, 20_000, 20_000)
    repo = InMemoryCheckpointRepository()
    storage = CheckpointStorage(str(tmp_path / "cp"))
    plugins = load_plugins(entry_points=False)

    def job(source: MemorySource, sink: ListSink) -> PipelineJob:
        return (
            PipelineJob.builder()
            .name("wc")
            .type("STREAMING")
            .source(source)
            .transform(transform)
            .sink(sink)
            .config(checkpoint_every_records=400, state_backend=backend)
            .build()
        )

    first = ListSink()
    result = asyncio.run(
        execute(
            prepare(job(MemorySource.of([*records[:1700], ABORT], batch_size=50), first), plugins),
            plugins,
            checkpointing=Checkpointing(repository=repo, storage=storage),
        )
    )
    assert result.status is ExecutionStatus.FAILED
    info = repo.latest_completed("wc")
    assert info is not None and 0 < info.state_data["source_state"]["index"] <= 1700
    second = ListSink()
    result = asyncio.run(
        execute(
            prepare(job(MemorySource.of(records, batch_size=50), second), plugins),
            plugins,
            checkpointing=Checkpointing(repository=repo, storage=storage, restore_from=info),
        )
    )
    assert result.status is ExecutionStatus.COMPLETED
    got = {(r["key"], r["window_start"]): r["value"] for r in [*first.committed, *second.written]}
    assert got == want  # open windows came back from the checkpoint with their contents


def test_window_step_in_a_job_file(tmp_path: Path) -> None:
    from pipeline_core import ConfigError, job_from_dict

    (tmp_path / "wfns.py").write_text("def add(acc, r):\n    return acc + r['n']\n")
    dag = {
        "name": "wf",
        "source": {"type": "memory"},
        "sink": {"type": "list"},
        "transform": [
            {
                "type": "window",
                "key_field": "k",
                "timestamp_field": "ts",
                "size": "10s",
                "function": "wfns:add",
                "initial": 0,
            }
        ],
    }
    job = job_from_dict(dag, base_dir=str(tmp_path))
    stream = Stream()
    from pipeline_core.model.steps import apply_steps

    assert len(apply_steps(stream, job.steps, job="wf", base_dir=str(tmp_path))) == 1
    bad = {**dag, "transform": [{**dag["transform"][0], "timestamp": "wfns:add"}]}
    with pytest.raises(ConfigError, match="timestamp"):
        apply_steps(Stream(), job_from_dict(bad).steps, job="wf", base_dir=str(tmp_path))
