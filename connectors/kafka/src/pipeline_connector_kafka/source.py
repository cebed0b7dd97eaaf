"""The ``kafka`` source: topics or a pattern, offsets checkpointed with the job's state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from pipeline_connector_kafka.config import KafkaSourceConfig
from pipeline_connector_kafka.serde import deserializer
from pipeline_core import Batch, FailedRecord, RetriableConnectorError, RuntimeContext, Source

__all__ = ["KafkaSource"]

log = logging.getLogger("pipeline_connector_kafka")


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.source.revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.source.assigned(assigned)


class KafkaSource(Source[KafkaSourceConfig]):
    """Consumes with auto-commit off. Position: ``{"kafka_offsets": {topic: {partition:
    next_offset}}}`` (the original design's checkpoint shape). Offsets are committed to
    the group only in ``on_checkpoint_complete``; on restore the checkpoint's offsets win
    over the group's committed ones for every partition it names. Delivery downstream is
    at-least-once: records after the last checkpoint are read again after a crash, and
    operator state is restored to the same point, so keyed aggregates stay exact.

    Backpressure: nothing is fetched while the job's buffer is full (the runtime stops
    pulling); fetch sizes bound what is read ahead. Pause stops polling likewise.
    """

    type_name = "kafka"
    config_cls = KafkaSourceConfig
    bounded = False

    def __init__(self, config: KafkaSourceConfig) -> None:
        super().__init__(config)
        self.consumer: AIOKafkaConsumer | None = None
        #: next offset to read, per topic and partition, as of the last emitted batch
        self.offsets: dict[str, dict[int, int]] = {}
        self.restored: dict[str, dict[int, int]] = {}
        self.rebalances = 0

    async def open(self, ctx: RuntimeContext, restored_position: dict[str, Any] | None) -> None:
        await super().open(ctx, restored_position)
        cfg = self.config
        saved = (restored_position or {}).get("kafka_offsets") or {}
        self.restored = {
            t: {int(p): int(o) for p, o in parts.items()} for t, parts in saved.items()
        }
        self.value_of = deserializer(cfg.value_deserializer)
        self.key_of = deserializer(cfg.key_deserializer)
        reset = "latest" if cfg.start_from == "latest" else "earliest"
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=cfg.bootstrap_servers,
            group_id=cfg.group_id or ctx.job_name,
            enable_auto_commit=False,
            auto_offset_reset=reset,
            max_poll_records=cfg.max_poll_records,
            fetch_max_bytes=cfg.fetch_max_bytes,
            max_partition_fetch_bytes=cfg.max_partition_fetch_bytes,
            session_timeout_ms=cfg.session_timeout_ms,
            heartbeat_interval_ms=cfg.heartbeat_interval_ms,
            **cfg.consumer_options,
        )
        listener = _Rebalance(self)
        if cfg.topics:
            self.consumer.subscribe(topics=list(cfg.topics), listener=listener)
        else:
            self.consumer.subscribe(pattern=cfg.pattern, listener=listener)
        try:
            await self.consumer.start()
        except KafkaError as exc:
            await self.close()
            raise RetriableConnectorError(
                f"cannot reach Kafka at {cfg.bootstrap_servers}: {exc}", component=ctx.component
            ) from exc

    # --- rebalancing ---------------------------------------------------------------------

    async def revoked(self, partitions: list[TopicPartition]) -> None:
        """Partitions taken away: checkpoint first (what was read of them is processed,
        written and its offsets committed while they are still ours), then forget their
        positions; whoever gets them continues exactly from there."""
        checkpoint = self.ctx.checkpoint
        if partitions and checkpoint is not None and self.offsets:
            try:
                cid = await asyncio.wait_for(checkpoint(), self.config.rebalance_timeout_s)
                log.info(
                    "%s: checkpoint %s before giving up %s", self.ctx.component, cid, partitions
                )
            except Exception as exc:  # the previous checkpoint's offsets stay committed
                log.warning("%s: no checkpoint before the rebalance: %s", self.ctx.component, exc)
        for tp in partitions:
            self.offsets.get(tp.topic, {}).pop(tp.partition, None)
        if partitions:
            self.rebalances += 1
            log.info("%s: partitions revoked: %s", self.ctx.component, partitions)

    async def assigned(self, partitions: list[TopicPartition]) -> None:
        """Seek where the checkpoint says (it wins over the group's committed offsets);
        partitions it does not name start per ``start_from``."""
        assert self.consumer is not None
        cfg = self.config
        for tp in partitions:
            saved = self.restored.get(tp.topic, {}).pop(tp.partition, None)
            if saved is not None:
                self.consumer.seek(tp, saved)
            elif cfg.start_from == "earliest":
                await self.consumer.seek_to_beginning(tp)
            elif cfg.start_from == "timestamp" and cfg.start_timestamp is not None:
                found = await self.consumer.offsets_for_times({tp: cfg.start_timestamp})
                at = found.get(tp)
                if at is not None:
                    self.consumer.seek(tp, at.offset)
                else:
                    await self.consumer.seek_to_end(tp)
        log.info("%s: partitions assigned: %s", self.ctx.component, partitions)

    # --- reading -------------------------------------------------------------------------

    def _records(self, messages: list[Any]) -> tuple[list[Any], list[FailedRecord]]:
        records: list[Any] = []
        failed: list[FailedRecord] = []
        value_of, key_of, meta = self.value_of, self.key_of, self.config.with_metadata
        for m in messages:
            try:
                value = value_of(m.value) if m.value is not None else None
                if meta:
                    value = {
                        "key": key_of(m.key) if m.key is not None else None,
                        "value": value,
                        "headers": {k: v for k, v in (m.headers or ())},
                        "timestamp": m.timestamp,
                        "topic": m.topic,
                        "partition": m.partition,
                        "offset": m.offset,
                    }
            except Exception as exc:  # a bad record: counted, on_error decides
                failed.append(
                    FailedRecord(
                        record=m.value,
                        error=f"cannot decode: {type(exc).__name__}: {exc}",
                        where=f"{m.topic}[{m.partition}]@{m.offset}",
                    )
                )
                continue
            records.append(value)
        return records, failed

    async def read(self) -> AsyncIterator[Batch]:
        assert self.consumer is not None
        cfg = self.config
        while True:
            try:
                fetched = await self.consumer.getmany(
                    timeout_ms=cfg.poll_timeout_ms, max_records=cfg.max_poll_records
                )
            except KafkaError as exc:
                raise RetriableConnectorError(
                    f"reading from Kafka failed: {exc}", component=self.ctx.component
                ) from exc
            if not fetched:
                continue
            messages: list[Any] = []
            for tp, batch in fetched.items():
                messages.extend(batch)
                self.offsets.setdefault(tp.topic, {})[tp.partition] = batch[-1].offset + 1
            records, failed = self._records(messages)
            position = {  # JSON: partition numbers as string keys
                "kafka_offsets": {
                    t: {str(p): o for p, o in parts.items()}
                    for t, parts in self.offsets.items()
                    if parts
                }
            }
            yield Batch(records, position, failures=failed or None)

    async def on_checkpoint_complete(self, checkpoint_id: int, position: dict[str, Any]) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        owned = consumer.assignment()
        offsets = {
            TopicPartition(t, int(p)): OffsetAndMetadata(int(o), f"checkpoint {checkpoint_id}")
            for t, parts in (position.get("kafka_offsets") or {}).items()
            for p, o in parts.items()
            if TopicPartition(t, int(p)) in owned
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # a rebalance took partitions away meanwhile: their new owner starts from the
            # previous commit (at-least-once); the next checkpoint commits again
            log.warning("%s: committing offsets failed: %s", self.ctx.component, exc)

    async def close(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            try:
                await consumer.stop()
            except Exception:
                log.debug("stopping the consumer failed", exc_info=True)
