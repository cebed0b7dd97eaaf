"""Pipeline Framework SQL connector: tables and queries in, tables out (SQLAlchemy 2)."""

from pipeline_connector_jdbc.config import JdbcSinkConfig, JdbcSourceConfig
from pipeline_connector_jdbc.sink import JdbcSink
from pipeline_connector_jdbc.source import JdbcSource

__all__ = ["JdbcSink", "JdbcSinkConfig", "JdbcSource", "JdbcSourceConfig"]
