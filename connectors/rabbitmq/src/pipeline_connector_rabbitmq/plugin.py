"""Registers the RabbitMQ source, sink and event trigger (entry point ``rabbitmq``)."""

from __future__ import annotations

from typing import Any

from pipeline_core import TypeRegistry, hookimpl


@hookimpl
def pipeline_register_sources(registry: TypeRegistry[Any]) -> None:
    registry.add("pipeline_connector_rabbitmq.source:RabbitMQSource", type_name="rabbitmq")


@hookimpl
def pipeline_register_sinks(registry: TypeRegistry[Any]) -> None:
    registry.add("pipeline_connector_rabbitmq.sink:RabbitMQSink", type_name="rabbitmq")


@hookimpl
def pipeline_register_triggers(registry: TypeRegistry[Any]) -> None:
    registry.add("pipeline_connector_rabbitmq.trigger:RabbitMQTrigger", type_name="rabbitmq")
