"""What every request passes before a handler sees it, and what every response carries.

- **Host allow-list** (every request): the ``Host`` header must name this service —
  loopback names by default, plus the address ``serve --host`` binds to when that is a
  specific one, plus ``PIPELINE_API_ALLOWED_HOSTS``. A DNS-rebinding page reaches the
  server under its own name, so it is refused before it can read anything.
- **Cross-site changes** (every method but GET/HEAD/OPTIONS): an ``Origin`` (or a
  ``Sec-Fetch-Site``) that is not this service's own origin or one of
  ``PIPELINE_API_ALLOWED_ORIGINS`` is refused; a body must be JSON (or YAML, for job
  definitions) — the content types a browser may send cross-site without asking first
  (``text/plain``, forms) are refused with 415.
- **Bounded bodies**: at most ``PIPELINE_API_MAX_BODY`` bytes (1 MiB by default); 413
  beyond, read no further.
- **Headers**: ``X-Frame-Options: DENY``, a Content-Security-Policy (``frame-ancestors
  'none'``; the dashboard's own is stricter and set by its handler), ``nosniff``,
  ``no-referrer``, ``no-store``.

It is plain ASGI, so it runs before routing and the error handlers: a refused request
never reaches Starlette.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import attrs
import orjson

__all__ = ["LOOPBACK_HOSTS", "MAX_BODY", "SECURITY_HEADERS", "RequestGuard", "SecurityPolicy"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
MAX_BODY = 1024 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: what a change may be sent as; anything else (text/plain, forms) is refused
BODY_TYPES = frozenset({"application/json", "application/yaml", "application/x-yaml", "text/yaml"})

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
_DEFAULT_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
SECURITY_HEADERS.append((b"content-security-policy", _DEFAULT_CSP))


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


#: a Host header: a name or IPv4 address, or an [IPv6] address, and an optional port
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::([0-9]{1,5}))?")


def host_of(value: str) -> str:
    """``"127.0.0.1:8080"`` → ``127.0.0.1``; ``"[::1]:8080"`` → ``::1``; lower case.
    Anything that is not a well-formed Host header (``a:1@evil``, ``[::1]x``, a port
    above 65535, a bare IPv6 address) gives ``""``, which no allow-list contains."""
    m = _HOST.fullmatch(value.strip().lower())
    if m is None or (m.group(2) is not None and int(m.group(2)) > 65535):
        return ""
    return m.group(1).strip("[]")


def _is_wildcard(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


@attrs.frozen
class SecurityPolicy:
    """Which names and origins this service answers to, and how big a body may be."""

    allowed_hosts: frozenset[str] = frozenset(LOOPBACK_HOSTS)
    allowed_origins: frozenset[str] = frozenset()
    max_body: int = MAX_BODY

    @property
    def any_host(self) -> bool:
        return "*" in self.allowed_hosts

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        bind_host: str | None = None,
        extra_hosts: Iterable[str] = (),
    ) -> SecurityPolicy:
        """Loopback names, the bound address (unless it is 0.0.0.0 / ::), ``extra_hosts``
        and ``PIPELINE_API_ALLOWED_HOSTS``; ``PIPELINE_API_ALLOWED_ORIGINS`` (full origins
        such as ``https://pipelines.example.com``); ``PIPELINE_API_MAX_BODY`` (bytes)."""
        env = os.environ if environ is None else environ
        hosts = set(LOOPBACK_HOSTS)
        if bind_host and not _is_wildcard(bind_host):
            hosts.add(bind_host.strip("[]").lower())
        hosts.update(host_of(h) if h != "*" else h for h in extra_hosts)
        hosts.update(
            host_of(h) if h != "*" else h for h in _split(env.get("PIPELINE_API_ALLOWED_HOSTS"))
        )
        origins = frozenset(
            o.rstrip("/").lower() for o in _split(env.get("PIPELINE_API_ALLOWED_ORIGINS"))
        )
        raw = env.get("PIPELINE_API_MAX_BODY", str(MAX_BODY)).strip()
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"PIPELINE_API_MAX_BODY must be a number of bytes >= 1, got {raw!r}")
        return cls(frozenset(hosts), origins, int(raw))

    def host_allowed(self, host: str) -> bool:
        return self.any_host or host_of(host) in self.allowed_hosts

    def origin_allowed(self, origin: str, host: str) -> bool:
        """Our own origin (the one the request was sent to) or an explicitly allowed one."""
        origin = origin.strip().rstrip("/").lower()
        if origin in self.allowed_origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == host.strip().lower()


def _refuse(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, orjson.dumps({"error": code, "message": message, "details": None})


_NO_TYPE = _refuse(415, "unsupported_media_type", "a body needs Content-Type: application/json")


class RequestGuard:
    """ASGI middleware applying a :class:`SecurityPolicy` (see the module docstring)."""

    def __init__(self, app: ASGIApp, policy: SecurityPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        repeated = False
        for k, v in scope["headers"]:
            name = k.decode("latin-1")
            repeated = repeated or (name in ("host", "origin") and name in headers)
            headers[name] = v.decode("latin-1")
        refusal = self._check(scope["method"], headers)
        if repeated:  # which one would a proxy have looked at?
            refusal = _refuse(400, "invalid_request", "Host or Origin is given more than once")
        if refusal is None and scope["method"] not in SAFE_METHODS:
            refusal, receive = await self._buffer_body(headers, receive)
        if refusal is not None:
            await self._send_refusal(send, *refusal)
            return
        await self.app(scope, receive, self._with_headers(send))

    def _check(self, method: str, headers: dict[str, str]) -> tuple[int, bytes] | None:
        host = headers.get("host", "")
        if not self.policy.host_allowed(host):
            allowed = ", ".join(sorted(self.policy.allowed_hosts))
            return _refuse(
                400,
                "host_not_allowed",
                f"this service does not answer to the Host {host[:100]!r} "
                f"(allowed: {allowed}; add names with PIPELINE_API_ALLOWED_HOSTS or "
                "serve --allowed-host)",
            )
        if method in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and not self.policy.origin_allowed(origin, host):
            return _refuse(
                403,
                "cross_origin",
                f"a change from the origin {origin[:100]!r} is refused (allowed: this "
                "service's own origin and PIPELINE_API_ALLOWED_ORIGINS)",
            )
        fetch_site = headers.get("sec-fetch-site", "").lower()
        if "cross-site" in fetch_site or "same-site" in fetch_site:
            # same-site is another origin too (another port or subdomain of this site)
            return _refuse(403, "cross_origin", "a change from another origin is refused")
        kind = headers.get("content-type")
        if kind is not None and kind.split(";")[0].strip().lower() not in BODY_TYPES:
            return _refuse(
                415,
                "unsupported_media_type",
                f"send changes as application/json (job definitions also as application/yaml), "
                f"not {kind.split(';')[0].strip()[:60]!r}",
            )
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                return _refuse(400, "invalid_body", "Content-Length is not a number")
            if int(length) > self.policy.max_body:
                return self._too_large()
            if int(length) > 0 and kind is None:
                return _refuse(
                    415, "unsupported_media_type", "a body needs Content-Type: application/json"
                )
        elif "transfer-encoding" in headers and kind is None:
            return _refuse(
                415, "unsupported_media_type", "a body needs Content-Type: application/json"
            )
        return None

    def _too_large(self) -> tuple[int, bytes]:
        return _refuse(
            413,
            "body_too_large",
            f"the request body is larger than {self.policy.max_body:,} bytes "
            "(PIPELINE_API_MAX_BODY)",
        )

    async def _buffer_body(
        self, headers: dict[str, str], receive: Receive
    ) -> tuple[tuple[int, bytes] | None, Receive]:
        """Read the whole (bounded) body now, so that a chunked body larger than the limit
        is refused before a handler runs; the handler gets it replayed."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _refuse(400, "invalid_body", "the client went away"), receive
            body = message.get("body", b"")
            size += len(body)
            if size > self.policy.max_body:
                return self._too_large(), receive
            chunks.append(body)
            if not message.get("more_body", False):
                break
        data = b"".join(chunks)
        if data and "content-type" not in headers:
            return _refuse(
                415, "unsupported_media_type", "a body needs Content-Type: application/json"
            ), receive
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        return None, replay

    def _with_headers(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in present]
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        return wrapped

    async def _send_refusal(self, send: Send, status: int, body: bytes) -> None:
        await self._with_headers(send)(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
