"""Registers the Kafka source, sink and event trigger (entry point ``kafka``)."""

from __future__ import annotations

from typing import Any

from pipeline_core import TypeRegistry, hookimpl


@hookimpl
def pipeline_register_sources(registry: TypeRegistry[Any]) -> None:
    registry.add("pipeline_connector_kafka.source:KafkaSource", type_name="kafka")


@hookimpl
def pipeline_register_sinks(registry: TypeRegistry[Any]) -> None:
    registry.add("pipeline_connector_kafka.sink:KafkaSink", type_name="kafka")


@hookimpl
def pipeline_register_triggers(registry: TypeRegistry[Any]) -> None:
    registry.add("pipeline_connector_kafka.trigger:KafkaTrigger", type_name="kafka")
