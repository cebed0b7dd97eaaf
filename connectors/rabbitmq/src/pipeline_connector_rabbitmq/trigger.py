"""EVENT trigger ``rabbitmq``: each message on a queue starts a job."""

from __future__ import annotations

import asyncio
from typing import Any

from pipeline_connector_rabbitmq.config import RabbitMQTriggerConfig
from pipeline_connector_rabbitmq.connection import AmqpChannel
from pipeline_core import EventMessage, EventTrigger, FireCallback

__all__ = ["RabbitMQTrigger"]


class RabbitMQTrigger(EventTrigger[RabbitMQTriggerConfig]):
    """Consumes ``event_topic`` (a queue) one message at a time (prefetch 1); acknowledges
    each only after the scheduler recorded the execution it started, so a crash in
    between redelivers the message. Several runner instances consuming the same queue
    each get different messages: every message starts the job once."""

    type_name = "rabbitmq"
    config_cls = RabbitMQTriggerConfig

    def __init__(self, config: RabbitMQTriggerConfig, topic: str) -> None:
        super().__init__(config, topic)
        self.channel: AmqpChannel | None = None

    async def run(self, fire: FireCallback) -> None:
        cfg = self.config
        ch = AmqpChannel(cfg.url, f"event trigger rabbitmq:{self.topic}")
        self.channel = ch
        await ch.open()
        if cfg.exchange:
            await ch.declare_exchange(cfg.exchange, "topic", durable=True)
        await ch.declare_queue(self.topic, durable=True, passive=not cfg.declare)
        if cfg.exchange:
            for key in cfg.routing_keys:
                await ch.bind(self.topic, cfg.exchange, key)
        await ch.qos(1)
        inbox: asyncio.Queue[tuple[Any, Any, bytes]] = asyncio.Queue()
        await ch.consume(self.topic, lambda _c, m, p, b: inbox.put_nowait((m, p, b)))
        while True:
            get: asyncio.Future[Any] = asyncio.ensure_future(inbox.get())
            waiting: list[asyncio.Future[Any]] = [get, ch.closed]
            await asyncio.wait(waiting, return_when="FIRST_COMPLETED")
            if not get.done():
                get.cancel()
                raise ConnectionError(f"RabbitMQ connection lost: {ch.closed.result()!r}")
            method, props, body = get.result()
            await fire(
                EventMessage(
                    topic=self.topic,
                    payload=body,
                    headers=dict(props.headers or {}),
                    where=f"message {props.message_id or method.delivery_tag}",
                )
            )
            assert ch.channel is not None
            ch.channel.basic_ack(method.delivery_tag)

    async def close(self) -> None:
        ch, self.channel = self.channel, None
        if ch is not None:
            await ch.close()
