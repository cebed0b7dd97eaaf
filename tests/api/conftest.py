"""A running API: the service and uvicorn on a free loopback port, in the test's loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import uvicorn

from pipeline_core.api import Tokens, create_app
from pipeline_core.plugins.manager import load_plugins
from pipeline_core.service import PipelineService
from pipeline_core.store import MetadataStore
from pipeline_core.testing import wait_until
from tests.service import flaky_plugin

ADMIN, READ = "admin-token-1", "read-token-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_serving(url: str, proc: subprocess.Popen[bytes], log: Path, within: float = 30) -> None:
    """Wait until the ``pipeline-run serve`` process ``proc`` answers ``/healthz`` at
    ``url``; if it exits or does not answer within ``within`` s, fail with its log."""
    deadline = time.monotonic() + within
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(log.read_text())
        time.sleep(0.1)


@attrs.define
class Live:
    url: str
    service: PipelineService
    store: MetadataStore
    tmp: Path

    def client(self, token: str | None = ADMIN) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)

    async def wait(self, predicate: Any, within: float = 20.0, what: str = "condition") -> None:
        await wait_until(predicate, within, what)


async def start_live(store: MetadataStore, tmp_path: Path, tokens: Tokens) -> AsyncIterator[Live]:
    service = PipelineService(
        store,
        load_plugins(extra=[flaky_plugin]),
        instance="api-test",
        checkpoint_url=str(tmp_path / "cp"),
        heartbeat_interval=0.2,
        lease=dt.timedelta(seconds=5),
        scheduler_tick=0.1,
    )
    app = create_app(service, tokens=tokens, metrics=service.metrics)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    config.load()
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    task = asyncio.create_task(server.main_loop())
    await service.start()
    service.executor.poll_interval = 0.1
    try:
        yield Live(f"http://127.0.0.1:{port}", service, store, tmp_path)
    finally:
        server.should_exit = True
        await task
        await server.shutdown()
        await service.stop(graceful=False)


@pytest.fixture
async def live(store: MetadataStore, tmp_path: Path) -> AsyncIterator[Live]:
    async for x in start_live(store, tmp_path, Tokens(frozenset({ADMIN}), frozenset({READ}))):
        yield x
