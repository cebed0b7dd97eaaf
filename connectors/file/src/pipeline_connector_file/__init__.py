"""Pipeline Framework file connector: JSON Lines, CSV and text files in and out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline_core.lazy import lazy_exports

if TYPE_CHECKING:
    from pipeline_connector_file.config import FileSinkConfig, FileSourceConfig
    from pipeline_connector_file.sink import FileSink
    from pipeline_connector_file.source import FileSource

# Loaded on first use: discovering the plugin (``pipeline_connector_file.plugin``) must not
# import the connector's client libraries, which only a job that uses it needs.
_EXPORTS = {
    "FileSink": "pipeline_connector_file.sink",
    "FileSinkConfig": "pipeline_connector_file.config",
    "FileSource": "pipeline_connector_file.source",
    "FileSourceConfig": "pipeline_connector_file.config",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = ["FileSink", "FileSinkConfig", "FileSource", "FileSourceConfig"]
