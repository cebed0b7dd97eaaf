"""Benchmark: a 1,000,000-row MariaDB/MySQL table → SQL_TASK with a transform → another
table through the jdbc sink (LOAD DATA LOCAL INFILE), against hand-written PyMySQL loops
doing the same work, in the same run — whole processes, as a user runs them: the
framework is ``pipeline-run run bench/jobs/sql_task.yaml`` at its defaults (the job file
bench/sql_task.py runs on PostgreSQL), the loops ``python bench/mysql_task.py --child …``
calling the same step functions (``bench/jobs/sql_fns.py``).

    PIPELINE_BENCH_MYSQL_URL=mysql+pymysql://root@127.0.0.1:3306/test \\
        python bench/mysql_task.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from harness import Contender

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "jobs"))

ADMIN = os.environ.get("PIPELINE_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
DB = "pipeline_bench"
QUERY = "SELECT id, customer, amount FROM src"
INSERT = "INSERT INTO dst_baseline (id, customer, amount, gross) VALUES (%s, %s, %s, %s)"


def db_url() -> str:
    base, _, _ = ADMIN.rpartition("/")
    return f"{base}/{DB}"


def connect(database: str | None = DB, **kw: Any) -> Any:
    import pymysql

    u = urlsplit(ADMIN)
    return pymysql.connect(
        host=u.hostname or "127.0.0.1",
        port=u.port or 3306,
        user=unquote(u.username or "root"),
        password=unquote(u.password or ""),
        database=database,
        charset="utf8mb4",
        **kw,
    )


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
    from sql_fns import VAT, gross, keep

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


def contenders(workdir: Path) -> list[Contender]:
    from harness import sql_task_contenders

    def count(table: str) -> int:
        conn = connect()
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            (n,) = cur.fetchone()
        conn.close()
        return int(n)

    return sql_task_contenders(__file__, workdir, db_url(), truncate, count)


def truncate() -> None:
    conn = connect(autocommit=True)
    with conn.cursor() as cur:
        cur.execute("TRUNCATE TABLE dst_baseline")
        cur.execute("TRUNCATE TABLE dst_framework")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        run_baseline(dicts=args.child == "baseline-dicts")
        return
    from harness import measure, report

    setup(args.rows)
    version = connect().get_server_info()
    with tempfile.TemporaryDirectory(prefix="bench-mysql-") as tmp:
        runs = measure(contenders(Path(tmp)), args.repeat)
    print(report(f"MariaDB/MySQL {version}, {args.rows:,} rows", runs, "baseline-dicts"))
    conn = connect(database=None, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    conn.close()


if __name__ == "__main__":
    main()
