"""The core's built-in plugin: registers the ``memory`` and ``lmdb`` state backends through
the same hooks a connector uses."""

from __future__ import annotations

from typing import Any

from pipeline_core.hookspecs import hookimpl
from pipeline_core.plugins.registry import TypeRegistry


@hookimpl
def pipeline_register_state_backends(registry: TypeRegistry[Any]) -> None:
    # by reference, as the connectors do: discovery must not import lmdb
    registry.add("pipeline_core.state.memory:MemoryStateBackend", type_name="memory")
    registry.add("pipeline_core.state.lmdb_backend:LmdbStateBackend", type_name="lmdb")
