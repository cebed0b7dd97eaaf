"""An execution's log lines, end to end: a job whose function logs runs in ``serve``'s
worker processes (and in a foreground ``pipeline-run run``); its lines reach the metadata
database through the owner's journal, come back from ``/api/executions/{id}/logs`` and
the live-update stream, and show on the execution page in Debian's Chromium. A resolved
secret never appears in a stored line; a job that logs per record stays within the
bound."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.api.conftest import free_port, wait_serving
from tests.api.test_live_server import _browser, _sign_in
from tests.conftest import BIN, REPO

pytestmark = pytest.mark.timeout(300)

ADMIN = {"Authorization": "Bearer adm"}
SECRET = "s3cr3t-log-value-7731"
#: PIPELINE_EXECUTION_LOG_LINES and _RATE of the serve under test: a second's batch of a
#: job that floods is more than the tail keeps, whatever the machine's speed
KEEP, RATE = 60, 200

FUNCTIONS = """
import logging
import os

log = logging.getLogger("shop.orders")


def note(order):
    # the job's own logging, with a value that is a resolved secret in this process
    log.info("processed order %s (key %s)", order["order_id"], os.environ["LOG_TEST_SECRET"])
    return order


def flood(order):
    for i in range(10):
        log.info("flood %s %d", order["order_id"], i)
    return order
"""


def _job(name: str, data: Path, out: Path, transform: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "type": "BATCH_ROLLER",
        "source": {"type": "file", "config": {"path": str(data)}},
        "transform": transform,
        # the secret is a reference the worker resolves (and so redacts from then on)
        "sink": {
            "type": "file",
            "config": {"path": str(out / name), "prefix": "${env:LOG_TEST_SECRET}"},
        },
        "config": {"on_error": "skip", "source_batch_size": 5},
    }


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("logs")
    (root / "jobs").mkdir()
    (root / "jobs" / "logfns.py").write_text(FUNCTIONS)
    small = root / "small.jsonl"
    small.write_bytes(b"".join(orjson.dumps({"order_id": i}) + b"\n" for i in range(1, 41)))
    note = {"type": "map", "function": "logfns:note"}
    defs = {
        # slow (20 records a second): its lines arrive while the page is open
        "logged": _job(
            "logged", small, root / "out", [{"type": "rate_limit", "per_second": 20}, note]
        ),
        "quick": _job("quick", small, root / "out", [note]),
        # 10 lines per record, 5,000 records
        "flood": _job(
            "flood",
            REPO / "examples" / "data" / "orders.jsonl",
            root / "out",
            [{"type": "map", "function": "logfns:flood"}],
        ),
    }
    for name, d in defs.items():
        (root / "jobs" / f"{name}.json").write_bytes(orjson.dumps(d))
    return root


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "LOG_TEST_SECRET": SECRET, "COLUMNS": "200", **extra}


@pytest.fixture(scope="module")
def serve(jobs: Path) -> Iterator[str]:
    port = free_port()
    env = _env(
        PIPELINE_API_ADMIN_TOKENS="adm",
        PIPELINE_EXECUTION_LOG_LINES=str(KEEP),
        PIPELINE_EXECUTION_LOG_RATE=str(RATE),
    )
    proc = subprocess.Popen(
        [
            str(BIN / "pipeline-run"),
            "--database",
            f"sqlite:///{jobs / 'meta.db'}",
            "serve",
            "--jobs",
            str(jobs / "jobs"),
            "--port",
            str(port),
            "--checkpoint-url",
            str(jobs / "cp"),
        ],
        cwd=jobs,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(jobs / "serve.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_serving(url, proc, (jobs / "serve.log"))
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (jobs / "serve.log").read_text()


def _start(url: str, job: str) -> str:
    r = httpx.post(f"{url}/api/jobs/{job}/start", headers=ADMIN)
    assert r.status_code == 202, r.text
    return str(r.json()["execution_id"])


def _finished(url: str, eid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        doc: dict[str, Any] = httpx.get(f"{url}/api/executions/{eid}", headers=ADMIN).json()
        if doc["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return doc
        assert time.monotonic() < deadline, doc
        time.sleep(0.2)


def _logs(url: str, eid: str, **params: Any) -> dict[str, Any]:
    r = httpx.get(f"{url}/api/executions/{eid}/logs", headers=ADMIN, params=params)
    assert r.status_code == 200, r.text
    assert SECRET not in r.text
    return dict(r.json())


def test_a_workers_lines_come_back_from_the_api_and_the_stream(serve: str) -> None:
    url = serve
    with httpx.stream("GET", f"{url}/api/events", headers=ADMIN, timeout=30) as stream:
        lines = stream.iter_lines()
        for line in lines:  # listening: what happens from here on is told
            if line.startswith("event: hello"):
                break
        eid = _start(url, "quick")
        # the live-update stream says when the execution has new lines
        for line in lines:
            if line.startswith("data: ") and f'"execution_id":"{eid}","last_seq"' in line:
                break
    assert _finished(url, eid)["status"] == "COMPLETED"
    doc = _logs(url, eid)
    mine = [x for x in doc["lines"] if x["logger"] == "shop.orders"]
    assert [x["message"] for x in mine] == [
        f"processed order {i} (key ${{env:LOG_TEST_SECRET}})" for i in range(1, 41)
    ]
    assert {(x["level"], x["attempt"]) for x in mine} == {("INFO", 1)}
    seqs = [x["seq"] for x in doc["lines"]]
    assert seqs == list(range(1, len(seqs) + 1)) and doc["last_seq"] == seqs[-1]
    # the newest few; the ones after a seq; none after the last
    assert [x["seq"] for x in _logs(url, eid, limit=3)["lines"]] == seqs[-3:]
    assert [x["seq"] for x in _logs(url, eid, after=5, limit=2)["lines"]] == [6, 7]
    assert _logs(url, eid, after=doc["last_seq"])["lines"] == []
    # errors in the API's shape
    r = httpx.get(f"{url}/api/executions/nope/logs", headers=ADMIN)
    assert (r.status_code, r.json()["error"]) == (404, "execution_not_found")
    for bad in ({"after": "x"}, {"after": -1}, {"limit": 0}, {"limit": 5001}):
        r = httpx.get(f"{url}/api/executions/{eid}/logs", headers=ADMIN, params=bad)
        assert (r.status_code, r.json()["error"]) == (400, "invalid_query"), bad


def test_a_job_logging_per_record_stays_within_the_bound(serve: str, jobs: Path) -> None:
    eid = _start(serve, "flood")
    assert _finished(serve, eid)["status"] == "COMPLETED"
    doc = _logs(serve, eid, limit=5000)
    # 50,000 log calls: the newest KEEP lines stay, numbered without gaps; far fewer than
    # 50,000 were ever written (RATE a second at most; a line says how many were dropped)
    seqs = [x["seq"] for x in doc["lines"]]
    assert len(seqs) == KEEP
    assert seqs == list(range(doc["last_seq"] - KEEP + 1, doc["last_seq"] + 1))
    assert KEEP < doc["last_seq"] < 50_000
    assert any("earlier log lines not kept" in x["message"] for x in doc["lines"])
    assert any(x["message"] == "flood 5000 9" for x in doc["lines"])  # the very last call
    with sqlite3.connect(jobs / "meta.db") as db:
        (count,) = db.execute(
            "SELECT count(*) FROM pipeline_job_execution_log WHERE execution_id = ?", (eid,)
        ).fetchone()
    assert count == KEEP


def test_the_execution_page_shows_the_tail_live(serve: str) -> None:
    from playwright.sync_api import expect

    url = serve
    with _browser(url) as page:
        _sign_in(page)
        eid = _start(url, "logged")
        page.goto(f"{url}/#/executions/{eid}")
        log = page.locator("#log")
        expect(log).to_contain_text(
            "processed order 1 (key ${env:LOG_TEST_SECRET})", timeout=30_000
        )
        # the page stays; the later lines are pushed to it
        expect(log).to_contain_text("processed order 40 (key", timeout=60_000)
        expect(page.locator("#execution-status")).to_have_text("COMPLETED", timeout=30_000)
        expect(log.locator("span.INFO").first).to_be_visible()
        seqs = [
            int(s) for s in log.locator("span").evaluate_all("els => els.map(e => e.dataset.seq)")
        ]
        assert seqs == sorted(set(seqs))  # each line once, in order
        assert SECRET not in page.content()


def test_a_foreground_run_stores_its_lines(jobs: Path, tmp_path: Path) -> None:
    db = tmp_path / "fg.db"
    run = subprocess.run(
        [
            str(BIN / "pipeline-run"),
            "--database",
            f"sqlite:///{db}",
            "run",
            str(jobs / "jobs" / "quick.json"),
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    # the console keeps its level: the INFO lines went to the database only
    assert "processed order" not in run.stderr and SECRET not in run.stderr
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT seq, level, logger, message FROM pipeline_job_execution_log ORDER BY seq"
        ).fetchall()
    mine = [r[3] for r in rows if r[2] == "shop.orders"]
    assert mine == [f"processed order {i} (key ${{env:LOG_TEST_SECRET}})" for i in range(1, 41)]
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert not [r for r in rows if SECRET in r[3]]
    # and back through the command line, by the 12 characters the listing shows
    with sqlite3.connect(db) as conn:
        (eid,) = conn.execute("SELECT execution_id FROM pipeline_job_execution").fetchone()

    def cli(*args: str) -> str:
        done = subprocess.run(
            [str(BIN / "pipeline-run"), "--database", f"sqlite:///{db}", "executions", *args],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    doc = orjson.loads(cli("logs", eid[:12], "--json"))
    assert doc["execution_id"] == eid and doc["last_seq"] == len(rows)
    assert [x["message"] for x in doc["lines"]] == [r[3] for r in rows]
    text = cli("logs", eid, "--after", str(len(rows) - 2))
    assert text.splitlines() == [
        line
        for line in text.splitlines()
        if line.endswith(rows[-2][3]) or line.endswith(rows[-1][3])
    ]
    assert len(text.splitlines()) == 2 and f" {rows[-1][1]} {rows[-1][2]}: " in text
