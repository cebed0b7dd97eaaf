"""Pipeline Framework SQL connector: tables and queries in, tables out (SQLAlchemy 2)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

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


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["JdbcSink", "JdbcSinkConfig", "JdbcSource", "JdbcSourceConfig"]
