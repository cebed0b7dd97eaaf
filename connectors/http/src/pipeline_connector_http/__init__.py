"""Pipeline Framework HTTP connector: paged REST APIs in, batched requests out (httpx)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline_core.lazy import lazy_exports

if TYPE_CHECKING:
    from pipeline_connector_http.config import (
        AuthConfig,
        HttpSinkConfig,
        HttpSourceConfig,
        PaginationConfig,
        RetryConfig,
    )
    from pipeline_connector_http.sink import HttpSink
    from pipeline_connector_http.source import HttpSource

# Loaded on first use: discovering the plugin (``pipeline_connector_http.plugin``) must not
# import the connector's client libraries, which only a job that uses it needs.
_EXPORTS = {
    "AuthConfig": "pipeline_connector_http.config",
    "HttpSink": "pipeline_connector_http.sink",
    "HttpSinkConfig": "pipeline_connector_http.config",
    "HttpSource": "pipeline_connector_http.source",
    "HttpSourceConfig": "pipeline_connector_http.config",
    "PaginationConfig": "pipeline_connector_http.config",
    "RetryConfig": "pipeline_connector_http.config",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "AuthConfig",
    "HttpSink",
    "HttpSinkConfig",
    "HttpSource",
    "HttpSourceConfig",
    "PaginationConfig",
    "RetryConfig",
]
