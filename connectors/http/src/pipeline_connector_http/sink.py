"""The ``http`` sink: records as JSON, one request per batch or per record."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import orjson

from pipeline_connector_http.auth import make_auth
from pipeline_connector_http.client import request
from pipeline_connector_http.config import HttpSinkConfig
from pipeline_connector_http.reach import reachable
from pipeline_core import RuntimeContext, Sink

__all__ = ["HttpSink"]


class HttpSink(Sink[HttpSinkConfig]):
    """At-least-once: every request is retried like the source's; a replay after a crash
    sends the records since the last checkpoint again — with ``idempotency_key`` the same
    body carries the same ``Idempotency-Key`` so the server can drop the repeat."""

    type_name = "http"
    config_cls = HttpSinkConfig

    def __init__(self, config: HttpSinkConfig) -> None:
        super().__init__(config)
        self.client: httpx.AsyncClient | None = None
        self.sent = 0

    async def check_connection(self) -> str | None:
        """``validate --connect``: a HEAD to the URL, with the configured headers and
        auth, writes nothing; refused credentials or a failing gateway are problems."""
        cfg = self.config
        return await reachable(
            cfg.url, method="HEAD", headers=cfg.headers, auth=cfg.auth, request_timeout=cfg.timeout
        )

    async def open(self, ctx: RuntimeContext) -> None:
        await super().open(ctx)
        cfg = self.config
        self.client = httpx.AsyncClient(
            auth=make_auth(cfg.auth),
            headers=cfg.headers,
            timeout=cfg.timeout,
            limits=httpx.Limits(max_connections=cfg.concurrency + 1),
        )

    async def _send(self, payload: Any) -> None:
        assert self.client is not None
        body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
        headers = {"Content-Type": "application/json"}
        if self.config.idempotency_key:
            headers["Idempotency-Key"] = hashlib.sha256(body).hexdigest()
        await request(
            self.client,
            self.config.method,
            self.config.url,
            content=body,
            headers=headers,
            retry=self.config.retry,
            component=self.ctx.component,
        )
        self.sent += 1

    def _body(self, data: Any, placeholder: str) -> Any:
        cfg = self.config
        if cfg.body_template is not None:
            return _fill(cfg.body_template, placeholder, data)
        if cfg.batch_key and placeholder == "$records":
            return {cfg.batch_key: data}
        return data

    async def write(self, records: list[Any]) -> None:
        cfg = self.config
        if cfg.mode == "batch":
            await self._send(self._body(records, "$records"))
            return
        sem = asyncio.Semaphore(cfg.concurrency)

        async def one(record: Any) -> None:
            async with sem:
                await self._send(self._body(record, "$record"))

        await asyncio.gather(*(one(r) for r in records))

    async def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()


def _fill(template: Any, placeholder: str, data: Any) -> Any:
    """The template with every string equal to ``placeholder`` replaced by ``data``."""
    if template == placeholder:
        return data
    if isinstance(template, dict):
        return {k: _fill(v, placeholder, data) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, placeholder, data) for v in template]
    return template
