"""Options of the ``rabbitmq`` source, sink and event trigger (attrs, structured strictly)."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from pipeline_core import FieldError

__all__ = ["RabbitMQSinkConfig", "RabbitMQSourceConfig", "RabbitMQTriggerConfig"]

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def _positive(_inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if value <= 0:
        raise FieldError(f"expected a number > 0, got {value!r}", attr.name)


def _url(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
    if not value.startswith(("amqp://", "amqps://")):
        raise FieldError(f"expected an amqp:// or amqps:// URL, got {value!r}", attr.name)


@attrs.define(frozen=True, kw_only=True)
class RabbitMQSourceConfig:
    #: Broker URL; put the password in as ``${env:NAME}``. ``%2F`` is the default vhost.
    url: str = attrs.field(default=DEFAULT_URL, validator=_url)
    #: The queue to consume.
    queue: str
    #: Declare the queue (durable) if it does not exist; False: it must exist.
    declare: bool = True
    #: Bind the queue to this exchange (declared with ``exchange_type``) …
    exchange: str | None = None
    exchange_type: Literal["direct", "topic", "fanout", "headers"] = "topic"
    #: … with these routing keys.
    routing_keys: list[str] = attrs.field(factory=lambda: ["#"])
    #: Unacknowledged messages the broker may send ahead (``basic.qos``): the
    #: backpressure. Messages are acknowledged when a checkpoint covering them completes;
    #: the source asks for one whenever half the window was read past the last.
    prefetch: int = attrs.field(default=2000, validator=_positive)
    #: ``bytes``, ``text`` (UTF-8) or ``json``; a message that does not decode is a bad
    #: record (counted, and handled by the job's ``on_error``).
    decode: Literal["bytes", "text", "json"] = "json"
    #: Records are ``{"body", "routing_key", "exchange", "headers", "message_id",
    #: "timestamp", "redelivered", "properties"}`` instead of the decoded body alone.
    with_properties: bool = False
    #: Most messages per batch.
    batch_size: int = attrs.field(default=500, validator=_positive)
    #: Emit a smaller batch after waiting this long (seconds) for more messages.
    batch_timeout: float = attrs.field(default=0.05, validator=_positive)
    #: Reconnect attempts after a lost connection (then the job fails).
    reconnect_attempts: int = attrs.field(default=10, validator=_positive)
    #: First reconnect delay in seconds, doubled per attempt (at most 30 s).
    reconnect_backoff: float = attrs.field(default=0.5, validator=_positive)
    #: AMQP heartbeat in seconds: a dead connection is noticed after about twice this.
    heartbeat: int = attrs.field(default=30, validator=_positive)


@attrs.define(frozen=True, kw_only=True)
class RabbitMQSinkConfig:
    url: str = attrs.field(default=DEFAULT_URL, validator=_url)
    #: Exchange to publish to; ``""`` is the default exchange (routing key = queue name).
    exchange: str = ""
    #: Declare the exchange (durable) first; ignored for the default exchange.
    declare_exchange: bool = False
    exchange_type: Literal["direct", "topic", "fanout", "headers"] = "topic"
    #: Fixed routing key …
    routing_key: str = ""
    #: … or the record field that holds it (dict records).
    routing_key_field: str | None = None
    #: ``json`` (orjson), ``text`` (str records) or ``bytes`` (bytes records).
    encode: Literal["json", "text", "bytes"] = "json"
    #: Persistent messages (delivery mode 2): they survive a broker restart.
    persistent: bool = True
    #: Record field whose value becomes the message's ``message_id`` (for deduplication).
    message_id_field: str | None = None
    #: Publisher confirms not yet received before ``write`` waits (bounded memory).
    max_in_flight: int = attrs.field(default=5000, validator=_positive)
    #: Seconds ``prepare_commit`` waits for the last confirms before failing the checkpoint.
    confirm_timeout: float = attrs.field(default=30.0, validator=_positive)
    reconnect_attempts: int = attrs.field(default=10, validator=_positive)
    reconnect_backoff: float = attrs.field(default=0.5, validator=_positive)
    heartbeat: int = attrs.field(default=30, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.routing_key and self.routing_key_field:
            raise FieldError("give routing_key or routing_key_field, not both", "routing_key_field")


@attrs.define(frozen=True, kw_only=True)
class RabbitMQTriggerConfig:
    """``event_config`` of an EVENT schedule with ``event_trigger: rabbitmq``; the
    schedule's ``event_topic`` is the queue."""

    url: str = attrs.field(default=DEFAULT_URL, validator=_url)
    #: Declare the queue (durable) if missing.
    declare: bool = True
    #: Bind the queue to this exchange with ``routing_keys`` (declared as a topic exchange).
    exchange: str | None = None
    routing_keys: list[str] = attrs.field(factory=lambda: ["#"])
    reconnect_backoff: float = attrs.field(default=1.0, validator=_positive)
