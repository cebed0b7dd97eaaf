"""Benchmark: a 1,000,000-row PostgreSQL table → SQL_TASK with a transform → PostgreSQL
table through the COPY sink, against hand-written psycopg loops (server-side cursor +
COPY) doing the same work, in the same run — whole processes, as a user runs them:

- **framework**: ``pipeline-run run bench/jobs/sql_task.yaml`` (recorded, SQLite metadata,
  default settings; the job file names only the source, the two steps and the sink);
- **baseline-dicts**: ``python bench/sql_task.py --child baseline-dicts``, the loop calling
  the job's own step functions (``bench/jobs/sql_fns.py``), which take dict records;
- **baseline**: the tightest loop — tuples, the transform inlined.

    PIPELINE_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        python bench/sql_task.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness import Contender

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "jobs"))

ADMIN = os.environ.get(
    "PIPELINE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DB = "pipeline_bench"
QUERY = "SELECT id, customer, amount FROM src"


def libpq(url: str) -> str:
    return url.replace("+psycopg", "")


def db_url() -> str:
    base, _, _ = ADMIN.rpartition("/")
    return f"{base}/{DB}"


def setup(rows: int) -> None:
    import psycopg

    with psycopg.connect(libpq(ADMIN), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    with psycopg.connect(libpq(db_url()), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE src (id INTEGER PRIMARY KEY, customer TEXT, amount NUMERIC(10, 2))"
        )
        conn.execute(
            "INSERT INTO src SELECT g, 'customer-' || (g %% 1000), (g %% 10000) / 100.0 "
            "FROM generate_series(1, %s) g",
            (rows,),
        )
        for t in ("dst_baseline", "dst_framework"):
            conn.execute(
                f"CREATE TABLE {t} "
                "(id INTEGER, customer TEXT, amount NUMERIC(10, 2), gross NUMERIC(12, 3))"
            )
        conn.execute("ANALYZE src")


def run_baseline_dicts() -> None:
    """The hand-written loop with the job's own transform functions, which take dicts."""
    import psycopg
    from sql_fns import gross, keep

    cols = ("id", "customer", "amount")
    with psycopg.connect(libpq(db_url())) as src, psycopg.connect(libpq(db_url())) as dst:
        with src.cursor(name="bench") as cur, dst.cursor() as out:
            cur.itersize = 5000
            cur.execute(QUERY)
            with out.copy("COPY dst_baseline (id, customer, amount, gross) FROM STDIN") as copy:
                for row in cur:
                    r = dict(zip(cols, row, strict=True))
                    if keep(r):
                        r = gross(r)
                        copy.write_row((r["id"], r["customer"], r["amount"], r["gross"]))
        dst.commit()


def run_baseline() -> None:
    """The tightest hand-written loop: tuples, the transform inlined."""
    import psycopg
    from sql_fns import VAT

    with psycopg.connect(libpq(db_url())) as src, psycopg.connect(libpq(db_url())) as dst:
        with src.cursor(name="bench") as cur, dst.cursor() as out:
            cur.itersize = 5000
            cur.execute(QUERY)
            with out.copy("COPY dst_baseline (id, customer, amount, gross) FROM STDIN") as copy:
                for id_, customer, amount in cur:
                    if amount >= 10:
                        copy.write_row((id_, customer, amount, amount * VAT))
        dst.commit()


def sql(statement: str) -> int:
    import psycopg

    with psycopg.connect(libpq(db_url()), autocommit=True) as conn:
        cur = conn.execute(statement)
        row = cur.fetchone() if cur.description else None
    return int(row[0]) if row else 0


def contenders(workdir: Path) -> list[Contender]:
    from harness import sql_task_contenders

    def truncate() -> None:
        sql("TRUNCATE dst_baseline, dst_framework")

    return sql_task_contenders(
        __file__, workdir, db_url(), truncate, lambda table: sql(f"SELECT count(*) FROM {table}")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        {"baseline": run_baseline, "baseline-dicts": run_baseline_dicts}[args.child]()
        return
    from harness import measure, report

    setup(args.rows)
    with tempfile.TemporaryDirectory(prefix="bench-sql-") as tmp:
        runs = measure(contenders(Path(tmp)), args.repeat)
    print(
        report(
            f"PostgreSQL at {db_url().rsplit('@', 1)[-1]}, {args.rows:,} rows",
            runs,
            "baseline-dicts",
        )
    )


if __name__ == "__main__":
    main()
