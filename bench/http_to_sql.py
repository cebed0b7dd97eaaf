"""Benchmark: a local paged API (1,000,000 records, pages of 1,000, each answered after a
simulated network latency) → PostgreSQL, whole processes, same run: the framework is
``pipeline-run run bench/jobs/http_to_sql.yaml`` at its defaults (http source → jdbc sink
with COPY), the baseline ``python bench/http_to_sql.py --child baseline`` (a hand-written
httpx loop: fetch a page, COPY it, fetch the next).

    PIPELINE_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        python bench/http_to_sql.py [--records 1000000] [--latency-ms 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

if TYPE_CHECKING:
    from harness import Contender

sys.path.insert(0, str(Path(__file__).resolve().parent))

ADMIN = os.environ.get(
    "PIPELINE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DB = "pipeline_bench_http"
PAGE = 1000


def libpq(url: str) -> str:
    return url.replace("+psycopg", "")


def db_url() -> str:
    return f"{ADMIN.rpartition('/')[0]}/{DB}"


def serve(records: int, latency: float, port_file: str) -> None:
    """The API (its own process, so it does not share the GIL with the contenders)."""
    pages = [
        json.dumps(
            {
                "data": [
                    {"id": i, "user": f"user-{i % 5000}", "amount": i % 1000, "tags": ["a", "b"]}
                    for i in range(start, min(start + PAGE, records))
                ],
                "total": records,
            }
        ).encode()
        for start in range(0, records, PAGE)
    ]
    empty = json.dumps({"data": [], "total": records}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            page = int(parse_qs(urlparse(self.path).query).get("page", ["1"])[0])
            time.sleep(latency)
            body = pages[page - 1] if 1 <= page <= len(pages) else empty
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(port_file, "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


def setup() -> None:
    import psycopg

    with psycopg.connect(libpq(ADMIN), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    with psycopg.connect(libpq(db_url()), autocommit=True) as conn:
        for t in ("dst_baseline", "dst_framework"):
            conn.execute(f'CREATE TABLE {t} (id INTEGER, "user" TEXT, amount INTEGER, tags JSONB)')


def run_baseline(base: str) -> int:
    import httpx
    import psycopg
    from psycopg.types.json import Jsonb

    written = 0
    with httpx.Client(timeout=30) as client, psycopg.connect(libpq(db_url())) as conn:
        with (
            conn.cursor() as cur,
            cur.copy('COPY dst_baseline (id, "user", amount, tags) FROM STDIN') as copy,
        ):
            page = 1
            while True:
                body = client.get(f"{base}/items", params={"page": page, "per_page": PAGE}).json()
                rows = body["data"]
                if not rows:
                    break
                for r in rows:
                    copy.write_row((r["id"], r["user"], r["amount"], Jsonb(r["tags"])))
                written += len(rows)
                if len(rows) < PAGE:
                    break
                page += 1
        conn.commit()
    return written


def sql(statement: str) -> int:
    import psycopg

    with psycopg.connect(libpq(db_url()), autocommit=True) as conn:
        cur = conn.execute(statement)
        row = cur.fetchone() if cur.description else None
    return int(row[0]) if row else 0


def contenders(base: str, workdir: Path, variants: list[str]) -> list[Contender]:
    from harness import BIN, Contender

    def truncate() -> None:
        sql("TRUNCATE dst_baseline, dst_framework")

    def count(table: str) -> Callable[[], int]:
        return lambda: sql(f"SELECT count(*) FROM {table}")

    job = Path(__file__).parent / "jobs" / "http_to_sql.yaml"
    env = {"PIPELINE_BENCH_DB_URL": db_url(), "PIPELINE_BENCH_API": base}
    out = [
        Contender(
            "baseline",
            [sys.executable, __file__, "--child", "baseline", base],
            truncate,
            count("dst_baseline"),
        ),
        Contender(
            "framework",
            [str(BIN / "pipeline-run"), "run", str(job)],
            truncate,
            count("dst_framework"),
            env=env,
            cwd=workdir,
        ),
    ]
    for (
        v
    ) in variants:  # "name=yaml config block", e.g. "no-page-ckpt={checkpoint_each_page: false}"
        name, _, block = v.partition("=")
        variant = workdir / f"{name}.yaml"
        variant.write_text(job.read_text() + f"config: {block}\n")
        out.append(
            Contender(
                name,
                [str(BIN / "pipeline-run"), "run", str(variant)],
                truncate,
                count("dst_framework"),
                env=env,
                cwd=workdir,
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2)
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--serve", nargs=3)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), float(args.serve[1]), args.serve[2])
        return
    if args.child:
        run_baseline(args.child[1])
        return
    from harness import measure, report

    setup()
    port_file = f"/tmp/pipeline-bench-api-{os.getpid()}"
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            str(args.records),
            str(args.latency_ms / 1000),
            port_file,
        ]
    )
    try:
        for _ in range(200):
            if os.path.exists(port_file) and Path(port_file).read_text():
                break
            time.sleep(0.05)
        base = f"http://127.0.0.1:{Path(port_file).read_text()}"
        with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
            runs = measure(contenders(base, Path(tmp), args.variant), args.repeat)
    finally:
        server.terminate()
        os.unlink(port_file)
    title = f"{args.records:,} records in pages of {PAGE}, {args.latency_ms:g} ms API latency"
    print(report(title, runs, "baseline"))


if __name__ == "__main__":
    main()
