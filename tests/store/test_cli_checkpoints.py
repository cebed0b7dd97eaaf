"""``pipeline-run checkpoints`` and ``run --resume / --from-savepoint`` on both databases."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import orjson

from pipeline_core.store import MetadataStore
from tests.conftest import BIN, pipeline_run

JOB = """\
name: cp
source: {{type: file, config: {{path: in.jsonl}}}}
transform:
  - {{type: rate_limit, per_second: {rate}}}
sink: {{type: file, config: {{path: out}}}}
config: {{checkpoint_every_records: 1000}}
"""


def setup(tmp_path: Path, db_url: str, rate: int) -> None:
    with open(tmp_path / "in.jsonl", "wb") as f:
        for i in range(20_000):
            f.write(orjson.dumps({"i": i}) + b"\n")
    (tmp_path / "job.yaml").write_text(JOB.format(rate=rate))
    assert pipeline_run("--database", db_url, "db", "upgrade", cwd=tmp_path).returncode == 0


def cli_json(db_url: str, tmp_path: Path, *args: str) -> object:
    proc = pipeline_run("--database", db_url, *args, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return orjson.loads(proc.stdout)


def test_list_and_prune(db_url: str, tmp_path: Path) -> None:
    setup(tmp_path, db_url, rate=10_000_000)
    proc = pipeline_run("--database", db_url, "run", "--no-progress", "job.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = cli_json(db_url, tmp_path, "checkpoints", "list", "cp")
    assert isinstance(rows, list)
    completed = [r for r in rows if r["status"] == "COMPLETED"]
    assert len(completed) == 10  # retention keeps 10 of 20
    assert all(r["storage_size_bytes"] > 0 and r["checkpoint_type"] == "ROLLER" for r in completed)
    assert completed[0]["state_data"]["source_state"]["total_read"] == 20_000
    table = pipeline_run(
        "--database", db_url, "checkpoints", "list", "cp", cwd=tmp_path, env={"COLUMNS": "160"}
    )
    assert "COMPLETED" in table.stdout and " B " in table.stdout
    pruned = pipeline_run(
        "--database", db_url, "checkpoints", "prune", "cp", "--keep", "2", cwd=tmp_path
    )
    assert pruned.returncode == 0 and "deleted 8 checkpoints of cp" in pruned.stdout
    assert len(cli_json(db_url, tmp_path, "checkpoints", "list", "cp")) == 2  # type: ignore[arg-type]


def test_savepoint_of_a_running_job_and_resume_from_it(db_url: str, tmp_path: Path) -> None:
    setup(tmp_path, db_url, rate=2_000)
    env = {**os.environ, "PIPELINE_DATABASE_URL": db_url}
    proc = subprocess.Popen(
        [str(BIN / "pipeline-run"), "run", "--no-progress", "job.yaml"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        execution = None
        for _ in range(200):
            running = cli_json(db_url, tmp_path, "executions", "--status", "RUNNING")
            if running:
                execution = running[0]["execution_id"]  # type: ignore[index]
                break
            time.sleep(0.05)
        assert execution, "the job never got to RUNNING"
        trig = pipeline_run(
            "--database",
            db_url,
            "checkpoints",
            "trigger",
            execution,
            "--savepoint",
            "sp1",
            cwd=tmp_path,
        )
        assert trig.returncode == 0, trig.stderr
        savepoint = None
        for _ in range(200):
            rows = cli_json(db_url, tmp_path, "checkpoints", "list", "cp")
            found = [r for r in rows if r["savepoint_name"] == "sp1" and r["status"] == "COMPLETED"]  # type: ignore[union-attr,index]
            if found:
                savepoint = found[0]
                break
            time.sleep(0.05)
        assert savepoint is not None and savepoint["is_savepoint"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    resumed_at = savepoint["state_data"]["source_state"]["total_read"]
    assert 0 < resumed_at < 20_000

    store = MetadataStore.open(db_url)
    steps = [t.to_status for t in store.executions.transitions(execution)]
    assert "CHECKPOINTING" in steps and steps[:3] == ["SCHEDULED", "INITIALIZING", "RUNNING"]
    store.close()

    # the savepoint survives pruning, and a run can start from it
    pipeline_run("--database", db_url, "checkpoints", "prune", "cp", "--keep", "1", cwd=tmp_path)
    (tmp_path / "job.yaml").write_text(JOB.format(rate=10_000_000))
    run = pipeline_run(
        "--database",
        db_url,
        "run",
        "--no-progress",
        "--from-savepoint",
        "sp1",
        "job.yaml",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert f"'total_read': {resumed_at}" in run.stderr.replace("\n", "")
    (latest,) = cli_json(db_url, tmp_path, "executions", "--status", "COMPLETED")  # type: ignore[misc]
    assert latest["processed_records"] == 20_000 - resumed_at
    resumed_run = latest["execution_id"][:8]
    by_run: dict[bool, list[int]] = {True: [], False: []}
    for p in sorted((tmp_path / "out").iterdir()):
        by_run[resumed_run in p.name] += [orjson.loads(x)["i"] for x in p.read_bytes().splitlines()]
    # the resumed run wrote exactly what came after the savepoint...
    assert by_run[True] == list(range(resumed_at, 20_000))
    # ...and the killed run had committed a gap-free prefix reaching at least the savepoint
    assert by_run[False] == list(range(len(by_run[False]))) and len(by_run[False]) >= resumed_at

    missing = pipeline_run(
        "--database", db_url, "run", "--from-savepoint", "nope", "job.yaml", cwd=tmp_path
    )
    assert missing.returncode == 1 and "has no completed savepoint named 'nope'" in missing.stderr
