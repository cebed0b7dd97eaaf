"""Benchmark: a 1,000,000-row MariaDB/MySQL table → SQL_TASK with a transform → another
table through the jdbc sink at its defaults (LOAD DATA LOCAL INFILE), against
hand-written PyMySQL loops doing the same work, in the same run. Each run is a fresh
subprocess (whole process: its imports are outside the timed region, its peak RSS is
its own).

    PIPELINE_BENCH_MYSQL_URL=mysql+pymysql://root@127.0.0.1:3306/test \\
        python bench/mysql_task.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import make_url

ADMIN = os.environ.get("PIPELINE_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
DB = "pipeline_bench"
VAT = Decimal("1.2")
QUERY = "SELECT id, customer, amount FROM src"
INSERT = "INSERT INTO dst_baseline (id, customer, amount, gross) VALUES (%s, %s, %s, %s)"


def db_url() -> str:
    return make_url(ADMIN).set(database=DB).render_as_string(hide_password=False)


def connect(database: str | None = DB, **kw: Any) -> Any:
    import pymysql

    u = make_url(ADMIN)
    return pymysql.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 3306,
        user=u.username or "root",
        password=u.password or "",
        database=database,
        charset="utf8mb4",
        **kw,
    )


def keep(r: dict[str, Any]) -> bool:
    return bool(r["amount"] >= 10)


def gross(r: dict[str, Any]) -> dict[str, Any]:
    r["gross"] = r["amount"] * VAT
    return r


def setup(rows: int) -> None:
    conn = connect(database=None, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4")
        cur.execute(f"USE {DB}")
        cur.execute(
            "CREATE TABLE src (id INTEGER PRIMARY KEY, customer VARCHAR(40), amount DECIMAL(10, 2))"
        )
        for start in range(1, rows + 1, 50_000):
            chunk = range(start, min(start + 50_000, rows + 1))
            cur.executemany(
                "INSERT INTO src VALUES (%s, %s, %s)",
                [(g, f"customer-{g % 1000}", Decimal(g % 10000) / 100) for g in chunk],
            )
        for t in ("dst_baseline", "dst_framework"):
            cur.execute(
                f"CREATE TABLE {t} (id INTEGER, customer VARCHAR(40), amount DECIMAL(10, 2), "
                "gross DECIMAL(12, 3))"
            )
        cur.execute("ANALYZE TABLE src")
        cur.fetchall()
    conn.close()


def run_baseline(dicts: bool) -> int:
    """SSCursor (unbuffered) + executemany batches of 1,000 (PyMySQL sends each as one
    multi-row INSERT), one transaction; ``dicts``: calling the job's own dict functions."""
    import pymysql.cursors

    src, dst = connect(), connect()
    written = 0
    cols = ("id", "customer", "amount")
    with src.cursor(pymysql.cursors.SSCursor) as cur, dst.cursor() as out:
        cur.execute(QUERY)
        while True:
            rows = cur.fetchmany(1000)
            if not rows:
                break
            if dicts:
                batch = []
                for row in rows:
                    r = dict(zip(cols, row, strict=True))
                    if keep(r):
                        r = gross(r)
                        batch.append((r["id"], r["customer"], r["amount"], r["gross"]))
            else:
                batch = [(i, c, a, a * VAT) for i, c, a in rows if a >= 10]
            out.executemany(INSERT, batch)
            written += len(batch)
    dst.commit()
    src.close()
    dst.close()
    return written


def run_framework() -> int:
    from pipeline_core import PipelineJob
    from pipeline_core.testing import run

    job = (
        PipelineJob.builder()
        .name("bench-mysql-task")
        .type("SQL_TASK")
        .source("jdbc", url=db_url(), query=QUERY)
        .transform(lambda s: s.filter(keep).map(gross))
        .sink("jdbc", url=db_url(), table="dst_framework")
        .build()
    )
    return run(job).records_written


def child(which: str) -> None:
    import resource

    import pymysql  # noqa: F401 - imports outside the timed region

    if which == "framework":
        import pipeline_connector_jdbc  # noqa: F401
        import pipeline_core.testing  # noqa: F401
    t0 = time.perf_counter()
    if which == "framework":
        written = run_framework()
    else:
        written = run_baseline(dicts=which == "baseline-dicts")
    elapsed = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"elapsed": elapsed, "written": written, "rss_mb": rss}))


def truncate() -> None:
    conn = connect(autocommit=True)
    with conn.cursor() as cur:
        cur.execute("TRUNCATE TABLE dst_baseline")
        cur.execute("TRUNCATE TABLE dst_framework")
    conn.close()


def measure(which: str) -> dict[str, float]:
    truncate()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", which], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    setup(args.rows)
    runs: dict[str, list[dict[str, float]]] = {
        "baseline": [],
        "baseline-dicts": [],
        "framework": [],
    }
    for _ in range(args.repeat):
        for which in runs:
            runs[which].append(measure(which))
    written = {r["written"] for rs in runs.values() for r in rs}
    assert len(written) == 1, runs
    med = {w: statistics.median(r["elapsed"] for r in rs) for w, rs in runs.items()}
    version = connect().get_server_info()
    print(f"{args.rows:,} rows, {written.pop():,} written; server {version}")
    for w, rs in runs.items():
        rss = max(r["rss_mb"] for r in rs)
        times = ", ".join(f"{r['elapsed']:.2f}" for r in rs)
        print(
            f"{w:14s} median {med[w]:6.2f} s {args.rows / med[w]:>10,.0f} rows/s  "
            f"peak RSS {rss:6.1f} MB  (runs: {times})"
        )
    for base in ("baseline", "baseline-dicts"):
        print(f"framework time / {base} time = {med['framework'] / med[base]:.3f}")
    conn = connect(database=None, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    conn.close()


if __name__ == "__main__":
    main()
