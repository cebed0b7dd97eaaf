"""The SQL connector on SQLite and on the real PostgreSQL and MariaDB servers (``db_url``
runs each test on all three)."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    insert,
    select,
    text,
)

from pipeline_connector_jdbc import JdbcSink, JdbcSinkConfig, JdbcSource, JdbcSourceConfig
from pipeline_core import Batch, ConfigError, FatalConnectorError, PipelineJob, RuntimeContext
from pipeline_core.testing import ListSink, MemorySource, run

UTC = dt.UTC


def rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "name": f"näme-{i} ✓" if i % 7 else None,
            "amount": Decimal(f"{i}.{i % 100:02d}"),
            "at": dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=i),
            "doc": {"i": i, "tags": ["a", "b"]} if i % 3 else None,
        }
        for i in range(start, start + n)
    ]


def make_table(url: str, name: str, data: list[dict[str, Any]] | None = None) -> Table:
    engine = create_engine(url)
    md = MetaData()
    table = Table(
        name,
        md,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("name", String(100)),
        Column("amount", Numeric(12, 2)),
        Column("at", DateTime(timezone=True)),
        Column("doc", JSON),
    )
    md.create_all(engine)
    if data:
        with engine.begin() as conn:
            conn.execute(insert(table), data)
    engine.dispose()
    return table


def fetch(url: str, table: Table) -> list[dict[str, Any]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        out = [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.id))]
    engine.dispose()
    for r in out:  # SQLite has no time zones: compare instants
        if r["at"] is not None and r["at"].tzinfo is None:
            r["at"] = r["at"].replace(tzinfo=UTC)
    return out


CTX = RuntimeContext(job_name="j", execution_id="exec-1", component="source (jdbc)", batch_size=256)


def read(config: JdbcSourceConfig, position: dict[str, Any] | None = None) -> list[Batch]:
    async def go() -> list[Batch]:
        src = JdbcSource(config)
        await src.open(CTX, position)
        try:
            return [b async for b in src.read()]
        finally:
            await src.close()

    return asyncio.run(go())


def flat(batches: list[Batch]) -> list[dict[str, Any]]:
    return [r for b in batches for r in b.records]


def test_table_source_pages_by_key_and_resumes_after_each_page(db_url: str) -> None:
    make_table(db_url, "src", rows(2_500))
    cfg = JdbcSourceConfig(
        url=db_url, table="src", key="id", page_size=1_000, columns=["id", "name"]
    )
    batches = read(cfg)
    got = flat(batches)
    assert [r["id"] for r in got] == list(range(2_500))
    assert set(got[0]) == {"id", "name"}
    page_ends = [b for b in batches if b.checkpoint_after]
    assert [b.position["current_page"] for b in page_ends] == [1, 2, 3]  # type: ignore[index]
    for b in batches:
        assert b.position is not None
        rest = flat(read(cfg, b.position))
        assert [r["id"] for r in rest] == list(range(b.position["last_key"] + 1, 2_500))


def test_query_source_streams_and_resumes_after_the_last_id(db_url: str) -> None:
    make_table(db_url, "src", rows(1_000))
    query = "SELECT id, amount * 2 AS doubled FROM src WHERE id % 2 = 0"
    cfg = JdbcSourceConfig(url=db_url, query=query, key="id", fetch_size=100)
    batches = read(cfg)
    assert [r["id"] for r in flat(batches)] == list(range(0, 1_000, 2))
    mid = batches[0].position
    assert mid == {"processed_rows": 256, "last_processed_id": 510}
    rest = flat(read(cfg, mid))
    assert [r["id"] for r in rest] == list(range(mid["last_processed_id"] + 2, 1_000, 2))
    # without an id column a resumed run skips what was processed (the query orders rows)
    ordered = JdbcSourceConfig(url=db_url, query=query + " ORDER BY id", fetch_size=100)
    skip = flat(read(ordered, {"processed_rows": 300}))
    assert [r["id"] for r in skip] == list(range(600, 1_000, 2))


def test_config_mistakes_fail_at_open_naming_the_field(db_url: str) -> None:
    make_table(db_url, "src", rows(1))
    cases = [
        (JdbcSourceConfig(url=db_url, table="nope", key="id"), "field 'table': no table 'nope'"),
        (
            JdbcSourceConfig(url=db_url, table="src", key="idd"),
            "field 'key': table 'src' has no column 'idd'",
        ),
        (
            JdbcSourceConfig(url=db_url, query="SELEC oops"),
            "field 'query': the database rejected the query",
        ),
        (
            JdbcSourceConfig(url="mysql+nosuchdriver://u@127.0.0.1/db", table="t", key="id"),
            "field 'url': mysql+nosuchdriver://u@127.0.0.1/db: mysql+nosuchdriver://: "
            "SQLAlchemy has no mysql driver "
            "'nosuchdriver'; write mysql+pymysql://…",
        ),
    ]
    for cfg, message in cases:
        with pytest.raises(ConfigError) as info:
            read(cfg)
        assert message in str(info.value), str(info.value)
        assert "job 'j', source (jdbc)" in str(info.value)


def sink_job(url: str, records: list[dict[str, Any]], **sink: Any) -> PipelineJob:
    return (
        PipelineJob.builder()
        .name("to-sql")
        .source(MemorySource.of(records, batch_size=300))
        .sink("jdbc", url=url, **sink)
        .build()
    )


@pytest.mark.parametrize("copy", [True, False])
def test_append_round_trips_types(db_url: str, copy: bool) -> None:
    table = make_table(db_url, "dst")
    data = rows(1_000)
    run(sink_job(db_url, data, table="dst", copy=copy))
    assert fetch(db_url, table) == data


def test_upsert_updates_instead_of_duplicating(db_url: str) -> None:
    table = make_table(db_url, "dst", rows(10))
    changed = [{**r, "name": "changed"} for r in rows(15, start=5)]
    run(sink_job(db_url, changed, table="dst", mode="upsert", key=["id"]))
    got = fetch(db_url, table)
    assert [r["id"] for r in got] == list(range(20))
    assert [r["name"] for r in got[:5]] == [r["name"] for r in rows(5)]
    assert all(r["name"] == "changed" for r in got[5:])


def test_replace_swaps_in_everything_or_nothing(db_url: str) -> None:
    table = make_table(db_url, "dst", rows(50, start=1_000))
    run(sink_job(db_url, rows(700), table="dst", mode="replace"))
    assert fetch(db_url, table) == rows(700)
    from pipeline_core.testing import ABORT

    failing = (
        PipelineJob.builder()
        .name("to-sql")
        .source(MemorySource.of([*rows(10, start=5_000), ABORT], batch_size=3))
        .sink("jdbc", url=db_url, table="dst", mode="replace")
        .build()
    )
    assert run(failing, expect=None).status.value == "FAILED"
    assert fetch(db_url, table) == rows(700)  # the failed run changed nothing


def test_hostile_names_are_quoted(db_url: str) -> None:
    engine = create_engine(db_url)
    md = MetaData()
    Table(
        'we"ird; DROP TABLE x',
        md,
        Column("id", Integer, primary_key=True),
        Column('sp ace"', String(20)),
    )
    md.create_all(engine)
    engine.dispose()
    records = [{"id": 1, 'sp ace"': "a'b"}, {"id": 2, 'sp ace"': '"; --'}]
    run(sink_job(db_url, records, table='we"ird; DROP TABLE x'))
    got = flat(read(JdbcSourceConfig(url=db_url, table='we"ird; DROP TABLE x', key="id")))
    assert got == records


def test_records_with_unknown_fields_fail_clearly(db_url: str) -> None:
    make_table(db_url, "dst")
    result = run(sink_job(db_url, [{"id": 1, "nmae": "typo"}], table="dst"), expect=None)
    assert isinstance(result.exception, FatalConnectorError)
    assert "record has fields that table 'dst' does not: ['nmae']" in (result.error or "")


def test_exactly_once_sink_commits_only_completed_checkpoints(db_url: str) -> None:
    table = make_table(db_url, "dst")
    sink = JdbcSink(JdbcSinkConfig(url=db_url, table="dst", exactly_once=True))
    ctx = RuntimeContext(job_name="eo", execution_id="e1", component="sink (jdbc)")

    async def go() -> None:
        await sink.open(ctx)
        await sink.write(rows(5))
        prepared = await sink.prepare_commit(1)
        assert fetch(db_url, table) == []  # staged, not visible
        await sink.on_checkpoint_complete(1)
        assert [r["id"] for r in fetch(db_url, table)] == list(range(5))
        await sink.write(rows(5, start=5))
        await sink.prepare_commit(2)  # prepared but never completed: a crash here
        await sink.close()
        # a restored execution from checkpoint 1 drops the rows of checkpoint 2
        again = JdbcSink(JdbcSinkConfig(url=db_url, table="dst", exactly_once=True))
        await again.open(RuntimeContext(job_name="eo", execution_id="e2", component="sink (jdbc)"))
        await again.restore_commit(1, prepared)
        await again.restore_commit(1, prepared)  # idempotent
        await again.close()

    asyncio.run(go())
    assert [r["id"] for r in fetch(db_url, table)] == list(range(5))
    engine = create_engine(db_url)
    with engine.connect() as conn:
        stage = conn.dialect.identifier_preparer.quote("dst__pipeline_stage")
        assert conn.execute(text(f"SELECT count(*) FROM {stage}")).scalar() == 0
        progress = conn.execute(
            text("SELECT execution_id, checkpoint_id FROM pipeline_sink_progress")
        ).all()
    engine.dispose()
    assert [tuple(p) for p in progress] == [("e1", 1)]


@pytest.mark.parametrize("copy", [True, False])
def test_upsert_with_exactly_once_keeps_the_last_row_of_a_key(db_url: str, copy: bool) -> None:
    """Keyed running totals: one checkpoint holds several rows of one key (in several
    batches); the last one (in input order) wins, as without exactly_once."""
    table = make_table(db_url, "dst")
    cfg = JdbcSinkConfig(
        url=db_url, table="dst", mode="upsert", key=["id"], exactly_once=True, copy=copy
    )
    sink = JdbcSink(cfg)
    ctx = RuntimeContext(job_name="totals", execution_id="e1", component="sink (jdbc)")

    def totals(version: int) -> list[dict[str, Any]]:
        return [{"id": i, "name": f"v{version}", "amount": version} for i in range(3)]

    async def go() -> None:
        await sink.open(ctx)
        for version in range(1, 5):  # four updates of every key in one checkpoint
            await sink.write(totals(version))
        await sink.prepare_commit(1)
        await sink.on_checkpoint_complete(1)
        assert [(r["id"], r["name"]) for r in fetch(db_url, table)] == [
            (0, "v4"),
            (1, "v4"),
            (2, "v4"),
        ]
        await sink.write(totals(5) + totals(6)[:1])  # and twice within one batch
        await sink.prepare_commit(2)
        await sink.on_checkpoint_complete(2)
        await sink.close()

    asyncio.run(go())
    assert [(r["id"], r["name"]) for r in fetch(db_url, table)] == [
        (0, "v6"),
        (1, "v5"),
        (2, "v5"),
    ]


def test_restore_finishes_a_move_the_crash_interrupted(db_url: str) -> None:
    table = make_table(db_url, "dst")
    ctx = RuntimeContext(job_name="eo", execution_id="e1", component="sink (jdbc)")

    async def go() -> None:
        sink = JdbcSink(JdbcSinkConfig(url=db_url, table="dst", exactly_once=True))
        await sink.open(ctx)
        await sink.write(rows(7))
        prepared = await sink.prepare_commit(1)
        await sink.close()  # checkpoint 1 completed, but the crash came before the move
        again = JdbcSink(JdbcSinkConfig(url=db_url, table="dst", exactly_once=True))
        await again.open(RuntimeContext(job_name="eo", execution_id="e2", component="sink (jdbc)"))
        await again.restore_commit(1, prepared)
        await again.close()

    asyncio.run(go())
    assert fetch(db_url, table) == rows(7)


def test_table_to_table_keeps_every_type(db_url: str) -> None:
    make_table(db_url, "src", rows(3_000))
    dst = make_table(db_url, "dst")
    job = (
        PipelineJob.builder()
        .name("copy")
        .source("jdbc", url=db_url, table="src", key="id", page_size=700)
        .transform(lambda s: s.filter(lambda r: r["id"] % 3 == 0))
        .sink("jdbc", url=db_url, table="dst")
        .build()
    )
    assert run(job).records_read == 3_000
    assert fetch(db_url, dst) == [r for r in rows(3_000) if r["id"] % 3 == 0]


def test_sql_task_query_into_a_table(db_url: str) -> None:
    make_table(db_url, "src", rows(3_000))
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE totals (bucket INTEGER PRIMARY KEY, n INTEGER, total NUMERIC(14, 2))"
            )
        )
    mysql = engine.dialect.name in ("mysql", "mariadb")
    engine.dispose()
    bucket = "id DIV 1000" if mysql else "id / 1000"  # MySQL's / is exact division
    job = (
        PipelineJob.builder()
        .name("sql-task")
        .type("SQL_TASK")
        .source(
            "jdbc",
            url=db_url,
            query=f"SELECT {bucket} AS bucket, count(*) AS n, sum(amount) AS total "
            f"FROM src GROUP BY {bucket}",
            key="bucket",
        )
        .sink("jdbc", url=db_url, table="totals")
        .build()
    )
    run(job)
    sink = ListSink()
    run(
        PipelineJob.builder()
        .name("t")
        .source("jdbc", url=db_url, table="totals", key="bucket")
        .sink(sink)
        .build()
    )
    assert [(r["bucket"], r["n"]) for r in sink.committed] == [(0, 1000), (1, 1000), (2, 1000)]
    expected = sum(r["amount"] for r in rows(1000))
    assert Decimal(str(sink.committed[0]["total"])) == expected


def test_examples_run_against_postgresql(db_url: str, tmp_path: Path) -> None:
    if not db_url.startswith("postgresql"):
        return  # the examples are written for PostgreSQL; the SQLite run checks nothing
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[3]
    shutil.copytree(
        repo / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("output")
    )
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql((repo / "examples" / "postgres_setup.sql").read_text())
    env = {**__import__("os").environ, "PIPELINE_EXAMPLES_DB": db_url, "PIPELINE_DATABASE_URL": ""}
    for job in ("orders_to_postgres.yaml", "customer_totals.yaml"):
        proc = subprocess.run(
            [
                str(Path(sys.executable).parent / "pipeline-run"),
                "run",
                "--no-progress",
                f"examples/{job}",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    with engine.connect() as conn:
        paid = conn.execute(text("SELECT count(*), sum(total) FROM paid_orders")).one()
        totals = conn.execute(text("SELECT sum(orders), sum(revenue) FROM customer_totals")).one()
    engine.dispose()
    assert paid[0] == 3383  # the quickstart's paid orders of at least 20 EUR
    assert (totals[0], totals[1]) == (paid[0], paid[1])


@pytest.mark.parametrize("mode", ["table", "query"])
def test_source_survives_a_dropped_connection(db_url: str, mode: str) -> None:
    if db_url.startswith("sqlite"):
        return  # only a server can drop a connection
    import threading
    import time

    make_table(db_url, "src", rows(3_000))
    killed: list[int] = []

    def terminate() -> None:
        time.sleep(0.4)
        engine = create_engine(db_url)
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                killed.extend(
                    conn.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    ).scalars()
                )
            else:
                ids = conn.execute(
                    text(
                        "SELECT id FROM information_schema.processlist "
                        "WHERE db = database() AND id <> connection_id()"
                    )
                ).scalars()
                for pid in ids:
                    conn.execute(text(f"KILL {int(pid)}"))
                    killed.append(pid)
        engine.dispose()

    source: dict[str, Any] = (
        {"table": "src", "key": "id", "page_size": 100}
        if mode == "table"
        else {"query": "SELECT id, name FROM src", "key": "id", "fetch_size": 100}
    )

    sink = ListSink()
    job = (
        PipelineJob.builder()
        .name("flaky")
        .source("jdbc", url=db_url, **source)
        .transform(lambda s: s.rate_limit(2_500))
        .sink(sink)
        .build()
    )
    killer = threading.Thread(target=terminate)
    killer.start()
    run(job)
    killer.join()
    assert killed, "no connection was dropped"
    assert [r["id"] for r in sink.committed] == list(range(3_000))


@pytest.mark.parametrize("copy", [True, False])
def test_mysql_bulk_load_is_as_strict_as_insert(db_url: str, copy: bool) -> None:
    """LOAD DATA LOCAL turns a duplicate key or a value that does not fit into a warning
    and carries on; the sink fails the batch instead, as an INSERT would, and the table
    keeps nothing of that transaction."""
    if not db_url.startswith("mysql"):
        return
    table = make_table(db_url, "dst", rows(3))
    sink = JdbcSink(JdbcSinkConfig(url=db_url, table="dst", copy=copy))

    async def opened() -> bool:
        await sink.open(RuntimeContext(job_name="j", execution_id="e", component="sink (jdbc)"))
        loads = sink._loader is not None
        await sink.close()
        return loads

    assert asyncio.run(opened()) is copy  # MariaDB has local_infile on: the bulk path
    duplicate = run(sink_job(db_url, rows(5, start=1), table="dst", copy=copy), expect=None)
    assert duplicate.status.value == "FAILED"
    assert "Duplicate entry '1'" in (duplicate.error or "")
    too_long = [{"id": 10, "name": "x" * 101}]
    result = run(sink_job(db_url, too_long, table="dst", copy=copy), expect=None)
    assert result.status.value == "FAILED"
    assert "name" in (result.error or "")
    assert fetch(db_url, table) == rows(3)


def test_mysql_server_without_local_infile_gets_inserts(mysql_url: str) -> None:
    """MySQL 8 ships with ``local_infile`` off: with ``copy: true`` (the default) the sink
    sees that at open and appends with multi-row INSERTs, exactly once, instead of
    failing its first load. The server's global setting is put back afterwards."""
    admin = create_engine(mysql_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        before = conn.execute(text("SELECT @@GLOBAL.local_infile")).scalar()
        conn.execute(text("SET GLOBAL local_infile = 0"))
    try:
        table = make_table(mysql_url, "dst")
        sink = JdbcSink(JdbcSinkConfig(url=mysql_url, table="dst"))

        async def opened() -> bool:
            await sink.open(RuntimeContext(job_name="j", execution_id="e", component="sink"))
            loads = sink._loader is not None
            await sink.close()
            return loads

        assert asyncio.run(opened()) is False
        data = rows(2_500)
        run(sink_job(mysql_url, data, table="dst", exactly_once=True))
        assert fetch(mysql_url, table) == data
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"SET GLOBAL local_infile = {int(before or 0)}"))
        admin.dispose()


def test_mysql_values_the_load_file_cannot_carry_go_as_inserts_in_order(db_url: str) -> None:
    """Bytes have no place in the tab-separated load file: that batch is inserted, after
    what was loaded before it (the stage's order is the input's)."""
    if not db_url.startswith("mysql"):
        return
    from sqlalchemy import LargeBinary

    engine = create_engine(db_url)
    md = MetaData()
    blobs = Table(
        "blobs",
        md,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("data", LargeBinary),
        Column("note", String(20)),
    )
    md.create_all(engine)
    engine.dispose()
    records = [
        {
            "id": i,
            "data": bytes([i % 256, 0, 9, 10]) if 400 <= i < 450 else None,
            "note": f"t\tn\n{i}",
        }
        for i in range(1, 1_001)
    ]
    # later rows of the same keys: the last one must win whichever path carried it
    records += [{**r, "note": "again"} for r in records[350:500]]
    # ... and newer rows, with bytes, of keys whose older rows still wait in the load file
    records += [{**r, "note": "newest", "data": b"\x00\t"} for r in records[680:700]]
    expected = {r["id"]: r for r in records}
    run(sink_job(db_url, records, table="blobs", mode="upsert", key=["id"], exactly_once=True))
    engine = create_engine(db_url)
    with engine.connect() as conn:
        got = [dict(r._mapping) for r in conn.execute(select(blobs).order_by(blobs.c.id))]
    engine.dispose()
    assert got == [expected[i] for i in sorted(expected)]


def test_jsonb_values_through_copy_keep_every_shape(pg_url: str) -> None:
    # COPY encodes JSON with orjson, falling back to the stdlib where orjson refuses
    from sqlalchemy import create_engine
    from sqlalchemy import text as sql

    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sql("CREATE TABLE docs (id INTEGER, doc JSONB)"))
    values = [
        {"nested": {"a": [1, 2.5, None, True]}, "text": "Zoë 日本"},
        {1: "an int key"},  # a JSON object's keys are strings
        {"big": 2**70},  # beyond 64 bits: orjson refuses, the stdlib writes it
        [],
    ]
    records = [{"id": i, "doc": v} for i, v in enumerate(values)]
    job = (
        PipelineJob.builder()
        .name("jsonb")
        .source(MemorySource.of(records))
        .sink("jdbc", url=pg_url, table="docs")
        .build()
    )
    run(job)
    with engine.connect() as conn:
        got = [r[0] for r in conn.execute(sql("SELECT doc FROM docs ORDER BY id"))]
    engine.dispose()
    assert got == [values[0], {"1": "an int key"}, {"big": 2**70}, []]
