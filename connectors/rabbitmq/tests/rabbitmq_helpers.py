"""The real RabbitMQ broker (``PIPELINE_TEST_AMQP_URL``, default 127.0.0.1:5672): helpers
that publish and read with pika's BlockingConnection, and per-test queue names."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import orjson
import pika
import pytest

AMQP_URL = os.environ.get("PIPELINE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


class Broker:
    def __init__(self, url: str) -> None:
        self.url = url
        self.created: list[tuple[str, str]] = []

    def _conn(self) -> pika.BlockingConnection:
        return pika.BlockingConnection(pika.URLParameters(self.url))

    def queue(self, prefix: str = "q") -> str:
        name = f"test-{prefix}-{uuid.uuid4().hex[:8]}"
        with self._conn() as c:
            c.channel().queue_declare(name, durable=True)
        self.created.append(("queue", name))
        return name

    def exchange_to_queue(self, prefix: str = "x") -> tuple[str, str]:
        """A topic exchange and a queue bound to it with '#'."""
        exchange, queue = f"test-{prefix}-{uuid.uuid4().hex[:8]}", self.queue(prefix)
        with self._conn() as c:
            ch = c.channel()
            ch.exchange_declare(exchange, "topic", durable=True)
            ch.queue_bind(queue, exchange, "#")
        self.created.append(("exchange", exchange))
        return exchange, queue

    def publish(self, queue: str, bodies: list[bytes], *, ids: list[str] | None = None) -> None:
        with self._conn() as c:
            ch = c.channel()
            ch.confirm_delivery()
            for i, body in enumerate(bodies):
                props = pika.BasicProperties(delivery_mode=2, message_id=ids[i] if ids else None)
                ch.basic_publish("", queue, body, props)

    def publish_json(self, queue: str, records: list[dict]) -> None:
        self.publish(queue, [orjson.dumps(r) for r in records])

    def count(self, queue: str) -> int:
        """Messages ready (not delivered to a consumer) in ``queue``."""
        with self._conn() as c:
            return int(c.channel().queue_declare(queue, passive=True).method.message_count)

    def drain(self, queue: str) -> list[pika.spec.BasicProperties | bytes]:
        """Take (and acknowledge) every message now in ``queue``: their bodies."""
        out = []
        with self._conn() as c:
            ch = c.channel()
            while True:
                method, _props, body = ch.basic_get(queue, auto_ack=True)
                if method is None:
                    return out
                out.append(body)

    def cleanup(self) -> None:
        with self._conn() as c:
            ch = c.channel()
            for kind, name in reversed(self.created):
                if kind == "queue":
                    ch.queue_delete(name)
                else:
                    ch.exchange_delete(name)


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = Broker(AMQP_URL)
    try:
        with b._conn():
            pass
    except Exception as exc:  # a missing broker fails the test; it never skips it
        pytest.fail(f"RabbitMQ at {AMQP_URL} is not reachable ({exc}); run `make test`")
    yield b
    b.cleanup()
