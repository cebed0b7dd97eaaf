"""SIGKILL a RabbitMQ → RabbitMQ job repeatedly: every message arrives downstream at
least once (counted by id), none is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import yaml
from rabbitmq_helpers import AMQP_URL, Broker

pytestmark = pytest.mark.timeout(240)

BIN = Path(sys.executable).parent
MESSAGES = 20_000
KILLS = 5


def test_sigkill_mid_stream_loses_nothing(broker: Broker, tmp_path: Path) -> None:
    source_q, out_q = broker.queue("in"), broker.queue("out")
    broker.publish_json(source_q, [{"id": i, "pad": "x" * 50} for i in range(MESSAGES)])
    (tmp_path / "job.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "mq-crash",
                "type": "STREAMING",
                "source": {
                    "type": "rabbitmq",
                    "config": {"url": AMQP_URL, "queue": source_q, "prefetch": 1000},
                },
                # slow enough that the kills land mid-stream
                "transform": [
                    {"type": "rate_limit", "per_second": 1000},
                    {"type": "select", "fields": ["id"]},
                ],
                "sink": {"type": "rabbitmq", "config": {"url": AMQP_URL, "routing_key": out_q}},
                "config": {"checkpoint_interval": "300ms"},
            }
        )
    )
    seen: list[int] = []

    def collect() -> int:
        seen.extend(orjson.loads(b)["id"] for b in broker.drain(out_q))
        return len(seen)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(BIN / "pipeline-run"), "run", "--no-progress", "job.yaml"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "stderr.log", "ab"),
            env={**os.environ, "COLUMNS": "200"},
        )

    kills = 0
    while kills < KILLS:
        before = collect()
        proc = start()
        deadline = time.monotonic() + 60
        while collect() < before + 1500 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "stderr.log").read_text()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        assert len(set(seen)) < MESSAGES, "the job finished before the last kill"
    proc = start()
    deadline = time.monotonic() + 120
    while len(set(seen)) < MESSAGES and time.monotonic() < deadline:
        collect()
        time.sleep(0.1)
    time.sleep(1.0)  # one more checkpoint acknowledges the tail
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    collect()
    assert set(seen) == set(range(MESSAGES)), f"lost {MESSAGES - len(set(seen))}"
    duplicates = len(seen) - MESSAGES
    # at-least-once: redelivered messages that were not yet checkpointed (bounded by the
    # prefetch and checkpoint interval per kill)
    assert 0 <= duplicates <= KILLS * 3000, duplicates
    print(f"{KILLS} kills, {duplicates} duplicates of {MESSAGES}")
