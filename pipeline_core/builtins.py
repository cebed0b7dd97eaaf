"""The core's built-in plugin: registers the ``memory`` and ``lmdb`` state backends through
the same hooks a connector uses."""

from __future__ import annotations

from typing import Any

from pipeline_core.hookspecs import hookimpl
from pipeline_core.plugins.registry import TypeRegistry
from pipeline_core.state.lmdb_backend import LmdbStateBackend
from pipeline_core.state.memory import MemoryStateBackend


@hookimpl
def pipeline_register_state_backends(registry: TypeRegistry[Any]) -> None:
    registry.add(MemoryStateBackend)
    registry.add(LmdbStateBackend)
