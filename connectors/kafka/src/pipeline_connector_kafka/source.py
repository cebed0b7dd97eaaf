"""The ``kafka`` source: topics or a pattern, offsets checkpointed with the job's state."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from pipeline_connector_kafka.config import KafkaSourceConfig
from pipeline_connector_kafka.reach import reachable
from pipeline_connector_kafka.serde import deserializer
from pipeline_core import Batch, FailedRecord, RetriableConnectorError, RuntimeContext, Source

__all__ = ["KafkaSource"]

log = logging.getLogger("pipeline_connector_kafka")

#: ``assignment: all``: how often the topics' partitions are looked up again (seconds)
PARTITION_CHECK_S = 30.0


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.source.revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.source.assigned(assigned)


class KafkaSource(Source[KafkaSourceConfig]):
    """Consumes with auto-commit off. Position: ``{"kafka_offsets": {topic: {partition:
    next_offset}}}`` (the original design's checkpoint shape), naming **every partition
    the execution owns** — read or not — with the offset of the next record it will
    deliver from it. Offsets are committed to the group only in
    ``on_checkpoint_complete``; on restore the checkpoint's offsets win over the group's
    committed ones for every partition it names. Delivery downstream is at-least-once:
    records after the last checkpoint are read again after a crash, and operator state is
    restored to the same point, so keyed aggregates stay exact.

    Assignment: the partitions are paused before anything else, their start offsets are
    settled (the checkpoint's, ``start_from``'s on the execution's first assignment, the
    group's committed offset — or the one this execution reached — on a later one), each
    is sought there, and only then are they resumed: no record of a partition is yielded
    before its seek.

    Assignment (``assignment``): either the consumer-group protocol hands partitions out
    and takes them back (``_Rebalance``), or — when no other execution of the job can run
    at the same time — the source assigns itself every partition of its topics, joining
    no group, and looks for new partitions every :data:`PARTITION_CHECK_S`. Both go
    through :meth:`assigned`.

    Backpressure: nothing is fetched while the job's buffer is full (the runtime stops
    pulling); fetch sizes bound what is read ahead. Pause stops polling likewise.
    """

    type_name = "kafka"
    config_cls = KafkaSourceConfig
    bounded = False

    def __init__(self, config: KafkaSourceConfig) -> None:
        super().__init__(config)
        self.consumer: AIOKafkaConsumer | None = None
        #: next offset to deliver of every partition this execution owns now
        self.offsets: dict[TopicPartition, int] = {}
        #: the checkpoint's offsets, for the first assignment after a restore
        self.restored: dict[TopicPartition, int] = {}
        #: where each partition this execution ever owned was (it may come back)
        self.reached: dict[TopicPartition, int] = {}
        #: start_from is applied once per execution: on its first assignment
        self.started = False
        #: an assignment changed the owned partitions: tell the runtime the new position
        self.moved = False
        #: an assignment could not settle its offsets; read() raises it
        self.failure: BaseException | None = None
        self.rebalances = 0
        #: the consumer-group protocol assigns partitions (else: all of them, by us)
        self.grouped = False
        #: assignment: all — when to look up the topics' partitions again
        self.next_check = 0.0

    def identity(self, job_name: str) -> dict[str, Any]:
        """The brokers and the group: offsets mean nothing against another cluster, and
        another group has offsets of its own. Topics are not part of it: positions name
        each topic's partitions, so adding a topic starts only that one per
        ``start_from``, and removing one drops its offsets."""
        servers = sorted(s.strip() for s in self.config.bootstrap_servers.split(",") if s.strip())
        return {
            "type": self.type_name,
            "bootstrap_servers": servers,
            "group_id": self.config.group_id or job_name,
        }

    async def check_connection(self) -> str | None:
        """``validate --connect``: the bootstrap servers answer (no group is joined)."""
        return await reachable(self.config.bootstrap_servers, self.config.consumer_options)

    async def open(self, ctx: RuntimeContext, restored_position: dict[str, Any] | None) -> None:
        await super().open(ctx, restored_position)
        cfg = self.config
        saved = (restored_position or {}).get("kafka_offsets") or {}
        self.restored = {
            TopicPartition(t, int(p)): int(o)
            for t, parts in saved.items()
            for p, o in parts.items()
        }
        self.reached = dict(self.restored)
        # a checkpoint that names partitions comes from an execution that has started
        self.started = bool(self.restored)
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
        self.grouped = cfg.assignment == "group" or (cfg.assignment == "auto" and not ctx.exclusive)
        if self.grouped:
            listener = _Rebalance(self)
            if cfg.topics:
                self.consumer.subscribe(topics=list(cfg.topics), listener=listener)
            else:
                self.consumer.subscribe(pattern=cfg.pattern, listener=listener)
        try:
            await self.consumer.start()
            if not self.grouped:
                await self._assign_all()
        except KafkaError as exc:
            await self.close()
            raise RetriableConnectorError(
                f"cannot reach Kafka at {cfg.bootstrap_servers}: {exc}", component=ctx.component
            ) from exc

    # --- assignment ----------------------------------------------------------------------

    async def _assign_all(self) -> None:
        """``assignment: all``: own every partition of the topics (or of the topics the
        pattern matches). Called at open and every :data:`PARTITION_CHECK_S`; when the
        set changed, partitions already owned continue at the offset they had reached."""
        assert self.consumer is not None
        consumer, cfg = self.consumer, self.config
        self.next_check = time.monotonic() + PARTITION_CHECK_S
        # the cluster's current view of every topic: what the public ``topics()`` fetches
        # too, before it drops the partitions (the consumer's own metadata covers only
        # the topics it already reads, so a new topic would stay unseen)
        cluster = await consumer._client.fetch_all_metadata()
        names = cluster.topics()
        if cfg.topics:
            topics = [t for t in cfg.topics if t in names]
        else:
            assert cfg.pattern is not None
            pattern = re.compile(cfg.pattern)
            topics = sorted(t for t in names if pattern.fullmatch(t))
        tps = sorted(
            TopicPartition(t, p) for t in topics for p in cluster.partitions_for_topic(t) or ()
        )
        if set(tps) == consumer.assignment():
            return
        self.reached.update(self.offsets)  # assign() forgets every position it had
        consumer.assign(tps)
        await self.assigned(tps)
        if self.failure is None and tps:
            log.info("%s: reading every partition itself (no group join)", self.ctx.component)

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
            at = self.offsets.pop(tp, None)
            if at is not None:
                self.reached[tp] = at
        if partitions:
            self.rebalances += 1
            self.moved = True
            log.info("%s: partitions revoked: %s", self.ctx.component, partitions)

    async def assigned(self, partitions: list[TopicPartition]) -> None:
        """Pause the partitions (synchronously, before the fetcher can use the position
        aiokafka gives them), settle where each starts, seek, then resume them."""
        assert self.consumer is not None
        consumer, tps = self.consumer, sorted(partitions)
        try:
            if tps:
                consumer.pause(*tps)
            starts = await self._starts(tps)
            for tp, offset in starts.items():
                consumer.seek(tp, offset)
        except IllegalStateError:
            return  # a newer rebalance took them already; its assignment settles its own
        except Exception as exc:  # cannot raise out of aiokafka's callback: read() will
            self.failure = exc
            log.warning("%s: cannot settle start offsets: %s", self.ctx.component, exc)
            return
        self.offsets = dict(starts)
        self.reached.update(starts)
        self.restored = {}  # only the first assignment restores; later ones continue
        self.started = True
        self.moved = True
        if tps:
            consumer.resume(*tps)
        log.info("%s: partitions assigned, starting at %s", self.ctx.component, _named(starts))

    async def _starts(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The next offset to deliver of each partition: the restored checkpoint's; on the
        execution's first assignment ``start_from``'s; else the group's committed offset
        or the one this execution reached, whichever is further (``start_from``'s when
        there is neither)."""
        assert self.consumer is not None
        consumer, cfg = self.consumer, self.config
        starts = {tp: self.restored[tp] for tp in tps if tp in self.restored}
        rest = [tp for tp in tps if tp not in starts]
        if rest and (self.started or cfg.start_from == "committed"):
            committed = await asyncio.gather(*(consumer.committed(tp) for tp in rest))
            for tp, at in zip(rest, committed, strict=True):
                known = [o for o in (at, self.reached.get(tp)) if o is not None]
                if known:
                    starts[tp] = max(known)
            rest = [tp for tp in rest if tp not in starts]
        if not rest:
            return starts
        if cfg.start_from == "latest":
            starts.update(await consumer.end_offsets(rest))
        elif cfg.start_from == "timestamp" and cfg.start_timestamp is not None:
            found = await consumer.offsets_for_times(dict.fromkeys(rest, cfg.start_timestamp))
            later = [tp for tp in rest if found.get(tp) is None]  # nothing that late yet
            starts.update({tp: at.offset for tp, at in found.items() if at is not None})
            if later:
                starts.update(await consumer.end_offsets(later))
        else:  # earliest, and committed with nothing committed
            starts.update(await consumer.beginning_offsets(rest))
        return starts

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

    def _position(self) -> dict[str, Any]:
        """Every owned partition's next offset (JSON: partition numbers as string keys)."""
        named: dict[str, dict[str, int]] = {}
        for tp, offset in self.offsets.items():
            named.setdefault(tp.topic, {})[str(tp.partition)] = offset
        return {"kafka_offsets": named}

    async def read(self) -> AsyncIterator[Batch]:
        assert self.consumer is not None
        cfg = self.config
        while True:
            if self.failure is not None:
                raise RetriableConnectorError(
                    f"Kafka partition assignment failed: {self.failure}",
                    component=self.ctx.component,
                ) from self.failure
            try:
                if not self.grouped and time.monotonic() >= self.next_check:
                    await self._assign_all()
                if not self.grouped and not self.offsets:  # no partition (yet)
                    await asyncio.sleep(cfg.poll_timeout_ms / 1000)
                    fetched = {}
                else:
                    fetched = await self.consumer.getmany(
                        timeout_ms=cfg.poll_timeout_ms, max_records=cfg.max_poll_records
                    )
            except KafkaError as exc:
                raise RetriableConnectorError(
                    f"reading from Kafka failed: {exc}", component=self.ctx.component
                ) from exc
            if not fetched:
                if self.moved:  # no records, but the partitions owned changed
                    self.moved = False
                    yield Batch([], self._position())
                continue
            messages: list[Any] = []
            offsets = self.offsets
            for tp, batch in fetched.items():
                messages.extend(batch)
                offsets[tp] = batch[-1].offset + 1
            records, failed = self._records(messages)
            self.moved = False
            yield Batch(records, self._position(), failures=failed or None)

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


def _named(offsets: dict[TopicPartition, int]) -> dict[str, dict[int, int]]:
    named: dict[str, dict[int, int]] = {}
    for tp, offset in sorted(offsets.items()):
        named.setdefault(tp.topic, {})[tp.partition] = offset
    return named
