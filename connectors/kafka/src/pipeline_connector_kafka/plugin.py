"""Registers the Kafka source, sink and event trigger (entry point ``kafka``)."""

from __future__ import annotations

from typing import Any

from pipeline_connector_kafka.sink import KafkaSink
from pipeline_connector_kafka.source import KafkaSource
from pipeline_connector_kafka.trigger import KafkaTrigger
from pipeline_core import TypeRegistry, hookimpl


@hookimpl
def pipeline_register_sources(registry: TypeRegistry[Any]) -> None:
    registry.add(KafkaSource)


@hookimpl
def pipeline_register_sinks(registry: TypeRegistry[Any]) -> None:
    registry.add(KafkaSink)


@hookimpl
def pipeline_register_triggers(registry: TypeRegistry[Any]) -> None:
    registry.add(KafkaTrigger)
