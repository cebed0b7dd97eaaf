"""Kafka connector for Pipeline Framework: topic source, topic sink, EVENT trigger."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline_core.lazy import lazy_exports

if TYPE_CHECKING:
    from pipeline_connector_kafka.config import (
        KafkaSinkConfig,
        KafkaSourceConfig,
        KafkaTriggerConfig,
    )
    from pipeline_connector_kafka.sink import KafkaSink
    from pipeline_connector_kafka.source import KafkaSource
    from pipeline_connector_kafka.trigger import KafkaTrigger

# Loaded on first use: discovering the plugin (``pipeline_connector_kafka.plugin``) must not
# import the connector's client libraries, which only a job that uses it needs.
_EXPORTS = {
    "KafkaSink": "pipeline_connector_kafka.sink",
    "KafkaSinkConfig": "pipeline_connector_kafka.config",
    "KafkaSource": "pipeline_connector_kafka.source",
    "KafkaSourceConfig": "pipeline_connector_kafka.config",
    "KafkaTrigger": "pipeline_connector_kafka.trigger",
    "KafkaTriggerConfig": "pipeline_connector_kafka.config",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "KafkaSink",
    "KafkaSinkConfig",
    "KafkaSource",
    "KafkaSourceConfig",
    "KafkaTrigger",
    "KafkaTriggerConfig",
]
