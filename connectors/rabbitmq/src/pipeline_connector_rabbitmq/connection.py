"""pika's AsyncioConnection behind awaitable methods.

pika calls back on the event loop; each call here turns one callback into a future. The
connection never blocks the loop (no BlockingConnection, no I/O thread). A closed
connection or channel fails every pending future and sets :attr:`closed`, which the
source and sink watch in order to reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import pika
from pika.adapters.asyncio_connection import AsyncioConnection
from pika.channel import Channel
from pika.exceptions import (
    AMQPConnectionError,
    ChannelClosedByBroker,
    ProbableAccessDeniedError,
    ProbableAuthenticationError,
)

from pipeline_core import ConnectorError, FatalConnectorError, RetriableConnectorError

__all__ = ["AmqpChannel", "describe_url", "open_channel", "reachable", "with_reconnect"]

log = logging.getLogger("pipeline_connector_rabbitmq")


def _resolve(fut: asyncio.Future[Any]) -> Callable[[Any], None]:
    """A pika callback that completes ``fut`` with its argument (once)."""

    def done(value: Any) -> None:
        if not fut.done():
            fut.set_result(value)

    return done


def describe_url(url: str) -> str:
    """``amqp://user@host:port/vhost`` without the password."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{parts.hostname}{port}{parts.path or '/'}"


class AmqpChannel:
    """One connection with one channel."""

    def __init__(self, url: str, component: str) -> None:
        self.url = url
        self.where = describe_url(url)
        self.component = component
        self.connection: AsyncioConnection | None = None
        self.channel: Channel | None = None
        self.closed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        self._pending: set[asyncio.Future[Any]] = set()

    # --- plumbing ----------------------------------------------------------------------

    def _future(self) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)
        return fut

    def _fail_all(self, exc: BaseException) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)
        for fut in list(self._pending):
            if not fut.done():
                fut.set_exception(self._translate(exc))

    def _translate(self, exc: BaseException) -> Exception:
        if isinstance(exc, ProbableAuthenticationError | ProbableAccessDeniedError):
            return FatalConnectorError(
                f"RabbitMQ at {self.where} refused the credentials: {exc}",
                component=self.component,
            )
        # access refused, not found, precondition failed: asking again will not help
        if isinstance(exc, ChannelClosedByBroker) and exc.reply_code in (403, 404, 406):
            return FatalConnectorError(
                f"RabbitMQ at {self.where}: {exc.reply_text}", component=self.component
            )
        return RetriableConnectorError(
            f"RabbitMQ connection to {self.where} lost: {exc!r}", component=self.component
        )

    async def _wait(self, fut: asyncio.Future[Any], what: str, within: float = 30.0) -> Any:
        try:
            return await asyncio.wait_for(fut, within)
        except TimeoutError:
            raise RetriableConnectorError(
                f"RabbitMQ at {self.where}: no answer to {what} within {within:.0f} s",
                component=self.component,
            ) from None

    # --- opening and closing -----------------------------------------------------------

    async def open(self, *, heartbeat: int = 30) -> None:
        params = pika.URLParameters(self.url)
        params.heartbeat = heartbeat
        params.connection_attempts = 1
        opened = self._future()

        def on_open(conn: Any) -> None:
            conn.channel(on_open_callback=_resolve(opened))

        def on_open_error(_conn: Any, exc: BaseException) -> None:
            if not opened.done():
                opened.set_exception(self._translate(exc))

        def on_close(_conn: Any, exc: BaseException) -> None:
            self._fail_all(exc)

        self.connection = AsyncioConnection(
            params,
            on_open_callback=on_open,
            on_open_error_callback=on_open_error,
            on_close_callback=on_close,
            custom_ioloop=asyncio.get_running_loop(),
        )
        self.channel = await self._wait(opened, "opening the connection")
        self.channel.add_on_close_callback(lambda _ch, exc: self._on_channel_closed(exc))

    def _on_channel_closed(self, exc: BaseException) -> None:
        self._fail_all(exc)
        if self.connection is not None and self.connection.is_open:
            self.connection.close()

    async def close(self) -> None:
        conn, self.connection = self.connection, None
        if conn is None:
            return
        if not (conn.is_closed or conn.is_closing):
            done = self.closed
            conn.close()
            try:
                await asyncio.wait_for(asyncio.shield(done), 5)
            except TimeoutError:
                log.debug("closing the RabbitMQ connection timed out")
        self._fail_all(ConnectionError("closed"))

    @property
    def is_open(self) -> bool:
        return self.channel is not None and self.channel.is_open and not self.closed.done()

    # --- channel methods ---------------------------------------------------------------

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        if not self.is_open:
            raise RetriableConnectorError(
                f"RabbitMQ connection to {self.where} is closed", component=self.component
            )
        fut = self._future()
        method(*args, callback=_resolve(fut), **kwargs)
        return fut

    async def qos(self, prefetch: int) -> None:
        assert self.channel is not None
        await self._wait(self._call(self.channel.basic_qos, prefetch_count=prefetch), "basic.qos")

    async def declare_queue(self, queue: str, *, durable: bool, passive: bool = False) -> int:
        """Returns the number of messages ready in the queue."""
        assert self.channel is not None
        frame = await self._wait(
            self._call(self.channel.queue_declare, queue, durable=durable, passive=passive),
            f"declaring queue {queue!r}",
        )
        return int(frame.method.message_count)

    async def declare_exchange(self, exchange: str, exchange_type: str, *, durable: bool) -> None:
        assert self.channel is not None
        await self._wait(
            self._call(
                self.channel.exchange_declare,
                exchange,
                exchange_type=exchange_type,
                durable=durable,
            ),
            f"declaring exchange {exchange!r}",
        )

    async def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        assert self.channel is not None
        await self._wait(
            self._call(self.channel.queue_bind, queue, exchange, routing_key=routing_key),
            f"binding {queue!r} to {exchange!r}",
        )

    async def consume(self, queue: str, on_message: Callable[..., None]) -> str:
        assert self.channel is not None
        fut = self._future()
        tag: str = self.channel.basic_consume(queue, on_message, callback=_resolve(fut))
        await self._wait(fut, f"consuming from {queue!r}")
        return tag

    def ack_upto(self, delivery_tag: int) -> None:
        """Acknowledge every delivery up to ``delivery_tag`` (``multiple=True``). pika
        queues the frame and the event loop writes it as soon as the socket is writable:
        in the next turn of the loop, no later."""
        assert self.channel is not None
        self.channel.basic_ack(delivery_tag=delivery_tag, multiple=True)

    async def confirm(self, on_ack_nack: Callable[[Any], None]) -> None:
        assert self.channel is not None
        fut = self._future()
        self.channel.confirm_delivery(on_ack_nack, callback=_resolve(fut))
        await self._wait(fut, "confirm.select")


async def with_reconnect(
    attempt: Callable[[], Any],
    *,
    where: str,
    component: str,
    attempts: int,
    backoff: float,
    max_backoff: float = 30.0,
) -> Any:
    """``await attempt()`` until it succeeds; RetriableConnectorErrors are retried with
    exponential backoff up to ``attempts`` times, then become a FatalConnectorError."""
    delay = backoff
    for n in range(1, attempts + 1):
        try:
            return await attempt()
        except FatalConnectorError:
            raise
        except (RetriableConnectorError, AMQPConnectionError, OSError) as exc:
            if n == attempts:
                raise FatalConnectorError(
                    f"cannot connect to RabbitMQ at {where} after {attempts} attempts: {exc}",
                    component=component,
                ) from exc
            log.warning(
                "%s: RabbitMQ at %s: %s; retry %d in %.1f s", component, where, exc, n, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff)
    raise AssertionError("unreachable")


async def open_channel(
    url: str,
    component: str,
    setup: Callable[[AmqpChannel], Awaitable[None]],
    *,
    heartbeat: int,
    attempts: int,
    backoff: float,
) -> AmqpChannel:
    """Connect, run ``setup`` (declarations, qos, consume…) on the new channel, retrying
    both with backoff; a half-set-up channel is closed before the next attempt."""

    async def attempt() -> AmqpChannel:
        ch = AmqpChannel(url, component)
        try:
            await ch.open(heartbeat=heartbeat)
            await setup(ch)
            return ch
        except BaseException:
            await ch.close()
            raise

    channel: AmqpChannel = await with_reconnect(
        attempt, where=describe_url(url), component=component, attempts=attempts, backoff=backoff
    )
    return channel


async def reachable(url: str, component: str) -> str | None:
    """``validate --connect``: None when an AMQP connection and a channel open (closed
    again at once), else why not in one line, the password never shown."""
    channel = AmqpChannel(url, component)
    try:
        await channel.open()
    except ConnectorError as exc:
        return str(exc.args[0]).removeprefix(f"{component}: ")
    finally:
        await channel.close()
    return None
