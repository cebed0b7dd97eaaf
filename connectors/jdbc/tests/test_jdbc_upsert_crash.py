"""Keyed running totals into ``mode: upsert`` with ``exactly_once: true``, SIGKILLed at
random moments (some just as a checkpoint begins) and resumed each time, on SQLite,
PostgreSQL and MariaDB: every checkpoint holds many rows of one key, the last one wins,
and the final table is exactly what one uninterrupted run computes.

The kill moments come from a seed printed by the test; replay a run with
``PIPELINE_TEST_KILL_SEED=<seed>``.
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
from pathlib import Path

import orjson
import pytest
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, create_engine, select

from pipeline_core.testing.crash import kill_and_resume

pytestmark = pytest.mark.timeout(240)

EVENTS = 12_000
KEYS = 50
KILLS = 10
BIN = Path(sys.executable).parent
RUN = [str(BIN / "pipeline-run"), "run", "--resume", "--no-progress", "--quiet", "job.yaml"]
ENV = {"PIPELINE_DATABASE_URL": ""}  # metadata: SQLite in the job's folder
KILL_SEED = os.environ.get("PIPELINE_TEST_KILL_SEED") or f"{random.randrange(10**9)}"

FNS = """
def running(record, state):
    count, total = state.value("count", 0), state.value("total", 0)
    count.update(count.value() + 1)
    total.update(total.value() + record["amount"])
    return {"key": record["key"], "n": count.value(), "total": total.value(),
            "last_id": record["id"]}
"""


def checkpoints_begun(tmp: Path) -> int:
    """The highest checkpoint row id of the job's metadata database (0 before the first)."""
    db = tmp / ".pipeline" / "pipeline.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05) as conn:
            row = conn.execute("SELECT max(id) FROM pipeline_checkpoint").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0)


def test_upsert_exactly_once_running_totals_across_kills(db_url: str, tmp_path: Path) -> None:
    print(f"kill seed {KILL_SEED} (replay: PIPELINE_TEST_KILL_SEED={KILL_SEED})")
    rnd = random.Random(KILL_SEED)
    engine = create_engine(db_url)
    md = MetaData()
    totals = Table(
        "totals",
        md,
        Column("key", String(20), primary_key=True),
        Column("n", Integer, nullable=False),
        Column("total", BigInteger, nullable=False),
        Column("last_id", Integer, nullable=False),
    )
    md.create_all(engine)
    engine.dispose()
    events = [
        {"id": i, "key": f"k{rnd.randrange(KEYS)}", "amount": rnd.randrange(1000)}
        for i in range(EVENTS)
    ]
    with open(tmp_path / "in.jsonl", "wb") as f:
        for e in events:
            f.write(orjson.dumps(e) + b"\n")
    (tmp_path / "fns.py").write_text(FNS)
    (tmp_path / "job.yaml").write_text(
        "name: totals\n"
        "source: {type: file, config: {path: in.jsonl}}\n"
        "transform:\n"
        "  - {type: rate_limit, per_second: 2000}\n"
        "  - {type: keyed_map, key_field: key, function: 'fns:running'}\n"
        f"sink: {{type: jdbc, config: {{url: '{db_url}', table: totals, mode: upsert, "
        "key: [key], exactly_once: true}}\n"
        "config: {checkpoint_interval: 200ms, source_batch_size: 100, checkpoint_retention: 1000}\n"
    )
    report = kill_and_resume(
        RUN,
        cwd=tmp_path,
        kills=KILLS,
        during_checkpoint=3,
        pending_checkpoints=lambda: checkpoints_begun(tmp_path),
        delay=(0.6, 1.4),
        seed=KILL_SEED,
        env=ENV,
    )
    print(f"kills: {report}")
    assert report.kills >= KILLS

    expected: dict[str, tuple[int, int, int]] = {}
    for e in events:
        n, total, _last = expected.get(e["key"], (0, 0, -1))
        expected[e["key"]] = (n + 1, total + e["amount"], e["id"])
    engine = create_engine(db_url)
    with engine.connect() as conn:
        got = {
            r.key: (r.n, r.total, r.last_id)
            for r in conn.execute(
                select(totals.c.key, totals.c.n, totals.c.total, totals.c.last_id)
            )
        }
        stage = Table("totals__pipeline_stage", MetaData(), autoload_with=conn)
        left = conn.execute(select(stage.c.key)).all()
    engine.dispose()
    assert got == expected
    assert left == []  # nothing staged is left behind once the job completed
