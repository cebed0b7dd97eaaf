"""SIGKILL a Kafka → keyed running totals → Kafka job repeatedly: every input record is
reflected downstream at least once, and the totals are exact (state and offsets are
restored together); into PostgreSQL through an exactly-once sink, at randomised kill
moments, every record exactly once. Then two instances in one consumer group share the
partitions, one is killed, and the other takes its partitions over from the checkpointed
offsets."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import random
import signal
import sqlite3
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


#: replay a run of the kill test with the seed it printed: PIPELINE_TEST_KILL_SEED=…
KILL_SEED = os.environ.get("PIPELINE_TEST_KILL_SEED") or f"{random.randrange(10**9)}"
PG_KILLS = 12
PG_PER_PARTITION = 7000

EXACT_FNS = """
def running(record, state):
    value = record["value"]
    count, total = state.value("count", 0), state.value("sum", 0)
    count.update(count.value() + 1)
    total.update(total.value() + value["amount"])
    return {"id": value["id"], "p": record["partition"], "o": record["offset"],
            "user": value["user"], "count": count.value(), "sum": total.value()}
"""


def checkpoints(tmp: Path) -> list[tuple[int, str, dict[str, Any]]]:
    """(row id, status, source_state) of every checkpoint row of the metadata database."""
    db = tmp / ".pipeline" / "pipeline.db"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05) as conn:
            rows = conn.execute("SELECT id, status, state_data FROM pipeline_checkpoint").fetchall()
    except sqlite3.Error:
        return []
    return [(i, st, (json.loads(d) if d else {}).get("source_state") or {}) for i, st, d in rows]


async def test_exactly_once_into_postgresql_across_random_kills(
    kafka: Broker, pg_url: str, tmp_path: Path
) -> None:
    """Kafka (3 partitions) → keyed running totals (LMDB) → PostgreSQL through the jdbc
    sink's exactly-once mode, SIGKILLed at random moments — during start-up and the
    partition assignment, while records flow, and just as a checkpoint begins — and
    resumed with ``--resume`` each time. Every (partition, offset) lands exactly once,
    and every running count and sum is the one an uninterrupted run computes; every
    checkpoint names all three partitions."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, select

    print(f"kill seed {KILL_SEED} (replay: PIPELINE_TEST_KILL_SEED={KILL_SEED})")
    rnd = random.Random(KILL_SEED)
    engine = create_engine(pg_url)
    md = MetaData()
    totals = Table(  # no key: a record delivered twice would show as a second row
        "totals",
        md,
        Column("id", Integer, nullable=False),
        Column("p", Integer, nullable=False),
        Column("o", Integer, nullable=False),
        Column("user", String(20), nullable=False),
        Column("count", Integer, nullable=False),
        Column("sum", Integer, nullable=False),
    )
    md.create_all(engine)
    n = 3 * PG_PER_PARTITION
    src = await kafka.topic("in", partitions=3)
    records = [{"id": i, "user": f"u{i % 300}", "amount": rnd.randrange(100)} for i in range(n)]
    await kafka.produce(src, records, key=lambda r: r["user"])
    (tmp_path / "fns.py").write_text(EXACT_FNS)
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
                        "max_poll_records": 100,
                        **FAST_GROUP,
                    },
                },
                "transform": [
                    {"type": "rate_limit", "per_second": 1000},
                    {"type": "keyed_map", "key_field": "key", "function": "fns:running"},
                ],
                "sink": {
                    "type": "jdbc",
                    "config": {"url": pg_url, "table": "totals", "exactly_once": True},
                },
                "config": {
                    "checkpoint_interval": "300ms",
                    "checkpoint_retention": 1000,
                    "state_backend": "lmdb",
                },
            }
        )
    )

    def rows() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(totals)).scalar_one())

    moments: collections.Counter[str] = collections.Counter()
    try:
        for kill in range(PG_KILLS):
            proc = start(tmp_path, job, resume=kill > 0)
            moment = rnd.choice(["start-up", "flowing", "flowing", "checkpoint"])
            if moment == "start-up":  # loading, restoring, joining, seeking
                await asyncio.sleep(rnd.uniform(0.3, 2.5))
            else:
                before = rows()
                deadline = time.monotonic() + 60
                while rows() <= before and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                if moment == "flowing":
                    await asyncio.sleep(rnd.uniform(0.0, 1.2))
                else:
                    begun = max((c[0] for c in checkpoints(tmp_path)), default=0)
                    while max((c[0] for c in checkpoints(tmp_path)), default=0) == begun:
                        await asyncio.sleep(0.002)
            assert proc.poll() is None, (tmp_path / "stderr.log").read_text()[-3000:]
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            moments[moment] += 1
            assert rows() < n, f"the job got too far before kill {kill + 1}"
        proc = start(tmp_path, job, resume=True)
        deadline = time.monotonic() + 120
        while rows() < n and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # a duplicate would still be committed meanwhile
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        with engine.connect() as conn:
            got = conn.execute(select(totals).order_by(totals.c.p, totals.c.o)).all()
    finally:
        engine.dispose()
    print(f"kills: {dict(moments)}")
    twice = collections.Counter((r.p, r.o) for r in got)
    per_partition = collections.Counter(p for (p, _o), c in twice.items() if c > 1)
    assert not per_partition, f"delivered twice, per partition: {dict(per_partition)}"
    assert sorted(r.id for r in got) == list(range(n)), "records lost"
    # per user (one key, one partition): counts 1, 2, 3 … and the sums an uninterrupted
    # run gives, in offset order
    by_user: dict[str, list[Any]] = collections.defaultdict(list)
    for r in got:
        by_user[r.user].append(r)
    for user, mine in by_user.items():
        assert len({r.p for r in mine}) == 1
        assert [r.count for r in mine] == list(range(1, len(mine) + 1)), user
        assert [r.id for r in mine] == sorted(r.id for r in mine), user
        assert [r.sum for r in mine] == list(
            itertools.accumulate(records[r.id]["amount"] for r in mine)
        ), user
    assert sum(len(v) for v in by_user.values()) == n
    # Every checkpoint names the partitions its run owned. Usually that is all three; a
    # run that joined while the SIGKILLed one was still a member of the group (until its
    # session expires) owned fewer for a while, and its checkpoints then name those, the
    # rest resuming from the offsets committed at the checkpoint before — exact either way
    # (above). test_kafka_exact.py proves the naming itself deterministically.
    states = [state for _i, status, state in checkpoints(tmp_path) if status == "COMPLETED"]
    named = [set(state["kafka_offsets"][src]) for state in states if state]
    assert named and all(n and n <= {"0", "1", "2"} for n in named), named
    assert {"0", "1", "2"} in named
    print(
        f"checkpoints naming all three partitions: {named.count({'0', '1', '2'})} of {len(named)}"
    )
