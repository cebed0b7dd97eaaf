"""The connector guide works as written: every code block of docs/writing-a-connector.md
that starts with ``# file: <path>`` is written into a fresh directory, which is then
built and pip-installed as a third-party distribution (into a target directory the
subprocesses put on their path, so the test environment stays as it was); its own tests
run with pytest, and its job file runs with ``pipeline-run``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import REPO, pipeline_run

GUIDE = REPO / "docs" / "writing-a-connector.md"
BLOCK = re.compile(r"^```(\w+)\n# file: (\S+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def guide_files() -> dict[str, str]:
    files = {path: body for _lang, path, body in BLOCK.findall(GUIDE.read_text("utf-8"))}
    assert "pyproject.toml" in files and "src/pipeline_connector_mything/sink.py" in files
    return files


@pytest.fixture(scope="module")
def connector(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(the project directory, the environment that puts the installed package on the path)."""
    root = tmp_path_factory.mktemp("guide")
    project = root / "pipeline-connector-mything"
    for path, body in guide_files().items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(body, "utf-8")
    site = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(project),
        ],
        check=True,
    )
    return project, {"PYTHONPATH": str(site)}


def test_the_guides_files_are_all_there() -> None:
    assert sorted(guide_files()) == [
        "fns.py",
        "job.yaml",
        "pyproject.toml",
        "src/pipeline_connector_mything/__init__.py",
        "src/pipeline_connector_mything/config.py",
        "src/pipeline_connector_mything/plugin.py",
        "src/pipeline_connector_mything/sink.py",
        "src/pipeline_connector_mything/source.py",
        "tests/test_mything.py",
    ]


def test_the_guides_connector_passes_its_own_tests(connector: tuple[Path, dict[str, str]]) -> None:
    project, env = connector
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    passed = re.findall(r"^tests/test_mything.py::(\S+) PASSED", proc.stdout, re.MULTILINE)
    assert "test_a_job_moves_every_record_once" in passed, proc.stdout
    assert sum(p.startswith("TestMySource::") for p in passed) >= 3, proc.stdout
    assert sum(p.startswith("TestMySink::") for p in passed) >= 3, proc.stdout


def test_the_guides_job_file_runs_with_pipeline_run(
    connector: tuple[Path, dict[str, str]],
) -> None:
    project, env = connector
    listing = pipeline_run("connectors", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "pipeline-connector-mything" in listing.stdout and "mything" in listing.stdout
    checked = pipeline_run("validate", str(project / "job.yaml"), env=env, cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    proc = pipeline_run("run", "--no-progress", "job.yaml", env=env, cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    parts = sorted((project / "output").glob("part-*.jsonl"))
    rows = [orjson.loads(x) for p in parts for x in p.read_bytes().splitlines()]
    assert [r["n"] for r in rows] == list(range(0, 10_000, 3))  # 3,334, as the guide says
    assert {r["label"] for r in rows} == {"guide"}
    assert not list((project / "output").glob(".*.staged"))  # everything was published
