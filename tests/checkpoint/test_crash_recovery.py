"""Crash recovery with real kills.

A file → keyed running count/sum → file job runs as ``pipeline-run run --resume`` in a
subprocess and is SIGKILLed again and again — at random moments and, on purpose, while a
checkpoint is being taken (a PENDING row exists) — then restarted with ``--resume`` until
it completes. Its committed output must equal the output of an uninterrupted run: every
record exactly once, every running aggregate exact.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline_core.testing.crash import kill_and_resume
from tests.conftest import BIN

RECORDS = 60_000

FNS = """
def running(record, state):
    count, total = state.value("count", 0), state.value("sum", 0)
    count.update(count.value() + 1)
    total.update(total.value() + record["amount"])
    return {"i": record["i"], "user": record["user"], "count": count.value(), "sum": total.value()}
"""

JOB = """\
name: crash-{backend}
source: {{type: file, config: {{path: in.jsonl}}}}
transform:
  - {{type: rate_limit, per_second: {rate}}}
  - {{type: keyed_map, key_field: user, function: "fns:running"}}
sink: {{type: file, config: {{path: out, max_records_per_file: 2500}}}}
config:
  checkpoint_interval: 150ms
  state_backend: {backend}
  source_batch_size: 200
"""


def make_job(directory: Path, backend: str, rate: int) -> None:
    directory.mkdir(parents=True)
    rnd = random.Random(7)
    with open(directory / "in.jsonl", "wb") as f:
        for i in range(RECORDS):
            rec = {"i": i, "user": f"u{rnd.randrange(500)}", "amount": rnd.randrange(100)}
            f.write(orjson.dumps(rec) + b"\n")
    (directory / "fns.py").write_text(FNS)
    (directory / "job.yaml").write_text(JOB.format(backend=backend, rate=rate))


def start(directory: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN / "pipeline-run"), "run", "--resume", "--no-progress", "--quiet", "job.yaml"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PIPELINE_DATABASE_URL": ""},
    )


def output(directory: Path) -> list[dict[str, Any]]:
    out = directory / "out"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "unfinished files left"
    return [
        orjson.loads(line) for p in sorted(out.iterdir()) for line in p.read_bytes().splitlines()
    ]


def pending_checkpoints(directory: Path) -> int:
    db = directory / ".pipeline" / "pipeline.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05) as conn:
            (n,) = conn.execute(
                "SELECT count(*) FROM pipeline_checkpoint WHERE status = 'PENDING'"
            ).fetchone()
            return int(n)
    except sqlite3.Error:
        return 0


def checkpoints_begun(directory: Path) -> int:
    """Grows when a checkpoint begins (its row is inserted); never shrinks when a resume
    closes an interrupted one, unlike the count of PENDING rows."""
    db = directory / ".pipeline" / "pipeline.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05) as conn:
            (n,) = conn.execute("SELECT coalesce(max(id), 0) FROM pipeline_checkpoint").fetchone()
            return int(n)
    except sqlite3.Error:
        return 0


def checkpoints_in(directory: Path, status: str) -> int:
    with sqlite3.connect(directory / ".pipeline" / "pipeline.db") as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM pipeline_checkpoint WHERE status = ?", (status,)
        ).fetchone()
        return int(n)


@pytest.mark.parametrize("backend", ["lmdb", "memory"])
def test_sigkill_and_resume_equals_an_uninterrupted_run(tmp_path: Path, backend: str) -> None:
    reference_dir, crash_dir = tmp_path / "reference", tmp_path / "crashy"
    make_job(reference_dir, backend, rate=1_000_000)
    make_job(crash_dir, backend, rate=5_000)  # slow enough to be killed often

    ref = start(reference_dir)
    assert ref.wait(timeout=120) == 0, ref.stderr.read() if ref.stderr else ""
    expected = output(reference_dir)
    assert len(expected) == RECORDS

    report = kill_and_resume(
        [str(BIN / "pipeline-run"), "run", "--resume", "--no-progress", "--quiet", "job.yaml"],
        cwd=crash_dir,
        kills=12,
        during_checkpoint=3,
        pending_checkpoints=lambda: checkpoints_begun(crash_dir),
        seed=backend,
        env={"PIPELINE_DATABASE_URL": ""},
    )
    kills, during_checkpoint = report.kills, report.kills_during_checkpoint
    assert kills >= 10, f"only {kills} kills happened"
    assert during_checkpoint >= 2
    # every resume continued the killed execution (one execution, one attempt per run);
    # each dead attempt is closed with the reason, and the checkpoints the kills
    # interrupted were closed by the resume that followed (none is left PENDING)
    with sqlite3.connect(crash_dir / ".pipeline" / "pipeline.db") as conn:
        executions = conn.execute("SELECT status FROM pipeline_job_execution").fetchall()
        attempts = conn.execute(
            "SELECT status, end_reason FROM pipeline_job_execution_attempt ORDER BY attempt"
        ).fetchall()
    assert executions == [("COMPLETED",)]
    # (a run killed while starting up may not have begun an attempt)
    assert 2 <= len(attempts) <= report.runs and attempts[-1][0] == "COMPLETED"
    assert all(s == "LOST" and "process is gone" in r for s, r in attempts[:-1])
    assert pending_checkpoints(crash_dir) == 0
    assert checkpoints_in(crash_dir, "COMPLETED") >= 1

    got = output(crash_dir)
    assert len(got) == len({r["i"] for r in got}), "duplicated records"
    assert sorted(got, key=lambda r: r["i"]) == sorted(expected, key=lambda r: r["i"])
