"""Registers the RabbitMQ source, sink and event trigger (entry point ``rabbitmq``)."""

from __future__ import annotations

from typing import Any

from pipeline_connector_rabbitmq.sink import RabbitMQSink
from pipeline_connector_rabbitmq.source import RabbitMQSource
from pipeline_connector_rabbitmq.trigger import RabbitMQTrigger
from pipeline_core import TypeRegistry, hookimpl


@hookimpl
def pipeline_register_sources(registry: TypeRegistry[Any]) -> None:
    registry.add(RabbitMQSource)


@hookimpl
def pipeline_register_sinks(registry: TypeRegistry[Any]) -> None:
    registry.add(RabbitMQSink)


@hookimpl
def pipeline_register_triggers(registry: TypeRegistry[Any]) -> None:
    registry.add(RabbitMQTrigger)
