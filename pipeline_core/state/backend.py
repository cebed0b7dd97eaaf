"""The StateBackend contract: keyed operator state that checkpoints can snapshot."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any, ClassVar, Generic, TypeVar

__all__ = ["StateBackend"]

C = TypeVar("C")


class StateBackend(abc.ABC, Generic[C]):
    """Key/value state grouped in namespaces (one per operator, and per key after key_by).

    ``get``/``put``/``delete``/``items`` are synchronous and called from the event loop,
    so they must be fast (in-memory, or memory-mapped like LMDB). ``snapshot`` returns
    bytes that ``restore`` turns back into exactly the same contents.
    """

    type_name: ClassVar[str]
    config_cls: ClassVar[type[Any]]

    def __init__(self, config: C) -> None:
        self.config = config

    @abc.abstractmethod
    def get(self, namespace: str, key: Any, default: Any = None) -> Any: ...

    @abc.abstractmethod
    def put(self, namespace: str, key: Any, value: Any) -> None: ...

    @abc.abstractmethod
    def delete(self, namespace: str, key: Any) -> None: ...

    @abc.abstractmethod
    def items(self, namespace: str) -> Iterator[tuple[Any, Any]]: ...

    @abc.abstractmethod
    async def snapshot(self) -> bytes: ...

    @abc.abstractmethod
    async def restore(self, data: bytes) -> None: ...

    async def close(self) -> None:
        """Release resources. Idempotent."""
