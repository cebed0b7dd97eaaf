"""The security model of docs/api.md, against a real ``pipeline-run serve`` process:
with no tokens configured (a generated admin token), with tokens, and with ``--no-auth``.

A browser page can send cross-site only "simple" requests (GET/POST with text/plain,
form or no body, no custom headers) and, through DNS rebinding, any request under its
own host name; each is sent here as the browser would and must change nothing."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.api.conftest import free_port, wait_serving
from tests.conftest import BIN, REPO

pytestmark = pytest.mark.timeout(120)

JOB = {
    "name": "sec-job",
    "source": {"type": "file", "config": {"path": "in.jsonl"}},
    "sink": {"type": "file", "config": {"path": "out/"}},
}


class Serve:
    def __init__(self, url: str, cwd: Path, log: Path) -> None:
        self.url, self.cwd, self.log = url, cwd, log

    def jobs(self, headers: dict[str, str] | None = None) -> list[str]:
        r = httpx.get(f"{self.url}/api/jobs", headers=headers or {})
        assert r.status_code == 200, r.text
        return [j["name"] for j in r.json()["items"]]


def _serve(tmp_path: Path, env: dict[str, str], *args: str) -> Iterator[Serve]:
    port = free_port()
    shutil.copytree(
        REPO / "examples",
        tmp_path / "jobs",
        ignore=shutil.ignore_patterns("output"),
        dirs_exist_ok=True,
    )
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [
            str(BIN / "pipeline-run"),
            "--database",
            f"sqlite:///{tmp_path / 'meta.db'}",
            "serve",
            "--jobs",
            str(tmp_path / "jobs"),
            "--port",
            str(port),
            "--checkpoint-url",
            str(tmp_path / "cp"),
            *args,
        ],
        cwd=tmp_path,
        env={k: v for k, v in env.items() if not k.startswith("PIPELINE_API_")} | env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_serving(url, proc, log)
    try:
        yield Serve(url, tmp_path, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_API_")}
    return env | extra


@pytest.fixture
def untokened(tmp_path: Path) -> Iterator[Serve]:
    yield from _serve(tmp_path, _env())


@pytest.fixture
def tokened(tmp_path: Path) -> Iterator[Serve]:
    yield from _serve(
        tmp_path, _env(PIPELINE_API_ADMIN_TOKENS="adm", PIPELINE_API_READ_TOKENS="rd")
    )


@pytest.fixture
def no_auth(tmp_path: Path) -> Iterator[Serve]:
    yield from _serve(tmp_path, _env(), "--no-auth")


def _cross_site_attempts(url: str) -> list[httpx.Response]:
    """What a page on http://evil.example can make a browser send without a preflight,
    plus the same under a rebound host name."""
    body = orjson.dumps(JOB)
    evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    return [
        # a fetch() with a string body: text/plain, Origin set by the browser
        httpx.post(f"{url}/api/jobs", content=body, headers={**evil, "Content-Type": "text/plain"}),
        # an HTML form
        httpx.post(
            f"{url}/api/jobs",
            content=b"a=1",
            headers={**evil, "Content-Type": "application/x-www-form-urlencoded"},
        ),
        # a Blob body has no content type at all
        httpx.post(f"{url}/api/jobs", content=body, headers=evil),
        # a body-less start
        httpx.post(f"{url}/api/jobs/quickstart-orders/start", headers=evil),
        # DNS rebinding: same-origin for the browser, but the page's own host name
        httpx.post(
            f"{url}/api/jobs",
            content=body,
            headers={"Host": "evil.example", "Content-Type": "application/json"},
        ),
        httpx.post(
            f"{url}/api/jobs/quickstart-orders/start",
            headers={"Host": "evil.example:8080", "Origin": "http://evil.example:8080"},
        ),
    ]


@pytest.mark.parametrize("mode", ["untokened", "tokened", "no_auth"])
def test_a_cross_site_request_or_a_rebound_host_changes_nothing(
    mode: str, request: pytest.FixtureRequest
) -> None:
    serve: Serve = request.getfixturevalue(mode)
    headers = {"Authorization": "Bearer rd"} if mode == "tokened" else {}
    before = serve.jobs(headers)
    for r in _cross_site_attempts(serve.url):
        assert 400 <= r.status_code < 500, (r.request.headers, r.status_code, r.text)
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"] in (
            "cross_origin",
            "unsupported_media_type",
            "host_not_allowed",
        ), r.text
    assert serve.jobs(headers) == before
    executions = httpx.get(f"{serve.url}/api/executions", headers=headers).json()
    assert executions["items"] == [] and executions["total"] == 0
    # malformed Host headers name no allowed host either
    for host in ("localhost:1@evil.example", "[::1]evil.example", "127.0.0.1:99999", "::1"):
        r = httpx.get(f"{serve.url}/api/jobs", headers={**headers, "Host": host})
        assert r.status_code == 400 and r.json()["error"] == "host_not_allowed", host
    # our own Origin does not excuse a cross-site fetch, nor does a second Origin header
    port = serve.url.rsplit(":", 1)[1]
    own = f"http://127.0.0.1:{port}"
    r = httpx.post(
        f"{serve.url}/api/jobs/quickstart-orders/start",
        headers={"Origin": own, "Sec-Fetch-Site": "Cross-Site"},
    )
    assert r.status_code == 403, r.text
    r = httpx.post(
        f"{serve.url}/api/jobs/quickstart-orders/start",
        headers=[("Origin", "http://evil.example"), ("Origin", own)],
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    assert httpx.get(f"{serve.url}/api/executions", headers=headers).json()["total"] == 0
    # a rebound page cannot read either
    r = httpx.get(f"{serve.url}/api/jobs", headers={**headers, "Host": "evil.example"})
    assert r.status_code == 400 and r.json()["error"] == "host_not_allowed"
    assert "evil.example" not in r.headers.get("access-control-allow-origin", "")


def test_without_tokens_reads_are_open_and_changes_need_the_generated_admin_token(
    untokened: Serve,
) -> None:
    token_file = untokened.cwd / ".pipeline" / "api-token"
    assert str(token_file) in untokened.log.read_text()  # its location is printed
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 32
    assert "quickstart-orders" in untokened.jobs()

    r = httpx.post(f"{untokened.url}/api/jobs", json=JOB)
    assert r.status_code == 401 and str(token_file) in r.json()["message"]
    r = httpx.post(f"{untokened.url}/api/jobs", json=JOB, headers={"Authorization": "Bearer x"})
    assert r.status_code == 401
    r = httpx.post(
        f"{untokened.url}/api/jobs", json=JOB, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 201, r.text
    assert "sec-job" in untokened.jobs()


def test_the_generated_token_survives_a_restart_and_a_readable_one_is_refused(
    tmp_path: Path,
) -> None:
    tokens = []
    for _ in range(2):  # the same token after a restart
        gen = _serve(tmp_path, _env())
        next(gen)
        tokens.append((tmp_path / ".pipeline" / "api-token").read_text())
        gen.close()
    assert tokens[0] == tokens[1]
    (tmp_path / ".pipeline" / "api-token").chmod(0o644)
    proc = subprocess.run(
        [str(BIN / "pipeline-run"), "--database", f"sqlite:///{tmp_path / 'm2.db'}", "serve"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "readable by others" in proc.stderr and "Traceback" not in proc.stderr


def test_no_auth_says_so_and_still_refuses_cross_site(no_auth: Serve) -> None:
    assert "--no-auth" in no_auth.log.read_text()
    r = httpx.post(f"{no_auth.url}/api/jobs", json=JOB)
    assert r.status_code == 201, r.text


def test_read_tokens_read_admin_tokens_change_and_only_admins_get_stack_traces(
    tokened: Serve,
) -> None:
    read, admin = {"Authorization": "Bearer rd"}, {"Authorization": "Bearer adm"}
    assert httpx.get(f"{tokened.url}/api/jobs").status_code == 401
    assert httpx.post(f"{tokened.url}/api/jobs", json=JOB, headers=read).status_code == 403
    bad = {**JOB, "name": "fails", "source": {"type": "file", "config": {"path": "missing.jsonl"}}}
    assert httpx.post(f"{tokened.url}/api/jobs", json=bad, headers=admin).status_code == 201
    eid = httpx.post(f"{tokened.url}/api/jobs/fails/start", headers=admin).json()["execution_id"]
    deadline = time.monotonic() + 30
    while (
        httpx.get(f"{tokened.url}/api/executions/{eid}", headers=read).json()["status"] != "FAILED"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    as_admin = httpx.get(f"{tokened.url}/api/executions/{eid}", headers=admin).json()
    as_reader = httpx.get(f"{tokened.url}/api/executions/{eid}", headers=read).json()
    assert as_admin["error_stack_trace"] and "Traceback" in as_admin["error_stack_trace"]
    assert as_reader["error_stack_trace"] is None
    assert as_reader["error_message"] == as_admin["error_message"]


BAD_BODIES: list[tuple[str, bytes, str, int]] = [
    ("blank name", orjson.dumps({**JOB, "name": " "}), "application/json", 400),
    ("empty name", orjson.dumps({**JOB, "name": ""}), "application/json", 400),
    ("path in name", orjson.dumps({**JOB, "name": "../../../tmp/x"}), "application/json", 400),
    ("slash in name", orjson.dumps({**JOB, "name": "a/b"}), "application/json", 400),
    ("dot-dot", orjson.dumps({**JOB, "name": ".."}), "application/json", 400),
    ("20,000 [", b"[" * 20_000, "application/yaml", 400),
    ("20,000 [ in JSON", b"[" * 20_000, "application/json", 400),
    (
        "alias bomb",
        b"name: bomb\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n".encode()
            for i in range(8)
        ),
        "application/yaml",
        400,
    ),
    ("python object in YAML", b"!!python/object/apply:os.system ['true']", "application/yaml", 400),
    ("not JSON", b"{nope", "application/json", 400),
    ("a list", b"[1, 2]", "application/json", 400),
    ("2 MB", orjson.dumps({**JOB, "description": "x" * 2_000_000}), "application/json", 413),
    (
        "os:system step",
        orjson.dumps({**JOB, "transform": [{"type": "map", "function": "os:system"}]}),
        "application/json",
        400,
    ),
    (
        "subprocess step",
        orjson.dumps({**JOB, "transform": [{"type": "filter", "function": "subprocess:run"}]}),
        "application/json",
        400,
    ),
    # the job folder's own modules, but through what they imported (the examples' API
    # server imports contextlib, sys, Path): the path after ':' must stay in the module
    (
        "through an import",
        orjson.dumps(
            {**JOB, "transform": [{"type": "map", "function": "api_server:contextlib.os.system"}]}
        ),
        "application/json",
        400,
    ),
    (
        "an imported module",
        orjson.dumps({**JOB, "transform": [{"type": "map", "function": "api_server:sys.exit"}]}),
        "application/json",
        400,
    ),
    (
        "an imported class",
        orjson.dumps({**JOB, "transform": [{"type": "map", "function": "api_server:Path.unlink"}]}),
        "application/json",
        400,
    ),
    (
        "a dunder",
        orjson.dumps(
            {
                **JOB,
                "transform": [{"type": "map", "function": "quickstart_fns:is_paid.__globals__"}],
            }
        ),
        "application/json",
        400,
    ),
    (
        "builtins step",
        orjson.dumps({**JOB, "transform": [{"type": "map", "function": "builtins:eval"}]}),
        "application/json",
        400,
    ),
]


def test_each_bad_body_gets_a_4xx_json_error_and_stores_nothing(tokened: Serve) -> None:
    admin = {"Authorization": "Bearer adm"}
    before = tokened.jobs(admin)
    for what, body, kind, status in BAD_BODIES:
        r = httpx.post(
            f"{tokened.url}/api/jobs", content=body, headers={**admin, "Content-Type": kind}
        )
        assert r.status_code == status, (what, r.status_code, r.text[:300])
        assert r.headers["content-type"] == "application/json", what
        assert set(r.json()) == {"error", "message", "details"}, what
    assert tokened.jobs(admin) == before

    # a chunked body over the limit is refused too, without reading it all
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    r = httpx.post(
        f"{tokened.url}/api/jobs",
        content=chunks(),
        headers={**admin, "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text
    r = httpx.post(
        f"{tokened.url}/api/jobs",
        json={**JOB, "transform": [{"type": "map", "function": "os:system"}]},
        headers=admin,
    )
    assert "standard-library module" in r.json()["message"]


def test_paths_methods_and_headers(tokened: Serve) -> None:
    admin = {"Authorization": "Bearer adm"}
    huge = "99999999999999999999999"
    r = httpx.get(f"{tokened.url}/api/jobs/quickstart-orders/versions/{huge}", headers=admin)
    assert r.status_code == 404 and r.json()["error"] == "job_not_found"
    r = httpx.get(f"{tokened.url}/api/jobs/quickstart-orders/versions/0", headers=admin)
    assert r.status_code == 404
    r = httpx.request("TRACE", f"{tokened.url}/api/jobs", headers=admin)
    assert r.status_code == 405 and set(r.headers["allow"].replace(" ", "").split(",")) >= {
        "GET",
        "POST",
    }
    r = httpx.post(
        f"{tokened.url}/api/executions/x/savepoint", json={"name": "../x"}, headers=admin
    )
    assert r.status_code in (400, 404)
    page = httpx.get(f"{tokened.url}/")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'sha256-" in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    for path in ("/api/jobs", "/healthz", "/metrics", "/api/nope"):
        r = httpx.get(f"{tokened.url}{path}", headers=admin)
        assert r.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert r.headers["x-content-type-options"] == "nosniff", path


def test_the_api_refuses_what_the_cli_refuses_and_reports_every_problem(tokened: Serve) -> None:
    """``POST /api/jobs`` runs the CLI's checks (tests/cli/test_registration.py): a
    function that is only bound in its module, an unsafe step name, every problem of a
    definition in one answer, and one error code for a self-dependency however it comes."""
    admin = {"Authorization": "Bearer adm"}
    before = tokened.jobs(admin)
    # a module next to serve's --jobs files, where API definitions resolve functions from
    (tokened.cwd / "jobs" / "evilmod.py").write_text("import os\n\nsystem = os.system\n")

    def post(job: dict[str, object]) -> httpx.Response:
        return httpx.post(f"{tokened.url}/api/jobs", json=job, headers=admin)

    r = post({**JOB, "transform": [{"type": "map", "function": "evilmod:system"}]})
    assert r.status_code == 400, r.text
    assert "'evilmod:system' is refused: 'system' is bound by an assignment" in r.text
    for name in ("../../x", "<img src=x>"):
        r = post({**JOB, "transform": [{"type": "batch", "size": 2, "name": name}]})
        assert r.status_code == 400 and "is not a valid name" in r.json()["message"], r.text
    many = {
        "name": "many",
        "source": {"type": "file", "config": {"path": "in.jsonl", "batch_size": "abc"}},
        "transform": [{"type": "teleport"}, {"type": "map", "function": "nowhere:f"}],
        "sink": {"type": "file", "config": {"path": "out/", "bogus": 1}},
        "config": {"buffer_size": -1, "parallelism": "x"},
        "schedule": {"type": "CRON", "cron": "61 * * * *"},
    }
    r = post(many)
    assert r.status_code == 400, r.text
    where = sorted((d["component"], d["field"]) for d in r.json()["details"])
    assert where == [
        ("config", "buffer_size"),
        ("config", "parallelism"),
        ("schedule", "cron"),
        ("sink (file)", "bogus"),
        ("source (file)", "batch_size"),
        ("transform step 1", "type"),
        ("transform step 2 (map)", "function"),
    ], r.text
    # a config or schedule that failed to parse hides none of its other problems
    for extra, expected in (
        (
            {"config": {"on_error": "explode", "dead_letter": {"type": "nosuch", "config": {}}}},
            [("config", "on_error"), ("dead_letter sink", "type")],
        ),
        (
            {"schedule": {"type": "CRON", "cron": "99 * * * *", "timezone": "Mars/Olympus"}},
            [("schedule", "cron"), ("schedule", "timezone")],
        ),
        (
            {"schedule": {"type": "DEPENDENCY", "dependencies": ["hidden"], "timezone": "Mars/X"}},
            [("schedule", "dependencies"), ("schedule", "timezone")],
        ),
    ):
        r = post({**JOB, "name": "hidden", **extra})
        assert r.status_code == 400, r.text
        where = sorted((d["component"], d["field"]) for d in r.json()["details"])
        assert where == expected, r.text
    assert tokened.jobs(admin) == before
    selfish = {**JOB, "name": "selfish"}
    loop = {"type": "DEPENDENCY", "dependencies": ["selfish"]}
    r = post({**selfish, "schedule": loop})
    assert (r.status_code, r.json()["error"]) == (409, "dependency_conflict"), r.text
    assert "dependency cycle: selfish → selfish" in r.json()["message"]
    assert post(selfish).status_code == 201
    r = httpx.put(f"{tokened.url}/api/jobs/selfish/schedule", json=loop, headers=admin)
    assert (r.status_code, r.json()["error"]) == (409, "dependency_conflict"), r.text
    assert "dependency cycle: selfish → selfish" in r.json()["message"]
