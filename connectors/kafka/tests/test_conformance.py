"""The Kafka connector against the Source/Sink conformance classes (the test broker)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from kafka_helpers import BOOTSTRAP, FAST_GROUP, Broker

from pipeline_connector_kafka import KafkaSink, KafkaSource
from pipeline_core.testing.conformance import SinkConformance, SourceConformance

RECORDS = 18


class TestKafkaSourceConformance(SourceConformance):
    source_cls = KafkaSource
    expected_count = RECORDS

    def config(self, tmp_path: Path) -> dict[str, Any]:
        broker = Broker()

        async def setup() -> str:
            topic = await broker.topic("conf")
            await broker.produce(topic, [{"n": n} for n in range(RECORDS)])
            return topic

        topic = asyncio.run(setup())
        return {
            "bootstrap_servers": BOOTSTRAP,
            "topics": [topic],
            "group_id": f"conformance-{uuid.uuid4().hex[:8]}",
            "with_metadata": False,
            "max_poll_records": 4,
            **FAST_GROUP,
        }

    def bad_config(self) -> tuple[dict[str, Any], str]:
        return {"topics": ["a"], "value_deserializer": "yaml"}, "value_deserializer"

    def released(self, source: Any) -> bool:
        return source.consumer is None


class TestKafkaSinkConformance(SinkConformance):
    sink_cls = KafkaSink

    def config(self, tmp_path: Path) -> dict[str, Any]:
        topic = asyncio.run(Broker().topic("conf-out"))
        return {"bootstrap_servers": BOOTSTRAP, "topic": topic}

    def bad_config(self) -> tuple[dict[str, Any], str]:
        return {"topic": "t", "compression": "brotli"}, "compression"

    def read_back(self, tmp_path: Path, options: dict[str, Any]) -> list[Any]:
        return asyncio.run(Broker().consume_all(options["topic"], idle_ms=500))
