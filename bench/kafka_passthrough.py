"""Benchmark: 1,000,000 ~100-byte JSON records topic → filter → map → topic on the
Kafka-protocol broker, whole processes, as a user runs them (``bench/harness.py``):

- **framework**: ``pipeline-run run bench/jobs/kafka_passthrough.yaml`` — recorded
  (SQLite metadata), default settings (a STREAMING job checkpoints every 5 s, the source
  reads every partition itself). A STREAMING job never ends by itself: it gets SIGTERM
  once the output topic holds every record, and its time runs until it has taken its
  final checkpoint and exited.
- **aiokafka-group**: the plain loop most people write — a consumer-group member
  (``subscribe``), ``send`` per record (``acks=all``, linger 5 ms, 500-record polls),
  and once a second: flush the producer, await every acknowledgement, commit the offsets.
- **aiokafka-assign**: the same loop assigning itself every partition (no group join),
  as the framework's source does by default.

Each contender reads the same input topic in a new group and writes to a new topic; its
output is counted before its time counts. Start-up, group join and the final flush are
included.

    PIPELINE_BENCH_KAFKA=127.0.0.1:19092 python bench/kafka_passthrough.py \\
        [--records 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "jobs"))

BOOTSTRAP = os.environ.get("PIPELINE_BENCH_KAFKA", "127.0.0.1:19092")
PARTITIONS = 4


async def create_topic(name: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()


async def produce(topic: str, records: int) -> None:
    from aiokafka import AIOKafkaProducer

    await create_topic(topic)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=20, max_batch_size=512_000)
    await producer.start()
    pad = "x" * 40
    futures = []
    for n in range(records):  # ~100 bytes each
        body = orjson.dumps({"n": n, "user": f"user-{n % 5000:05d}", "amount": n % 1000, "p": pad})
        futures.append(await producer.send(topic, body))
        if len(futures) >= 50_000:
            await asyncio.gather(*futures)
            futures.clear()
    await asyncio.gather(*futures)
    await producer.stop()


async def count(topic: str) -> int:
    """Records in ``topic``, consumed from the beginning (the test broker's end offsets
    are not exact, see docs/connectors/kafka.md)."""
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(
        topic, bootstrap_servers=BOOTSTRAP, group_id=None, auto_offset_reset="earliest"
    )
    await c.start()
    total = 0
    try:
        while True:
            got = await c.getmany(timeout_ms=1500, max_records=10_000)
            if not got:
                return total
            total += sum(len(v) for v in got.values())
    finally:
        await c.stop()


def newest_execution(db: Path) -> tuple[int, int]:
    """(id, records read) of the newest execution in the job's metadata database."""
    if not db.exists():
        return (0, 0)
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        row = conn.execute(
            "SELECT id, processed_records FROM pipeline_job_execution ORDER BY id DESC LIMIT 1"
        ).fetchone()
    return (int(row[0]), int(row[1] or 0)) if row else (0, 0)


def read_all(db: Path, after: int, records: int) -> bool:
    """An execution newer than ``after`` has read every input record (its progress, as
    the metadata database has it); the SIGTERM that follows makes it flush, wait for
    every acknowledgement, checkpoint and exit."""
    time.sleep(0.2)  # the harness polls every 50 ms; a look per 250 ms is plenty
    execution, read = newest_execution(db)
    return execution > after and read >= records


async def loop(src: str, dst: str, expected: int, assign: bool) -> None:
    """The hand-written loop: the job's functions, a commit per second."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from kafka_fns import enrich, keep

    group = f"loop-{dst}"
    opts: dict[str, Any] = {
        "bootstrap_servers": BOOTSTRAP,
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 500,
    }
    consumer = AIOKafkaConsumer(**opts) if assign else AIOKafkaConsumer(src, **opts)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    if assign:
        consumer.assign([TopicPartition(src, p) for p in range(PARTITIONS)])
    loads, dumps, send = orjson.loads, orjson.dumps, producer.send
    sent, pending = 0, []
    last_commit = time.monotonic()
    while sent < expected:
        got = await consumer.getmany(timeout_ms=200, max_records=500)
        for messages in got.values():
            for m in messages:
                r = loads(m.value)
                if keep(r):
                    pending.append(await send(dst, dumps(enrich(r))))
                    sent += 1
        if time.monotonic() - last_commit >= 1:  # the durability point of a checkpoint
            await producer.flush()
            await asyncio.gather(*pending)
            pending.clear()
            await consumer.commit()
            last_commit = time.monotonic()
    await producer.flush()
    await asyncio.gather(*pending)
    await consumer.commit()
    await producer.stop()
    await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=4, metavar=("MODE", "SRC", "DST", "EXPECTED"))
    args = parser.parse_args()
    if args.child:
        mode, src, dst, expected = args.child
        asyncio.run(loop(src, dst, int(expected), assign=mode == "assign"))
        return

    import tempfile

    from harness import BIN, Contender, measure, report

    src = f"bench-in-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    asyncio.run(produce(src, args.records))
    print(f"produced {args.records:,} records in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    expected = sum(1 for n in range(args.records) if n % 10 != 0)
    work = Path(tempfile.mkdtemp(prefix="bench-kafka-"))  # the job's metadata DB, checkpoints
    outputs: dict[str, str] = {}
    db = work / ".pipeline" / "pipeline.db"
    before: dict[str, int] = {}  # the newest execution before a run of the job

    def contender(name: str, argv: list[str], job: bool = False) -> Contender:
        env = {
            "PIPELINE_BENCH_KAFKA": BOOTSTRAP,
            "PIPELINE_BENCH_KAFKA_IN": src,
            "PYTHONPATH": str(HERE / "jobs"),
        }

        def prepare() -> None:
            dst = outputs[name] = f"bench-out-{uuid.uuid4().hex[:8]}"
            asyncio.run(create_topic(dst))
            env["PIPELINE_BENCH_KAFKA_OUT"] = dst
            env["PIPELINE_BENCH_KAFKA_GROUP"] = f"job-{dst}"
            before[name] = newest_execution(db)[0]
            if not job:
                c.argv = [*argv, dst, str(expected)]

        def verify() -> int:
            return asyncio.run(count(outputs[name]))

        c = Contender(
            name,
            argv,
            prepare=prepare,
            verify=verify,
            env=env,
            cwd=work,
            stop_when=(lambda: read_all(db, before[name], args.records)) if job else None,
        )
        return c

    me = [str(BIN / "python"), str(Path(__file__).resolve()), "--child"]
    runs = measure(
        [
            contender("aiokafka-group", [*me, "group", src]),
            contender("aiokafka-assign", [*me, "assign", src]),
            contender(
                "framework",
                [str(BIN / "pipeline-run"), "run", str(HERE / "jobs" / "kafka_passthrough.yaml")],
                job=True,
            ),
        ],
        args.repeat,
    )
    print(
        report(
            f"Kafka topic → filter → map → topic at {BOOTSTRAP}, {args.records:,} records in, "
            f"{PARTITIONS} partitions",
            runs,
            "aiokafka-group",
        )
    )


if __name__ == "__main__":
    main()
