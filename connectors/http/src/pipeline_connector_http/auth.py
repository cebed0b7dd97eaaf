"""httpx authentication for the configured auth types (secrets never logged).

Every credential built here from the config — a basic-auth header, a fetched OAuth2
access token — is given to the core's redactor (``remember_secret``), so that a server
echoing the request shows the reference the secret came from, not the credential."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncGenerator, Generator

import httpx

from pipeline_connector_http.config import AuthConfig
from pipeline_core import FatalConnectorError, remember_secret, url_identity

__all__ = ["make_auth"]


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class _ApiKey(httpx.Auth):
    def __init__(self, key: str, name: str, location: str) -> None:
        self.key, self.name, self.location = key, name, location

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.location == "header":
            request.headers[self.name] = self.key
        else:
            request.url = request.url.copy_merge_params({self.name: self.key})
        yield request


class _OAuth2ClientCredentials(httpx.Auth):
    """Fetches a token from ``token_url``, reuses it until it expires (or a 401 says it
    did), then fetches a new one."""

    def __init__(self, cfg: AuthConfig) -> None:
        self.cfg = cfg
        self.token: str | None = None
        self.expires_at = 0.0
        self.fetched = 0  # how many tokens were fetched (for tests and metrics)

    def _token_request(self) -> httpx.Request:
        data = {
            "grant_type": "client_credentials",
            "client_id": self.cfg.client_id or "",
            "client_secret": self.cfg.client_secret or "",
        }
        if self.cfg.scope:
            data["scope"] = self.cfg.scope
        return httpx.Request("POST", self.cfg.token_url or "", data=data)

    def _take(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise FatalConnectorError(
                f"OAuth2 token request to {url_identity(self.cfg.token_url or '')} failed "
                f"with status {response.status_code}"
            )
        body = response.json()
        self.token = body["access_token"]
        remember_secret(str(self.token), derived_from=self.cfg.client_secret or "")
        self.expires_at = time.monotonic() + float(body.get("expires_in", 3600)) - 5
        self.fetched += 1

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self.token is None or time.monotonic() >= self.expires_at:
            token_response = yield self._token_request()
            await token_response.aread()
            self._take(token_response)
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code == 401:  # revoked or expired early: one fresh token
            token_response = yield self._token_request()
            await token_response.aread()
            self._take(token_response)
            request.headers["Authorization"] = f"Bearer {self.token}"
            yield request


def _basic(username: str, password: str) -> httpx.BasicAuth:
    # the header httpx builds, base64 of "user:password": no longer the password's text
    userpass = f"{username}:{password}"
    remember_secret(base64.b64encode(userpass.encode()).decode(), derived_from=userpass)
    return httpx.BasicAuth(username, password)


def make_auth(cfg: AuthConfig | None) -> httpx.Auth | None:
    """The httpx auth for ``cfg`` (None for none); its derived credentials redacted."""
    if cfg is None:
        return None
    if cfg.type == "bearer":
        return _Bearer(cfg.token or "")
    if cfg.type == "basic":
        return _basic(cfg.username or "", cfg.password or "")
    if cfg.type == "api_key":
        return _ApiKey(cfg.key or "", cfg.name, cfg.location)
    return _OAuth2ClientCredentials(cfg)
