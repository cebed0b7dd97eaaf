"""The ``rabbitmq`` source: a queue, acknowledged as soon as a checkpoint covering it completes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from pipeline_connector_rabbitmq.config import RabbitMQSourceConfig
from pipeline_connector_rabbitmq.connection import AmqpChannel, open_channel, reachable
from pipeline_core import Batch, FailedRecord, RuntimeContext, Source

__all__ = ["RabbitMQSource"]

log = logging.getLogger("pipeline_connector_rabbitmq")

_LOST = object()  # queue item: the connection of generation N is gone


def properties_dict(props: Any) -> dict[str, Any]:
    return {
        k: v
        for k, v in (
            ("content_type", props.content_type),
            ("correlation_id", props.correlation_id),
            ("reply_to", props.reply_to),
            ("type", props.type),
            ("app_id", props.app_id),
            ("priority", props.priority),
            ("delivery_mode", props.delivery_mode),
        )
        if v is not None
    }


class RabbitMQSource(Source[RabbitMQSourceConfig]):
    """Consumes a queue with manual acknowledgements.

    Nothing is acknowledged when it is read: ``on_checkpoint_complete`` acknowledges
    (``multiple=True``) up to the last delivery tag the checkpoint covers, at once; and
    the source asks for a checkpoint whenever half the prefetch window was read past the
    last one, so the window keeps moving. A crash, a kill
    or a lost connection therefore makes the broker redeliver every message that no
    completed checkpoint covers — at-least-once, nothing lost. ``prefetch`` bounds what
    the broker sends ahead: when the job's buffer is full (or the job is paused) the
    source stops taking messages and the broker stops sending.

    Position: ``{"delivery_tag", "connection", "consumed"}``. A restored position is not
    needed (the broker keeps unacknowledged messages), so it is ignored.
    """

    type_name = "rabbitmq"
    config_cls = RabbitMQSourceConfig
    bounded = False

    def __init__(self, config: RabbitMQSourceConfig) -> None:
        super().__init__(config)
        self.channel: AmqpChannel | None = None
        #: id of the current channel: delivery tags are only valid on the channel that
        #: delivered them, so positions name it (a restored position from an earlier
        #: process or a lost connection is never acknowledged on a new channel)
        self.generation = ""
        self.consumed = 0
        self.reconnects = 0
        #: last delivery tag acknowledged on the current channel (tags count from 1 per
        #: channel, so the broker holds ``last tag taken - acked_upto`` unacknowledged)
        self.acked_upto = 0
        self.last_tag = 0
        #: ``consumed`` as of the last batch that asked for a checkpoint, and as of the
        #: last completed checkpoint: a checkpoint is asked for once ``hint_after``
        #: messages were read past the later of the two
        self.hinted_at = 0
        self.checkpointed = 0

    async def check_connection(self) -> str | None:
        """``validate --connect``: a connection and a channel open."""
        return await reachable(self.config.url, "rabbitmq")

    async def open(self, ctx: RuntimeContext, restored_position: dict[str, Any] | None) -> None:
        await super().open(ctx, restored_position)
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.consumed = int((restored_position or {}).get("consumed", 0))
        self.hinted_at = self.checkpointed = self.consumed
        #: ask for a checkpoint once half the prefetch window is read but not checkpointed
        self.hint_after = max(1, self.config.prefetch // 2)
        await self._connect()

    async def _connect(self) -> None:
        cfg = self.config

        async def setup(ch: AmqpChannel) -> None:
            if cfg.exchange:
                await ch.declare_exchange(cfg.exchange, cfg.exchange_type, durable=True)
            await ch.declare_queue(cfg.queue, durable=True, passive=not cfg.declare)
            if cfg.exchange:
                for key in cfg.routing_keys:
                    await ch.bind(cfg.queue, cfg.exchange, key)
            await ch.qos(cfg.prefetch)
            generation = uuid.uuid4().hex[:16]
            inbox = self.inbox

            def on_message(_ch: Any, method: Any, props: Any, body: bytes) -> None:
                inbox.put_nowait((generation, method, props, body))

            await ch.consume(cfg.queue, on_message)
            ch.closed.add_done_callback(lambda _f: inbox.put_nowait((generation, _LOST)))
            self.generation, self.acked_upto, self.last_tag = generation, 0, 0

        self.channel = await open_channel(
            cfg.url,
            self.ctx.component,
            setup,
            heartbeat=cfg.heartbeat,
            attempts=cfg.reconnect_attempts,
            backoff=cfg.reconnect_backoff,
        )

    async def _reconnect(self) -> None:
        old, self.channel = self.channel, None
        if old is not None:
            await old.close()
        # what is still in the inbox was sent on the dead channel: the broker redelivers it
        while not self.inbox.empty():
            self.inbox.get_nowait()
        self.reconnects += 1
        log.warning("%s: connection to RabbitMQ lost; reconnecting", self.ctx.component)
        await self._connect()

    def _decode(self, items: list[Any]) -> tuple[list[Any], list[FailedRecord]]:
        cfg = self.config
        records: list[Any] = []
        failed: list[FailedRecord] = []
        for _gen, method, props, body in items:
            try:
                if cfg.decode == "json":
                    value: Any = orjson.loads(body)
                elif cfg.decode == "text":
                    value = body.decode("utf-8")
                else:
                    value = body
            except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
                ident = props.message_id or f"delivery {method.delivery_tag}"
                failed.append(
                    FailedRecord(
                        record=body,
                        error=f"not {cfg.decode}: {exc}",
                        where=f"queue {cfg.queue!r} message {ident}",
                    )
                )
                continue
            if cfg.with_properties:
                value = {
                    "body": value,
                    "routing_key": method.routing_key,
                    "exchange": method.exchange,
                    "headers": dict(props.headers or {}),
                    "message_id": props.message_id,
                    "timestamp": props.timestamp,
                    "redelivered": bool(method.redelivered),
                    "properties": properties_dict(props),
                }
            records.append(value)
        return records, failed

    async def read(self) -> AsyncIterator[Batch]:
        cfg, inbox = self.config, self.inbox
        loop = asyncio.get_running_loop()
        while True:
            item = await inbox.get()
            items: list[Any] = []
            lost = False
            deadline = loop.time() + cfg.batch_timeout
            while True:
                if item[0] == self.generation:
                    if item[1] is _LOST:
                        lost = True
                        break
                    items.append(item)
                    self.last_tag = item[1].delivery_tag
                    if len(items) >= cfg.batch_size:
                        break
                try:
                    item = inbox.get_nowait()
                except asyncio.QueueEmpty:
                    # the broker has sent the whole window: nothing more comes before an
                    # acknowledgement, so waiting for a fuller batch would only stall
                    if self.last_tag - self.acked_upto >= cfg.prefetch:
                        break
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(inbox.get(), remaining)
                    except TimeoutError:
                        break
            if items:
                records, failed = self._decode(items)
                self.consumed += len(items)
                # Acknowledgements come with checkpoints, and the broker sends no more than
                # ``prefetch`` unacknowledged messages: ask for a checkpoint once half the
                # window was read past the last checkpoint (or the last request), so the
                # window keeps moving instead of waiting for the timer.
                hint = self.consumed - max(self.hinted_at, self.checkpointed) >= self.hint_after
                if hint:
                    self.hinted_at = self.consumed
                yield Batch(
                    records,
                    {
                        "delivery_tag": items[-1][1].delivery_tag,
                        "connection": self.generation,
                        "consumed": self.consumed,
                    },
                    failures=failed or None,
                    checkpoint_needed=hint,
                )
            if lost:
                await self._reconnect()

    async def on_checkpoint_complete(self, checkpoint_id: int, position: dict[str, Any]) -> None:
        """Acknowledge, at once, everything the completed checkpoint covers: one
        ``basic.ack`` with ``multiple=True`` up to its delivery tag, sent in the next turn
        of the event loop (before the pipeline takes its next batch)."""
        self.checkpointed = max(self.checkpointed, int(position.get("consumed", 0)))
        ch = self.channel
        tag, gen = int(position.get("delivery_tag", 0)), position.get("connection")
        if ch is None or gen != self.generation or not ch.is_open:
            return  # delivered on a channel that is gone: the broker redelivers those
        if tag <= self.acked_upto:
            return  # already acknowledged (a checkpoint with no new messages)
        ch.ack_upto(tag)
        self.acked_upto = tag

    async def close(self) -> None:
        ch, self.channel = self.channel, None
        if ch is not None:
            await ch.close()
