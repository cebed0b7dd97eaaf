"""Requests with retries, backoff with jitter, Retry-After, and a client-side rate limit."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from typing import Any

import httpx

from pipeline_connector_http.config import RetryConfig
from pipeline_core import FatalConnectorError, RetriableConnectorError, redact

__all__ = ["RateLimiter", "request"]

log = logging.getLogger("pipeline_connector_http")

RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})


class RateLimiter:
    """At most ``per_second`` requests per second, spaced evenly."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            if self.next_at > now:
                await asyncio.sleep(self.next_at - now)
            self.next_at = max(now, self.next_at) + self.interval


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    retry: RetryConfig,
    limiter: RateLimiter | None = None,
    component: str = "http",
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; retry connect errors, timeouts, 5xx and 429 with exponential
    backoff and full jitter (or the server's Retry-After); fail with the URL and status."""
    attempt = 0
    while True:
        if limiter is not None:
            await limiter.wait()
        problem: str
        wait: float | None = None
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.TransportError as exc:  # connect errors, timeouts, broken reads
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code < 400:
                return response
            shown = str(response.request.url).split("?")[0]
            if response.status_code not in RETRIED_STATUS:
                raise FatalConnectorError(
                    f"{method} {shown} answered {response.status_code} "
                    # redacted before it is cut: a cut secret would no longer match
                    f"{response.reason_phrase}: {redact(response.text)[:200]}",
                    component=component,
                )
            problem = f"status {response.status_code}"
            wait = _retry_after(response)
        if attempt >= retry.max_retries:
            raise RetriableConnectorError(
                f"{method} {url.split('?')[0]} failed after {attempt + 1} attempts ({problem})",
                component=component,
            )
        if wait is None:
            wait = random.uniform(0, min(retry.max_backoff, retry.backoff * 2**attempt))
        log.info(
            "%s: %s %s: %s; retry %d in %.2f s", component, method, url, problem, attempt + 1, wait
        )
        attempt += 1
        await asyncio.sleep(wait)
