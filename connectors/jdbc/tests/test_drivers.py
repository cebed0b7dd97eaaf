"""A missing or broken database driver, or a connection the server refuses, is one line
naming the URL (password as ***), the driver module and what to do — never a traceback,
never the password.

The drivers are installed on the test machine, so each case runs ``pipeline-run run`` in a
subprocess that first blocks their import (``sys.modules[name] = None``, which makes
``import name`` raise ModuleNotFoundError as if the package were absent), or puts a
package that fails to import ahead of the real one (a broken install).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
from pipeline_core.cli.main import main
sys.exit(main(["run", "--no-progress", "job.yaml"]))
"""

SECRET = "hunter2"

POSTGRES = "pip install 'pipeline-connector-jdbc[postgres]'"
MYSQL = "pip install 'pipeline-connector-jdbc[mysql]'"

CASES = {
    "psycopg": (
        "postgresql+psycopg://bob:{pw}@127.0.0.1:5432/db",
        ["psycopg"],
        f"postgresql+psycopg:// needs the Python module psycopg, which is not installed: "
        f"{POSTGRES}",
    ),
    "bare-postgresql": (
        "postgresql://bob:{pw}@127.0.0.1:5432/db",
        ["psycopg"],
        f"postgresql:// needs the Python module psycopg, which is not installed: {POSTGRES}",
    ),
    # a bare mysql:// uses PyMySQL when MySQLdb is missing; with neither, it says so
    "bare-mysql": (
        "mysql://bob:{pw}@127.0.0.1:3306/test",
        ["MySQLdb", "pymysql"],
        "mysql:// needs the Python module MySQLdb, which is not installed: write the URL as "
        f"mysql+pymysql://… and {MYSQL} (or pip install mysqlclient)",
    ),
    "pymysql": (
        "mysql+pymysql://bob:{pw}@127.0.0.1:3306/test",
        ["pymysql"],
        f"mysql+pymysql:// needs the Python module pymysql, which is not installed: {MYSQL}",
    ),
    "mariadb": (
        "mariadb://bob:{pw}@127.0.0.1:3306/test",
        ["MySQLdb", "pymysql"],
        "mariadb:// needs the Python module MySQLdb, which is not installed: write the URL "
        f"as mariadb+pymysql://… and {MYSQL} (or pip install mysqlclient)",
    ),
    "postgres-scheme": (
        "postgres://bob:{pw}@127.0.0.1:5432/db",
        [],
        "postgres:// is not an SQLAlchemy URL scheme: write postgresql+psycopg://…",
    ),
    "async-driver": (
        "postgresql+asyncpg://bob:{pw}@127.0.0.1:5432/db",
        [],
        "postgresql+asyncpg:// is an asyncio driver; the jdbc connector needs a regular "
        "one: write postgresql+psycopg://…",
    ),
}


def pipeline_run(
    tmp_path: Path, job: str, blocked: list[str], pythonpath: str | None = None
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "job.yaml").write_text(job)
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n')
    env = {**os.environ, "PIPELINE_DATABASE_URL": ""}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", RUN.format(blocked=blocked)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def source_job(url: str) -> str:
    return (
        "name: drivers\n"
        f"source: {{type: jdbc, config: {{url: '{url}', query: 'select 1 as id'}}}}\n"
        "sink: {type: file, config: {path: out}}\n"
    )


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_missing_driver_is_one_line_saying_what_to_install(tmp_path: Path, case: str) -> None:
    url, blocked, expected = CASES[case]
    proc = pipeline_run(tmp_path, source_job(url.format(pw=SECRET)), blocked)
    assert proc.returncode == 1, proc.stderr
    shown = url.format(pw="***")
    assert error_lines(proc) == [
        f"error: job 'drivers', source (jdbc): field 'url': {shown}: {expected}"
    ], proc.stderr


def test_the_sink_says_the_same(tmp_path: Path) -> None:
    job = (
        "name: drivers\n"
        "source: {type: file, config: {path: in.jsonl}}\n"
        "sink: {type: jdbc, config: {url: 'postgresql+psycopg://bob:hunter2@127.0.0.1/db', "
        "table: t}}\n"
    )
    proc = pipeline_run(tmp_path, job, ["psycopg"])
    assert error_lines(proc) == [
        "error: job 'drivers', sink (jdbc): field 'url': "
        "postgresql+psycopg://bob:***@127.0.0.1/db: postgresql+psycopg:// needs the "
        f"Python module psycopg, which is not installed: {POSTGRES}"
    ], proc.stderr


def test_a_driver_that_fails_to_import_names_the_cause(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    (broken / "psycopg").mkdir(parents=True)
    (broken / "psycopg" / "__init__.py").write_text(
        "raise ImportError('no pq wrapper available', name='psycopg')\n"
    )
    url = f"postgresql+psycopg://bob:{SECRET}@127.0.0.1:5432/db"
    proc = pipeline_run(tmp_path, source_job(url), [], pythonpath=str(broken))
    assert error_lines(proc) == [
        "error: job 'drivers', source (jdbc): field 'url': "
        "postgresql+psycopg://bob:***@127.0.0.1:5432/db: postgresql+psycopg:// needs the "
        "Python module psycopg, which failed to import (no pq wrapper available): "
        f"{POSTGRES}"
    ], proc.stderr


@pytest.mark.parametrize("scheme", ["mysql", "mariadb", "mariadb+pymysql"])
def test_a_bare_mysql_url_uses_pymysql_when_mysqlclient_is_missing(
    tmp_path: Path, mysql_url: str, scheme: str
) -> None:
    bare = mysql_url.replace("mysql+pymysql://", f"{scheme}://")
    proc = pipeline_run(tmp_path, source_job(bare), ["MySQLdb"])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out").exists()


CONNECT_CASES = {
    "mysql-password": (
        "mysql+pymysql://root:{pw}@127.0.0.1:3306/test",
        "cannot connect to mysql+pymysql://root:***@127.0.0.1:3306/test (driver pymysql): "
        "(1045, \"Access denied for user 'root'@'127.0.0.1' (using password: YES)\"): "
        "check the user name and password",
    ),
    "mysql-no-server": (
        "mysql+pymysql://root:{pw}@127.0.0.1:1/test",
        "cannot connect to mysql+pymysql://root:***@127.0.0.1:1/test (driver pymysql): "
        "(2003, \"Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection "
        'refused)"): check that the server is running and listening at 127.0.0.1:1',
    ),
    "mysql-no-database": (
        "mysql+pymysql://root@127.0.0.1:3306/no_such_db_{pw}",
        "cannot connect to mysql+pymysql://root@127.0.0.1:3306/no_such_db_{pw} (driver "
        "pymysql): (1049, \"Unknown database 'no_such_db_{pw}'\"): create the database, or "
        "fix its name in the URL",
    ),
    "postgresql-no-server": (
        "postgresql+psycopg://bob:{pw}@127.0.0.1:1/db",
        "cannot connect to postgresql+psycopg://bob:***@127.0.0.1:1/db (driver psycopg): "
        'connection failed: connection to server at "127.0.0.1", port 1 failed: '
        "Connection refused Is the server running on that host and accepting TCP/IP "
        "connections?: check that the server is running and listening at 127.0.0.1:1",
    ),
}


@pytest.mark.parametrize("case", sorted(CONNECT_CASES))
def test_a_failed_connection_is_one_line_with_url_driver_and_fix(tmp_path: Path, case: str) -> None:
    url, expected = CONNECT_CASES[case]
    pw = "nodb" if case == "mysql-no-database" else SECRET
    proc = pipeline_run(tmp_path, source_job(url.format(pw=pw)), [])
    assert proc.returncode == 1, proc.stderr
    assert error_lines(proc) == [
        f"error: job 'drivers', source (jdbc): field 'url': {expected.format(pw=pw)}"
    ], proc.stderr
