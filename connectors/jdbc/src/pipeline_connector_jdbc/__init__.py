"""Pipeline Framework SQL connector: tables and queries in, tables out (SQLAlchemy 2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline_core.lazy import lazy_exports

if TYPE_CHECKING:
    from pipeline_connector_jdbc.config import JdbcSinkConfig, JdbcSourceConfig
    from pipeline_connector_jdbc.sink import JdbcSink
    from pipeline_connector_jdbc.source import JdbcSource

# Loaded on first use: discovering the plugin (``pipeline_connector_jdbc.plugin``) must not
# import the connector's client libraries, which only a job that uses it needs.
_EXPORTS = {
    "JdbcSink": "pipeline_connector_jdbc.sink",
    "JdbcSinkConfig": "pipeline_connector_jdbc.config",
    "JdbcSource": "pipeline_connector_jdbc.source",
    "JdbcSourceConfig": "pipeline_connector_jdbc.config",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = ["JdbcSink", "JdbcSinkConfig", "JdbcSource", "JdbcSourceConfig"]
