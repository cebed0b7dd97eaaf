"""The RabbitMQ source, sink and trigger against the real broker."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from rabbitmq_helpers import AMQP_URL, Broker

from pipeline_connector_rabbitmq import RabbitMQSink, RabbitMQSource
from pipeline_core import (
    ConfigError,
    ExecutionControl,
    ExecutionStatus,
    FatalConnectorError,
    PipelineJob,
    execute,
    load_plugins,
    prepare,
)
from pipeline_core.checkpoint.repository import InMemoryCheckpointRepository
from pipeline_core.checkpoint.storage import CheckpointStorage
from pipeline_core.runtime.runner import Checkpointing
from pipeline_core.testing import wait_until

pytestmark = pytest.mark.timeout(90)
REPO = Path(__file__).resolve().parents[3]


def job(source: dict[str, Any], sink: dict[str, Any], **config: Any) -> PipelineJob:
    return (
        PipelineJob.builder()
        .name("mq")
        .type("STREAMING")
        .source("rabbitmq", **{"url": AMQP_URL, **source})
        .transform(lambda s: s.map(lambda r: {**r, "seen": True}))
        .sink("rabbitmq", url=AMQP_URL, **sink)
        .config(**{"checkpoint_interval": "200ms", **config})
        .build()
    )


async def start(j: PipelineJob, tmp_path: Path) -> tuple[asyncio.Task[Any], ExecutionControl]:
    plugins = load_plugins()
    control = ExecutionControl()
    task = asyncio.create_task(
        execute(
            prepare(j, plugins),
            plugins,
            control=control,
            checkpointing=Checkpointing(
                repository=InMemoryCheckpointRepository(),
                storage=CheckpointStorage(str(tmp_path / "cp")),
            ),
        )
    )
    return task, control


until = wait_until


async def test_round_trip_queue_transform_exchange(broker: Broker, tmp_path: Path) -> None:
    source_q = broker.queue("in")
    exchange, out_q = broker.exchange_to_queue("out")
    broker.publish_json(source_q, [{"id": i} for i in range(2000)])
    j = job(
        {"queue": source_q, "prefetch": 500},
        {"exchange": exchange, "routing_key_field": "kind", "message_id_field": "id"},
    )
    # the routing key comes from the record: give each one
    j = (
        PipelineJob.builder()
        .name("mq")
        .type("STREAMING")
        .source(j.source)
        .transform(lambda s: s.map(lambda r: {**r, "kind": "even" if r["id"] % 2 == 0 else "odd"}))
        .sink(j.sink)
        .config(checkpoint_interval="200ms")
        .build()
    )
    task, control = await start(j, tmp_path)
    await until(lambda: broker.count(out_q) == 2000, what="2000 messages downstream")
    control.stop_at_checkpoint()
    result = await task
    assert result.status is ExecutionStatus.CANCELLED and result.stopped_at_checkpoint
    assert broker.count(source_q) == 0  # acknowledged by the checkpoints
    got = [orjson.loads(b) for b in broker.drain(out_q)]
    assert sorted(r["id"] for r in got) == list(range(2000))
    assert all(r["kind"] == ("even" if r["id"] % 2 == 0 else "odd") for r in got)


async def test_unacknowledged_messages_come_back_after_a_cancel(
    broker: Broker, tmp_path: Path
) -> None:
    source_q = broker.queue("in")
    out_q = broker.queue("out")
    broker.publish_json(source_q, [{"id": i} for i in range(300)])
    # no checkpoint before the cancel: nothing is acknowledged
    j = job({"queue": source_q}, {"routing_key": out_q}, checkpoint_interval="1h")
    task, _control = await start(j, tmp_path)
    await until(lambda: broker.count(out_q) >= 300, what="messages published")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: broker.count(source_q) == 300, what="redelivery of all 300")


async def test_bad_messages_are_counted_and_skipped(broker: Broker, tmp_path: Path) -> None:
    source_q, out_q = broker.queue("in"), broker.queue("out")
    broker.publish(source_q, [b'{"id": 1}', b"not json", b'{"id": 2}'], ids=["a", "b", "c"])
    j = job({"queue": source_q}, {"routing_key": out_q}, on_error="skip")
    task, control = await start(j, tmp_path)
    await until(lambda: broker.count(out_q) == 2, what="two good messages")
    control.stop_at_checkpoint()
    result = await task
    assert result.failed_records == 1 and broker.count(source_q) == 0


async def test_pause_stops_consuming_and_resume_continues(broker: Broker, tmp_path: Path) -> None:
    source_q, out_q = broker.queue("in"), broker.queue("out")
    broker.publish_json(source_q, [{"id": i} for i in range(100)])
    j = job({"queue": source_q, "prefetch": 50, "batch_size": 10}, {"routing_key": out_q})
    task, control = await start(j, tmp_path)
    await until(lambda: broker.count(out_q) == 100, what="first 100")
    control.pause()
    await asyncio.sleep(0.3)
    broker.publish_json(source_q, [{"id": i} for i in range(100, 400)])
    await asyncio.sleep(1.0)
    # paused: at most what was prefetched (50) plus one batch in flight left the queue
    assert broker.count(out_q) <= 100 + 60
    assert broker.count(source_q) >= 300 - 60
    control.resume()
    await until(lambda: broker.count(out_q) == 400, what="all 400 after resume")
    control.stop_at_checkpoint()
    await task
    assert sorted(orjson.loads(b)["id"] for b in broker.drain(out_q)) == list(range(400))


async def test_connections_closed_by_force_mid_stream_are_recovered(
    broker: Broker, tmp_path: Path
) -> None:
    source_q, out_q = broker.queue("in"), broker.queue("out")
    ids = list(range(3000))
    broker.publish_json(source_q, [{"id": i} for i in ids[:1500]])
    j = job({"queue": source_q, "reconnect_backoff": 0.2}, {"routing_key": out_q})
    task, control = await start(j, tmp_path)
    await until(lambda: broker.count(out_q) >= 500, what="progress")
    closed = await asyncio.to_thread(
        subprocess.run,
        ["rabbitmqctl", "close_all_connections", "closed by the test"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert closed.returncode == 0, closed.stderr
    broker.publish_json(source_q, [{"id": i} for i in ids[1500:]])
    await asyncio.sleep(1)
    assert not task.done(), task.result()
    await until(
        lambda: len(set(ids) - {orjson.loads(b)["id"] for b in _peek(broker, out_q)}) == 0,
        within=60,
        what="every message downstream after the reconnect",
    )
    control.stop_at_checkpoint()
    result = await task
    assert result.status is ExecutionStatus.CANCELLED  # stopped by us, not failed
    assert broker.count(source_q) == 0


_seen: dict[str, list[bytes]] = {}


def _peek(broker: Broker, queue: str) -> list[bytes]:
    """Messages downstream so far (drained into a per-queue list: duplicates kept)."""
    _seen.setdefault(queue, []).extend(broker.drain(queue))
    return _seen[queue]


async def test_configuration_and_broker_errors_are_clear(broker: Broker) -> None:
    plugins = load_plugins()
    bad_url = job({"queue": "x", "url": "http://nope"}, {"routing_key": "y"})
    with pytest.raises(ConfigError, match="source \\(rabbitmq\\).*url.*amqp://"):
        prepare(bad_url, plugins)
    missing = job({"queue": "test-does-not-exist", "declare": False}, {"routing_key": "y"})
    result = await execute(prepare(missing, plugins), plugins)
    assert result.status is ExecutionStatus.FAILED
    assert isinstance(result.exception, FatalConnectorError)
    assert "no queue 'test-does-not-exist'" in (result.error or "")
    wrong = job(
        {"queue": "x", "url": "amqp://guest:wrong@127.0.0.1:5672/%2F"}, {"routing_key": "y"}
    )
    result = await execute(prepare(wrong, plugins), plugins)
    assert isinstance(result.exception, FatalConnectorError)
    assert "refused the credentials" in (result.error or "")
    assert "wrong" not in (result.error or "")  # no password in messages


async def test_event_trigger_starts_a_job(broker: Broker, tmp_path: Path) -> None:
    from pipeline_core import MetadataStore, PipelineService

    trigger_q = broker.queue("trigger")
    data = tmp_path / "in.jsonl"
    data.write_text('{"a": 1}\n')
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'meta.db'}")
    store.registry.register(
        {
            "name": "on-message",
            "source": {"type": "file", "config": {"path": str(data)}},
            "sink": {"type": "file", "config": {"path": str(tmp_path / "out")}},
            "schedule": {
                "type": "EVENT",
                "event_trigger": "rabbitmq",
                "event_topic": trigger_q,
                "event_config": {"url": AMQP_URL},
            },
        }
    )
    service = PipelineService(
        store, load_plugins(), checkpoint_url=str(tmp_path / "cp"), lease=dt.timedelta(seconds=5)
    )
    await service.start()
    try:
        await service.scheduler.refresh_event_triggers()
        broker.publish(trigger_q, [b"go"], ids=["m-1"])
        await until(
            lambda: (
                [r.status for r in store.executions.query(job="on-message")]
                == [ExecutionStatus.COMPLETED]
            ),
            what="the triggered execution",
        )
        await until(lambda: broker.count(trigger_q) == 0, what="the message acknowledged")
    finally:
        await service.stop()
    rec = store.executions.query(job="on-message")[0]
    assert rec.triggered_by == "EVENT"
    assert "event on rabbitmq:" in (store.executions.transitions(rec.execution_id)[0].message or "")
    assert "message m-1" in (store.executions.transitions(rec.execution_id)[0].message or "")
    store.close()


def test_registered_types() -> None:
    plugins = load_plugins()
    assert plugins.sources.get("rabbitmq") is RabbitMQSource
    assert plugins.sinks.get("rabbitmq") is RabbitMQSink
    assert "rabbitmq" in plugins.triggers


async def test_router_example_runs(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/rabbitmq_router.yaml: the quickstart's orders through RabbitMQ."""
    from pipeline_core import load_job_file

    repo = REPO
    orders = [
        orjson.loads(x)
        for x in (repo / "examples/data/orders.jsonl").read_bytes().splitlines()[:300]
    ]
    orders = [o for o in orders if isinstance(o, dict)]
    source_q = broker.queue("orders")
    exchange, out_q = broker.exchange_to_queue("billing")
    monkeypatch.setenv("AMQP_URL", AMQP_URL)
    monkeypatch.setenv("ROUTER_QUEUE", source_q)
    monkeypatch.setenv("ROUTER_EXCHANGE", exchange)
    broker.publish_json(source_q, orders)
    want = [o for o in orders if o["status"] == "paid" and o["amount"] >= 20]
    job = load_job_file(repo / "examples" / "rabbitmq_router.yaml")
    task, control = await start(job, tmp_path)
    await until(lambda: broker.count(out_q) == len(want), what="the routed orders")
    control.stop_at_checkpoint()
    await task
    got = [orjson.loads(b) for b in broker.drain(out_q)]
    assert sorted(o["order_id"] for o in got) == sorted(o["order_id"] for o in want)
    assert all(o["total"] == round(o["amount"] + o["vat"], 2) for o in got)
    assert broker.count(source_q) == 0
