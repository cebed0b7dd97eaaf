"""``pipeline-run validate --connect`` (docs/cli.md, "validate"): the rabbitmq source and
sink reach the real broker; an unreachable one is one error line per component."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rabbitmq_helpers import AMQP_URL

PIPELINE_RUN = str(Path(sys.executable).parent / "pipeline-run")
UNREACHABLE = "amqp://guest:s3cr3t@127.0.0.1:1/%2F"  # nothing listens on port 1
JOB = (
    "name: connect\ntype: STREAMING\n"
    "source: {type: rabbitmq, config: {url: '%s', queue: q}}\n"
    "sink: {type: rabbitmq, config: {url: '%s', exchange: x}}\n"
)


def validate(tmp_path: Path, where: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "job.yaml").write_text(JOB % (where, where))
    return subprocess.run(
        [PIPELINE_RUN, "validate", "--connect", "job.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_the_broker_is_reached(tmp_path: Path) -> None:
    proc = validate(tmp_path, AMQP_URL)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: job 'connect'") and proc.stderr == ""


def test_an_unreachable_broker_is_one_line_per_component(tmp_path: Path) -> None:
    proc = validate(tmp_path, UNREACHABLE)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "job 'connect', source (rabbitmq)",
        "job 'connect', sink (rabbitmq)",
    ], lines
    assert all("127.0.0.1:1" in line for line in lines), lines
    assert "s3cr3t" not in proc.stderr
