"""``pipeline-run new-connector``: the generated distribution installs into a fresh
virtual environment, passes its own conformance tests and runs in a job."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, pipeline_run

pytestmark = pytest.mark.timeout(300)


def test_generated_connector_installs_passes_its_tests_and_runs_in_a_job(
    tmp_path: Path,
) -> None:
    made = pipeline_run("new-connector", "demo_feed", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    root = tmp_path / "pipeline-connector-demo-feed"
    assert (root / "src" / "pipeline_connector_demo_feed" / "plugin.py").exists()
    again = pipeline_run("new-connector", "demo_feed", "--dir", str(tmp_path))
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = pipeline_run("new-connector", "Bad-Name", "--dir", str(tmp_path))
    assert bad.returncode == 2 and "lower-case letters" in bad.stderr

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    install = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "-e", str(REPO), "-e", f"{root}[test]"],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    tests = subprocess.run(
        [str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "8 passed" in tests.stdout
    (tmp_path / "job.yaml").write_text(
        "name: demo\nsource: {type: demo_feed, config: {count: 42}}\n"
        "sink: {type: demo_feed, config: {path: out.jsonl}}\n"
    )
    job = subprocess.run(
        [str(venv / "bin" / "pipeline-run"), "run", "--no-progress", "--no-record", "job.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert job.returncode == 0, job.stderr
    assert len((tmp_path / "out.jsonl").read_bytes().splitlines()) == 42
    listed = subprocess.run(
        [str(venv / "bin" / "pipeline-run"), "connectors"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert "demo_feed" in listed.stdout and "pipeline-connector-demo-feed" in listed.stdout


def test_a_name_whose_distribution_is_installed_is_refused(tmp_path: Path) -> None:
    # `new-connector file` would write another pipeline-connector-file: installing it
    # would replace the real file connector
    proc = pipeline_run("new-connector", "file", "--dir", str(tmp_path))
    assert proc.returncode == 2
    assert "a distribution pipeline-connector-file" in proc.stderr
    assert "already installed; choose another name" in proc.stderr
    assert list(tmp_path.iterdir()) == []
