"""The HTTP connector against a real HTTP server on loopback (tests/apiserver.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from http_test_api import Api

from pipeline_connector_http import HttpSink, HttpSinkConfig, HttpSource
from pipeline_core import (
    Batch,
    FatalConnectorError,
    PipelineJob,
    RetriableConnectorError,
    RuntimeContext,
    load_plugins,
    structure,
)
from pipeline_core.testing import ListSink, MemorySource, run

N = 1000
CTX = RuntimeContext(job_name="j", execution_id="e", component="source (http)")


def source(api: Api, path: str, **config: Any) -> HttpSource:
    config.setdefault("timeout", 1.0)
    config.setdefault("retry", {"max_retries": 8, "backoff": 0.01})
    return HttpSource(structure({"url": api.base + path, **config}, HttpSource.config_cls))


def read(src: HttpSource, position: dict[str, Any] | None = None) -> list[Batch]:
    async def go() -> list[Batch]:
        await src.open(CTX, position)
        try:
            return [b async for b in src.read()]
        finally:
            await src.close()

    return asyncio.run(go())


def ids(batches: list[Batch]) -> list[int]:
    return [r["id"] for b in batches for r in b.records]


STYLES = {
    "page": ("/page", {"records_path": "data", "pagination": {"style": "page", "page_size": 100}}),
    "offset": (
        "/offset",
        {"records_path": "items", "pagination": {"style": "offset", "page_size": 100}},
    ),
    "cursor": (
        "/cursor",
        {"records_path": "data", "pagination": {"style": "cursor", "cursor_path": "meta.next"}},
    ),
    "next_url": (
        "/nexturl",
        {
            "records_path": "data",
            "pagination": {"style": "next_url", "next_url_path": "links.next"},
        },
    ),
    "link_header": ("/link", {"pagination": {"style": "link_header"}}),
}


@pytest.mark.parametrize("style", sorted(STYLES))
def test_each_pagination_style_reads_everything_in_order(style: str) -> None:
    path, config = STYLES[style]
    with Api(N) as api:
        batches = read(source(api, path, **config))
    assert ids(batches) == list(range(N))
    assert all(b.checkpoint_after for b in batches)  # each page is a checkpoint opportunity


@pytest.mark.parametrize("style", sorted(STYLES))
def test_resume_continues_after_the_last_page_without_refetching(style: str) -> None:
    path, config = STYLES[style]
    with Api(N) as api:
        batches = read(source(api, path, **config))
        third = batches[2].position
        before = sum(api.hits.values())
        rest = read(source(api, path, **config), third)
        refetched = sum(api.hits.values()) - before
    assert ids(rest) == list(range(300, N))
    assert refetched <= 7 + 4  # pages 4..10 (+ prefetched pages beyond the end)


@pytest.mark.parametrize("style", ["page", "cursor"])
def test_a_flaky_server_still_yields_every_record_exactly_once(style: str) -> None:
    path, config = STYLES[style]
    with Api(5000, fail_rate=0.1, seed=3) as api:  # 50 pages: about 5 faults
        sink = ListSink()
        job = (
            PipelineJob.builder()
            .name("flaky")
            .source(source(api, path, **config))
            .sink(sink)
            .build()
        )
        run(job)
        faults = api.faults
    assert faults >= 2
    assert [r["id"] for r in sink.committed] == list(range(5000))


def test_prefetch_overlaps_requests() -> None:
    path, config = STYLES["page"]
    with Api(N, slow=0.05) as api:
        t0 = time.monotonic()
        assert ids(read(source(api, path, prefetch=5, **config))) == list(range(N))
        with_prefetch = time.monotonic() - t0
        t0 = time.monotonic()
        assert ids(read(source(api, path, prefetch=1, **config))) == list(range(N))
        sequential = time.monotonic() - t0
    assert sequential > 0.5  # 10 pages x 50 ms
    assert with_prefetch < sequential / 2


def test_client_errors_are_not_retried_and_name_url_and_status() -> None:
    with Api(N) as api:
        with pytest.raises(
            FatalConnectorError, match=r"GET http://127\.0\.0\.1:\d+/fail404 answered 404 Not Found"
        ):
            read(source(api, "/fail404", pagination={"style": "none"}))
        assert sum(api.hits.values()) == 1


def test_persistent_server_errors_fail_after_the_retries() -> None:
    with Api(N) as api:
        src = source(
            api,
            "/always503",
            pagination={"style": "none"},
            retry={"max_retries": 3, "backoff": 0.01},
        )
        with pytest.raises(
            RetriableConnectorError,
            match=r"GET .*/always503 failed after 4 attempts \(status 503\)",
        ):
            read(src)
        assert sum(api.hits.values()) == 4


def test_retry_after_is_honoured() -> None:
    with Api(N) as api:
        t0 = time.monotonic()
        got = read(source(api, "/retryafter", pagination={"style": "none"}))
        elapsed = time.monotonic() - t0
        hits = sum(api.hits.values())
    assert ids(got) == list(range(10))
    assert hits == 2 and elapsed >= 0.95  # the server's 1 s, not the 10 ms backoff


def test_rate_limit_spaces_requests() -> None:
    path, config = STYLES["page"]
    with Api(N) as api:
        t0 = time.monotonic()
        read(source(api, path, rate_limit=20, prefetch=4, **config))
        elapsed = time.monotonic() - t0
    assert elapsed >= 10 / 20 - 0.06  # 11 requests (10 pages + the empty 11th) at 20/s


@pytest.mark.parametrize(
    ("path", "auth"),
    [
        ("/bearer", {"type": "bearer", "token": "s3cret"}),
        ("/basic", {"type": "basic", "username": "ada", "password": "pw"}),
        ("/apikey", {"type": "api_key", "key": "k1"}),
        ("/apikey", {"type": "api_key", "key": "k1", "name": "api_key", "location": "query"}),
    ],
)
def test_auth_flows(path: str, auth: dict[str, Any]) -> None:
    with Api(N) as api:
        got = read(source(api, path, auth=auth, **STYLES["page"][1]))
        assert ids(got) == list(range(N))
        with pytest.raises(FatalConnectorError, match="answered 401"):
            read(
                source(
                    api,
                    path,
                    auth={
                        **auth,
                        **{k: "wrong" for k in ("token", "password", "key") if k in auth},
                    },
                    **STYLES["page"][1],
                )
            )


def test_oauth2_client_credentials_refreshes_the_token() -> None:
    with Api(N) as api:
        auth = {
            "type": "oauth2",
            "token_url": api.base + "/token",
            "client_id": "c",
            "client_secret": "cs",
        }
        got = read(source(api, "/oauth", auth=auth, prefetch=1, **STYLES["page"][1]))
        assert ids(got) == list(range(N))
        assert api.tokens_issued >= 4  # each token works 3 times: refreshed on 401


def test_secret_missing_from_environment_is_a_config_error() -> None:
    """Where the job runs (validation resolves no secret: it passes there)."""
    from pipeline_core import ConfigError, prepare

    job = (
        PipelineJob.builder()
        .name("j")
        .source(
            "http",
            url="http://127.0.0.1:1/x",
            auth={"type": "bearer", "token": "${env:PIPELINE_NO_SUCH_TOKEN}"},
        )
        .sink(ListSink())
        .build()
    )
    prepare(job, load_plugins())
    with pytest.raises(
        ConfigError, match="environment variable 'PIPELINE_NO_SUCH_TOKEN' is not set"
    ):
        prepare(job, load_plugins(), resolve_secrets=True)


def test_sink_batches_records_and_idempotency_keys_drop_replays() -> None:
    with Api(N) as api:

        def job() -> PipelineJob:
            return (
                PipelineJob.builder()
                .name("out")
                .source(MemorySource.of([{"id": i} for i in range(250)], batch_size=100))
                .sink("http", url=api.base + "/sink", batch_key="items", idempotency_key=True)
                .config(sink_batch_size=100)
                .build()
            )

        run(job())
        run(job())  # a replay of the same batches
        received = list(api.received)
    assert sorted(r["id"] for body in received for r in body["items"]) == list(range(250))


def test_sink_record_mode_retries_a_flaky_server() -> None:
    with Api(N, fail_rate=0.1, seed=5) as api:
        sink_cfg = {
            "url": api.base + "/sink",
            "mode": "record",
            "concurrency": 4,
            "idempotency_key": True,
            "timeout": 1.0,
            "retry": {"max_retries": 8, "backoff": 0.01},
        }
        job = (
            PipelineJob.builder()
            .name("out")
            .source(MemorySource.of([{"id": i} for i in range(200)]))
            .sink(HttpSink(structure(sink_cfg, HttpSinkConfig)))
            .build()
        )
        run(job)
        received = list(api.received)
        faults = api.faults
    assert faults >= 3
    assert sorted(r["id"] for r in received) == list(range(200))  # once each


def test_api_to_sqlite_example_runs(tmp_path: Any) -> None:
    import os
    import shutil
    import socket
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    shutil.copytree(
        repo / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("output")
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PY": str(bin_dir / "python"),
        "RUN": str(bin_dir / "pipeline-run"),
        "EXAMPLE_API_PORT": str(port),
        "PIPELINE_DATABASE_URL": "",
    }
    proc = subprocess.run(
        ["sh", "examples/api_demo.sh", "--no-progress"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "rows in examples/output/orders.db: 4998" in proc.stdout
    with sqlite3.connect(tmp_path / "examples/output/orders.db") as db:
        assert db.execute("SELECT count(DISTINCT order_id) FROM orders").fetchone()[0] == 4998


def test_sink_body_template() -> None:
    with Api(N) as api:
        for mode, template in (
            ("batch", {"source": "pipeline", "events": "$records"}),
            ("record", {"event": "$record", "v": 1}),
        ):
            job = (
                PipelineJob.builder()
                .name("out")
                .source(MemorySource.of([{"id": i} for i in range(5)]))
                .sink("http", url=api.base + "/sink", mode=mode, body_template=template)
                .build()
            )
            run(job)
        received = list(api.received)
    assert received[0] == {"source": "pipeline", "events": [{"id": i} for i in range(5)]}
    assert sorted(r["event"]["id"] for r in received[1:]) == list(range(5))
    assert all(r["v"] == 1 for r in received[1:])


def test_a_body_in_a_declared_charset_other_than_utf8_is_decoded() -> None:
    # pages are parsed with orjson (UTF-8); a declared charset such as UTF-16 still works
    with Api(0) as api:
        batches = read(source(api, "/utf16", records_path="data", pagination={"style": "none"}))
    assert [r for b in batches for r in b.records] == [{"id": 1, "name": "Zoë 日本"}]
