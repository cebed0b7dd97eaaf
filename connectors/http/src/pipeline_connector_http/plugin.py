"""Registers the HTTP source and sink (entry point ``http`` of ``pipeline.connectors``)."""

from __future__ import annotations

from typing import Any

from pipeline_core import TypeRegistry, hookimpl


@hookimpl
def pipeline_register_sources(registry: TypeRegistry[Any]) -> None:
    registry.add("pipeline_connector_http.source:HttpSource", type_name="http")


@hookimpl
def pipeline_register_sinks(registry: TypeRegistry[Any]) -> None:
    registry.add("pipeline_connector_http.sink:HttpSink", type_name="http")
