"""Benchmark: the API's list routes with many jobs, as the dashboard meets them.

Registers ``--jobs`` jobs (default 500; every tenth with a cron schedule, each with
``--runs`` finished executions) in a fresh metadata database, serves the API with uvicorn
on loopback (the service is not started: nothing runs, only reads are measured) and
times, sequentially and then with ``--readers`` concurrent clients:

- ``GET /api/jobs?limit=500`` (every job in one page; before paging: ``GET /api/jobs``),
- ``GET /api/jobs`` (the first page, what the dashboard asks for),
- ``GET /api/executions?limit=100``.

    python bench/api_list.py [--jobs 500] [--runs 3] [--database URL | --sqlite FILE]

Without ``--database`` the database is SQLite in a temporary directory; with a
PostgreSQL URL the tables must be empty (``pipeline-run db upgrade`` first).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import socket
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy.orm import Session

from pipeline_core.api import Tokens, create_app
from pipeline_core.plugins.manager import load_plugins
from pipeline_core.runtime.result import ExecutionStatus
from pipeline_core.service import PipelineService
from pipeline_core.store import MetadataStore
from pipeline_core.store import models as m


def job(n: int) -> dict[str, object]:
    d: dict[str, object] = {
        "name": f"job-{n:04d}",
        "type": "BATCH_ROLLER",
        "description": f"benchmark job {n}",
        "source": {"type": "file", "config": {"path": f"in/{n}.jsonl"}},
        "sink": {"type": "file", "config": {"path": f"out/{n}"}},
    }
    if n % 10 == 0:
        d["schedule"] = {"type": "CRON", "cron": "0 3 * * *", "timezone": "Europe/Berlin"}
    return d


def fill(store: MetadataStore, jobs: int, runs: int) -> None:
    t0 = time.perf_counter()
    for n in range(jobs):
        store.registry.register(job(n), created_by="bench")
        for r in range(runs):
            eid = f"e-{n:04d}-{r}"
            store.executions.create(f"job-{n:04d}", eid, owner_instance="bench")
            for status in (ExecutionStatus.INITIALIZING, ExecutionStatus.RUNNING):
                store.executions.transition(eid, status)
            store.executions.transition(
                eid,
                ExecutionStatus.COMPLETED if r % 3 else ExecutionStatus.FAILED,
                processed_records=1000 * r,
                failed_records=r,
            )
    with Session(store.engine) as session:
        count = session.query(m.Execution).count()
    print(f"filled {jobs} jobs, {count} executions in {time.perf_counter() - t0:.1f} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(url: str, paths: list[str], rounds: int, readers: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=600) as c:
        for path in paths:
            r = await c.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text[:200])
            size = len(r.content)
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                r = await c.get(path)
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200
            seq = statistics.median(times) * 1000

            async def reader(c: httpx.AsyncClient = c, path: str = path) -> list[float]:
                out = []
                for _ in range(max(3, rounds // 5)):
                    t0 = time.perf_counter()
                    r = await c.get(path)
                    out.append(time.perf_counter() - t0)
                    assert r.status_code == 200
                return out

            results = await asyncio.gather(*(reader() for _ in range(readers)))
            conc = sorted(t for ts in results for t in ts)
            p50 = conc[len(conc) // 2] * 1000
            p95 = conc[int(len(conc) * 0.95)] * 1000
            print(
                f"{path:32s} {size / 1024:8.1f} KiB  sequential p50 {seq:7.1f} ms  "
                f"{readers} readers p50 {p50:7.1f} ms p95 {p95:7.1f} ms"
            )


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--readers", type=int, default=20)
    ap.add_argument("--database")
    ap.add_argument("--sqlite", type=Path, help="an SQLite file: filled once, then reused")
    ap.add_argument(
        "--path",
        action="append",
        help="the routes to time (default: the three in the docstring)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{args.sqlite or Path(tmp) / 'meta.db'}"
        reuse = args.sqlite is not None and args.sqlite.exists()
        store = MetadataStore.open(url)
        if not reuse:
            fill(store, args.jobs, args.runs)
        service = PipelineService(
            store, load_plugins(), instance="bench", lease=dt.timedelta(seconds=15)
        )
        app = create_app(service, tokens=Tokens(no_auth=True), metrics=service.metrics)
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn has no started event
            await asyncio.sleep(0.05)
        try:
            paths = args.path or [
                "/api/jobs?limit=500",
                "/api/jobs",
                "/api/executions?limit=100",
            ]
            await measure(f"http://127.0.0.1:{port}", paths, args.rounds, args.readers)
        finally:
            server.should_exit = True
            await task
            store.close()


if __name__ == "__main__":
    asyncio.run(main())
