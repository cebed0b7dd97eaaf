"""Pipeline Framework file connector: JSON Lines, CSV and text files in and out."""

from pipeline_connector_file.config import FileSinkConfig, FileSourceConfig
from pipeline_connector_file.sink import FileSink
from pipeline_connector_file.source import FileSource

__all__ = ["FileSink", "FileSinkConfig", "FileSource", "FileSourceConfig"]
