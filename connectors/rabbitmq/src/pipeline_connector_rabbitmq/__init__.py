"""RabbitMQ connector for Pipeline Framework: queue source, exchange sink, EVENT trigger."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline_core.lazy import lazy_exports

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

__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "RabbitMQSink",
    "RabbitMQSinkConfig",
    "RabbitMQSource",
    "RabbitMQSourceConfig",
    "RabbitMQTrigger",
    "RabbitMQTriggerConfig",
]
