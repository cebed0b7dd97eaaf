"""Options of the ``kafka`` source, sink and event trigger (attrs, structured strictly)."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from pipeline_core import FieldError

__all__ = ["KafkaSinkConfig", "KafkaSourceConfig", "KafkaTriggerConfig"]


def _positive(_inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value <= 0:
        raise FieldError(f"expected a number > 0, got {value!r}", attr.name)


def _non_negative(_inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if value < 0:
        raise FieldError(f"expected a number >= 0, got {value!r}", attr.name)


def _serde(_inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if value not in ("bytes", "utf8", "json") and ":" not in value:
        raise FieldError(
            f"expected bytes, utf8, json or a module:function, got {value!r}", attr.name
        )


@attrs.define(frozen=True, kw_only=True)
class KafkaSourceConfig:
    #: ``host:port[,host:port…]``
    bootstrap_servers: str = "127.0.0.1:9092"
    #: Topics to consume …
    topics: list[str] | None = None
    #: … or a regular expression of topic names.
    pattern: str | None = None
    #: Consumer group (default: the job's name): its committed offsets are where
    #: ``start_from: committed`` starts and what lag monitoring reads; with
    #: ``assignment: group`` its members share the partitions.
    group_id: str | None = None
    #: Who decides which partitions this execution reads. ``all``: every partition of the
    #: topics, assigned by the source itself — no group join (the first record comes in
    #: well under a second instead of after the group's 3 to 5 s join), partitions added
    #: later are picked up within 30 s; offsets are still committed to ``group_id``.
    #: ``group``: the consumer-group protocol shares them among the group's members and
    #: rebalances. ``auto``: ``group`` when other executions of the job may run at the
    #: same time (``allow_concurrent``), else ``all``.
    assignment: Literal["auto", "group", "all"] = "auto"
    #: Where a partition starts when no checkpoint names it: ``committed`` (the group's
    #: committed offset, else the earliest), ``earliest``, ``latest`` or ``timestamp``.
    start_from: Literal["committed", "earliest", "latest", "timestamp"] = "committed"
    #: ``start_from: timestamp``: epoch milliseconds.
    start_timestamp: int | None = None
    #: Value decoding: ``bytes``, ``utf8``, ``json`` or ``module:function`` (bytes → value).
    value_deserializer: str = attrs.field(default="json", validator=_serde)
    key_deserializer: str = attrs.field(default="utf8", validator=_serde)
    #: Records are ``{key, value, headers, timestamp, topic, partition, offset}``;
    #: False: the decoded value alone.
    with_metadata: bool = True
    #: Most records per batch (``max_records`` of one poll).
    max_poll_records: int = attrs.field(default=500, validator=_positive)
    #: How long one poll waits for records (ms).
    poll_timeout_ms: int = attrs.field(default=200, validator=_positive)
    #: Fetch sizes bound what is read ahead: the backpressure, since nothing is fetched
    #: while the job's buffer is full.
    fetch_max_bytes: int = attrs.field(default=52_428_800, validator=_positive)
    max_partition_fetch_bytes: int = attrs.field(default=1_048_576, validator=_positive)
    session_timeout_ms: int = attrs.field(default=10_000, validator=_positive)
    heartbeat_interval_ms: int = attrs.field(default=3_000, validator=_positive)
    #: On a rebalance the source checkpoints before giving partitions up; it waits at
    #: most this long (seconds), else the previous checkpoint's offsets stand.
    rebalance_timeout_s: float = attrs.field(default=10.0, validator=_positive)
    #: Extra keyword arguments for aiokafka's AIOKafkaConsumer (security settings …).
    consumer_options: dict[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if bool(self.topics) == bool(self.pattern):
            raise FieldError("give either topics or pattern", "topics")
        if self.start_from == "timestamp" and self.start_timestamp is None:
            raise FieldError("start_from: timestamp needs start_timestamp", "start_timestamp")


@attrs.define(frozen=True, kw_only=True)
class KafkaSinkConfig:
    bootstrap_servers: str = "127.0.0.1:9092"
    #: Topic to write to …
    topic: str | None = None
    #: … or the record field that names it.
    topic_field: str | None = None
    #: Record field used as the message key (same key → same partition).
    key_field: str | None = None
    #: ``json``, ``utf8`` (str records), ``bytes`` or ``module:function`` (record → bytes).
    value_serializer: str = attrs.field(default="json", validator=_serde)
    key_serializer: str = attrs.field(default="utf8", validator=_serde)
    #: Record field holding ``{name: str|bytes}`` headers (removed from the value).
    headers_field: str | None = None
    #: Wait this long (ms) to fill a batch.
    linger_ms: int = attrs.field(default=5, validator=_non_negative)
    #: Most bytes per partition batch.
    max_batch_size: int = attrs.field(default=262_144, validator=_positive)
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "none"
    #: Unacknowledged sends before ``write`` waits for acknowledgements (bounded memory).
    max_in_flight: int = attrs.field(default=20_000, validator=_positive)
    #: Extra keyword arguments for aiokafka's AIOKafkaProducer.
    producer_options: dict[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if bool(self.topic) == bool(self.topic_field):
            raise FieldError("give either topic or topic_field", "topic")


@attrs.define(frozen=True, kw_only=True)
class KafkaTriggerConfig:
    """``event_config`` of an EVENT schedule with ``event_trigger: kafka``; the schedule's
    ``event_topic`` is the topic."""

    bootstrap_servers: str = "127.0.0.1:9092"
    #: Consumer group shared by every runner instance (each message fires once).
    group_id: str = "pipeline-triggers"
    session_timeout_ms: int = attrs.field(default=10_000, validator=_positive)
    heartbeat_interval_ms: int = attrs.field(default=3_000, validator=_positive)
