"""``validate --connect`` for the HTTP source and sink: one request to the configured URL,
with the component's headers and auth, that reads and writes nothing.

The source sends the GET its first page would be (the response's body is never read);
the sink a HEAD, which an endpoint made for POST answers with 404/405 more often than
not — so for the sink only refused credentials and a gateway that cannot reach the
server count as problems. Redirects are not followed, as in a run. Messages name the
URL without credentials or query (``url_identity``).
"""

from __future__ import annotations

from typing import Any

import httpx

from pipeline_connector_http.auth import make_auth
from pipeline_connector_http.config import AuthConfig
from pipeline_core import FatalConnectorError, url_identity

__all__ = ["reachable"]

#: seconds at most for the check's request (a run uses the configured ``timeout``)
CHECK_TIMEOUT = 5.0

#: HEAD answers that say the sink's writes would fail: credentials refused, a gateway
#: that cannot reach the server
_SINK_PROBLEMS = frozenset({401, 403, 407, 502, 503, 504})


async def reachable(
    url: str,
    *,
    method: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    auth: AuthConfig | None = None,
    request_timeout: float = CHECK_TIMEOUT,
    http2: bool = False,
) -> str | None:
    """None when the server answers ``method`` as a run needs, else why not in one line.
    A GET must answer 2xx; a HEAD anything but :data:`_SINK_PROBLEMS`."""
    shown = url_identity(url)
    async with httpx.AsyncClient(
        auth=make_auth(auth),
        headers=headers,
        timeout=min(request_timeout, CHECK_TIMEOUT),
        http2=http2,
    ) as client:
        try:
            # stream: the status line and headers arrive, the body is never read
            async with client.stream(method, url, params=params or None) as response:
                status, reason = response.status_code, response.reason_phrase
        except httpx.TransportError as exc:  # refused, DNS, TLS, timeout
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return f"cannot reach {shown}: {detail}"
        except (FatalConnectorError, ValueError, KeyError) as exc:  # OAuth2's token request
            return f"cannot authenticate to {shown}: {exc}"
    refused = status in (401, 403, 407)
    if method == "HEAD" and status not in _SINK_PROBLEMS:
        return None
    if method != "HEAD" and 200 <= status < 300:
        return None
    why = f"{method} {shown} answered {status} {reason}".rstrip()
    if refused:
        return f"{why}: check the auth and headers"
    if 300 <= status < 400:
        return f"{why}: redirects are not followed; use the URL it redirects to"
    return why
