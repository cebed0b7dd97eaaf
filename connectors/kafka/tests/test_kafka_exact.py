"""Exactness of the Kafka source's positions (issue 20): a checkpoint names every
partition the execution owns, read or not; every partition is sought before any record
of it is yielded; a reassignment within an execution continues where the partition was.

Duplicates are counted per (partition, offset) of what arrives downstream, so a failure
says which partition was read twice and how much of it.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata
from kafka_helpers import BOOTSTRAP, FAST_GROUP, Broker

from pipeline_core import ExecutionControl, PipelineJob, execute, load_plugins, prepare
from pipeline_core.checkpoint.repository import CheckpointInfo, InMemoryCheckpointRepository
from pipeline_core.checkpoint.storage import CheckpointStorage
from pipeline_core.runtime.result import JobResult
from pipeline_core.runtime.runner import Checkpointing
from pipeline_core.testing import wait_until

pytestmark = pytest.mark.timeout(150)

#: uninterrupted `start_from: earliest` runs; before the fix 6 of 8 read one partition's
#: first fetch (3,500-4,500 records) twice
EARLIEST_RUNS = 8


def job(name: str, source: dict[str, Any], dst: str, **config: Any) -> PipelineJob:
    return (
        PipelineJob.builder()
        .name(name)
        .type("STREAMING")
        .source("kafka", **{"bootstrap_servers": BOOTSTRAP, **FAST_GROUP, **source})
        .transform(lambda s: s.map(lambda r: {"p": r["partition"], "o": r["offset"]}))
        .sink("kafka", bootstrap_servers=BOOTSTRAP, topic=dst)
        .config(**{"checkpoint_interval": "200ms", **config})
        .build()
    )


class Run:
    """One execution in this process, stopped at a checkpoint by ``stop()``."""

    def __init__(
        self,
        j: PipelineJob,
        tmp_path: Path,
        repo: InMemoryCheckpointRepository,
        restore_from: CheckpointInfo | None = None,
    ) -> None:
        plugins = load_plugins()
        self.control = ExecutionControl()
        self.task = asyncio.create_task(
            execute(
                prepare(j, plugins),
                plugins,
                control=self.control,
                checkpointing=Checkpointing(
                    repository=repo,
                    storage=CheckpointStorage(str(tmp_path / "cp")),
                    restore_from=restore_from,
                ),
            )
        )

    async def stop(self) -> JobResult:
        self.control.stop_at_checkpoint()
        result = await asyncio.wait_for(self.task, 30)
        assert result.error is None, result.error
        return result


def duplicates(out: list[dict[str, int]]) -> dict[int, int]:
    """Records delivered more than once, per partition."""
    seen = collections.Counter((r["p"], r["o"]) for r in out)
    dups: collections.Counter[int] = collections.Counter()
    for (p, _o), n in seen.items():
        dups[p] += n - 1
    return {p: n for p, n in dups.items() if n}


async def arrived(kafka: Broker, dst: str, n: int) -> list[Any]:
    got: list[Any] = []

    async def enough() -> bool:
        got[:] = await kafka.consume_all(dst, idle_ms=200)
        return len({(r["p"], r["o"]) for r in got}) >= n

    await wait_until(enough, 60, f"{n} distinct records downstream")
    return got


def named(info: CheckpointInfo) -> dict[str, int]:
    offsets: dict[str, dict[str, int]] = info.state_data["source_state"]["kafka_offsets"]
    assert len(offsets) == 1
    return next(iter(offsets.values()))


async def commit(group: str, topic: str, offsets: dict[int, int]) -> None:
    """Set the group's committed offsets (as a kill between a checkpoint's completion and
    its commit leaves them: behind the checkpoint)."""
    c = AIOKafkaConsumer(
        topic, bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False, **FAST_GROUP
    )
    await c.start()
    try:  # a member of the group (the test broker refuses commits from outside it)
        await wait_until(lambda: len(c.assignment()) == len(offsets), 30, "the assignment")
        await c.commit(
            {TopicPartition(topic, p): OffsetAndMetadata(o, "") for p, o in offsets.items()}
        )
    finally:
        await c.stop()


async def test_checkpoints_name_every_owned_partition(kafka: Broker, tmp_path: Path) -> None:
    """A checkpoint taken before a restored partition delivered its first record still
    names it, with its exact offset — so restoring that checkpoint does not fall back to
    the group's committed offset (behind the state, after a kill before the commit)."""
    src, dst = await kafka.topic("in", partitions=3), await kafka.topic("out")
    await kafka.produce(src, [{"i": i} for i in range(50)], partition=0)
    await kafka.produce(src, [{"i": i} for i in range(20)], partition=1)
    repo = InMemoryCheckpointRepository()
    j = job(f"names-{src}", {"topics": [src]}, dst)
    first = Run(j, tmp_path, repo)
    await arrived(kafka, dst, 70)
    await first.stop()
    one = repo.latest_completed(j.name)
    assert one is not None
    assert named(one) == {"0": 50, "1": 20, "2": 0}  # partition 2: read or not, named
    # the kill came before the commit: the group is still at the start of partition 1
    await commit(j.name, src, {0: 0, 1: 0, 2: 0})
    await kafka.produce(src, [{"i": i} for i in range(50, 60)], partition=0)
    second = Run(j, tmp_path, repo, restore_from=one)
    await arrived(kafka, dst, 80)
    assert (await second.stop()).records_read == 10
    two = repo.latest_completed(j.name)
    assert two is not None and two.execution_id != one.execution_id
    # partition 1 delivered nothing in the second run: it is named all the same
    assert named(two) == {"0": 60, "1": 20, "2": 0}
    for info in repo.list(j.name):
        if info.status != "COMPLETED":
            continue
        if info.execution_id == one.execution_id and not info.state_data["source_state"]:
            continue  # taken before the first assignment of a fresh execution: owns nothing
        assert set(named(info)) == {"0", "1", "2"}, info.state_data
    await commit(j.name, src, {0: 0, 1: 0, 2: 0})
    third = Run(j, tmp_path, repo, restore_from=two)
    await asyncio.sleep(3)
    assert (await third.stop()).records_read == 0  # not partition 1's 20 again
    assert duplicates(await kafka.consume_all(dst)) == {}


async def test_start_from_earliest_reads_every_record_once(kafka: Broker, tmp_path: Path) -> None:
    """Uninterrupted runs, each a new group: the seek to the beginning never races a
    fetch the consumer made from aiokafka's own reset position."""
    src = await kafka.topic("in", partitions=3)
    n = 30_000
    await kafka.produce(src, [{"i": i} for i in range(n)], key=lambda r: str(r["i"]))
    found: dict[int, dict[int, int]] = {}
    for run in range(EARLIEST_RUNS):
        dst = await kafka.topic("out")
        group = f"earliest-{uuid.uuid4().hex[:8]}"
        # half the runs through the group protocol's assignment, half assigned by the source
        mode = "group" if run % 2 else "all"
        source = {"topics": [src], "group_id": group, "start_from": "earliest", "assignment": mode}
        j = job(group, source, dst)
        execution = Run(j, tmp_path / str(run), InMemoryCheckpointRepository())
        out = await arrived(kafka, dst, n)
        await execution.stop()
        out = await kafka.consume_all(dst)
        assert len({(r["p"], r["o"]) for r in out}) == n
        found[run] = duplicates(out)
    assert all(not d for d in found.values()), f"records read twice, per run/partition: {found}"


async def test_reassignment_continues_where_the_partition_was(
    kafka: Broker, tmp_path: Path
) -> None:
    """``start_from: earliest`` applies once per execution: when another member joins the
    group and leaves again, the partitions that come back continue at their committed
    offsets, not at the beginning."""
    src, dst = await kafka.topic("in", partitions=3), await kafka.topic("out")
    await kafka.produce(src, [{"i": i} for i in range(3000)], key=lambda r: str(r["i"]))
    group = f"rejoin-{uuid.uuid4().hex[:8]}"
    source = {"topics": [src], "group_id": group, "start_from": "earliest", "assignment": "group"}
    j = job(group, source, dst)
    run = Run(j, tmp_path, InMemoryCheckpointRepository())
    await arrived(kafka, dst, 3000)
    other = AIOKafkaConsumer(
        src, bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False, **FAST_GROUP
    )
    await other.start()
    try:
        await wait_until(lambda: bool(other.assignment()), 30, "the second member's partitions")
        taken = other.assignment()
    finally:
        await other.stop()  # leaves the group: its partitions go back to the job
    await kafka.produce(src, [{"i": i} for i in range(3000, 3300)], key=lambda r: str(r["i"]))
    out = await arrived(kafka, dst, 3300)
    await asyncio.sleep(1.5)  # a re-read from the beginning would arrive meanwhile
    result = await run.stop()
    out = await kafka.consume_all(dst)
    assert taken and len({(r["p"], r["o"]) for r in out}) == 3300
    assert duplicates(out) == {}
    assert result.records_read == 3300


async def test_a_lone_execution_joins_no_group_yet_commits_to_it(
    kafka: Broker, tmp_path: Path
) -> None:
    """``assignment: auto`` on a job that runs one execution at a time: the source reads
    every partition without becoming a member of the group, and a completed checkpoint's
    offsets are committed to the group all the same (lag monitoring, ``committed``)."""
    src, dst = await kafka.topic("in", partitions=3), await kafka.topic("out")
    await kafka.produce(src, [{"i": i} for i in range(300)], key=lambda r: str(r["i"]))
    group = f"solo-{uuid.uuid4().hex[:8]}"
    j = job(group, {"topics": [src], "group_id": group, "start_from": "earliest"}, dst)
    run = Run(j, tmp_path, InMemoryCheckpointRepository())
    await arrived(kafka, dst, 300)
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        (described,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    (found,) = described.groups
    result = await run.stop()
    assert found[0] == 0 and list(found[5]) == [], found  # no error, no member
    out = await kafka.consume_all(dst)
    assert duplicates(out) == {} and result.records_read == 300
    ends = collections.Counter(r["p"] for r in out)
    reader = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=group)
    await reader.start()
    try:
        committed = {p: await reader.committed(TopicPartition(src, p)) for p in range(3)}
    finally:
        await reader.stop()
    assert committed == {p: ends[p] for p in range(3)}


async def test_topics_the_pattern_matches_later_are_read_too(
    kafka: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading every partition itself, the source looks the topics up again now and then
    (every 30 s; shortened here): a topic created later that matches ``pattern`` is read
    from its beginning, the first topic's partitions continue, nothing is read twice."""
    import pipeline_connector_kafka.source as kafka_source

    monkeypatch.setattr(kafka_source, "PARTITION_CHECK_S", 0.5)
    prefix = f"pat{uuid.uuid4().hex[:6]}"
    first, dst = await kafka.topic(prefix, partitions=2), await kafka.topic("out")
    await kafka.produce(first, [{"i": i} for i in range(100)], key=lambda r: str(r["i"]))
    j = (
        PipelineJob.builder()
        .name(prefix)
        .type("STREAMING")
        .source("kafka", bootstrap_servers=BOOTSTRAP, pattern=f"{prefix}-.*")
        .transform(
            lambda s: s.map(lambda r: {"t": r["topic"], "p": r["partition"], "o": r["offset"]})
        )
        .sink("kafka", bootstrap_servers=BOOTSTRAP, topic=dst)
        .config(checkpoint_interval="200ms")
        .build()
    )
    run = Run(j, tmp_path, InMemoryCheckpointRepository())

    async def distinct(n: int) -> list[Any]:
        got: list[Any] = []

        async def enough() -> bool:
            got[:] = await kafka.consume_all(dst, idle_ms=200)
            return len({(r["t"], r["p"], r["o"]) for r in got}) >= n

        await wait_until(enough, 60, f"{n} distinct records downstream")
        return got

    await distinct(100)
    second = await kafka.topic(prefix, partitions=1)
    await kafka.produce(second, [{"i": i} for i in range(50)])
    await kafka.produce(first, [{"i": i} for i in range(100, 120)], key=lambda r: str(r["i"]))
    await distinct(170)
    result = await run.stop()
    out = await kafka.consume_all(dst)
    seen = collections.Counter((r["t"], r["p"], r["o"]) for r in out)
    assert [k for k, n in seen.items() if n > 1] == []
    assert collections.Counter(r["t"] for r in out) == {first: 120, second: 50}
    assert result.records_read == 170
