"""A registered job keeps its job file's folder (docs/operations.md, "Relative paths"):
imported by the CLI from one directory and run by a ``serve`` started in another, without
``--jobs``, its data paths and step functions resolve from the job file's folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import orjson

from tests.conftest import BIN, REPO, pipeline_run


def test_an_imported_job_runs_from_its_files_folder_whatever_serves_cwd(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    shutil.copytree(REPO / "examples", jobs, ignore=shutil.ignore_patterns("output"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    db = ["--database", f"sqlite:///{tmp_path / 'meta.db'}"]
    imported = pipeline_run(*db, "jobs", "import", "jobs/quickstart.yaml", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    shown = pipeline_run(*db, "jobs", "show", "quickstart-orders", "--json", cwd=tmp_path)
    assert orjson.loads(shown.stdout)["base_dir"] == str(jobs)
    # the same file imported again from another folder is another version: its
    # relative paths name other files
    moved = tmp_path / "moved"
    shutil.copytree(jobs, moved)
    again = pipeline_run(*db, "jobs", "import", "moved/quickstart.yaml", cwd=tmp_path)
    assert again.returncode == 0 and "updated" in again.stdout + again.stderr, again.stdout
    assert pipeline_run(*db, "jobs", "import", "jobs/quickstart.yaml", cwd=tmp_path).returncode == 0

    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [str(BIN / "pipeline-run"), *db, "serve", "--no-api", "--heartbeat", "300ms"],
        cwd=elsewhere,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            started = pipeline_run(*db, "jobs", "start", "quickstart-orders", cwd=tmp_path)
            if started.returncode == 0:
                break
            assert "no `pipeline-run serve` instance" in started.stderr, started.stderr
            assert serve.poll() is None and time.monotonic() < deadline, (
                tmp_path / "serve.log"
            ).read_text()
            time.sleep(0.3)
        execution = started.stdout.strip()
        while True:
            listed = pipeline_run(*db, "executions", "--json", cwd=tmp_path)
            (row,) = [r for r in orjson.loads(listed.stdout) if r["execution_id"] == execution]
            if row["status"] in ("COMPLETED", "FAILED"):
                break
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.3)
        assert row["status"] == "COMPLETED", row
        assert row["processed_records"] == 4998
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
    written = sorted(p.name for p in (jobs / "output" / "orders").iterdir())
    assert written and all(name.endswith(".jsonl") for name in written)
    assert not (moved / "output").exists()  # the latest version's folder, not the other
    assert not (elsewhere / "output").exists() and not (tmp_path / "output").exists()
