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

from pipeline_core.testing.crash import attempt_recorded, kill_and_resume
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


# Many keys, few of them changed per checkpoint: the LMDB backend's checkpoints are
# deltas, chains of up to MAX_DELTAS on a full one, and every resume composes one. A sum
# is cleared (a deletion: a tombstone in the delta) whenever an amount is 0.
KEYS = 8_000
INCREMENTAL_RECORDS = 40_000

INCREMENTAL_FNS = """
def running(record, state):
    count, total = state.value("count", 0), state.value("sum", 0)
    count.update(count.value() + 1)
    if record["amount"] == 0:
        total.clear()
    else:
        total.update(total.value() + record["amount"])
    return {"i": record["i"], "user": record["user"], "count": count.value(), "sum": total.value()}
"""


def make_incremental_job(directory: Path, rate: int) -> None:
    directory.mkdir(parents=True)
    rnd = random.Random(11)
    with open(directory / "in.jsonl", "wb") as f:
        for i in range(INCREMENTAL_RECORDS):
            user = f"u{i}" if i < KEYS else f"u{rnd.randrange(KEYS)}"
            rec = {"i": i, "user": user, "amount": rnd.randrange(20)}
            f.write(orjson.dumps(rec) + b"\n")
    (directory / "fns.py").write_text(INCREMENTAL_FNS)
    (directory / "job.yaml").write_text(JOB.format(backend="lmdb", rate=rate))


def newest_completed(directory: Path) -> dict[str, Any] | None:
    """operator_state of the checkpoint a resume starts from (the newest completed)."""
    with sqlite3.connect(f"file:{directory / '.pipeline' / 'pipeline.db'}?mode=ro", uri=True) as c:
        row = c.execute(
            "SELECT state_data FROM pipeline_checkpoint WHERE status = 'COMPLETED' "
            "ORDER BY create_time DESC, id DESC LIMIT 1"
        ).fetchone()
    if row is None:
        return None
    state: dict[str, Any] = orjson.loads(row[0])["operator_state"]
    return state


def test_sigkill_and_resume_composes_incremental_lmdb_checkpoints(tmp_path: Path) -> None:
    reference_dir, crash_dir = tmp_path / "reference", tmp_path / "crashy"
    make_incremental_job(reference_dir, rate=1_000_000)
    make_incremental_job(crash_dir, rate=2_500)

    ref = start(reference_dir)
    assert ref.wait(timeout=120) == 0, ref.stderr.read() if ref.stderr else ""
    expected = output(reference_dir)
    assert len(expected) == INCREMENTAL_RECORDS

    seed = random.randrange(1 << 30)
    print(f"kill seed: {seed}")  # -s shows it; rerun with it to replay the kill moments
    recorded = attempt_recorded(crash_dir)
    restored: list[dict[str, Any] | None] = []  # what each killed run started from

    def started(run: int) -> bool:
        if not recorded(run):
            return False
        restored.append(newest_completed(crash_dir))
        return True

    report = kill_and_resume(
        [str(BIN / "pipeline-run"), "run", "--resume", "--no-progress", "--quiet", "job.yaml"],
        cwd=crash_dir,
        kills=12,
        during_checkpoint=3,
        pending_checkpoints=lambda: checkpoints_begun(crash_dir),
        seed=seed,
        env={"PIPELINE_DATABASE_URL": ""},
        started=started,
    )
    assert report.kills >= 12 and report.kills_during_checkpoint >= 2, report
    print(
        "deltas in the chain each killed run restored:",
        [len(s.get("chain") or []) if s else None for s in restored],
    )
    # the resumes really composed chains: they restored deltas built on a base
    composed = [s for s in restored if s is not None and s.get("chain")]
    assert len(composed) >= 3, f"seed {seed}: only {len(composed)} resumes restored a delta"
    assert max(len(s["chain"]) for s in composed) >= 2, f"seed {seed}"
    assert pending_checkpoints(crash_dir) == 0

    got = output(crash_dir)
    assert len(got) == len({r["i"] for r in got}), f"seed {seed}: duplicated records"
    assert sorted(got, key=lambda r: r["i"]) == sorted(expected, key=lambda r: r["i"]), (
        f"seed {seed}"
    )
