"""A checkpoint is restored only into the source it was taken from (docs/checkpoints.md,
"Which source a checkpoint belongs to"): after the job's ``group_id`` changes, ``run
--resume`` is refused with an error naming the change, and a plain ``run`` of the
STREAMING job — which otherwise continues the job's newest offsets — starts fresh in the
new group and reads every record, instead of skipping what the old group had read."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka_helpers import BOOTSTRAP, FAST_GROUP, Broker

from pipeline_core.testing import wait_until

pytestmark = pytest.mark.timeout(180)

BIN = Path(sys.executable).parent
N = 300


def write(tmp: Path, src: str, dst: str, group: str) -> Path:
    path = tmp / "job.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "moving",
                "type": "STREAMING",
                "source": {
                    "type": "kafka",
                    "config": {
                        "bootstrap_servers": BOOTSTRAP,
                        "topics": [src],
                        "group_id": group,
                        **FAST_GROUP,
                    },
                },
                "sink": {"type": "kafka", "config": {"bootstrap_servers": BOOTSTRAP, "topic": dst}},
                # no checkpoint_interval: STREAMING jobs checkpoint by default
            }
        )
    )
    return path


def pipeline_run(tmp: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "pipeline-run"), "run", "--no-progress", *args],
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


async def run_until(kafka: Broker, tmp: Path, job: Path, dst: str, n: int) -> str:
    """Run the job until ``dst`` holds ``n`` records, then stop it with SIGINT; its stderr."""
    proc = pipeline_run(tmp, str(job))
    got: list[Any] = []

    async def arrived() -> bool:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        got[:] = await kafka.consume_all(dst, idle_ms=200)
        return len(got) >= n

    try:
        await wait_until(arrived, 60, f"{n} records in {dst}")
    finally:
        proc.send_signal(signal.SIGINT)
        _out, stderr = proc.communicate(timeout=60)
    return stderr


async def test_a_changed_group_is_refused_by_resume_and_starts_fresh_in_a_run(
    kafka: Broker, tmp_path: Path
) -> None:
    src = await kafka.topic("in", partitions=3)
    await kafka.produce(src, [{"i": i} for i in range(N)], key=lambda r: str(r["i"]))
    old, new = f"g-old-{uuid.uuid4().hex[:6]}", f"g-new-{uuid.uuid4().hex[:6]}"
    first = await kafka.topic("out")
    await run_until(kafka, tmp_path, write(tmp_path, src, first, old), first, N)

    # the user points the job at another group (as they would at another cluster)
    second = await kafka.topic("out")
    job = write(tmp_path, src, second, new)
    refused = pipeline_run(tmp_path, str(job), "--resume")
    _out, stderr = refused.communicate(timeout=60)
    assert refused.returncode == 1, stderr
    assert f"group_id was '{old}', now '{new}'" in stderr, stderr
    assert "start fresh" in stderr, stderr
    await asyncio.sleep(0.5)
    assert await kafka.consume_all(second, idle_ms=300) == []  # nothing ran

    # a plain run continues the job's newest offsets only from the same source
    stderr = await run_until(kafka, tmp_path, job, second, N)
    assert "the source changed since" in stderr, stderr
    out = await kafka.consume_all(second)
    assert sorted(r["value"]["i"] for r in out) == list(range(N))  # every record, in the new group
