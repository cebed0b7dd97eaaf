"""Benchmark: a local paged API (1,000,000 records, pages of 1,000, each answered after a
simulated network latency) → PostgreSQL, the framework (http source with prefetch → jdbc
sink with COPY) against a hand-written httpx loop (sequential fetch + COPY), same run.

    PIPELINE_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        python bench/http_to_sql.py [--records 1000000] [--latency-ms 10] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

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


def run_framework(base: str) -> int:
    from pipeline_core import PipelineJob
    from pipeline_core.testing import run

    job = (
        PipelineJob.builder()
        .name("bench-http")
        .source(
            "http",
            url=f"{base}/items",
            records_path="data",
            prefetch=4,
            pagination={"style": "page", "page_size": PAGE},
        )
        .sink("jdbc", url=db_url(), table="dst_framework")
        .config(source_batch_size=PAGE, sink_batch_size=PAGE)
        .build()
    )
    return run(job).records_written


def child(which: str, base: str) -> None:
    import resource

    if which == "framework":
        import pipeline_connector_http  # noqa: F401 - imports outside the timed region
        import pipeline_connector_jdbc  # noqa: F401
        import pipeline_core.testing  # noqa: F401
    t0 = time.perf_counter()
    written = run_baseline(base) if which == "baseline" else run_framework(base)
    elapsed = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"elapsed": elapsed, "written": written, "rss_mb": rss}))


def measure(which: str, base: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(libpq(db_url()), autocommit=True) as conn:
        conn.execute("TRUNCATE dst_baseline, dst_framework")
    proc = subprocess.run(
        [sys.executable, __file__, "--child", which, base],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", nargs=2)
    parser.add_argument("--serve", nargs=3)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), float(args.serve[1]), args.serve[2])
        return
    if args.child:
        child(*args.child)
        return
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
        runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "framework": []}
        for _ in range(args.repeat):
            for which in runs:
                runs[which].append(measure(which, base))
    finally:
        server.terminate()
        os.unlink(port_file)
    written = {r["written"] for rs in runs.values() for r in rs}
    assert written == {args.records}, runs
    med = {w: statistics.median(r["elapsed"] for r in rs) for w, rs in runs.items()}
    print(f"{args.records:,} records in pages of {PAGE}, {args.latency_ms:g} ms API latency")
    for w, rs in runs.items():
        rss = max(r["rss_mb"] for r in rs)
        times = ", ".join(f"{r['elapsed']:.2f}" for r in rs)
        print(
            f"{w:10s} median {med[w]:6.2f} s {args.records / med[w]:>10,.0f} records/s  "
            f"peak RSS {rss:6.1f} MB  (runs: {times})"
        )
    print(f"framework time / hand-written time = {med['framework'] / med['baseline']:.3f}")


if __name__ == "__main__":
    main()
