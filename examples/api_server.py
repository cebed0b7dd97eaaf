"""A small paged REST API on 127.0.0.1 serving the quickstart's orders, for the HTTP example.

python examples/api_server.py [PORT]        # GET /orders?page=N&per_page=S
"""

from __future__ import annotations

import contextlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ORDERS = []
for line in (Path(__file__).parent / "data" / "orders.jsonl").read_text().splitlines():
    with contextlib.suppress(ValueError):  # the quickstart's two broken lines
        ORDERS.append(json.loads(line))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path != "/orders":
            status, body = 404, {"error": "try /orders"}
        else:
            page, size = int(q.get("page", 1)), min(int(q.get("per_page", 100)), 1000)
            status = 200
            body = {"data": ORDERS[(page - 1) * size : page * size], "total": len(ORDERS)}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"serving {len(ORDERS)} orders at http://127.0.0.1:{port}/orders", flush=True)
    server.serve_forever()
