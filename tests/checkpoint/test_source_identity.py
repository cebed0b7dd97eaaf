"""A checkpoint is restored only into the source it was taken from (docs/checkpoints.md,
"Which source a checkpoint belongs to"): ``run --resume`` after the job's input moved is
refused with an error naming the change and runs nothing; the same source resumes and
says what it restores and from where."""

from __future__ import annotations

from pathlib import Path

from pipeline_core import url_identity
from pipeline_core.checkpoint.identity import differences
from tests.conftest import pipeline_run

JOB = """
name: moved
source: {type: file, config: {path: %s}}
transform: [{type: map, function: "fns:check"}]
sink: {type: file, config: {path: out/}}
"""

FNS = """
def check(record):
    if record.get("stop"):
        raise ValueError("a bad record")
    return record
"""


def two_inputs(tmp_path: Path) -> None:
    """Inputs in-a and in-b, alike: a file that checkpoints, then one with a bad record."""
    for d in ("in-a", "in-b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "1.jsonl").write_text("".join(f'{{"i": {i}}}\n' for i in range(5)))
        (tmp_path / d / "2.jsonl").write_text('{"i": 5}\n{"stop": true}\n')
    (tmp_path / "fns.py").write_text(FNS)


def test_resume_into_another_source_is_refused(tmp_path: Path) -> None:
    two_inputs(tmp_path)
    job = tmp_path / "job.yaml"
    job.write_text(JOB % "in-a")
    first = pipeline_run("run", "--no-progress", str(job), cwd=tmp_path)
    assert first.returncode == 1, first.stderr  # file 1 checkpointed, then the bad record

    job.write_text(JOB % "in-b")
    refused = pipeline_run("run", "--no-progress", "--resume", str(job), cwd=tmp_path)
    assert refused.returncode == 1, refused.stderr
    # relative paths resolve from the job file's folder: the identity holds them resolved
    a, b = tmp_path / "in-a", tmp_path / "in-b"
    said = " ".join(refused.stderr.split())  # however the terminal width wrapped it
    assert f"path was ['{a}'], now ['{b}']" in said, refused.stderr
    assert "start fresh" in refused.stderr, refused.stderr
    assert "running moved" not in refused.stderr  # refused before anything ran

    job.write_text(JOB % "in-a")
    again = pipeline_run("run", "--no-progress", "--resume", str(job), cwd=tmp_path)
    assert again.returncode == 1, again.stderr  # the bad record is still there
    line = next(ln for ln in again.stderr.splitlines() if ln.startswith("resuming from"))
    assert "at checkpoint 1 (" in line and "chk-000001" in line, line
    assert "1.jsonl" in line, line  # the position it continues at


def test_differences_name_each_changed_key() -> None:
    assert differences({"a": 1, "b": [1]}, {"a": 1, "b": [2], "c": "x"}) == [
        "b was [1], now [2]",
        "c was None, now 'x'",
    ]
    assert differences({"a": 1}, {"a": 1}) == []


def test_url_identity_drops_credentials_and_query() -> None:
    assert url_identity("postgresql+psycopg://u:secret@db:5432/x?sslmode=require") == (
        "postgresql+psycopg://db:5432/x"
    )
    assert (
        url_identity("https://api.example/v1/items?api_key=k#f") == "https://api.example/v1/items"
    )
    assert "secret" not in url_identity("amqp://guest:secret@[::1]:5672/%2F")


def test_a_source_named_by_a_reference_that_now_resolves_elsewhere_is_refused(
    tmp_path: Path,
) -> None:
    """The identity keeps a reference's value only as a fingerprint: the value is not
    stored, and the same reference resolving to another input is a change."""
    two_inputs(tmp_path)
    job = tmp_path / "job.yaml"
    job.write_text(JOB % "'${env:MOVED_INPUT}'")
    a, b = str(tmp_path / "in-a"), str(tmp_path / "in-b")
    first = pipeline_run("run", "--no-progress", str(job), cwd=tmp_path, env={"MOVED_INPUT": a})
    assert first.returncode == 1, first.stderr  # file 1 checkpointed, then the bad record

    refused = pipeline_run(
        "run", "--no-progress", "--resume", str(job), cwd=tmp_path, env={"MOVED_INPUT": b}
    )
    assert refused.returncode == 1, refused.stderr
    said = " ".join(refused.stderr.split())
    assert "path was ['${env:MOVED_INPUT} [sha256:" in said, refused.stderr
    assert "running moved" not in refused.stderr
    assert a not in said and b not in said  # neither value is shown

    again = pipeline_run(
        "run", "--no-progress", "--resume", str(job), cwd=tmp_path, env={"MOVED_INPUT": a}
    )
    assert again.returncode == 1, again.stderr  # resumed: the bad record is still there
    assert any(ln.startswith("resuming from") for ln in again.stderr.splitlines()), again.stderr
