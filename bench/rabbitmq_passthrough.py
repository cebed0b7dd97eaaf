"""Benchmark: 200,000 JSON messages queue → transform → exchange on the real RabbitMQ,
the framework (rabbitmq source → map → rabbitmq sink, checkpoint every second) against a
hand-written pika AsyncioConnection loop with the same policy (prefetch 2000, manual
acks, publisher confirms, input acknowledged only after its output was confirmed), in
the same run. Each contender runs in its own process (for its peak RSS).

    PIPELINE_BENCH_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2F \\
        python bench/rabbitmq_passthrough.py [--messages 200000] [--repeat 2]
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
from typing import Any

import orjson
import pika

URL = os.environ.get("PIPELINE_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
IN_Q, OUT_X, OUT_Q = "bench-in", "bench-out", "bench-out-q"
PREFETCH = 2000


def transform(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["id"], "user": record["user"], "total": record["amount"] * 1.19}


def setup(messages: int) -> None:
    """Fresh input queue with ``messages`` messages; output exchange bound to a queue."""
    with pika.BlockingConnection(pika.URLParameters(URL)) as conn:
        ch = conn.channel()
        for q in (IN_Q, OUT_Q):
            ch.queue_delete(q)
            ch.queue_declare(q, durable=True)
        ch.exchange_declare(OUT_X, "topic", durable=True)
        ch.queue_bind(OUT_Q, OUT_X, "#")
        props = pika.BasicProperties(delivery_mode=2)
        for i in range(messages):  # no confirms (1k msg/s with them): count below instead
            body = {"id": i, "user": f"user-{i % 5000}", "amount": i % 1000, "pad": "x" * 40}
            ch.basic_publish("", IN_Q, orjson.dumps(body), props)
        while ch.queue_declare(IN_Q, passive=True).method.message_count < messages:
            conn.sleep(0.1)


def out_count() -> int:
    with pika.BlockingConnection(pika.URLParameters(URL)) as conn:
        return int(conn.channel().queue_declare(OUT_Q, passive=True).method.message_count)


async def baseline(messages: int) -> int:
    """pika AsyncioConnection by hand: consume → transform → publish (confirms) → ack
    the input once everything published from it is confirmed."""
    from pika.adapters.asyncio_connection import AsyncioConnection
    from pika.spec import Basic

    loop = asyncio.get_running_loop()
    ready: asyncio.Future[Any] = loop.create_future()
    done: asyncio.Future[int] = loop.create_future()
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    state = {"published": 0, "confirmed": 0, "pending_acks": []}  # (publish tag, in tag)

    def on_confirm(frame: Any) -> None:
        m = frame.method
        assert isinstance(m, Basic.Ack)
        state["confirmed"] = (
            m.delivery_tag if m.multiple else max(state["confirmed"], m.delivery_tag)
        )
        acks = state["pending_acks"]
        upto = None
        while acks and acks[0][0] <= state["confirmed"]:
            upto = acks.pop(0)[1]
        if upto is not None:
            channel.basic_ack(upto, multiple=True)
        if state["confirmed"] >= messages and not done.done():
            done.set_result(state["confirmed"])

    def on_message(ch: Any, method: Any, _props: Any, body: bytes) -> None:
        out = orjson.dumps(transform(orjson.loads(body)))
        ch.basic_publish(OUT_X, "bench", out, props)
        state["published"] += 1
        state["pending_acks"].append((state["published"], method.delivery_tag))

    def on_channel(ch: Any) -> None:
        ready.set_result(ch)

    AsyncioConnection(
        pika.URLParameters(URL),
        on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
        custom_ioloop=loop,
    )
    channel = await ready
    qos: asyncio.Future[Any] = loop.create_future()
    channel.basic_qos(prefetch_count=PREFETCH, callback=qos.set_result)
    await qos
    confirm: asyncio.Future[Any] = loop.create_future()
    channel.confirm_delivery(on_confirm, callback=confirm.set_result)
    await confirm
    channel.basic_consume(IN_Q, on_message)
    result = await done
    channel.connection.close()
    return result


async def framework(messages: int) -> int:
    from pipeline_core import ExecutionControl, PipelineJob, execute, load_plugins, prepare
    from pipeline_core.checkpoint.repository import InMemoryCheckpointRepository
    from pipeline_core.checkpoint.storage import CheckpointStorage
    from pipeline_core.runtime.runner import Checkpointing

    job = (
        PipelineJob.builder()
        .name("bench-mq")
        .type("STREAMING")
        .source("rabbitmq", url=URL, queue=IN_Q, prefetch=PREFETCH)
        .transform(lambda s: s.map(transform))
        .sink("rabbitmq", url=URL, exchange=OUT_X, routing_key="bench")
        .config(checkpoint_interval="1s")
        .build()
    )
    plugins = load_plugins()
    control = ExecutionControl()
    task = asyncio.create_task(
        execute(
            prepare(job, plugins),
            plugins,
            control=control,
            checkpointing=Checkpointing(
                repository=InMemoryCheckpointRepository(),
                storage=CheckpointStorage(f"/tmp/bench-mq-cp-{os.getpid()}"),
            ),
        )
    )
    metrics_written = 0
    while True:  # the sink has confirmed everything once the output queue holds it all
        await asyncio.sleep(0.05)
        metrics_written = await asyncio.to_thread(out_count)
        if metrics_written >= messages or task.done():
            break
    control.stop_at_checkpoint()  # acknowledges the input
    result = await task
    assert result.error is None, result.error
    return metrics_written


def peak_rss_mb() -> float:
    """VmHWM: this program's peak RSS (ru_maxrss would include the parent's peak from
    before the exec, which here holds the 200k messages it published)."""
    for line in open("/proc/self/status"):  # noqa: SIM115
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(which: str, messages: int) -> None:
    if which == "framework":
        import pipeline_connector_rabbitmq  # noqa: F401 - imports outside the timed region
        import pipeline_core  # noqa: F401
    t0 = time.perf_counter()
    n = asyncio.run(baseline(messages) if which == "baseline" else framework(messages))
    elapsed = time.perf_counter() - t0
    print(json.dumps({"elapsed": elapsed, "moved": n, "rss_mb": peak_rss_mb()}))


def measure(which: str, messages: int) -> dict[str, Any]:
    setup(messages)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", which, str(messages)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out_count() >= messages, f"{which}: only {out_count()} messages arrived"
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "framework": []}
    for _ in range(args.repeat):
        for which in runs:
            runs[which].append(measure(which, args.messages))
    print(f"{args.messages:,} messages queue → transform → exchange (confirms, manual acks)")
    for which, rs in runs.items():
        best = min(r["elapsed"] for r in rs)
        print(
            f"  {which:9s}: best {best:.2f} s ({args.messages / best:,.0f} msg/s), "
            f"median {statistics.median(r['elapsed'] for r in rs):.2f} s, "
            f"peak RSS {max(r['rss_mb'] for r in rs):.0f} MB"
        )
    ratio = min(r["elapsed"] for r in runs["framework"]) / min(
        r["elapsed"] for r in runs["baseline"]
    )
    print(f"  framework / baseline time: {ratio:.2f}")


if __name__ == "__main__":
    main()
