"""Benchmark: a 1,000,000-row PostgreSQL table → SQL_TASK with a transform → PostgreSQL
table through the COPY sink, against a hand-written psycopg loop (server-side cursor +
COPY) doing the same work, in the same run. Each run is a fresh subprocess (own peak RSS).

    PIPELINE_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        python bench/sql_task.py [--rows 1000000] [--repeat 3]
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

ADMIN = os.environ.get(
    "PIPELINE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DB = "pipeline_bench"
VAT = Decimal("1.2")
QUERY = "SELECT id, customer, amount FROM src"


def libpq(url: str) -> str:
    return url.replace("+psycopg", "")


def db_url() -> str:
    base, _, _ = ADMIN.rpartition("/")
    return f"{base}/{DB}"


def keep(r: dict[str, Any]) -> bool:
    return bool(r["amount"] >= 10)


def gross(r: dict[str, Any]) -> dict[str, Any]:
    r["gross"] = r["amount"] * VAT
    return r


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


def run_baseline_dicts() -> int:
    """The hand-written loop with the job's own transform functions, which take dicts."""
    import psycopg

    written = 0
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
                        written += 1
        dst.commit()
    return written


def run_baseline() -> int:
    """The tightest hand-written loop: tuples, the transform inlined."""
    import psycopg

    written = 0
    with psycopg.connect(libpq(db_url())) as src, psycopg.connect(libpq(db_url())) as dst:
        with src.cursor(name="bench") as cur, dst.cursor() as out:
            cur.itersize = 5000
            cur.execute(QUERY)
            with out.copy("COPY dst_baseline (id, customer, amount, gross) FROM STDIN") as copy:
                for id_, customer, amount in cur:
                    if amount >= 10:
                        copy.write_row((id_, customer, amount, amount * VAT))
                        written += 1
        dst.commit()
    return written


def run_framework() -> int:
    from pipeline_core import PipelineJob
    from pipeline_core.testing import run

    job = (
        PipelineJob.builder()
        .name("bench-sql-task")
        .type("SQL_TASK")
        .source("jdbc", url=db_url(), query=QUERY, fetch_size=5000)
        .transform(lambda s: s.filter(keep).map(gross))
        .sink("jdbc", url=db_url(), table="dst_framework", copy=True)
        .config(source_batch_size=1000, sink_batch_size=1000)
        .build()
    )
    return run(job).records_written


def child(which: str) -> None:
    import resource

    if which == "framework":
        import pipeline_connector_jdbc  # noqa: F401 - imports outside the timed region
        import pipeline_core.testing  # noqa: F401
    t0 = time.perf_counter()
    fn = {"baseline": run_baseline, "baseline-dicts": run_baseline_dicts}.get(which, run_framework)
    written = fn()
    elapsed = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"elapsed": elapsed, "written": written, "rss_mb": rss}))


def truncate() -> None:
    import psycopg

    with psycopg.connect(libpq(db_url()), autocommit=True) as conn:
        conn.execute("TRUNCATE dst_baseline, dst_framework")


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
    print(
        f"{args.rows:,} rows, {written.pop():,} written; "
        f"PostgreSQL at {db_url().rsplit('@', 1)[-1]}"
    )
    for w, rs in runs.items():
        rss = max(r["rss_mb"] for r in rs)
        times = ", ".join(f"{r['elapsed']:.2f}" for r in rs)
        print(
            f"{w:14s} median {med[w]:6.2f} s {args.rows / med[w]:>10,.0f} rows/s  "
            f"peak RSS {rss:6.1f} MB  (runs: {times})"
        )
    for base in ("baseline", "baseline-dicts"):
        print(f"framework time / {base} time = {med['framework'] / med[base]:.3f}")


if __name__ == "__main__":
    main()
