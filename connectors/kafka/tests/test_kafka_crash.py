"""SIGKILL a Kafka → keyed running totals → Kafka job repeatedly: every input record is
reflected downstream at least once, and the totals are exact (state and offsets are
restored together). Then two instances in one consumer group share the partitions, one
is killed, and the other takes its partitions over from the checkpointed offsets."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka_helpers import BOOTSTRAP, FAST_GROUP, Broker

pytestmark = pytest.mark.timeout(240)

BIN = Path(sys.executable).parent
RECORDS = 12_000
USERS = 40
KILLS = 5

FNS = """
import os

def running(record, state):
    count, total = state.value("count", 0), state.value("sum", 0)
    count.update(count.value() + 1)
    total.update(total.value() + record["amount"])
    return {"id": record["id"], "user": record["user"], "count": count.value(),
            "sum": total.value()}

def tag(record):
    return {**record, "pid": os.getpid()}
"""


def write_job(
    tmp: Path, src: str, dst: str, name: str, transform: list[Any], **config: Any
) -> Path:
    (tmp / "fns.py").write_text(FNS)
    path = tmp / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "type": "STREAMING",
                "source": {
                    "type": "kafka",
                    "config": {
                        "bootstrap_servers": BOOTSTRAP,
                        "topics": [src],
                        "with_metadata": False,
                        "max_poll_records": 200,
                        **FAST_GROUP,
                    },
                },
                "transform": transform,
                "sink": {
                    "type": "kafka",
                    "config": {"bootstrap_servers": BOOTSTRAP, "topic": dst, "key_field": "user"},
                },
                "config": {"checkpoint_interval": "300ms", "state_backend": "lmdb", **config},
            }
        )
    )
    return path


def start(tmp: Path, job: Path, *, resume: bool) -> subprocess.Popen[bytes]:
    args = [str(BIN / "pipeline-run"), "-v", "run", "--no-progress", str(job)]
    if resume:
        args.insert(4, "--resume")
    return subprocess.Popen(
        args,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "stderr.log", "ab"),
        env={**os.environ, "COLUMNS": "200"},
    )


async def test_sigkill_keeps_keyed_totals_exact(kafka: Broker, tmp_path: Path) -> None:
    src, dst = await kafka.topic("in", partitions=3), await kafka.topic("out")
    records = [{"id": i, "user": f"u{i % USERS}", "amount": i % 17} for i in range(RECORDS)]
    await kafka.produce(src, records, key=lambda r: r["user"])
    expected = collections.Counter()
    for r in records:
        expected[r["user"]] += r["amount"]
    job = write_job(
        tmp_path,
        src,
        dst,
        "kafka-crash",
        [
            {"type": "rate_limit", "per_second": 2500},
            {"type": "keyed_map", "key_field": "user", "function": "fns:running"},
        ],
    )
    seen = 0
    for kill in range(KILLS):
        proc = start(tmp_path, job, resume=kill > 0)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            now = len(await kafka.consume_all(dst, idle_ms=200))
            if now >= seen + 1000:
                break
        assert proc.poll() is None, (tmp_path / "stderr.log").read_text()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen = now
        assert seen < RECORDS * 2, "the job got too far before the last kill"
    proc = start(tmp_path, job, resume=True)
    out: list[Any] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        out = await kafka.consume_all(dst, idle_ms=300)
        if {r["id"] for r in out} >= set(range(RECORDS)):
            break
        await asyncio.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert {r["id"] for r in out} >= set(range(RECORDS)), "records lost"
    # per user, the latest total (highest count; one key → one partition → in order) is exact
    last: dict[str, dict[str, Any]] = {}
    for r in out:
        if r["user"] not in last or r["count"] > last[r["user"]]["count"]:
            last[r["user"]] = r
    assert {u: r["sum"] for u, r in last.items()} == dict(expected)
    assert all(r["count"] == RECORDS // USERS for r in last.values())
    assert len(out) > RECORDS  # at-least-once: the kills did cause replays


async def test_group_members_share_partitions_and_take_over(kafka: Broker, tmp_path: Path) -> None:
    src, dst = await kafka.topic("in", partitions=4), await kafka.topic("out")
    job = write_job(
        tmp_path,
        src,
        dst,
        "kafka-group",
        [{"type": "map", "function": "fns:tag"}],
        # two foreground runs of one job at once: the job must allow it (else the second
        # run refuses: the job is running under a live owner)
        allow_concurrent=True,
    )
    a = start(tmp_path, job, resume=False)
    b = start(tmp_path, job, resume=False)
    try:
        batch = [{"id": i, "user": f"u{i % 16}", "amount": 1} for i in range(4000)]
        deadline = time.monotonic() + 60
        pids: set[int] = set()
        produced = 0
        while time.monotonic() < deadline and len(pids) < 2:
            await kafka.produce(src, batch[produced : produced + 200], key=lambda r: r["user"])
            produced += 200
            await asyncio.sleep(0.5)
            pids = {r["pid"] for r in await kafka.consume_all(dst, idle_ms=200)}
        assert pids == {a.pid, b.pid}, f"both members should consume: {pids}"
        await asyncio.sleep(1.0)  # let a checkpoint commit their offsets
        b.send_signal(signal.SIGKILL)
        b.wait()
        await kafka.produce(src, batch[produced:], key=lambda r: r["user"])
        deadline = time.monotonic() + 90
        out: list[Any] = []
        while time.monotonic() < deadline:
            out = await kafka.consume_all(dst, idle_ms=300)
            if {r["id"] for r in out} >= set(range(4000)):
                break
            await asyncio.sleep(0.5)
        assert {r["id"] for r in out} >= set(range(4000)), "records lost in the take-over"
        late = [r for r in out if r["id"] >= produced]
        assert {r["pid"] for r in late} == {a.pid}  # the survivor has every partition now
        # rebalances checkpointed before partitions were given up (offsets committed)
        log = (tmp_path / "stderr.log").read_text()
        assert "before giving up" in log and "committing offsets failed" not in log
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                p.wait(timeout=30)


async def test_exactly_once_into_postgresql_across_kills(
    kafka: Broker, pg_url: str, tmp_path: Path
) -> None:
    """Kafka → keyed running totals → PostgreSQL through the jdbc sink's exactly-once mode
    (rows staged per checkpoint, moved in the transaction that records it): after SIGKILLs
    the table equals an uninterrupted run — every output row once, totals exact."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, select

    engine = create_engine(pg_url)
    md = MetaData()
    totals = Table(
        "totals",
        md,
        Column("id", Integer, primary_key=True),  # a duplicate row would fail the insert
        Column("user", String(20), nullable=False),
        Column("count", Integer, nullable=False),
        Column("sum", Integer, nullable=False),
    )
    md.create_all(engine)
    n = 6000
    src = await kafka.topic("in", partitions=3)
    records = [{"id": i, "user": f"u{i % USERS}", "amount": i % 17} for i in range(n)]
    await kafka.produce(src, records, key=lambda r: r["user"])
    expected = collections.Counter()
    for r in records:
        expected[r["user"]] += r["amount"]
    (tmp_path / "fns.py").write_text(FNS)
    job = tmp_path / "eo.yaml"
    job.write_text(
        yaml.safe_dump(
            {
                "name": "kafka-to-pg",
                "type": "STREAMING",
                "source": {
                    "type": "kafka",
                    "config": {
                        "bootstrap_servers": BOOTSTRAP,
                        "topics": [src],
                        "with_metadata": False,
                        "max_poll_records": 100,
                        **FAST_GROUP,
                    },
                },
                "transform": [
                    {"type": "rate_limit", "per_second": 1500},
                    {"type": "keyed_map", "key_field": "user", "function": "fns:running"},
                ],
                "sink": {
                    "type": "jdbc",
                    "config": {"url": pg_url, "table": "totals", "exactly_once": True},
                },
                "config": {"checkpoint_interval": "250ms", "state_backend": "lmdb"},
            }
        )
    )

    def rows() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(totals)).scalar_one())

    try:
        for kill in range(4):
            proc = start(tmp_path, job, resume=kill > 0)
            before = rows()
            deadline = time.monotonic() + 60
            while rows() < before + 600 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert proc.poll() is None, (tmp_path / "stderr.log").read_text()[-3000:]
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert rows() < n, "the job got too far before the last kill"
        proc = start(tmp_path, job, resume=True)
        deadline = time.monotonic() + 120
        while rows() < n and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        with engine.connect() as conn:
            got = conn.execute(select(totals).order_by(totals.c.id)).all()
    finally:
        engine.dispose()
    assert [r.id for r in got] == list(range(n))  # each output once: nothing lost or doubled
    last = {}
    for r in got:
        last[r.user] = r  # ordered by id: the last row per user carries the final total
    assert {u: r.sum for u, r in last.items()} == dict(expected)
    assert all(r.count == n // USERS for r in last.values())
