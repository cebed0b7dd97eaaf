"""The ``rabbitmq`` sink: publish to an exchange with publisher confirms."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pika
from pika.spec import Basic

from pipeline_connector_rabbitmq.config import RabbitMQSinkConfig
from pipeline_connector_rabbitmq.connection import (
    AmqpChannel,
    describe_url,
    open_channel,
    reachable,
)
from pipeline_core import FatalConnectorError, RetriableConnectorError, RuntimeContext, Sink

__all__ = ["RabbitMQSink"]

log = logging.getLogger("pipeline_connector_rabbitmq")

_Message = tuple[str, bytes, Any]  # routing key, body, properties


class RabbitMQSink(Sink[RabbitMQSinkConfig]):
    """At-least-once: every message is published with confirms on; ``prepare_commit``
    waits until the broker confirmed all of them, so a completed checkpoint means the
    broker has every message. Unconfirmed messages are kept (at most ``max_in_flight``)
    and published again after a reconnect; a message the broker refuses (nack) fails the
    checkpoint, and the job retries from the previous one."""

    type_name = "rabbitmq"
    config_cls = RabbitMQSinkConfig

    def __init__(self, config: RabbitMQSinkConfig) -> None:
        super().__init__(config)
        self.channel: AmqpChannel | None = None
        self.pending: dict[int, _Message] = {}
        self.next_tag = 1
        self.nacked = 0
        self.published = 0
        self.reconnects = 0
        self._confirmed = asyncio.Event()
        mode = pika.DeliveryMode.Persistent if config.persistent else pika.DeliveryMode.Transient
        content_type = {"json": "application/json", "text": "text/plain"}.get(config.encode)
        self._props = pika.BasicProperties(delivery_mode=mode, content_type=content_type)

    async def check_connection(self) -> str | None:
        """``validate --connect``: a connection and a channel open."""
        return await reachable(self.config.url, "rabbitmq")

    async def open(self, ctx: RuntimeContext) -> None:
        await super().open(ctx)
        await self._connect()

    async def _connect(self) -> None:
        cfg = self.config

        async def setup(ch: AmqpChannel) -> None:
            if cfg.declare_exchange and cfg.exchange:
                await ch.declare_exchange(cfg.exchange, cfg.exchange_type, durable=True)
            await ch.confirm(self._on_confirm)

        self.channel = await open_channel(
            cfg.url,
            self.ctx.component,
            setup,
            heartbeat=cfg.heartbeat,
            attempts=cfg.reconnect_attempts,
            backoff=cfg.reconnect_backoff,
        )
        self.next_tag = 1
        # unconfirmed messages of a lost connection may or may not have arrived: again
        unconfirmed, self.pending = list(self.pending.values()), {}
        for message in unconfirmed:
            self._publish(message)

    async def _reconnect(self) -> None:
        old, self.channel = self.channel, None
        if old is not None:
            await old.close()
        self.reconnects += 1
        log.warning(
            "%s: connection to RabbitMQ lost; reconnecting and publishing %d unconfirmed "
            "messages again",
            self.ctx.component,
            len(self.pending),
        )
        await self._connect()

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag = method.delivery_tag
        if isinstance(method, Basic.Nack):
            self.nacked += len([t for t in self.pending if t <= tag]) if method.multiple else 1
        if method.multiple:
            for t in [t for t in self.pending if t <= tag]:
                del self.pending[t]
        else:
            self.pending.pop(tag, None)
        self._confirmed.set()

    def _publish(self, message: _Message) -> None:
        assert self.channel is not None and self.channel.channel is not None
        key, body, props = message
        self.channel.channel.basic_publish(self.config.exchange, key, body, props)
        self.pending[self.next_tag] = message
        self.next_tag += 1

    def _encode(self, record: Any) -> _Message:
        cfg = self.config
        if cfg.encode == "json":
            body = orjson.dumps(record)
        elif cfg.encode == "text":
            body = str(record).encode("utf-8")
        elif isinstance(record, bytes | bytearray):
            body = bytes(record)
        else:
            raise FatalConnectorError(
                f"encode 'bytes' needs bytes records, got {type(record).__name__}",
                component=self.ctx.component,
            )
        key = cfg.routing_key
        props = self._props
        if cfg.routing_key_field or cfg.message_id_field:
            if not isinstance(record, dict):
                raise FatalConnectorError(
                    f"routing_key_field/message_id_field need dict records, got {record!r:.100}",
                    component=self.ctx.component,
                )
            if cfg.routing_key_field:
                if cfg.routing_key_field not in record:
                    raise FatalConnectorError(
                        f"record {record!r:.100} has no field {cfg.routing_key_field!r} "
                        "(routing_key_field)",
                        component=self.ctx.component,
                    )
                key = str(record[cfg.routing_key_field])
            if cfg.message_id_field and record.get(cfg.message_id_field) is not None:
                props = pika.BasicProperties(
                    delivery_mode=props.delivery_mode,
                    content_type=props.content_type,
                    message_id=str(record[cfg.message_id_field]),
                )
        return key, body, props

    async def _wait_confirms(self, at_most: int, within: float) -> None:
        """Until no more than ``at_most`` messages await confirmation."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(self.pending) > at_most:
            ch = self.channel
            if ch is None or not ch.is_open:
                await self._reconnect()
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise RetriableConnectorError(
                    f"RabbitMQ at {describe_url(self.config.url)} did not confirm "
                    f"{len(self.pending)} messages within {within:.0f} s",
                    component=self.ctx.component,
                )
            self._confirmed.clear()
            closed = ch.closed
            waiter: asyncio.Future[Any] = asyncio.ensure_future(self._confirmed.wait())
            waiting: list[asyncio.Future[Any]] = [waiter, closed]
            await asyncio.wait(waiting, timeout=remaining, return_when="FIRST_COMPLETED")
            waiter.cancel()

    async def write(self, records: list[Any]) -> None:
        cfg = self.config
        limit = cfg.max_in_flight
        for record in records:
            message = self._encode(record)
            if len(self.pending) >= limit:
                await self._wait_confirms(limit // 2, cfg.confirm_timeout)
            if self.channel is None or not self.channel.is_open:
                await self._reconnect()
            self._publish(message)
        self.published += len(records)

    async def prepare_commit(self, checkpoint_id: int) -> dict[str, Any] | None:
        await self._wait_confirms(0, self.config.confirm_timeout)
        if self.nacked:
            refused, self.nacked = self.nacked, 0
            raise RetriableConnectorError(
                f"RabbitMQ refused (nacked) {refused} messages; the checkpoint fails and "
                "the job continues from the previous one",
                component=self.ctx.component,
            )
        return None

    async def close(self) -> None:
        ch, self.channel = self.channel, None
        if ch is not None:
            await ch.close()

    def describe_output(self) -> str | None:
        where = f"exchange {self.config.exchange!r}" if self.config.exchange else "default exchange"
        return f"{self.published:,} messages to {where} at {describe_url(self.config.url)}"
