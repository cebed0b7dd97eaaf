"""Real kills: the SQL source resumes exactly, the exactly-once SQL sink neither loses nor
duplicates rows — on SQLite, PostgreSQL and MariaDB (metadata in SQLite next to the job)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select

from pipeline_core.testing.crash import attempt_recorded, kill_and_resume

N = 12_000
BIN = Path(sys.executable).parent
RUN = [str(BIN / "pipeline-run"), "run", "--resume", "--no-progress", "--quiet", "job.yaml"]
ENV = {"PIPELINE_DATABASE_URL": ""}  # metadata: SQLite in the job's folder


def kills_in_the_work(directory: Path) -> dict[str, Any]:
    """Each kill lands 0.2-0.5 s into a run's work, counted from its recorded attempt,
    whatever the start-up takes on this machine: 5 kills never outlast 3 s of work."""
    return {"delay": (0.2, 0.5), "started": attempt_recorded(directory)}


def table(md: MetaData, name: str) -> Table:
    return Table(
        name,
        md,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("word", String(50)),
    )


SOURCES = {
    "table": "table: words, key: id, page_size: 500",
    "query": "query: 'SELECT id, word FROM words WHERE id >= 0', key: id, fetch_size: 500",
}


@pytest.mark.parametrize("mode", sorted(SOURCES))
def test_source_resumes_exactly_across_kills(db_url: str, tmp_path: Path, mode: str) -> None:
    engine = create_engine(db_url)
    md = MetaData()
    src = table(md, "words")
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(src), [{"id": i, "word": f"w{i}"} for i in range(N)])
    engine.dispose()
    (tmp_path / "job.yaml").write_text(
        f"name: sql-in\n"
        f"source: {{type: jdbc, config: {{url: '{db_url}', {SOURCES[mode]}}}}}\n"
        f"transform: [{{type: rate_limit, per_second: 4000}}]\n"
        f"sink: {{type: file, config: {{path: out}}}}\n"
        f"config: {{checkpoint_interval: 200ms, source_batch_size: 100}}\n"
    )
    # kills 0.2-0.5 s into each run's work (never in its start-up): 3 s of work in all
    report = kill_and_resume(
        RUN, cwd=tmp_path, kills=5, seed=mode, env=ENV, **kills_in_the_work(tmp_path)
    )
    assert report.kills == 5
    got = [
        orjson.loads(x)
        for p in sorted((tmp_path / "out").iterdir())
        for x in p.read_bytes().splitlines()
    ]
    assert sorted(r["id"] for r in got) == list(range(N))  # once each
    assert all(r["word"] == f"w{r['id']}" for r in got)


def test_exactly_once_sink_across_kills(db_url: str, tmp_path: Path) -> None:
    engine = create_engine(db_url)
    md = MetaData()
    dst = table(md, "words_out")
    md.create_all(engine)
    engine.dispose()
    with open(tmp_path / "in.jsonl", "wb") as f:
        for i in range(N):
            f.write(orjson.dumps({"id": i, "word": f"w{i}"}) + b"\n")
    (tmp_path / "job.yaml").write_text(
        f"name: sql-out\n"
        f"source: {{type: file, config: {{path: in.jsonl}}}}\n"
        f"transform: [{{type: rate_limit, per_second: 4000}}]\n"
        f"sink: {{type: jdbc, config: {{url: '{db_url}', table: words_out, exactly_once: true}}}}\n"
        f"config: {{checkpoint_interval: 200ms, source_batch_size: 100}}\n"
    )
    report = kill_and_resume(
        RUN, cwd=tmp_path, kills=5, seed="sink", env=ENV, **kills_in_the_work(tmp_path)
    )
    assert report.kills == 5
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(dst.c.id, dst.c.word).order_by(dst.c.id)).all()
    engine.dispose()
    assert [r.id for r in rows] == list(range(N))  # primary key: a duplicate would have failed
    assert all(r.word == f"w{r.id}" for r in rows)
