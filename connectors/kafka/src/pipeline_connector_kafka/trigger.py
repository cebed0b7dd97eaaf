"""EVENT trigger ``kafka``: each message on a topic starts a job."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from pipeline_connector_kafka.config import KafkaTriggerConfig
from pipeline_core import EventMessage, EventTrigger, FireCallback

__all__ = ["KafkaTrigger"]


class KafkaTrigger(EventTrigger[KafkaTriggerConfig]):
    """Consumes ``event_topic`` in a consumer group shared by every runner instance, so
    each message fires once; a message's offset is committed after the scheduler recorded
    the execution it started (a crash in between fires it again, never loses it)."""

    type_name = "kafka"
    config_cls = KafkaTriggerConfig

    def __init__(self, config: KafkaTriggerConfig, topic: str) -> None:
        super().__init__(config, topic)
        self.consumer: AIOKafkaConsumer | None = None

    async def run(self, fire: FireCallback) -> None:
        cfg = self.config
        self.consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=cfg.bootstrap_servers,
            group_id=cfg.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=cfg.session_timeout_ms,
            heartbeat_interval_ms=cfg.heartbeat_interval_ms,
        )
        await self.consumer.start()
        async for m in self.consumer:
            await fire(
                EventMessage(
                    topic=m.topic,
                    payload=m.value or b"",
                    headers={k: v for k, v in (m.headers or ())},
                    where=f"partition {m.partition} offset {m.offset}",
                )
            )
            await self.consumer.commit(
                {TopicPartition(m.topic, m.partition): OffsetAndMetadata(m.offset + 1, "")}
            )

    async def close(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            await consumer.stop()
