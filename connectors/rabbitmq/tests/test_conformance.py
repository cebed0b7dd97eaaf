"""The RabbitMQ connector against the Source/Sink conformance classes (the real broker).
RabbitMQ keeps unacknowledged messages itself, so the source's position is informational
and the exact-resume check does not apply (resumption is redelivery: tested with
SIGKILLs in test_rabbitmq_crash.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from rabbitmq_helpers import AMQP_URL, Broker

from pipeline_connector_rabbitmq import RabbitMQSink, RabbitMQSource
from pipeline_core.testing.conformance import SinkConformance, SourceConformance

RECORDS = 20
_BROKER: list[Broker] = []


@pytest.fixture(autouse=True)
def _broker(broker: Broker) -> Iterator[None]:
    _BROKER[:] = [broker]
    yield


class TestRabbitMQSourceConformance(SourceConformance):
    source_cls = RabbitMQSource
    expected_count = RECORDS
    resumes_from_position = False

    def config(self, tmp_path: Path) -> dict[str, Any]:
        queue = _BROKER[0].queue("conf")
        _BROKER[0].publish_json(queue, [{"n": n} for n in range(RECORDS)])
        return {"url": AMQP_URL, "queue": queue, "batch_size": 4, "prefetch": 100}

    def bad_config(self) -> tuple[dict[str, Any], str]:
        return {"queue": "q", "url": "http://nope"}, "url"

    def released(self, source: Any) -> bool:
        return source.channel is None


class TestRabbitMQSinkConformance(SinkConformance):
    sink_cls = RabbitMQSink

    def config(self, tmp_path: Path) -> dict[str, Any]:
        return {"url": AMQP_URL, "routing_key": _BROKER[0].queue("conf-out")}

    def bad_config(self) -> tuple[dict[str, Any], str]:
        return {"routing_key": "a", "routing_key_field": "b"}, "routing_key_field"

    def read_back(self, tmp_path: Path, options: dict[str, Any]) -> list[Any]:
        return [orjson.loads(b) for b in _BROKER[0].drain(options["routing_key"])]
