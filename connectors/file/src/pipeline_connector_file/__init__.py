"""Pipeline Framework file connector: JSON Lines, CSV and text files in and out."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

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


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["FileSink", "FileSinkConfig", "FileSource", "FileSourceConfig"]
