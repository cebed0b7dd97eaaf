"""The ``http`` source: a paged REST API, page by page, prefetching where it can."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx

from pipeline_connector_http.auth import make_auth
from pipeline_connector_http.client import RateLimiter, request
from pipeline_connector_http.config import HttpSourceConfig
from pipeline_connector_http.paths import MISSING, get_path
from pipeline_core import Batch, FatalConnectorError, RuntimeContext, Source

__all__ = ["HttpSource"]


class _Page:
    __slots__ = ("next_cursor", "next_url", "records", "total")

    def __init__(
        self, records: list[Any], total: int | None, next_url: str | None, next_cursor: Any
    ) -> None:
        self.records = records
        self.total = total
        self.next_url = next_url
        self.next_cursor = next_cursor


class HttpSource(Source[HttpSourceConfig]):
    """One batch per page, each followed by a checkpoint opportunity (a page is complete).

    Positions: ``page`` style ``{"current_page", "page_size", "total_processed"}``;
    ``offset`` ``{"offset", "total_processed"}`` (the next offset); ``cursor``
    ``{"cursor", "total_processed"}`` (the cursor of the next request);
    ``next_url`` / ``link_header`` ``{"next_url", "total_processed"}``. A resumed source
    continues with the page after the last completed one.

    Page and offset pagination fetch up to ``prefetch`` pages concurrently and still emit
    them in order; cursor and URL styles must wait for each page to learn the next.
    """

    type_name = "http"
    config_cls = HttpSourceConfig

    def __init__(self, config: HttpSourceConfig) -> None:
        super().__init__(config)
        self.client: httpx.AsyncClient | None = None
        self.total = 0
        self.requests = 0

    async def open(self, ctx: RuntimeContext, restored_position: dict[str, Any] | None) -> None:
        await super().open(ctx, restored_position)
        cfg = self.config
        self.client = httpx.AsyncClient(
            auth=make_auth(cfg.auth),
            headers=cfg.headers,
            timeout=cfg.timeout,
            http2=cfg.http2,
            limits=httpx.Limits(max_connections=max(cfg.prefetch, 1) + 1),
        )
        self.limiter = RateLimiter(cfg.rate_limit)
        self.position = dict(restored_position or {})
        self.total = int(self.position.get("total_processed", 0))

    async def _get(self, url: str, params: dict[str, Any]) -> httpx.Response:
        assert self.client is not None
        self.requests += 1
        return await request(
            self.client,
            "GET",
            url,
            # httpx replaces a URL's own query string with params, even an empty dict
            params=params or None,
            retry=self.config.retry,
            limiter=self.limiter,
            component=self.ctx.component,
        )

    def _parse(self, response: httpx.Response) -> _Page:
        cfg = self.config
        try:
            body = response.json()
        except ValueError as exc:
            raise FatalConnectorError(
                f"GET {str(response.url).split('?')[0]} did not return JSON: {exc}",
                component=self.ctx.component,
            ) from None
        records = get_path(body, cfg.records_path)
        if records is MISSING or not isinstance(records, list):
            raise FatalConnectorError(
                f"no list of records at {cfg.records_path or 'the top'} of the response of "
                f"{str(response.url).split('?')[0]}",
                component=self.ctx.component,
            )
        p = cfg.pagination
        total = get_path(body, p.total_path) if p.total_path else None
        next_url: str | None = None
        next_cursor: Any = None
        if p.style == "next_url":
            found = get_path(body, p.next_url_path)
            next_url = found if isinstance(found, str) and found else None
        elif p.style == "link_header":
            link = response.links.get("next")
            next_url = link.get("url") if link else None
            if next_url:
                next_url = str(response.url.join(next_url))
        elif p.style == "cursor":
            found = get_path(body, p.cursor_path)
            next_cursor = None if found is MISSING or found in ("", None) else found
        return _Page(records, total if isinstance(total, int) else None, next_url, next_cursor)

    # --- numbered pages (page, offset): prefetch ---------------------------------------

    def _numbered_params(self, index: int) -> dict[str, Any]:
        p = self.config.pagination
        params = dict(self.config.params)
        if p.style == "page":
            params[p.page_param] = p.start_page + index
            if p.size_param:
                params[p.size_param] = p.page_size
        else:
            params[p.offset_param] = index * p.page_size
            params[p.limit_param] = p.page_size
        return params

    async def _numbered(self) -> AsyncIterator[Batch]:
        p = self.config.pagination
        if p.style == "page":
            index = int(self.position.get("current_page", p.start_page - 1)) - p.start_page + 1
        else:
            index = int(self.position.get("offset", 0)) // p.page_size
        in_flight: dict[int, asyncio.Task[httpx.Response]] = {}
        ahead = self.config.prefetch
        try:
            while True:
                for i in range(index, index + ahead):
                    if i not in in_flight:
                        in_flight[i] = asyncio.create_task(
                            self._get(self.config.url, self._numbered_params(i))
                        )
                page = self._parse(await in_flight.pop(index))
                if not page.records:
                    return
                self.total += len(page.records)
                index += 1
                if p.style == "page":
                    position = {
                        "current_page": p.start_page + index - 1,
                        "page_size": p.page_size,
                        "total_processed": self.total,
                    }
                else:
                    position = {"offset": index * p.page_size, "total_processed": self.total}
                yield Batch(page.records, position, checkpoint_after=True)
                if len(page.records) < p.page_size or (
                    page.total is not None and self.total >= page.total
                ):
                    return
        finally:
            for task in in_flight.values():
                task.cancel()
            await asyncio.gather(*in_flight.values(), return_exceptions=True)

    # --- linked pages (cursor, next URL, Link header) ----------------------------------

    async def _linked(self) -> AsyncIterator[Batch]:
        cfg = self.config
        p = cfg.pagination
        url: str | None = self.position.get("next_url") or cfg.url
        cursor = self.position.get("cursor")
        if (
            self.position
            and p.style in ("next_url", "link_header")
            and not self.position.get("next_url")
        ):
            return  # the restored position says there was no next page
        if self.position and p.style == "cursor" and cursor is None:
            return
        while url is not None:
            params = dict(cfg.params) if url == cfg.url else {}
            if p.style == "cursor" and cursor is not None:
                params[p.cursor_param] = cursor
            page = self._parse(await self._get(url, params))
            self.total += len(page.records)
            if p.style == "cursor":
                cursor = page.next_cursor
                position: dict[str, Any] = {"cursor": cursor, "total_processed": self.total}
                next_url = cfg.url if cursor is not None and page.records else None
            elif p.style == "none":
                next_url = None
                position = {"done": True, "total_processed": self.total}
            else:
                next_url = page.next_url if page.records else None
                position = {"next_url": next_url, "total_processed": self.total}
            if page.records:
                yield Batch(page.records, position, checkpoint_after=True)
            if page.total is not None and self.total >= page.total:
                return
            url = next_url

    def read(self) -> AsyncIterator[Batch]:
        if self.config.pagination.style in ("page", "offset"):
            return self._numbered()
        if self.config.pagination.style == "none" and self.position.get("done"):
            return _empty()
        return self._linked()

    async def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()


async def _empty() -> AsyncIterator[Batch]:
    return
    yield  # pragma: no cover - makes this an async generator
