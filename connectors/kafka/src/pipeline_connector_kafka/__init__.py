"""Kafka connector for Pipeline Framework: topic source, topic sink, EVENT trigger."""

from pipeline_connector_kafka.config import KafkaSinkConfig, KafkaSourceConfig, KafkaTriggerConfig
from pipeline_connector_kafka.sink import KafkaSink
from pipeline_connector_kafka.source import KafkaSource
from pipeline_connector_kafka.trigger import KafkaTrigger

__all__ = [
    "KafkaSink",
    "KafkaSinkConfig",
    "KafkaSource",
    "KafkaSourceConfig",
    "KafkaTrigger",
    "KafkaTriggerConfig",
]
