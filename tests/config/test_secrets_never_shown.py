"""A secret given to every kind of field never shows resolved: not in an API response, a
log line of ``serve`` or of its worker processes, a row of the metadata database (every
table), a checkpoint file, or the output of ``pipeline-run`` — only its reference does.

Real components: ``pipeline-run serve`` and ``pipeline-run run`` as processes, the file,
JDBC (SQLite) and HTTP connectors, the RabbitMQ trigger; both metadata databases."""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import MetaData, select

from conftest import migrate_to_head
from pipeline_core.store.engine import make_engine
from tests.api.conftest import free_port, wait_serving
from tests.conftest import BIN, pipeline_run

pytestmark = pytest.mark.timeout(180)

ADMIN = f"adm-{uuid.uuid4().hex}"
READ = f"read-{uuid.uuid4().hex}"


def database_text(url: str) -> str:
    """Every row of every table of the metadata database, as text."""
    engine = make_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return "\n".join(
                f"{table.name}: {list(row)}"
                for table in meta.sorted_tables
                for row in conn.execute(select(table))
            )
    finally:
        engine.dispose()


def files_text(root: Path) -> str:
    return "\n".join(
        f"{p}: {p.read_bytes().decode('utf-8', 'replace')}" for p in root.rglob("*") if p.is_file()
    )


# --- the forms a secret takes on its way out ---------------------------------------------


def leaked_forms(value: str) -> dict[str, str]:
    """What would betray ``value``: itself, its URL-escaped and base64 forms, and a cut-off
    start of each (a message shortened before it was redacted)."""
    forms = {
        "value": value,
        "quote": urllib.parse.quote(value),
        "quote safe=''": urllib.parse.quote(value, safe=""),
        "quote_plus": urllib.parse.quote_plus(value),
        "path-escaped": urllib.parse.quote(value, safe="!$&'()*+,;=:@/"),
        "base64": base64.b64encode(value.encode()).decode(),
    }
    forms |= {f"first 10 of {k}": f[:10] for k, f in list(forms.items())}
    return forms


def assert_never_shown(values: dict[str, str], text: str, where: str) -> None:
    for name, value in values.items():
        for form, shown in leaked_forms(value).items():
            assert shown not in text, f"{name} ({form}: {shown!r}) shows in {where}"


class _Echo(BaseHTTPRequestHandler):
    """``/e400?pad=N``: 400, the body N characters of padding and the request's
    Authorization header (a server echoing the request); anything else: 404."""

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/e400":
            pad = int(urllib.parse.parse_qs(query).get("pad", ["0"])[0])
            body = ("p" * pad + f"Authorization: {self.headers.get('Authorization')}\n").encode()
            self.send_response(400)
        else:
            body = b"not here"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Secrets:
    """The secrets of one test and where they are: an env variable, a secret file."""

    def __init__(self, tmp: Path) -> None:
        self.value = f"s3cr3t-{uuid.uuid4().hex}"
        self.file_value = f"f1le-{uuid.uuid4().hex}"
        self.dirs = tmp / "secrets"
        self.dirs.mkdir()
        (self.dirs / "db_password").write_text(self.file_value + "\n")
        self.data = tmp / f"data-{self.value}"  # a path that holds the secret
        self.data.mkdir()
        (self.data / "a.jsonl").write_text("".join(f'{{"i": {i}}}\n' for i in range(5)))
        self.out = tmp / f"out-{self.value}"
        self.env = {
            **os.environ,
            "SECRET_X": self.value,
            "SECRET_DIR": str(self.data),
            "SECRET_OUT": str(self.out),
            "PIPELINE_SECRET_DIRS": str(self.dirs),
            "PIPELINE_API_ADMIN_TOKENS": ADMIN,
            "PIPELINE_API_READ_TOKENS": READ,
            "COLUMNS": "200",
        }

    @property
    def all(self) -> tuple[str, ...]:
        return (self.value, self.file_value, ADMIN, READ)

    def assert_absent(self, text: str, where: str) -> None:
        for value in self.all:
            assert value not in text, f"a secret value shows in {where}"
        basic = base64.b64encode(f"u:{self.value}".encode()).decode()
        assert_never_shown(
            {"SECRET_X": self.value, "file secret": self.file_value, "basic": basic}, text, where
        )


def jobs(tmp: Path, s: Secrets, echo: str = "http://127.0.0.1:1") -> dict[str, dict[str, Any]]:
    """Job definitions, each with secrets in another kind of field; all but 'ok' fail.
    ``echo``: a server answering 400 with the request's Authorization header."""
    (tmp / "in.jsonl").write_text('{"i": 1}\n{"i": 2}\n')
    table_db = tmp / "table.db"
    with sqlite3.connect(table_db) as db:
        db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        db.execute("INSERT OR REPLACE INTO t VALUES (1, 'x')")
    source = {"type": "file", "config": {"path": str(tmp / "in.jsonl")}}
    sink = {"type": "file", "config": {"path": str(tmp / "out")}}
    return {
        # an int field: type-checked only where it is resolved, then named
        "int-field": {
            "name": "int-field",
            "source": source,
            "sink": {
                "type": "file",
                "config": {"path": str(tmp / "o1"), "max_records_per_file": "${env:SECRET_X}"},
            },
        },
        # the service's own credentials asked for in an int field: no oracle either
        "token-oracle": {
            "name": "token-oracle",
            "source": source,
            "sink": {
                "type": "file",
                "config": {
                    "path": str(tmp / "o2"),
                    "max_records_per_file": "${env:PIPELINE_API_ADMIN_TOKENS}",
                },
            },
        },
        # a connector error that holds the resolved value (a path)
        "source-path": {
            "name": "source-path",
            "source": {"type": "file", "config": {"path": f"{tmp}/in-${{env:SECRET_X}}.jsonl"}},
            "sink": sink,
        },
        "sink-path": {
            "name": "sink-path",
            "source": source,
            "sink": {"type": "file", "config": {"path": "/proc/none/${env:SECRET_X}/out"}},
        },
        "dead-letter": {
            "name": "dead-letter",
            "source": source,
            "sink": sink,
            "config": {
                "on_error": "dead_letter",
                "dead_letter": {"type": "file", "config": {"path": "/proc/none/${env:SECRET_X}"}},
            },
        },
        # a list field: the database's error quotes the column
        "jdbc-columns": {
            "name": "jdbc-columns",
            "source": {
                "type": "jdbc",
                "config": {
                    "url": f"sqlite:///{table_db}",
                    "table": "t",
                    "key": "id",
                    "columns": ["v", "${env:SECRET_X}"],
                },
            },
            "sink": sink,
        },
        # a password from a secret file inside a URL that cannot connect
        "jdbc-password": {
            "name": "jdbc-password",
            "source": {
                "type": "jdbc",
                "config": {
                    "url": f"postgresql+psycopg://app:${{file:{s.dirs}/db_password}}"
                    "@127.0.0.1:1/app",
                    "table": "t",
                    "key": "id",
                },
            },
            "sink": sink,
        },
        # nested dicts: a query parameter and a bearer token to a server that is not there
        "http-nested": {
            "name": "http-nested",
            "source": {
                "type": "http",
                "config": {
                    "url": "http://127.0.0.1:1/items?key=${env:SECRET_X}",
                    "auth": {"type": "bearer", "token": "${env:SECRET_X}"},
                    "retry": {"max_retries": 0},
                },
            },
            "sink": sink,
        },
        # the server echoes the credentials: a bearer token cut 12 characters in by the
        # 200-character limit on a quoted body, and a basic-auth header (base64)
        "http-cut-token": {
            "name": "http-cut-token",
            "source": {
                "type": "http",
                "config": {
                    "url": f"{echo}/e400?pad={200 - len('Authorization: Bearer ') - 12}",
                    "headers": {"X-Extra": "1"},
                    "auth": {"type": "bearer", "token": f"${{file:{s.dirs}/db_password}}"},
                    "retry": {"max_retries": 0},
                },
            },
            "sink": sink,
        },
        "http-basic": {
            "name": "http-basic",
            "source": {
                "type": "http",
                "config": {
                    "url": f"{echo}/e400",
                    "auth": {"type": "basic", "username": "u", "password": "${env:SECRET_X}"},
                    "retry": {"max_retries": 0},
                },
            },
            "sink": sink,
        },
        # completes: its checkpoints' positions and sink state hold the secret
        "ok": {
            "name": "ok",
            "source": {"type": "file", "config": {"path": "${env:SECRET_DIR}"}},
            "sink": {"type": "file", "config": {"path": "${env:SECRET_OUT}"}},
        },
    }


@pytest.fixture
def serve(db_url: str, tmp_path: Path) -> Iterator[tuple[str, Secrets, Path]]:
    secrets = Secrets(tmp_path)
    migrate_to_head(db_url)
    port = free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [
            str(BIN / "pipeline-run"),
            "-v",
            "--database",
            db_url,
            "serve",
            "--port",
            str(port),
            "--checkpoint-url",
            str(tmp_path / "cp"),
        ],
        cwd=tmp_path,
        env=secrets.env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_serving(url, proc, log)
    try:
        yield url, secrets, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def _wait_final(api: httpx.Client, eids: dict[str, str]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + 60
    while True:
        docs = {name: api.get(f"/api/executions/{eid}").json() for name, eid in eids.items()}
        if all(d["status"] in ("COMPLETED", "FAILED", "CANCELLED") for d in docs.values()):
            return docs
        if time.monotonic() > deadline:
            raise AssertionError({n: d["status"] for n, d in docs.items()})
        time.sleep(0.2)


def test_serve_never_shows_a_resolved_secret(
    serve: tuple[str, Secrets, Path], db_url: str, tmp_path: Path, echo: str
) -> None:
    url, s, log = serve
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    reader = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {READ}"}, timeout=10)
    shown: list[str] = []  # every response body

    # registration resolves nothing: a file outside the secret directories is refused
    # without being read, whatever it holds
    (tmp_path / "elsewhere.txt").write_text(s.value)
    for path in ("/etc/passwd", f"{s.dirs}/../secrets/../elsewhere.txt"):
        bad = jobs(tmp_path, s)["int-field"] | {"name": "bad-file"}
        bad["source"] = {"type": "file", "config": {"path": f"${{file:{path}}}"}}
        r = admin.post("/api/jobs", json=bad)
        shown.append(r.text)
        assert r.status_code == 400, r.text
        assert f"${{file:{path}}} names a file outside the allowed secret directories" in r.text
        assert "root:" not in r.text

    eids = {}
    for name, job in jobs(tmp_path, s, echo).items():
        r = admin.post("/api/jobs", json=job)
        shown.append(r.text)
        assert r.status_code == 201, r.text
        r = admin.post(f"/api/jobs/{name}/start")
        assert r.status_code == 202, r.text
        eids[name] = r.json()["execution_id"]
    # an event trigger's options are resolved by the control plane itself
    r = admin.put(
        "/api/jobs/ok/schedule",
        json={
            "type": "EVENT",
            "event_trigger": "rabbitmq",
            "event_topic": "q",
            "event_config": {"url": "amqp://guest:${env:SECRET_X}@127.0.0.1:1/%2F"},
        },
    )
    shown.append(r.text)
    assert r.status_code == 200, r.text
    r = admin.put(
        "/api/jobs/ok/schedule",
        json={
            "type": "EVENT",
            "event_trigger": "rabbitmq",
            "event_topic": "q",
            "event_config": {"url": "amqp://guest:${file:/etc/shadow}@127.0.0.1:1/%2F"},
        },
    )
    shown.append(r.text)
    assert r.status_code == 400, r.text
    assert "field 'event_config.url': ${file:/etc/shadow} names a file outside" in r.text

    docs = _wait_final(reader, eids)
    assert docs["ok"]["status"] == "COMPLETED", docs["ok"]
    failed = {n for n, d in docs.items() if d["status"] == "FAILED"}
    assert failed == set(eids) - {"ok"}, {n: d["status"] for n, d in docs.items()}
    errors = {n: d["error_message"] or "" for n, d in docs.items()}
    assert "expected int, got the value of ${env:SECRET_X}" in errors["int-field"]
    assert "got the value of ${env:PIPELINE_API_ADMIN_TOKENS}" in errors["token-oracle"]
    assert "in-${env:SECRET_X}.jsonl' does not exist" in errors["source-path"]
    assert "/proc/none/${env:SECRET_X}/out" in errors["sink-path"]
    assert "${env:SECRET_X}" in errors["jdbc-columns"]
    assert "Authorization: Basic ${env:SECRET_X}" in errors["http-basic"]
    assert f"Authorization: Bearer ${{file:{s.dirs}" in errors["http-cut-token"]
    time.sleep(1.5)  # the EVENT trigger tries (and fails) to connect

    # every read route, as a read token sees it
    for path in (
        "/api/jobs",
        "/api/executions",
        "/api/executions?limit=100",
        "/api/connectors",
        "/metrics",
        *(f"/api/jobs/{n}" for n in eids),
        *(f"/api/jobs/{n}/versions/1" for n in eids),
        "/api/jobs/ok/schedule",
        *(f"/api/executions/{e}" for e in eids.values()),
        *(f"/api/executions/{e}/checkpoints" for e in eids.values()),
    ):
        r = reader.get(path)
        assert r.status_code == 200, (path, r.text)
        shown.append(r.text)
    checkpoints = reader.get(f"/api/executions/{eids['ok']}/checkpoints").json()["items"]
    assert checkpoints and "${env:SECRET_DIR}/a.jsonl" in str(checkpoints)

    for text, where in (
        ("\n".join(shown), "an API response"),
        (database_text(db_url), "the metadata database"),
        (files_text(tmp_path / "cp"), "checkpoint storage"),
    ):
        s.assert_absent(text, where)
    admin.close()
    reader.close()
    # serve's log, its worker processes' included (they share its stderr)
    s.assert_absent(log.read_text(), "the log of serve")


def test_pipeline_run_never_shows_a_resolved_secret(tmp_path: Path) -> None:
    s = Secrets(tmp_path)
    defs = jobs(tmp_path, s)
    runs = []
    for name in ("int-field", "source-path", "jdbc-columns", "http-nested", "ok"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(defs[name]))
        runs.append(
            pipeline_run(
                "run", "--no-progress", "--traceback", f"{name}.yaml", cwd=tmp_path, env=s.env
            )
        )
    assert [r.returncode for r in runs] == [2, 1, 1, 1, 0], [r.stderr for r in runs]
    assert "expected int, got the value of ${env:SECRET_X}" in runs[0].stderr
    assert "in-${env:SECRET_X}.jsonl' does not exist" in runs[1].stderr
    assert "output: sink (file): 1 file in ${env:SECRET_OUT}" in runs[4].stdout

    # a resumed run gets the positions back with their values: it reads only the new file
    (s.data / "b.jsonl").write_text('{"i": 100}\n')
    runs.append(
        pipeline_run("run", "--no-progress", "--resume", "ok.yaml", cwd=tmp_path, env=s.env)
    )
    assert runs[-1].returncode == 0, runs[-1].stderr
    assert "resuming from execution" in runs[-1].stderr
    written = sorted(line for f in s.out.glob("*.jsonl") for line in f.read_text().splitlines())
    assert written == sorted([*(f'{{"i":{i}}}' for i in range(5)), '{"i":100}']), written

    for listing in (("executions",), ("jobs", "list"), ("checkpoints", "ok")):
        runs.append(pipeline_run(*listing, cwd=tmp_path, env=s.env))
    for r in runs:
        s.assert_absent(r.stdout + r.stderr, f"the output of {r.args[1:]}")
    db = next((tmp_path / ".pipeline").glob("*.db"))
    s.assert_absent(database_text(f"sqlite:///{db}"), "the metadata database")
    s.assert_absent(files_text(tmp_path / ".pipeline" / "checkpoints"), "checkpoint storage")


def test_escaped_derived_and_cut_off_secrets_never_show(echo: str, tmp_path: Path) -> None:
    """The audit's leaks: a message cut before it was redacted (a prefix of a bearer
    token), a URL-escaped value, a basic-auth header, ``validate --connect`` errors, a
    dead letter's ``where`` — through ``pipeline-run run`` and ``validate``."""
    tag = uuid.uuid4().hex[:10]
    secrets = {
        "token": f"FileSecret-{tag}-tok",
        "path": f"p@ss w/rd+{tag}&z=1",
        "password": f"S3cr3tValue-{tag}-pw",
        "number": f"S3cr3tNum-{tag}",
        "dir": f"S3cr3tDir-{tag}",
    }
    sdir = tmp_path / "secrets"
    sdir.mkdir()
    (sdir / "tok").write_text(secrets["token"] + "\n")
    data = tmp_path / f"sec-{secrets['dir']}"
    data.mkdir()
    (data / "data.jsonl").write_text('{"i": 1}\nnot json\n{"i": 3}\n')
    env = {
        "SECRET_Q": secrets["path"],
        "SECRET_X": secrets["password"],
        "SECRET_N": secrets["number"],
        "SECRET_DIR": str(data),
        "PIPELINE_SECRET_DIRS": str(sdir),
    }
    basic = base64.b64encode(f"u:{secrets['password']}".encode()).decode()
    shown = {**secrets, "basic header": basic}
    sink = {"type": "file", "config": {"path": str(tmp_path / "out")}}
    http = {"retry": {"max_retries": 0}}
    # the 400's body is cut at 200 characters, 12 characters into the token
    pad = 200 - len("Authorization: Bearer ") - 12
    defs: dict[str, dict[str, Any]] = {
        "cut-token": {
            "source": {
                "type": "http",
                "config": {
                    **http,
                    "url": f"{echo}/e400?pad={pad}",
                    "headers": {"X-Extra": "1"},
                    "auth": {"type": "bearer", "token": f"${{file:{sdir}/tok}}"},
                },
            },
        },
        "escaped-path": {
            "source": {"type": "http", "config": {**http, "url": f"{echo}/e404/${{env:SECRET_Q}}"}},
        },
        "basic-auth": {
            "source": {
                "type": "http",
                "config": {
                    **http,
                    "url": f"{echo}/e400",
                    "auth": {"type": "basic", "username": "u", "password": "${env:SECRET_X}"},
                },
            },
        },
        "dead-letter-where": {
            "source": {"type": "file", "config": {"path": "${env:SECRET_DIR}/data.jsonl"}},
            "config": {
                "on_error": "dead_letter",
                "dead_letter": {"type": "file", "config": {"path": str(tmp_path / "dlq")}},
            },
        },
    }
    runs = {}
    for name, d in defs.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, "sink": sink, **d}))
        runs[name] = pipeline_run("run", "--no-progress", f"{name}.yaml", cwd=tmp_path, env=env)
    codes = {name: r.returncode for name, r in runs.items()}
    assert codes == {"cut-token": 1, "escaped-path": 1, "basic-auth": 1, "dead-letter-where": 0}, [
        r.stderr for r in runs.values()
    ]
    assert "/e404/${env:SECRET_Q} answered 404" in runs["escaped-path"].stderr
    assert "Authorization: Basic ${env:SECRET_X}" in runs["basic-auth"].stderr
    dead = "".join(p.read_text() for p in (tmp_path / "dlq").rglob("*.jsonl"))
    assert '"where":"${env:SECRET_DIR}/data.jsonl:2"' in dead.replace(" ", ""), dead

    # validate --connect resolves the references as a run would, and shows none
    jdbc = {
        "type": "jdbc",
        "config": {
            "url": "postgresql+psycopg://${env:SECRET_X}@127.0.0.1:1/db_${env:SECRET_N}",
            "table": "t",
            "key": "id",
        },
    }
    (tmp_path / "connect.yaml").write_text(
        yaml.safe_dump({"name": "connect", "source": jdbc, "sink": sink})
    )
    checks = [
        pipeline_run("validate", "--connect", *flag, "connect.yaml", cwd=tmp_path, env=env)
        for flag in ((), ("--json",))
    ]
    assert [c.returncode for c in checks] == [2, 2], [c.stderr for c in checks]
    for c in checks:
        assert "${env:SECRET_X}@127.0.0.1:1/db_${env:SECRET_N}" in c.stdout + c.stderr

    db = next((tmp_path / ".pipeline").glob("*.db"))
    assert "${env:SECRET_Q}" in database_text(f"sqlite:///{db}")
    for r in [*runs.values(), *checks]:
        assert_never_shown(shown, r.stdout + r.stderr, f"the output of {r.args[1:]}")
    assert_never_shown(shown, database_text(f"sqlite:///{db}"), "the metadata database")
    assert_never_shown(shown, files_text(tmp_path / ".pipeline" / "checkpoints"), "checkpoints")
    assert_never_shown(shown, dead, "the dead letters")
