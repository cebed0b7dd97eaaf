"""A real HTTP API on loopback for the tests (and the example): every pagination style,
auth flows, a collecting sink endpoint, and optional injected faults."""

from __future__ import annotations

import base64
import contextlib
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class _Server(ThreadingHTTPServer):
    # Keep-alive handler threads may sit in readline(): do not wait for them on close.
    daemon_threads = True
    block_on_close = False


class Api:
    def __init__(
        self,
        n: int = 1000,
        *,
        fail_rate: float = 0.0,
        seed: int = 1,
        slow: float = 0.0,
        cap: int | None = None,
        short: dict[int, int] | None = None,
        stated_total: int | None = None,
        clamp: bool = False,
        empty_at: set[int] | None = None,
        repeat_at: int | None = None,
    ) -> None:
        self.records = [{"id": i, "name": f"r{i}"} for i in range(n)]
        #: /page, /offset: serve at most this many records per page, whatever was asked
        self.cap = cap
        #: /page: page number -> records served of it (the rest is lost, the API's fault);
        #: /offset: offset -> records served from there (a partial page, nothing lost)
        self.short = short or {}
        #: the "total" the bodies state (default: the number of records)
        self.stated_total = n if stated_total is None else stated_total
        #: /page: a page number past the end serves the last page again
        self.clamp = clamp
        #: /cursor, /nexturl, /link: an empty page that links on, before the page at these
        self.empty_at = empty_at or set()
        #: /cursor, /nexturl, /link: the page at this start links to itself
        self.repeat_at = repeat_at
        self.fail_rate = fail_rate
        self.slow = slow
        self.rnd = random.Random(seed)
        self.lock = threading.Lock()
        self.hits: Counter[str] = Counter()
        self.faults = 0
        self.tokens_issued = 0
        self.valid_tokens: dict[str, int] = {}
        self.token_uses = 3  # a token works this many times, then answers 401
        self.received: list[Any] = []
        self.idempotency_keys: set[str] = set()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Api:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def handle(self) -> None:
                # a client killed mid-request (the crash tests do that) is not an error
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    super().handle()

            def send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def fault(self) -> bool:
                with api.lock:
                    hit = api.fail_rate and api.rnd.random() < api.fail_rate
                    kind = api.rnd.choice(["500", "429", "slow"]) if hit else None
                    if hit:
                        api.faults += 1
                if kind == "500":
                    self.send(500, {"error": "boom"})
                elif kind == "429":
                    self.send(429, {"error": "slow down"}, {"Retry-After": "0"})
                elif kind == "slow":
                    time.sleep(1.5)  # longer than the tests' client timeout
                    self.send(200, {"late": True})
                return bool(kind)

            def authorized(self, path: str) -> bool:
                auth = self.headers.get("Authorization", "")
                if path == "/bearer":
                    return auth == "Bearer s3cret"
                if path == "/basic":
                    return auth == "Basic " + base64.b64encode(b"ada:pw").decode()
                if path == "/apikey":
                    q = parse_qs(urlparse(self.path).query)
                    return self.headers.get("X-API-Key") == "k1" or q.get("api_key") == ["k1"]
                if path == "/oauth":
                    token = auth.removeprefix("Bearer ")
                    with api.lock:
                        left = api.valid_tokens.get(token, 0)
                        if left <= 0:
                            return False
                        api.valid_tokens[token] = left - 1
                    return True
                return True

            def do_GET(self) -> None:
                def linked(start: int, gap: bool) -> tuple[list[Any], tuple[int, bool] | None]:
                    """Records of a linked page from ``start`` and the next (start, gap)."""
                    if start in api.empty_at and not gap:
                        return [], (start, True)  # an empty page that links on
                    data = api.records[start : start + 100]
                    if start == api.repeat_at:
                        return data, (start, gap)  # links to itself
                    return data, (start + 100, False) if start + 100 < len(api.records) else None

                def query(start: int, gap: bool) -> str:
                    return f"start={start}" + "&gap=1" * gap

                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                with api.lock:
                    api.hits[self.path] += 1
                if api.slow:
                    time.sleep(api.slow)
                if not self.authorized(url.path):
                    self.send(401, {"error": "unauthorized"})
                    return
                if url.path != "/fail404" and self.fault():
                    return
                recs = api.records
                total = api.stated_total
                if url.path in ("/page", "/bearer", "/basic", "/apikey", "/oauth"):
                    page, size = int(q.get("page", 1)), int(q.get("per_page", 100))
                    size = min(size, api.cap or size)
                    if api.clamp and recs:
                        page = min(page, (len(recs) + size - 1) // size)
                    served = recs[(page - 1) * size : page * size][: api.short.get(page)]
                    self.send(200, {"data": served, "total": total})
                elif url.path == "/offset":
                    off, lim = int(q["offset"]), int(q["limit"])
                    lim = min(lim, api.cap or lim, api.short.get(off, lim))
                    self.send(200, {"items": recs[off : off + lim], "total": total})
                elif url.path == "/cursor":
                    raw = q.get("cursor", "c0")
                    data, nxt = linked(int(raw[1:]), raw[0] == "e")
                    cursor = None if nxt is None else ("e" if nxt[1] else "c") + str(nxt[0])
                    body = {"data": data, "meta": {"next": cursor}}
                    self.send(200, {**body, "total": total})
                elif url.path == "/nexturl":
                    data, nxt = linked(int(q.get("start", 0)), "gap" in q)
                    link = None if nxt is None else f"{api.base}/nexturl?{query(*nxt)}"
                    body = {"data": data, "links": {"next": link}}
                    self.send(200, {**body, "total": total})
                elif url.path == "/link":
                    data, nxt = linked(int(q.get("start", 0)), "gap" in q)
                    headers = {}
                    if nxt is not None:
                        headers["Link"] = f'</link?{query(*nxt)}>; rel="next"'
                    self.send(200, data, headers)
                elif url.path == "/utf16":  # a body in a declared charset other than UTF-8
                    body = json.dumps({"data": [{"id": 1, "name": "Zoë 日本"}]}, ensure_ascii=False)
                    data = body.encode("utf-16")
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json; charset=utf-16")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif url.path == "/fail404":
                    self.send(404, {"error": "no such thing"})
                elif url.path == "/flakypage":
                    page, size = int(q.get("page", 1)), int(q.get("per_page", 100))
                    with api.lock:
                        failing = page == 3 and api.hits[self.path] <= 2
                    if failing:  # page 3 fails twice, whoever asks
                        self.send(503, {"error": "page 3 is having a bad day"})
                    else:
                        self.send(200, {"data": recs[(page - 1) * size : page * size]})
                elif url.path == "/retryafter":
                    with api.lock:
                        first = api.hits[self.path] == 1
                    if first:
                        self.send(429, {"error": "later"}, {"Retry-After": "1"})
                    else:
                        self.send(200, recs[:10])
                elif url.path == "/always503":
                    self.send(503, {"error": "down"})
                else:
                    self.send(404, {"error": "unknown path"})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if url.path == "/token":
                    form = parse_qs(body.decode())
                    if form.get("client_secret") != ["cs"]:
                        self.send(401, {"error": "bad client"})
                        return
                    with api.lock:
                        api.tokens_issued += 1
                        token = f"tok-{api.tokens_issued}"
                        api.valid_tokens[token] = api.token_uses
                    self.send(200, {"access_token": token, "expires_in": 3600})
                    return
                if self.fault():
                    return
                key = self.headers.get("Idempotency-Key")
                with api.lock:
                    if key is None or key not in api.idempotency_keys:
                        api.received.append(json.loads(body))
                    if key is not None:
                        api.idempotency_keys.add(key)
                self.send(200, {"ok": True})

            do_PUT = do_POST

            def do_HEAD(self) -> None:  # as an endpoint made for POST answers it
                path = urlparse(self.path).path
                self.send_response(405 if self.authorized(path) else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
