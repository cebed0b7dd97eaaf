"""Unknown names are errors with a "did you mean" (docs/cli.md, "Names"): jobs in every
command that takes one, component types and steps in job files; ``jobs import`` takes
files as well as directories."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from tests.conftest import REPO, pipeline_run


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("names")
    shutil.copytree(REPO / "examples", d / "examples", ignore=shutil.ignore_patterns("output"))
    proc = pipeline_run("jobs", "import", "examples/quickstart.yaml", "--json", cwd=d)
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout)["added"] == ["quickstart-orders"]
    return d


COMMANDS = [
    ("jobs", "show", "{}"),
    ("jobs", "enable", "{}"),
    ("jobs", "disable", "{}"),
    ("jobs", "start", "{}"),
    ("jobs", "schedule", "{}"),
    ("jobs", "export", "{}"),
    ("jobs", "set-config", "{}", "backpressure.strategy", "DROP"),
    ("executions", "--job", "{}"),
    ("executions", "--job", "{}", "--json"),
    ("checkpoints", "list", "{}"),
    ("checkpoints", "prune", "{}"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_unknown_job_is_an_error_naming_the_close_one(
    workdir: Path, command: tuple[str, ...]
) -> None:
    proc = pipeline_run(*(a.format("quickstart-ordrs") for a in command), cwd=workdir)
    assert proc.returncode == 1
    assert proc.stdout == ""  # no empty table, no id
    assert proc.stderr.splitlines() == [
        "error: no job named 'quickstart-ordrs' is registered: did you mean 'quickstart-orders'?"
    ]
    far = pipeline_run(*(a.format("zzz") for a in command), cwd=workdir)
    assert far.returncode == 1
    assert far.stderr.splitlines() == ["error: no job named 'zzz' is registered"]


def test_mistyped_types_and_steps_name_the_close_one(workdir: Path) -> None:
    (workdir / "typos.yaml").write_text(
        "name: typos\n"
        "source: {type: fiel, config: {path: in.jsonl}}\n"
        "transform: [{type: mpa, function: 'fns:f'}, {type: flatmap, function: 'fns:f'}]\n"
        "sink: {type: kafak, config: {}}\n"
    )
    proc = pipeline_run("validate", "--json", "typos.yaml", cwd=workdir)
    assert proc.returncode == 2
    errors = orjson.loads(proc.stdout)["errors"]
    assert any("unknown source type 'fiel': did you mean 'file'? (installed" in e for e in errors)
    assert any("unknown sink type 'kafak': did you mean 'kafka'?" in e for e in errors)
    assert any("unknown step type 'mpa': did you mean 'map'" in e for e in errors)
    assert any("unknown step type 'flatmap': did you mean 'flat_map'" in e for e in errors)


def test_jobs_import_takes_files_and_directories(workdir: Path) -> None:
    (workdir / "more").mkdir()
    (workdir / "more/other.yaml").write_text(
        "name: other\nsource: {type: file, config: {path: in.jsonl}}\n"
        "sink: {type: file, config: {path: out}}\n"
    )
    proc = pipeline_run(
        "jobs", "import", "examples/quickstart.yaml", "more", "missing.yaml", "--json", cwd=workdir
    )
    assert proc.returncode == 2  # one of them failed: a bad job file
    report = orjson.loads(proc.stdout)
    assert report["unchanged"] == ["quickstart-orders"] and report["added"] == ["other"]
    assert list(report["failed"]) == ["missing.yaml"]
    assert "cannot read job file 'missing.yaml'" in report["failed"]["missing.yaml"]
    assert "Traceback" not in proc.stderr


def test_a_missing_version_of_a_known_job_suggests_nothing(workdir: Path) -> None:
    proc = pipeline_run("jobs", "show", "quickstart-orders", "--version", "9", cwd=workdir)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "error: job 'quickstart-orders' has no version 9 (versions 1 to 1)"
    ]
