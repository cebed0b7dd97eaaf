"""The ``http`` source: a paged REST API, page by page, prefetching where it can."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from pipeline_connector_http.auth import make_auth
from pipeline_connector_http.client import RateLimiter, request
from pipeline_connector_http.config import HttpSourceConfig
from pipeline_connector_http.paths import MISSING, get_path
from pipeline_connector_http.reach import reachable
from pipeline_core import (
    Batch,
    FatalConnectorError,
    RuntimeContext,
    Source,
    SourceProgress,
    url_identity,
)

__all__ = ["HttpSource"]

log = logging.getLogger("pipeline_connector_http")


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

    Positions: ``page`` style ``{"current_page", "page_size", "page_length",
    "total_processed"}``; ``offset`` ``{"offset", "page_length", "total_processed"}`` (the
    next offset; ``page_length`` is the longest page the API served); ``cursor``
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
        #: the total the API stated last (``total_path``), if any
        self.reported_total: int | None = None
        #: records short of that total when the sync ended (``on_total_mismatch: warn``)
        self.missing = 0
        self._capped = False

    def identity(self, job_name: str) -> dict[str, Any]:
        """The endpoint (without credentials or query): pages and cursors are its."""
        return {"type": self.type_name, "url": url_identity(self.config.url)}

    async def check_connection(self) -> str | None:
        """``validate --connect``: a GET of the URL, with the configured params (no
        paging ones), headers and auth, answers 2xx (its body is not read)."""
        cfg = self.config
        return await reachable(
            cfg.url,
            method="GET",
            params=cfg.params,
            headers=cfg.headers,
            auth=cfg.auth,
            request_timeout=cfg.timeout,
            http2=cfg.http2,
        )

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
            # orjson: 4x the stdlib's speed on a page of records (JSON is UTF-8 by RFC
            # 8259); httpx's own decoding only for a body in another declared charset
            body = (
                orjson.loads(response.content)
                if (response.charset_encoding or "utf-8").lower().replace("_", "-")
                in ("utf-8", "utf8", "ascii", "us-ascii")
                else response.json()
            )
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

    def _numbered_params(self, key: int) -> dict[str, Any]:
        """Query parameters for page number ``key`` (page style) or offset ``key``."""
        p = self.config.pagination
        params = dict(self.config.params)
        if p.style == "page":
            params[p.page_param] = key
            if p.size_param:
                params[p.size_param] = p.page_size
        else:
            params[p.offset_param] = key
            params[p.limit_param] = p.page_size
        return params

    def _wanted(self, key: int, step: int) -> list[int]:
        """The requests to have in flight: ``key`` (needed now) and up to ``prefetch - 1``
        guesses after it, none past the stated total."""
        offset_style = self.config.pagination.style == "offset"
        wanted = [key]
        for k in range(1, self.config.prefetch):
            if self.reported_total is not None and self.total + k * step >= self.reported_total:
                break
            wanted.append(key + k * step if offset_style else key + k)
        return wanted

    async def _numbered(self) -> AsyncIterator[Batch]:
        """Page and offset styles. Offsets advance by the records received (an API that
        serves fewer than asked loses nothing); prefetched requests that guessed wrong
        offsets are dropped. The end is an empty page, the stated total reached, or,
        without a total, a page shorter than the longest one before it: a first page
        shorter than ``page_size`` is followed by one more request, because it may be the
        API's cap (then paging goes on in the API's page size, with a warning)."""
        p = self.config.pagination
        offset_style = p.style == "offset"
        if offset_style:
            key = int(self.position.get("offset", 0))
        else:
            key = int(self.position.get("current_page", p.start_page - 1)) + 1
        restored = self.position.get("page_length")
        longest: int | None = int(restored) if restored else None
        previous: list[Any] | None = None
        in_flight: dict[int, asyncio.Task[httpx.Response]] = {}
        try:
            while True:
                wanted = self._wanted(key, longest or p.page_size)
                stale = [in_flight.pop(k) for k in list(in_flight) if k not in wanted]
                if stale:  # guessed offsets that the pages received did not confirm
                    for task in stale:
                        task.cancel()
                    await asyncio.gather(*stale, return_exceptions=True)
                for k in wanted:
                    if k not in in_flight:
                        in_flight[k] = asyncio.create_task(
                            self._get(self.config.url, self._numbered_params(k))
                        )
                page = self._parse(await in_flight.pop(key))
                if page.total is not None:
                    self.reported_total = page.total
                n = len(page.records)
                if n == 0:
                    break
                if previous is not None and page.records == previous:
                    log.warning(
                        "%s: %s %d repeats the page before it; taken as the end",
                        self.ctx.component,
                        "offset" if offset_style else "page",
                        key,
                    )
                    break
                if longest is not None and longest < p.page_size and not self._capped:
                    self._capped = True
                    log.warning(
                        "%s: the API serves at most %d records per page (page_size is %d); "
                        "paging on in pages of %d",
                        self.ctx.component,
                        longest,
                        p.page_size,
                        longest,
                    )
                short = longest is not None and n < longest
                longest = max(longest or 0, n)
                self.total += n
                if offset_style:
                    key += n
                    position: dict[str, Any] = {"offset": key}
                else:
                    position = {"current_page": key, "page_size": p.page_size}
                    key += 1
                position["page_length"] = longest
                position["total_processed"] = self.total
                yield Batch(page.records, position, checkpoint_after=True)
                if page.total is not None:
                    if self.total >= page.total:
                        break
                elif short:
                    break
                previous = page.records
        finally:
            for task in in_flight.values():
                task.cancel()
            await asyncio.gather(*in_flight.values(), return_exceptions=True)
        self._ended()

    # --- linked pages (cursor, next URL, Link header) ----------------------------------

    async def _linked(self) -> AsyncIterator[Batch]:
        """Cursor and URL styles follow the API's next cursor / URL / link while there is
        one, also past an empty page (some APIs serve those mid-sync) and past a stated
        total (checked only at the end). The same cursor or URL again ends paging after
        an empty page and fails it after a full one (it would repeat that page forever)."""
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
            if page.total is not None:
                self.reported_total = page.total
            self.total += len(page.records)
            asked, found = (
                (cursor, page.next_cursor) if p.style == "cursor" else (url, page.next_url)
            )
            if found is not None and found == asked:
                if page.records:
                    raise FatalConnectorError(
                        f"the API answered {p.style} {asked!r} with the same {p.style} as the "
                        "next: paging would repeat that page forever",
                        component=self.ctx.component,
                    )
                found = None
            if p.style == "cursor":
                cursor = found
                position: dict[str, Any] = {"cursor": cursor, "total_processed": self.total}
                next_url = cfg.url if cursor is not None else None
            elif p.style == "none":
                next_url = None
                position = {"done": True, "total_processed": self.total}
            else:
                next_url = found
                position = {"next_url": next_url, "total_processed": self.total}
            if page.records:
                yield Batch(page.records, position, checkpoint_after=True)
            url = next_url
        self._ended()

    def _ended(self) -> None:
        """Paging ended normally: fewer records than the API's stated total is never
        silent."""
        stated = self.reported_total
        if stated is None or self.total >= stated:
            return
        p = self.config.pagination
        message = (
            f"the API stated a total of {stated:,} records ({p.total_path}) but its pages "
            f"ended after {self.total:,}: {stated - self.total:,} missing"
        )
        if p.on_total_mismatch == "fail":
            raise FatalConnectorError(
                f"{message} (set pagination.on_total_mismatch: warn to accept this)",
                component=self.ctx.component,
            )
        self.missing = stated - self.total
        log.warning("%s: %s", self.ctx.component, message)

    def progress(self) -> SourceProgress | None:
        """Records read of the API's stated total (when ``total_path`` gives one)."""
        if self.reported_total is None:
            return None
        return SourceProgress(self.total, self.reported_total, "records")

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
