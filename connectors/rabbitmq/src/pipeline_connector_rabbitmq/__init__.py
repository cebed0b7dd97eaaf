"""RabbitMQ connector for Pipeline Framework: queue source, exchange sink, EVENT trigger."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline_connector_rabbitmq.config import (
        RabbitMQSinkConfig,
        RabbitMQSourceConfig,
        RabbitMQTriggerConfig,
    )
    from pipeline_connector_rabbitmq.sink import RabbitMQSink
    from pipeline_connector_rabbitmq.source import RabbitMQSource
    from pipeline_connector_rabbitmq.trigger import RabbitMQTrigger

# Loaded on first use: discovering the plugin (``pipeline_connector_rabbitmq.plugin``) must not
# import the connector's client libraries, which only a job that uses it needs.
_EXPORTS = {
    "RabbitMQSink": "pipeline_connector_rabbitmq.sink",
    "RabbitMQSinkConfig": "pipeline_connector_rabbitmq.config",
    "RabbitMQSource": "pipeline_connector_rabbitmq.source",
    "RabbitMQSourceConfig": "pipeline_connector_rabbitmq.config",
    "RabbitMQTrigger": "pipeline_connector_rabbitmq.trigger",
    "RabbitMQTriggerConfig": "pipeline_connector_rabbitmq.config",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "RabbitMQSink",
    "RabbitMQSinkConfig",
    "RabbitMQSource",
    "RabbitMQSourceConfig",
    "RabbitMQTrigger",
    "RabbitMQTriggerConfig",
]
