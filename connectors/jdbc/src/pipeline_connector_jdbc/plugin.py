"""Registers the SQL source and sink (entry point ``jdbc`` of ``pipeline.connectors``)."""

from __future__ import annotations

from typing import Any

from pipeline_core import TypeRegistry, hookimpl


@hookimpl
def pipeline_register_sources(registry: TypeRegistry[Any]) -> None:
    registry.add("pipeline_connector_jdbc.source:JdbcSource", type_name="jdbc")


@hookimpl
def pipeline_register_sinks(registry: TypeRegistry[Any]) -> None:
    registry.add("pipeline_connector_jdbc.sink:JdbcSink", type_name="jdbc")
