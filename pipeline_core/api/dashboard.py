"""The dashboard page, with a Content-Security-Policy that allows exactly its own script
and style (by hash) and talks only to this origin; it cannot be framed."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from importlib import resources

from starlette.responses import HTMLResponse

__all__ = ["dashboard_response"]


def _hashes(page: str, tag: str) -> str:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.S)
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks
    )


@functools.cache
def _page() -> tuple[str, str]:
    page = resources.files("pipeline_core.api").joinpath("static/index.html").read_text()
    csp = (
        "default-src 'none'; "
        f"script-src {_hashes(page, 'script')}; "
        f"style-src {_hashes(page, 'style')}; "
        "connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return page, csp


def dashboard_response() -> HTMLResponse:
    page, csp = _page()
    return HTMLResponse(page, headers={"Content-Security-Policy": csp})
