"""``pipeline-run serve`` as a real process: schemathesis against its OpenAPI document,
and the dashboard in a real headless Chromium (Debian ``chromium``, driven by playwright)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import free_port
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
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError((tmp_path / "serve.log").read_text())
        time.sleep(0.1)
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
SCHEMATHESIS_TOML = r"""
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


def test_dashboard_starts_a_job_and_shows_it_complete(
    serve: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, _env = serve
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        # the page's CSP allows only its own script and style: nothing of it may be blocked
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.goto(url + "/")
        # the API wants a token: the page says so, and takes one
        expect(page.locator("#message")).to_contain_text("refresh:", timeout=10_000)
        page.fill("#token", "adm")
        page.click("#save-token")
        row = page.locator('tr[data-job="quickstart-orders"]')
        expect(row).to_be_visible(timeout=10_000)
        expect(row).to_contain_text("never run")
        row.locator('button[data-action="start"]').click()
        execution = page.locator("#executions tbody tr").first
        expect(execution).to_contain_text("quickstart-orders", timeout=10_000)
        expect(execution.locator(".status")).to_have_text("COMPLETED", timeout=30_000)
        expect(execution.locator(".records")).to_have_text("4,998")  # + 2 bad lines
        expect(row).to_contain_text("COMPLETED")  # updated without a reload
        execution.click()
        expect(page.locator("#checkpoints tbody tr").first).to_contain_text("COMPLETED")
        assert not [m for m in console if "Content Security Policy" in m], console
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        if os.environ.get("PIPELINE_UPDATE_SCREENSHOT"):
            shutil.copy(tmp_path / "dashboard.png", REPO / "docs" / "dashboard.png")
        browser.close()
