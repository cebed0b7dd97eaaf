"""``pipeline-run serve`` as a real process: schemathesis against its OpenAPI document,
and the dashboard in a real headless Chromium (Debian ``chromium``, driven by playwright)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import free_port, wait_serving
from tests.conftest import BIN, REPO

pytestmark = pytest.mark.timeout(420)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """serve --jobs examples/ (the quickstart job among them) with an admin token."""
    port = free_port()
    env = {**os.environ, "PIPELINE_API_ADMIN_TOKENS": "adm", "COLUMNS": "200"}
    # a copy: the quickstart's output and working files must not land in the checkout
    shutil.copytree(
        REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("output")
    )
    proc = subprocess.Popen(
        [
            str(BIN / "pipeline-run"),
            "--database",
            f"sqlite:///{tmp_path / 'meta.db'}",
            "serve",
            "--jobs",
            str(tmp_path / "examples"),
            "--port",
            str(port),
            "--checkpoint-url",
            str(tmp_path / "cp"),
        ],
        cwd=tmp_path,  # the quickstart's paths are relative to the working directory
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "serve.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_serving(url, proc, (tmp_path / "serve.log"))
    try:
        yield url, env
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (tmp_path / "serve.log").read_text()


#: The schema gives a definition's shape and the installed connectors' type names; what a
#: connector accepts in its ``config``, whether a function imports and whether a cron
#: expression's numbers are in range is the server's check (400 invalid_definition with
#: the field named). So for the three routes that take a definition, a schema-valid body
#: may also get a 400; every other check — and this one for every other route — runs as is.
#: The live-update stream never ends: the dashboard test reads it instead.
SCHEMATHESIS_TOML = r"""
[[operations]]
include-path = "/api/events"
enabled = false

[[operations]]
include-path-regex = '^/api/jobs(/\{name\}(/schedule)?)?$'
include-method = ["POST", "PUT"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]
"""


def test_schemathesis_all_checks_pass(serve: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, env = serve
    # one execution, so that the execution routes have something to find
    start = httpx.post(
        f"{url}/api/jobs/quickstart-orders/start", headers={"Authorization": "Bearer adm"}
    )
    assert start.status_code == 202, start.text
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_TOML)
    run = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{url}/api/openapi.json",
            "--header",
            "Authorization: Bearer adm",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--seed",
            "20261128",
        ],
        capture_output=True,
        text=True,
        timeout=360,
        env={**env, "NO_COLOR": "1"},
        cwd=tmp_path,  # schemathesis keeps a cache in .schemathesis/ of its working directory
    )
    assert run.returncode == 0, run.stdout[-6000:]
    summary = run.stdout.split("SUMMARY")[-1]
    assert "passed" in summary and " failed" not in summary and "failures" not in summary


ADMIN = {"Authorization": "Bearer adm"}
#: the screenshots in docs/ are taken here: PIPELINE_UPDATE_SCREENSHOT=1 writes them there
SHOTS = REPO / "docs" / "img"


def _shot(page: Any, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name), full_page=True)
    if os.environ.get("PIPELINE_UPDATE_SCREENSHOT"):
        SHOTS.mkdir(exist_ok=True)
        shutil.copy(tmp_path / name, SHOTS / name)


@contextlib.contextmanager
def _browser(url: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        # the page's CSP allows only its own script and style: nothing of it may be blocked
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.goto(url + "/")
        yield page
        assert not [m for m in console if "Content Security Policy" in m], console
        browser.close()


def _sign_in(page: Any) -> None:
    from playwright.sync_api import expect

    # the API wants a token: the page says so, and takes one
    expect(page.locator("#message")).to_contain_text("Authorization: Bearer", timeout=10_000)
    expect(page.locator("#live")).to_contain_text("offline")
    page.fill("#token", "adm")
    page.click("#save-token")
    expect(page.locator("#live")).to_have_text("live", timeout=10_000)


def _job(name: str, tmp_path: Path, **config: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "BATCH_ROLLER",
        "description": f"dashboard test job {name}",
        "source": {
            "type": "file",
            "config": {"path": str(tmp_path / "examples" / "data" / "orders.jsonl")},
        },
        "transform": config.pop("transform", []),
        "sink": {"type": "file", "config": {"path": str(tmp_path / "out" / name)}},
        "config": {"on_error": "skip", **config},  # orders.jsonl has two broken lines
    }


def test_dashboard_job_list_and_job_page(serve: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    url, _env = serve
    for n in range(30):  # more jobs than one page holds
        r = httpx.post(f"{url}/api/jobs", headers=ADMIN, json=_job(f"bulk-{n:02d}", tmp_path))
        assert r.status_code == 201, r.text
    with _browser(url) as page:
        _sign_in(page)
        total = httpx.get(f"{url}/api/jobs?limit=1", headers=ADMIN).json()["total"]
        assert total > 30
        expect(page.locator("#t-jobs")).to_have_text(str(total))
        expect(page.locator("#jobs tbody tr")).to_have_count(25)
        expect(page.locator(".pager .range").first).to_have_text(f"1–25 of {total}")  # noqa: RUF001
        page.locator('.pager button[data-action="next"]').first.click()
        expect(page.locator(".pager .range").first).to_have_text(f"26–{min(50, total)} of {total}")  # noqa: RUF001
        expect(page.locator('.pager button[data-action="next"]').first).to_be_disabled()
        # search: a part of the name, any case; the field keeps its focus while the list reloads
        page.fill("#job-search", "BULK-1")
        expect(page.locator("#jobs tbody tr")).to_have_count(10)
        expect(page.locator(".pager .range").first).to_have_text("1–10 of 10")  # noqa: RUF001
        expect(page.locator("#job-search")).to_be_focused()
        page.fill("#job-search", "no such job")
        expect(page.locator("#jobs tbody")).to_contain_text("no jobs match")
        page.fill("#job-search", "quickstart")
        row = page.locator('tr[data-job="quickstart-orders"]')
        expect(row).to_contain_text("never run")
        page.select_option("#job-last", "NEVER")
        expect(row).to_be_visible()
        # start from the list: the new execution arrives by a pushed update
        row.locator('button[data-action="start"]').click()
        execution = page.locator("#executions tbody tr").first
        expect(execution).to_contain_text("quickstart-orders", timeout=10_000)
        expect(execution.locator(".status")).to_have_text("COMPLETED", timeout=30_000)
        expect(execution.locator(".records")).to_have_text("4,998")  # + 2 bad lines
        expect(page.locator("#jobs tbody")).to_contain_text("no jobs match")  # not NEVER now
        page.select_option("#job-last", "COMPLETED")
        expect(row).to_contain_text("COMPLETED")
        # disable from the list, filter by it
        page.fill("#job-search", "bulk-07")
        page.select_option("#job-last", "")
        page.locator('tr[data-job="bulk-07"] button[data-action="disable"]').click()
        page.select_option("#job-enabled", "false")
        expect(page.locator("#jobs tbody tr")).to_have_count(1)
        expect(page.locator('tr[data-job="bulk-07"]')).to_contain_text("no")
        page.select_option("#job-enabled", "")
        page.fill("#job-search", "")
        expect(page.locator("#jobs tbody tr")).to_have_count(25)
        expect(page.locator("#t-bad")).to_have_text("2")  # the quickstart's two broken lines
        expect(page.locator("#t-failed")).to_have_text("0 of 1")
        _shot(page, tmp_path, "dashboard-jobs.png")

        # the job page: a second version, a schedule, the definition and its diff
        new = _job("bulk-07", tmp_path, source_batch_size=100)
        new["description"] = "the second version"
        assert httpx.put(f"{url}/api/jobs/bulk-07", headers=ADMIN, json=new).status_code == 200
        r = httpx.put(
            f"{url}/api/jobs/bulk-07/schedule",
            headers=ADMIN,
            json={"type": "CRON", "cron": "0 3 * * *", "timezone": "Europe/Berlin"},
        )
        assert r.status_code == 200, r.text
        page.click('a[href="#/jobs/bulk-07"]')
        expect(page.locator("#job-name")).to_have_text("bulk-07")
        expect(page.locator("#definition")).to_contain_text("description: the second version")
        expect(page.locator("#versions tbody tr")).to_have_count(2)
        expect(page.locator("#job-schedule")).to_contain_text("cron 0 3 * * * Europe/Berlin")
        expect(page.locator("#job-enabled")).to_contain_text("no")
        expect(page.locator("#job-updated")).not_to_contain_text("?")  # no author: none said
        expect(page.locator("#next-runs")).to_contain_text("the job is disabled")
        page.locator('#job button[data-action="enable"]').click()
        expect(page.locator("#job-enabled")).to_contain_text("yes")
        expect(page.locator("#next-runs li")).to_have_count(5)
        expect(page.locator("#next-runs li").first).to_contain_text("02:00:00")  # 3:00 Berlin
        page.locator('tr[data-version="2"] button[data-action="diff"]').click()
        expect(page.locator("#diff .del")).to_contain_text(["- description: dashboard test job"])
        expect(page.locator("#diff span").nth(2)).to_have_class("del")  # removed, then added
        expect(page.locator("#diff .add")).to_contain_text(["+ description: the second version"])
        page.locator('tr[data-version="1"] button[data-action="show"]').click()
        expect(page.locator("#definition")).to_contain_text("description: dashboard test job")
        # start from the job page: it opens the execution; its run history has it
        page.locator('#job button[data-action="start"]').click()
        expect(page.locator("#execution-status")).to_have_text("COMPLETED", timeout=30_000)
        page.click('#execution a[href="#/jobs/bulk-07"]')
        history = page.locator("#history tbody tr").first
        expect(history.locator(".status")).to_have_text("COMPLETED")
        expect(history.locator(".records")).to_have_text("4,998")
        expect(history.locator(".failed")).to_have_text("2")
        page.locator('tr[data-version="2"] button[data-action="diff"]').click()
        expect(page.locator("#diff")).to_be_visible()
        _shot(page, tmp_path, "dashboard-job.png")


def test_dashboard_execution_page_and_its_buttons(
    serve: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url, _env = serve
    slow = _job(
        "slow-orders",
        tmp_path,
        transform=[{"type": "rate_limit", "per_second": 100}],
        source_batch_size=10,
        checkpoint_interval="60s",  # on, but only the buttons' checkpoints come in time
    )
    broken = _job("broken", tmp_path)
    broken["source"]["config"]["path"] = str(tmp_path / "no-such-file.jsonl")
    for job in (slow, broken):
        assert httpx.post(f"{url}/api/jobs", headers=ADMIN, json=job).status_code == 201
    with _browser(url) as page:
        _sign_in(page)
        page.click('a[href="#/jobs/slow-orders"]')
        page.locator('#job button[data-action="start"]').click()
        status = page.locator("#execution-status")
        expect(status).to_have_text("RUNNING", timeout=30_000)
        expect(page.locator("#facts")).to_contain_text(re.compile(r"owner\s*\S+:\d+"))  # host:pid
        expect(page.locator("#attempts tbody tr")).to_have_count(1)
        expect(page.locator("#attempts tbody tr").first).to_contain_text("RUNNING")
        # pushed updates feed the records/s chart
        expect(page.locator("#chart polyline")).not_to_have_attribute(
            "data-points", re.compile(r"^[0-2]$"), timeout=15_000
        )
        # what the server kept while the stream was read: a page opened late shows it too
        eid = page.locator("#execution-id").inner_text()
        kept = httpx.get(f"{url}/api/executions/{eid}/throughput", headers=ADMIN).json()
        assert kept["samples"] and kept["samples"][-1]["records_per_second"] >= 0
        assert httpx.get(f"{url}/api/executions/nope/throughput", headers=ADMIN).status_code == 404
        while len(kept["samples"]) < 5:
            time.sleep(0.5)
            kept = httpx.get(f"{url}/api/executions/{eid}/throughput", headers=ADMIN).json()
        page.reload()
        first = page.locator("#chart-label").inner_text()  # the first render, before any push
        shown = re.search(r"the last (\d+) samples", first)
        assert shown is not None and int(shown.group(1)) >= 5, first

        # pushed updates, not polling (docs/api.md, "Live updates"): over a few updates a
        # page re-reads no list and not the execution's whole document — a count of the
        # requests, over a count of updates; at most one reconnect (which re-reads its view)
        requests: list[str] = []
        page.on("request", lambda req: requests.append(req.url.removeprefix(url)))

        def reads_over_updates(n: int) -> list[str]:
            seen = int(page.locator("#live").get_attribute("data-events") or 0)
            requests.clear()
            page.wait_for_function(
                "n => Number(document.getElementById('live').dataset.events || 0) >= n",
                arg=seen + n,
                timeout=30_000,
            )
            return [u for u in requests if not u.startswith("/api/events")]

        reads = reads_over_updates(6)
        assert reads.count(f"/api/executions/{eid}") <= 1, reads
        page.goto(f"{url}/#/")
        page.select_option("#exec-status", "COMPLETED")  # the running one is not on the page
        expect(page.locator("#executions tbody")).to_contain_text("no executions")
        expect(page.locator("#t-running")).to_have_text("1")
        reads = reads_over_updates(6)
        lists = [u for u in reads if u.startswith(("/api/jobs", "/api/executions"))]
        assert all(lists.count(u) <= 1 for u in lists), lists
        assert "/favicon.ico" not in requests  # the page names its (empty) icon
        page.goto(f"{url}/#/executions/{eid}")
        expect(status).to_have_text("RUNNING")
        page.click('button[data-action="checkpoint"]')
        cp = page.locator("#checkpoints tbody tr[data-checkpoint]")
        expect(cp.first).to_contain_text("COMPLETED", timeout=15_000)
        page.fill("#savepoint-name", "before-upgrade")
        page.click('button[data-action="savepoint"]')
        expect(page.locator("#checkpoints")).to_contain_text("before-upgrade", timeout=15_000)
        saved = page.locator("#checkpoints tbody tr", has_text="before-upgrade")
        expect(saved).to_contain_text("COMPLETED", timeout=15_000)
        expect(saved.locator("td").nth(6)).to_contain_text("B")  # its size
        page.click('button[data-action="pause"]')
        expect(status).to_have_text("RUNNING (paused)", timeout=10_000)
        expect(page.locator("#transitions")).to_contain_text("paused")
        # a run of checkpoints is one row of the timeline, not two per checkpoint
        expect(page.locator("#transitions tr.checkpoints")).to_have_count(1)
        expect(page.locator("#transitions tr.checkpoints")).to_contain_text(
            re.compile(r"[2-9] checkpoints")
        )
        page.click('button[data-action="resume"]')
        expect(status).to_have_text("RUNNING", timeout=10_000)
        expect(page.locator("#transitions")).to_contain_text("resumed")
        _shot(page, tmp_path, "dashboard-execution.png")
        page.click('button[data-action="cancel"]')
        expect(status).to_have_text("CANCELLED", timeout=40_000)
        expect(page.locator('button[data-action="cancel"]')).to_be_disabled()
        expect(page.locator("#transitions tbody tr").last).to_contain_text("CANCELLED")
        expect(page.locator("#bad-records")).to_contain_text("skipped (counted, not kept)")

        # a failed execution: its error, and its traceback for an admin token
        eid = httpx.post(f"{url}/api/jobs/broken/start", headers=ADMIN).json()["execution_id"]
        page.goto(f"{url}/#/executions/{eid}")
        expect(status).to_have_text("FAILED", timeout=30_000)
        expect(page.locator("#error")).to_contain_text("no-such-file.jsonl")
        expect(page.locator("#trace")).to_contain_text("Traceback")
        expect(page.locator("#transitions")).to_contain_text("FAILED")


def test_serve_stops_on_sigterm_while_a_dashboard_listens(
    serve: tuple[str, dict[str, str]],
) -> None:
    """uvicorn's graceful shutdown waits for every open response: a live-update stream
    would keep serve from stopping until it ends (20 s). serve bounds that wait (3 s), so
    the fixture's SIGTERM, sent while this stream is open, ends serve with status 0
    within its 30 s (teardown measured: 21 s before the bound, 3.7 s with it)."""
    url, _env = serve
    opened = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", f"{url}/api/events", headers=ADMIN, timeout=None) as r:
            for line in r.iter_lines():
                if line.startswith("event: hello"):
                    opened.set()

    threading.Thread(target=listen, daemon=True).start()
    assert opened.wait(30), "no hello on /api/events"
