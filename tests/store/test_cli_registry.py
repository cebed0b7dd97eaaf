"""``pipeline-run db | jobs | executions | run`` against SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson

from pipeline_core.store.migrate import head_revision
from tests.conftest import REPO, pipeline_run


def cli(db_url: str, *args: str, cwd: Path) -> tuple[int, str, str]:
    proc = pipeline_run("--database", db_url, *args, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


def test_upgrade_import_list_run_executions(db_url: str, tmp_path: Path) -> None:
    shutil.copytree(
        REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("output")
    )

    code, _out, err = cli(db_url, "jobs", "list", cwd=tmp_path)
    server = not db_url.startswith("sqlite")
    if server:  # a server database is never created implicitly
        assert code == 1 and "has no schema yet: run `pipeline-run db upgrade`" in err
    else:  # a new SQLite file is created at the current schema on first use
        assert code == 0, err

    code, out, err = cli(db_url, "db", "upgrade", cwd=tmp_path)
    assert code == 0, err
    expected = f"upgraded from nothing to {head_revision()}" if server else "up to date"
    assert expected in out.replace("\n", " ")
    code, out, _ = cli(db_url, "db", "current", cwd=tmp_path)
    assert code == 0 and "up to date" in out

    code, out, err = cli(db_url, "jobs", "import", "examples/", cwd=tmp_path)
    assert code == 0, err
    names = "api-to-sqlite, customer-totals, kafka-wordcount, orders-to-postgres, quickstart-orders"
    assert f"added: {names}" in out
    code, out, _ = cli(db_url, "jobs", "import", "examples/", cwd=tmp_path)
    assert f"unchanged: {names}" in out

    code, out, _ = cli(db_url, "jobs", "list", "--json", cwd=tmp_path)
    jobs = orjson.loads(out)
    assert [(j["job_name"], j["version"], j["enabled"]) for j in jobs] == [
        ("api-to-sqlite", 1, True),
        ("customer-totals", 1, True),
        ("kafka-wordcount", 1, True),
        ("orders-to-postgres", 1, True),
        ("quickstart-orders", 1, True),
        ("rabbitmq-router", 1, True),
    ]
    code, out, _ = cli(db_url, "jobs", "list", cwd=tmp_path)
    assert "quickstart-orders" in out and "BATCH_ROLLER" in out

    code, out, err = cli(db_url, "run", "--no-progress", "examples/quickstart.yaml", cwd=tmp_path)
    assert code == 0, err
    code, out, _ = cli(db_url, "executions", "--job", "quickstart-orders", "--json", cwd=tmp_path)
    (ex,) = orjson.loads(out)
    assert (ex["status"], ex["job_version"], ex["processed_records"], ex["failed_records"]) == (
        "COMPLETED",
        1,
        4998,
        2,
    )
    assert ex["triggered_by"] == "MANUAL" and ex["duration_ms"] is not None

    code, out, _ = cli(db_url, "executions", "--status", "FAILED", "--json", cwd=tmp_path)
    assert orjson.loads(out) == []


def test_versions_enable_disable_export_and_config(db_url: str, tmp_path: Path) -> None:
    assert cli(db_url, "db", "upgrade", cwd=tmp_path)[0] == 0
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: j\nsource: {type: file, config: {path: in.jsonl}}\nsink: {type: file, config: {path: out}}\n"
    )
    assert (
        cli(db_url, "jobs", "register", str(job), "--user", "alice", cwd=tmp_path)[1].strip()
        == "registered j (version 1)"
    )
    code, _out, err = cli(db_url, "jobs", "register", str(job), cwd=tmp_path)
    assert code == 1 and "error: a job named 'j' is already registered" in err
    job.write_text(job.read_text() + "description: second\n")
    assert (
        cli(db_url, "jobs", "update", str(job), cwd=tmp_path)[1].strip()
        == "updated j (now version 2)"
    )

    code, out, _ = cli(db_url, "jobs", "show", "j", "--version", "1", "--json", cwd=tmp_path)
    v1 = orjson.loads(out)
    assert (v1["version"], v1["latest_version"], v1["description"], v1["created_by"]) == (
        1,
        2,
        None,
        "alice",
    )

    assert cli(db_url, "jobs", "disable", "j", cwd=tmp_path)[0] == 0
    assert (
        orjson.loads(cli(db_url, "jobs", "show", "j", "--json", cwd=tmp_path)[1])["enabled"]
        is False
    )
    assert cli(db_url, "jobs", "enable", "j", cwd=tmp_path)[0] == 0

    code, out, err = cli(db_url, "jobs", "set-config", "j", "source.batch.size", "64", cwd=tmp_path)
    assert code == 0, err
    code, _out, err = cli(
        db_url, "jobs", "set-config", "j", "backpressure.strategy", "FAST", cwd=tmp_path
    )
    assert (
        code == 2
        and "field 'backpressure': expected one of BUFFER, DROP, LATEST, ERROR, got 'FAST'" in err
    )
    shown = orjson.loads(cli(db_url, "jobs", "show", "j", "--json", cwd=tmp_path)[1])
    assert shown["config"] == {"source.batch.size": 64}

    code, out, _ = cli(db_url, "jobs", "export", "j", "--version", "2", cwd=tmp_path)
    assert out.startswith("name: j\ntype: BATCH_ROLLER\ndescription: second\n")
    code, _out, err = cli(db_url, "jobs", "show", "nope", cwd=tmp_path)
    assert code == 1 and err.strip() == "error: no job named 'nope' is registered"
