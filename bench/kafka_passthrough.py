"""Benchmark: 1,000,000 100-byte JSON records topic → filter/map → topic on the
Kafka-protocol broker, the framework (kafka source → filter → map → kafka sink, default
settings: a checkpoint every 5 s) against a hand-written aiokafka consume → produce loop with the
same batching (500-record polls, linger 5 ms, acks=all), in the same run. Each contender
runs in its own process (its own peak RSS) and reads the same input topic in its own
consumer group.

    PIPELINE_BENCH_KAFKA=127.0.0.1:19092 python bench/kafka_passthrough.py [--records N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import orjson

BOOTSTRAP = os.environ.get("PIPELINE_BENCH_KAFKA", "127.0.0.1:19092")
#: the job's config: the defaults (a STREAMING job checkpoints every 5 s), unless
#: PIPELINE_BENCH_CHECKPOINT_INTERVAL says otherwise (to measure what a checkpoint costs)
CONFIG: dict[str, Any] = (
    {"checkpoint_interval": os.environ["PIPELINE_BENCH_CHECKPOINT_INTERVAL"]}
    if os.environ.get("PIPELINE_BENCH_CHECKPOINT_INTERVAL")
    else {}
)


def keep(r: dict[str, Any]) -> bool:
    return r["n"] % 10 != 0


def enrich(r: dict[str, Any]) -> dict[str, Any]:
    return {"n": r["n"], "user": r["user"], "total": r["amount"] * 1.19}


async def produce(topic: str, records: int) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 4, 1)])
    await admin.close()
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
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(
        topic, bootstrap_servers=BOOTSTRAP, group_id=None, auto_offset_reset="earliest"
    )
    await c.start()
    total = 0
    while True:
        got = await c.getmany(timeout_ms=1000, max_records=10_000)
        if not got:
            break
        total += sum(len(v) for v in got.values())
    await c.stop()
    return total


async def baseline(src: str, dst: str, expected: int) -> int:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(
        src,
        bootstrap_servers=BOOTSTRAP,
        group_id=f"b-{dst}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
    )
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    sent = 0
    last_commit = time.monotonic()
    pending: list[Any] = []
    while sent < expected:
        got = await consumer.getmany(timeout_ms=200, max_records=500)
        for messages in got.values():
            for m in messages:
                r = orjson.loads(m.value)
                if keep(r):
                    pending.append(await producer.send(dst, orjson.dumps(enrich(r))))
                    sent += 1
        if time.monotonic() - last_commit >= 5:  # same durability point as a checkpoint
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
    return sent


async def framework(src: str, dst: str, expected: int) -> int:
    from pipeline_core import ExecutionControl, PipelineJob, execute, load_plugins, prepare
    from pipeline_core.checkpoint.repository import InMemoryCheckpointRepository
    from pipeline_core.checkpoint.storage import CheckpointStorage
    from pipeline_core.runtime.runner import Checkpointing

    job = (
        PipelineJob.builder()
        .name(f"f-{dst}")
        .type("STREAMING")
        .source(
            "kafka",
            bootstrap_servers=BOOTSTRAP,
            topics=[src],
            with_metadata=False,
            start_from="earliest",
        )
        .transform(lambda s: s.filter(keep).map(enrich))
        .sink("kafka", bootstrap_servers=BOOTSTRAP, topic=dst)
        .config(**CONFIG)
        .build()
    )
    plugins = load_plugins()
    control = ExecutionControl()
    metrics_holder: dict[str, Any] = {}
    from pipeline_core import RunMetrics

    metrics = RunMetrics()
    metrics_holder["m"] = metrics
    task = asyncio.create_task(
        execute(
            prepare(job, plugins),
            plugins,
            metrics=metrics,
            control=control,
            checkpointing=Checkpointing(
                repository=InMemoryCheckpointRepository(),
                storage=CheckpointStorage(f"/tmp/bench-k-{dst}"),
            ),
        )
    )
    while metrics.records_written < expected and not task.done():  # noqa: ASYNC110 - polls a counter
        await asyncio.sleep(0.02)
    control.stop_at_checkpoint()  # flushes and waits for every acknowledgement
    result = await task
    assert result.error is None, result.error
    return result.records_written


def peak_rss_mb() -> float:
    for line in open("/proc/self/status"):  # noqa: SIM115
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(which: str, src: str, records: int) -> None:
    if which == "framework":
        import pipeline_connector_kafka  # noqa: F401 - imports outside the timed region
    dst = f"out-{which}-{uuid.uuid4().hex[:8]}"
    expected = sum(1 for n in range(records) if n % 10 != 0)
    t0 = time.perf_counter()
    fn = baseline if which == "baseline" else framework
    sent = asyncio.run(fn(src, dst, expected))
    elapsed = time.perf_counter() - t0
    print(json.dumps({"elapsed": elapsed, "sent": sent, "rss_mb": peak_rss_mb(), "dst": dst}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    src = f"bench-in-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    asyncio.run(produce(src, args.records))
    print(f"produced {args.records:,} records in {time.perf_counter() - t0:.1f} s")
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "framework": []}
    for _ in range(args.repeat):
        for which in runs:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", which, src, str(args.records)],
                check=True,
                capture_output=True,
                text=True,
            )
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r["arrived"] = asyncio.run(count(r["dst"]))
            runs[which].append(r)
    n = runs["baseline"][0]["sent"]
    print(f"{args.records:,} records topic → filter → map → topic ({n:,} out), 4 partitions")
    for which, rs in runs.items():
        best = min(r["elapsed"] for r in rs)
        print(
            f"  {which:9s}: best {best:.2f} s ({args.records / best:,.0f} records/s in), "
            f"median {statistics.median(r['elapsed'] for r in rs):.2f} s, "
            f"peak RSS {max(r['rss_mb'] for r in rs):.0f} MB, "
            f"arrived {min(r['arrived'] for r in rs):,}"
        )
    ratio = min(r["elapsed"] for r in runs["baseline"]) / min(
        r["elapsed"] for r in runs["framework"]
    )
    print(f"  framework throughput / hand-written: {ratio:.2f}")


if __name__ == "__main__":
    main()
