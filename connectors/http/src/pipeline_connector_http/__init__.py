"""Pipeline Framework HTTP connector: paged REST APIs in, batched requests out (httpx)."""

from pipeline_connector_http.config import (
    AuthConfig,
    HttpSinkConfig,
    HttpSourceConfig,
    PaginationConfig,
    RetryConfig,
)
from pipeline_connector_http.sink import HttpSink
from pipeline_connector_http.source import HttpSource

__all__ = [
    "AuthConfig",
    "HttpSink",
    "HttpSinkConfig",
    "HttpSource",
    "HttpSourceConfig",
    "PaginationConfig",
    "RetryConfig",
]
