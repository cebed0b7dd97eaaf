"""Registers the file source and sink (entry point ``file`` of ``pipeline.connectors``)."""

from __future__ import annotations

from typing import Any

from pipeline_core import TypeRegistry, hookimpl


@hookimpl
def pipeline_register_sources(registry: TypeRegistry[Any]) -> None:
    registry.add("pipeline_connector_file.source:FileSource", type_name="file")


@hookimpl
def pipeline_register_sinks(registry: TypeRegistry[Any]) -> None:
    registry.add("pipeline_connector_file.sink:FileSink", type_name="file")
