"""Benchmark: 200,000 persistent JSON messages queue → transform → exchange on the real
RabbitMQ, whole processes, as a user runs them (``bench/harness.py``):

- **framework**: ``pipeline-run run bench/jobs/rabbitmq_passthrough.yaml`` — recorded
  (SQLite metadata), default settings. A STREAMING job never ends by itself: it gets
  SIGTERM once the output queue holds every message (every publish confirmed), and its
  time runs until it has checkpointed (acknowledging its input) and exited.
- **pika**: a hand-written pika ``AsyncioConnection`` loop with the same policy
  (prefetch 2,000 — the source's default —, manual acks, publisher confirms, an input
  message acknowledged only after its output was confirmed), calling the job's own
  function (``bench/jobs/mq_fns.py``).

Each run starts from a freshly filled input queue and an empty output queue (outside the
timed region); the output queue is counted before the time counts.

    PIPELINE_BENCH_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2F \\
        python bench/rabbitmq_passthrough.py [--messages 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import pika

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "jobs"))

URL = os.environ.get("PIPELINE_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
IN_Q, OUT_X, OUT_Q = "bench-in", "bench-out", "bench-out-q"
PREFETCH = 2000


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
    from mq_fns import transform
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", type=int, metavar="MESSAGES")
    args = parser.parse_args()
    if args.child:
        asyncio.run(baseline(args.child))
        return
    from harness import BIN, Contender, measure, report

    n = args.messages

    def reached() -> bool:
        time.sleep(0.2)  # the harness polls every 50 ms; a look per 250 ms is plenty
        return out_count() >= n

    env = {"PIPELINE_BENCH_AMQP_URL": URL, "PYTHONPATH": str(HERE / "jobs")}
    work = Path(tempfile.mkdtemp(prefix="bench-mq-"))  # the job's metadata DB, checkpoints
    runs = measure(
        [
            Contender(
                "pika",
                [sys.executable, str(Path(__file__).resolve()), "--child", str(n)],
                prepare=lambda: setup(n),
                verify=out_count,
                env=env,
            ),
            Contender(
                "framework",
                [
                    str(BIN / "pipeline-run"),
                    "run",
                    str(HERE / "jobs" / "rabbitmq_passthrough.yaml"),
                ],
                prepare=lambda: setup(n),
                verify=out_count,
                env=env,
                cwd=work,
                stop_when=reached,
            ),
        ],
        args.repeat,
    )
    print(
        report(f"RabbitMQ queue → transform → exchange at {URL.rsplit('@', 1)[-1]}", runs, "pika")
    )


if __name__ == "__main__":
    main()
