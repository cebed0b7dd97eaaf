"""``jobs start`` (docs/cli.md, "jobs start"): refused when no ``serve`` instance would run
the execution, recorded with ``--queue``, run by the instance that is serving."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import orjson

from tests.conftest import BIN, REPO, pipeline_run


def _executions(cwd: Path) -> list[dict[str, object]]:
    proc = pipeline_run("executions", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, object]] = orjson.loads(proc.stdout)
    return rows


def test_start_without_serve_is_refused_and_queue_records_it(tmp_path: Path) -> None:
    shutil.copytree(
        REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("output")
    )
    assert pipeline_run("jobs", "import", "examples/quickstart.yaml", cwd=tmp_path).returncode == 0
    refused = pipeline_run("jobs", "start", "quickstart-orders", cwd=tmp_path)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "no `pipeline-run serve` instance is running" in refused.stderr
    assert _executions(tmp_path) == []  # nothing left SCHEDULED for nobody
    queued = pipeline_run("jobs", "start", "--queue", "quickstart-orders", cwd=tmp_path)
    assert queued.returncode == 0, queued.stderr
    assert "queued" in queued.stderr
    (row,) = _executions(tmp_path)
    assert row["execution_id"] == queued.stdout.strip() and row["status"] == "SCHEDULED"


def test_start_with_serve_running_is_run_by_it(tmp_path: Path) -> None:
    shutil.copytree(
        REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("output")
    )
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [
            str(BIN / "pipeline-run"),
            "serve",
            "--jobs",
            "examples",
            "--no-api",
            "--heartbeat",
            "300ms",
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            started = pipeline_run("jobs", "start", "quickstart-orders", cwd=tmp_path)
            if started.returncode == 0:
                break
            assert (
                "no `pipeline-run serve` instance" in started.stderr
                or "no job named" in started.stderr
            )
            assert serve.poll() is None and time.monotonic() < deadline, (
                tmp_path / "serve.log"
            ).read_text()
            time.sleep(0.3)
        assert "scheduled; serving:" in started.stderr
        execution = started.stdout.strip()
        while True:
            (row,) = [r for r in _executions(tmp_path) if r["execution_id"] == execution]
            if row["status"] == "COMPLETED":
                break
            assert row["status"] != "FAILED", row
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.3)
        assert row["processed_records"] == 4998
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
