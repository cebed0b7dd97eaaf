"""RabbitMQ connector for Pipeline Framework: queue source, exchange sink, EVENT trigger."""

from pipeline_connector_rabbitmq.config import (
    RabbitMQSinkConfig,
    RabbitMQSourceConfig,
    RabbitMQTriggerConfig,
)
from pipeline_connector_rabbitmq.sink import RabbitMQSink
from pipeline_connector_rabbitmq.source import RabbitMQSource
from pipeline_connector_rabbitmq.trigger import RabbitMQTrigger

__all__ = [
    "RabbitMQSink",
    "RabbitMQSinkConfig",
    "RabbitMQSource",
    "RabbitMQSourceConfig",
    "RabbitMQTrigger",
    "RabbitMQTriggerConfig",
]
