"""The Kafka source, sink and trigger against the real (Tansu) broker."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka_helpers import BOOTSTRAP, FAST_GROUP, Broker

from pipeline_connector_kafka import KafkaSink, KafkaSource
from pipeline_core import (
    ConfigError,
    ExecutionControl,
    ExecutionStatus,
    PipelineJob,
    execute,
    load_plugins,
    prepare,
)
from pipeline_core.checkpoint.repository import InMemoryCheckpointRepository
from pipeline_core.checkpoint.storage import CheckpointStorage
from pipeline_core.runtime.runner import Checkpointing
from pipeline_core.testing import wait_until

pytestmark = pytest.mark.timeout(90)
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "kafka_wordcount.yaml"


def job(source: dict[str, Any], sink: dict[str, Any], transform: Any = None) -> PipelineJob:
    b = (
        PipelineJob.builder()
        .name(f"kafka-{id(source)}")
        .type("STREAMING")
        .source(
            "kafka",
            **{"bootstrap_servers": BOOTSTRAP, "consumer_options": {}, **FAST_GROUP, **source},
        )
        .sink("kafka", **{"bootstrap_servers": BOOTSTRAP, **sink})
        .config(checkpoint_interval="200ms")
    )
    if transform is not None:
        b = b.transform(transform)
    return b.build()


async def start(
    j: PipelineJob, tmp_path: Path, repo: Any = None
) -> tuple[asyncio.Task[Any], ExecutionControl]:
    plugins = load_plugins()
    control = ExecutionControl()
    task = asyncio.create_task(
        execute(
            prepare(j, plugins),
            plugins,
            control=control,
            checkpointing=Checkpointing(
                repository=repo or InMemoryCheckpointRepository(),
                storage=CheckpointStorage(str(tmp_path / "cp")),
            ),
        )
    )
    return task, control


async def test_round_trip_topic_transform_topic(kafka: Broker, tmp_path: Path) -> None:
    src, dst = await kafka.topic("in", partitions=3), await kafka.topic("out")
    await kafka.produce(
        src, [{"id": i, "user": f"u{i % 7}"} for i in range(3000)], key=lambda r: r["user"]
    )
    j = job(
        {"topics": [src]},
        {"topic": dst, "key_field": "user"},
        lambda s: s.map(lambda r: {**r["value"], "partition": r["partition"], "seen": True}),
    )
    task, control = await start(j, tmp_path)
    got: list[Any] = []

    async def all_there() -> bool:
        got[:] = await kafka.consume_all(dst, idle_ms=300)
        return len({r["id"] for r in got}) == 3000

    await wait_until(all_there, 60, "3000 records downstream")
    control.stop_at_checkpoint()
    result = await task
    assert result.stopped_at_checkpoint and result.error is None
    assert {r["id"] for r in got} == set(range(3000)) and all(r["seen"] for r in got)
    # one user, one partition (keyed by user upstream)
    parts: dict[str, set[int]] = {}
    for r in got:
        parts.setdefault(r["user"], set()).add(r["partition"])
    assert all(len(p) == 1 for p in parts.values())
    # offsets were committed at the checkpoint: the group resumes after the end
    again, control2 = await start(j, tmp_path)
    await asyncio.sleep(3)
    control2.stop_at_checkpoint()
    second = await again
    assert second.records_read == 0


async def test_checkpoint_offsets_win_over_committed_ones(kafka: Broker, tmp_path: Path) -> None:
    src, dst = await kafka.topic("in"), await kafka.topic("out")
    await kafka.produce(src, [{"id": i} for i in range(100)])
    repo = InMemoryCheckpointRepository()
    group = "wins-" + src
    j = job({"topics": [src], "with_metadata": False, "group_id": group}, {"topic": dst})
    task, control = await start(j, tmp_path, repo)
    await wait_until(lambda: _n(kafka, dst, 100), 30, "100 records")
    control.stop_at_checkpoint()
    await task
    info = repo.latest_completed(j.name)
    assert info is not None
    assert info.state_data["source_state"]["kafka_offsets"] == {src: {"0": 100}}
    # the group's committed offset moves back to 10 (as a tool or another consumer of
    # the group could do); restored from this checkpoint, the run starts at offset 100:
    # the checkpoint wins
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False, **FAST_GROUP
    )
    await consumer.start()
    try:
        tp = TopicPartition(src, 0)
        consumer.subscribe([src])  # a member of the group, so that its commit counts
        await wait_until(lambda: tp in consumer.assignment(), 30, "the partition assigned")
        await consumer.commit({tp: 10})
        assert await consumer.committed(tp) == 10
    finally:
        await consumer.stop()
    await kafka.produce(src, [{"id": i} for i in range(100, 110)])
    plugins = load_plugins()
    control2 = ExecutionControl()
    again = asyncio.create_task(
        execute(
            prepare(j, plugins),
            plugins,
            control=control2,
            checkpointing=Checkpointing(
                repository=repo, storage=CheckpointStorage(str(tmp_path / "cp")), restore_from=info
            ),
        )
    )
    await asyncio.sleep(3)
    control2.stop_at_checkpoint()
    second = await again
    assert second.error is None
    assert second.records_read == 10  # 100..109, not 10..109


async def test_pause_stops_polling_and_resume_continues(kafka: Broker, tmp_path: Path) -> None:
    src, dst = await kafka.topic("in"), await kafka.topic("out")
    await kafka.produce(src, [{"id": i} for i in range(200)])
    j = job({"topics": [src], "with_metadata": False, "max_poll_records": 50}, {"topic": dst})
    task, control = await start(j, tmp_path)

    async def count(n: int) -> bool:
        return len(await kafka.consume_all(dst, idle_ms=200)) >= n

    await wait_until(lambda: count(200), 60, "first 200")
    control.pause()
    await asyncio.sleep(0.5)
    await kafka.produce(src, [{"id": i} for i in range(200, 400)])
    await asyncio.sleep(1.5)
    assert len(await kafka.consume_all(dst, idle_ms=200)) <= 250  # at most one batch in flight
    control.resume()
    await wait_until(lambda: count(400), 60, "all 400 after resume")
    control.stop_at_checkpoint()
    await task
    assert sorted(r["id"] for r in await kafka.consume_all(dst)) == list(range(400))


async def test_bad_records_are_counted(kafka: Broker, tmp_path: Path) -> None:
    from aiokafka import AIOKafkaProducer

    src, dst = await kafka.topic("in"), await kafka.topic("out")
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    await producer.start()
    for value in (b'{"id": 1}', b"not json", b'{"id": 2}'):
        await producer.send_and_wait(src, value)
    await producer.stop()
    j = (
        PipelineJob.builder()
        .name("bad")
        .type("STREAMING")
        .source(
            "kafka", bootstrap_servers=BOOTSTRAP, topics=[src], with_metadata=False, **FAST_GROUP
        )
        .sink("kafka", bootstrap_servers=BOOTSTRAP, topic=dst)
        .config(checkpoint_interval="200ms", on_error="skip")
        .build()
    )
    task, control = await start(j, tmp_path)
    await wait_until(lambda: _n(kafka, dst, 2), 30, "two good records")
    control.stop_at_checkpoint()
    result = await task
    assert result.failed_records == 1
    # the bad record is counted and skipped; the good ones around it arrive
    assert sorted(r["id"] for r in await kafka.consume_all(dst)) == [1, 2]


async def _n(kafka: Broker, topic: str, n: int) -> bool:
    return len(await kafka.consume_all(topic, idle_ms=200)) >= n


def test_config_errors_name_the_field() -> None:
    plugins = load_plugins()
    both = job({"topics": ["a"], "pattern": "a.*"}, {"topic": "b"})
    with pytest.raises(ConfigError, match=r"source \(kafka\): field 'topics': give either topics"):
        prepare(both, plugins)
    serde = job({"topics": ["a"], "value_deserializer": "yaml"}, {"topic": "b"})
    with pytest.raises(ConfigError, match="value_deserializer.*module:function"):
        prepare(serde, plugins)
    assert plugins.sources.get("kafka") is KafkaSource and plugins.sinks.get("kafka") is KafkaSink
    assert "kafka" in plugins.triggers


async def test_event_trigger_starts_a_job(kafka: Broker, tmp_path: Path) -> None:
    from pipeline_core import MetadataStore, PipelineService

    topic = await kafka.topic("trigger")
    data = tmp_path / "in.jsonl"
    data.write_text('{"a": 1}\n')
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'meta.db'}")
    store.registry.register(
        {
            "name": "on-kafka",
            "source": {"type": "file", "config": {"path": str(data)}},
            "sink": {"type": "file", "config": {"path": str(tmp_path / "out")}},
            "schedule": {
                "type": "EVENT",
                "event_trigger": "kafka",
                "event_topic": topic,
                "event_config": {
                    "bootstrap_servers": BOOTSTRAP,
                    "group_id": f"g-{topic}",
                    **FAST_GROUP,
                },
            },
        }
    )
    service = PipelineService(
        store, load_plugins(), checkpoint_url=str(tmp_path / "cp"), lease=dt.timedelta(seconds=5)
    )
    await service.start()
    try:
        await service.scheduler.refresh_event_triggers()
        await kafka.produce(topic, [{"go": 1}])
        await wait_until(
            lambda: (
                [r.status for r in store.executions.query(job="on-kafka")]
                == [ExecutionStatus.COMPLETED]
            ),
            60,
            "the triggered execution",
        )
    finally:
        await service.stop()
    rec = store.executions.query(job="on-kafka")[0]
    assert rec.triggered_by == "EVENT"
    assert f"event on kafka:{topic} (partition 0 offset 0)" in (
        store.executions.transitions(rec.execution_id)[0].message or ""
    )
    store.close()


async def test_wordcount_example_windows_out_of_order_lines_exactly(
    kafka: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/kafka_wordcount.yaml on the real broker: lines with out-of-order
    timestamps in two partitions give exact counts per word and 10 s window."""
    import random

    from aiokafka import AIOKafkaProducer

    from pipeline_core import load_job_file

    src, dst = await kafka.topic("lines", partitions=2), await kafka.topic("counts")
    monkeypatch.setenv("KAFKA_BOOTSTRAP", BOOTSTRAP)
    monkeypatch.setenv("WORDCOUNT_IN", src)
    monkeypatch.setenv("WORDCOUNT_OUT", dst)
    rnd = random.Random(3)
    base = 1_700_000_000_000
    vocabulary = ["kafka", "stream", "window", "state", "checkpoint"]
    lines = []
    for i in range(400):
        ts = base + i * 250 + rnd.randint(0, 1500)  # up to 1.5 s out of order (< 2 s)
        lines.append((ts, " ".join(rnd.choice(vocabulary) for _ in range(rnd.randint(1, 4)))))
    rnd.shuffle(lines[:])  # produce in shuffled blocks, so order is not by timestamp
    blocks = [lines[i : i + 8] for i in range(0, len(lines), 8)]
    for block in blocks:
        rnd.shuffle(block)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    await producer.start()
    for n, block in enumerate(blocks):
        for ts, text in block:
            await producer.send(src, text.encode(), partition=n % 2, timestamp_ms=ts)
    for p in (0, 1):  # move both partitions' watermarks past every window
        await producer.send(src, b"END", partition=p, timestamp_ms=base + 3_600_000)
    await producer.stop()
    want: collections.Counter[tuple[str, int]] = collections.Counter()
    for ts, text in lines:
        for w in text.split():
            want[(w, (ts - 0) // 10_000 * 10_000)] += 1
    job = load_job_file(EXAMPLE)
    plugins = load_plugins()
    control = ExecutionControl()
    task = asyncio.create_task(
        execute(
            prepare(job, plugins),
            plugins,
            control=control,
            checkpointing=Checkpointing(
                repository=InMemoryCheckpointRepository(),
                storage=CheckpointStorage(str(tmp_path / "cp")),
            ),
        )
    )
    got: list[Any] = []

    async def complete() -> bool:
        got[:] = await kafka.consume_all(dst, idle_ms=300)
        return sum(r["value"] for r in got if r["key"] != "end") >= sum(want.values())

    await wait_until(complete, 60, "every word counted")
    control.stop_at_checkpoint()
    await task
    counted = {(r["key"], r["window_start"]): r["value"] for r in got if r["key"] != "end"}
    assert counted == dict(want)


async def test_start_from_a_timestamp(kafka: Broker, tmp_path: Path) -> None:
    import time

    src, dst = await kafka.topic("in"), await kafka.topic("out")
    await kafka.produce(src, [{"id": i} for i in range(10)])
    await asyncio.sleep(1.5)
    cut = int(time.time() * 1000)
    await asyncio.sleep(0.2)
    await kafka.produce(src, [{"id": i} for i in range(10, 15)])
    j = job(
        {
            "topics": [src],
            "with_metadata": False,
            "start_from": "timestamp",
            "start_timestamp": cut,
        },
        {"topic": dst},
    )
    task, control = await start(j, tmp_path)
    await wait_until(lambda: _n(kafka, dst, 5), 30, "5 records")
    await asyncio.sleep(1)
    control.stop_at_checkpoint()
    await task
    assert sorted(r["id"] for r in await kafka.consume_all(dst)) == [10, 11, 12, 13, 14]
