"""Configuration of the HTTP source and sink (type ``http``)."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from pipeline_core import FieldError

__all__ = ["AuthConfig", "HttpSinkConfig", "HttpSourceConfig", "PaginationConfig", "RetryConfig"]


def _positive(_i: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value <= 0:
        raise FieldError(f"expected a number > 0, got {value!r}", attr.name)


def _http_url(_i: Any, attr: attrs.Attribute[Any], value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise FieldError(f"expected an http:// or https:// URL, got {value!r}", attr.name)


@attrs.define(frozen=True, kw_only=True)
class AuthConfig:
    """``bearer`` (token), ``basic`` (username, password), ``api_key`` (key, name, in),
    ``oauth2`` (client credentials: token_url, client_id, client_secret, scope). Write
    secrets as ``${env:NAME}``; they are never logged."""

    type: Literal["bearer", "basic", "api_key", "oauth2"]
    token: str | None = attrs.field(default=None, repr=False)
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    key: str | None = attrs.field(default=None, repr=False)
    name: str = "X-API-Key"
    #: api_key: send it as a ``header`` or a ``query`` parameter.
    location: Literal["header", "query"] = "header"
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = attrs.field(default=None, repr=False)
    scope: str | None = None

    def __attrs_post_init__(self) -> None:
        needs = {
            "bearer": ["token"],
            "basic": ["username", "password"],
            "api_key": ["key"],
            "oauth2": ["token_url", "client_id", "client_secret"],
        }[self.type]
        for field in needs:
            if getattr(self, field) is None:
                raise FieldError(f"auth type {self.type!r} needs {field!r}", field)


@attrs.define(frozen=True, kw_only=True)
class RetryConfig:
    """Retries of connect errors, timeouts, 5xx and 429 (other 4xx are not retried)."""

    max_retries: int = 5
    #: First backoff in seconds; doubled each retry, with full jitter, capped by max_backoff.
    backoff: float = attrs.field(default=0.5, validator=_positive)
    max_backoff: float = attrs.field(default=30.0, validator=_positive)


@attrs.define(frozen=True, kw_only=True)
class PaginationConfig:
    """How to get from one page to the next.

    - ``page``: ``?page=N&per_page=S`` (page numbers from ``start_page``)
    - ``offset``: ``?offset=O&limit=S``
    - ``cursor``: ``?cursor=C`` with C taken from the body at ``cursor_path``
    - ``next_url``: the next page's URL in the body at ``next_url_path``
    - ``link_header``: the RFC 8288 ``Link: <…>; rel="next"`` header
    - ``none``: one request

    Paging never ends on a guess: page and offset styles stop at an empty page, at the
    ``total`` (``total_path``) once reached, or - without a total - at a page shorter than
    the longest page the API served before it (an API that caps its pages below
    ``page_size`` is detected and paged through in its own page size; offsets advance by
    the records received). Cursor and URL styles stop when there is no next cursor / URL
    / link or a page is empty. A sync that ends with fewer records than the stated total
    fails (``on_total_mismatch: fail``) or logs a warning (``warn``).
    """

    style: Literal["page", "offset", "cursor", "next_url", "link_header", "none"] = "page"
    page_param: str = "page"
    start_page: int = 1
    size_param: str | None = "per_page"
    page_size: int = attrs.field(default=100, validator=_positive)
    offset_param: str = "offset"
    limit_param: str = "limit"
    cursor_param: str = "cursor"
    cursor_path: str | None = None
    next_url_path: str | None = None
    total_path: str | None = None
    #: A sync that ends with fewer records than the API's stated total: ``fail`` the job
    #: (no silent truncation) or ``warn`` and complete.
    on_total_mismatch: Literal["fail", "warn"] = "fail"

    def __attrs_post_init__(self) -> None:
        if self.style == "cursor" and not self.cursor_path:
            raise FieldError("cursor pagination needs 'cursor_path'", "cursor_path")
        if self.style == "next_url" and not self.next_url_path:
            raise FieldError("next_url pagination needs 'next_url_path'", "next_url_path")


@attrs.define(frozen=True, kw_only=True)
class HttpSourceConfig:
    url: str = attrs.field(validator=_http_url)
    params: dict[str, Any] = attrs.field(factory=dict)
    headers: dict[str, str] = attrs.field(factory=dict)
    #: Where the records are in the body (dotted path; default: the body is the list).
    records_path: str | None = None
    pagination: PaginationConfig = attrs.field(factory=PaginationConfig)
    #: Pages in flight at once (page and offset styles); records still come in page order.
    prefetch: int = attrs.field(default=4, validator=_positive)
    #: Requests per second at most (client-side); none = unlimited.
    rate_limit: float | None = attrs.field(default=None, validator=_positive)
    timeout: float = attrs.field(default=30.0, validator=_positive)
    retry: RetryConfig = attrs.field(factory=RetryConfig)
    auth: AuthConfig | None = None
    http2: bool = False


@attrs.define(frozen=True, kw_only=True)
class HttpSinkConfig:
    url: str = attrs.field(validator=_http_url)
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    #: ``batch``: one request per batch; ``record``: one request per record.
    mode: Literal["batch", "record"] = "batch"
    #: Batch mode: wrap the records as ``{batch_key: [...]}`` (default: a bare JSON array).
    batch_key: str | None = None
    #: A JSON body in which the string ``"$records"`` (batch mode) or ``"$record"`` (record
    #: mode) is replaced by the data, e.g. ``{"source": "pipeline", "events": "$records"}``.
    body_template: Any = None
    headers: dict[str, str] = attrs.field(factory=dict)
    #: Record mode: requests in flight at once.
    concurrency: int = attrs.field(default=8, validator=_positive)
    #: Send ``Idempotency-Key: <sha256 of the body>`` so the server can drop replays.
    idempotency_key: bool = False
    timeout: float = attrs.field(default=30.0, validator=_positive)
    retry: RetryConfig = attrs.field(factory=RetryConfig)
    auth: AuthConfig | None = None

    def __attrs_post_init__(self) -> None:
        if self.body_template is not None and self.batch_key is not None:
            raise FieldError(
                "give either 'batch_key' or 'body_template', not both", "body_template"
            )
