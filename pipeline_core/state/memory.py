"""The ``memory`` state backend: dicts in the process; snapshot = pickled copy."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import attrs

from pipeline_core.state.backend import StateBackend

__all__ = ["MemoryStateBackend", "MemoryStateConfig"]


@attrs.define(frozen=True, kw_only=True)
class MemoryStateConfig:
    """The memory backend has no options."""


class MemoryStateBackend(StateBackend[MemoryStateConfig]):
    """State in plain dicts: fastest, bounded by RAM, lost with the process unless
    checkpointed."""

    type_name = "memory"
    config_cls = MemoryStateConfig

    def __init__(self, config: MemoryStateConfig | None = None) -> None:
        super().__init__(config or MemoryStateConfig())
        self._data: dict[str, dict[Any, Any]] = {}

    def get(self, namespace: str, key: Any, default: Any = None) -> Any:
        return self._data.get(namespace, {}).get(key, default)

    def put(self, namespace: str, key: Any, value: Any) -> None:
        self._data.setdefault(namespace, {})[key] = value

    def delete(self, namespace: str, key: Any) -> None:
        self._data.get(namespace, {}).pop(key, None)

    def items(self, namespace: str) -> Iterator[tuple[Any, Any]]:
        return iter(list(self._data.get(namespace, {}).items()))

    async def snapshot(self) -> bytes:
        return pickle.dumps(self._data, protocol=pickle.HIGHEST_PROTOCOL)

    async def restore(self, data: bytes) -> None:
        self._data = pickle.loads(data)
