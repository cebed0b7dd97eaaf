"""The StateBackend contract: operator state that checkpoints can snapshot and restore."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar

import attrs

__all__ = ["StateBackend", "StateBackendConfig"]

C = TypeVar("C")


@attrs.define(frozen=True, kw_only=True)
class StateBackendConfig:
    """Options every backend understands."""

    #: ``pickle`` (any picklable object) or ``json`` (portable snapshots).
    serializer: Literal["pickle", "json"] = "pickle"


class StateBackend(abc.ABC, Generic[C]):
    """Key/value state in namespaces (one per operator and state name).

    ``get``/``put``/``delete``/``items`` are synchronous and called from the event loop
    for every record of a keyed operator, so they must be fast (memory, or memory-mapped
    like LMDB). ``flush`` is called at each checkpoint barrier, before the snapshot.
    ``snapshot`` writes a consistent copy into a local directory (called in a worker
    thread while the pipeline is paused at a checkpoint barrier); ``restore`` reads such a
    copy back, replacing all contents.

    A backend with ``incremental = True`` can also write only what changed:
    ``snapshot_delta`` writes the entries changed (and deleted) since the last
    ``snapshot``, ``snapshot_delta``, ``restore`` or ``restore_delta``, and
    ``restore_delta`` applies such a delta on top of the current contents. A restore
    composes a chain: ``restore(base)``, then ``restore_delta`` of each delta in order.
    The coordinator decides which checkpoints are full and which are deltas, and never
    bases a delta on a checkpoint that did not complete.
    """

    type_name: ClassVar[str]
    config_cls: ClassVar[type[Any]]
    #: Whether ``snapshot_delta``/``restore_delta`` are implemented.
    incremental: ClassVar[bool] = False

    def __init__(self, config: C) -> None:
        self.config = config

    def open(self, workdir: Path) -> None:
        """Prepare to hold state; ``workdir`` is private to this execution."""

    @abc.abstractmethod
    def get(self, namespace: str, key: Any, default: Any = None) -> Any: ...

    @abc.abstractmethod
    def put(self, namespace: str, key: Any, value: Any) -> None: ...

    @abc.abstractmethod
    def delete(self, namespace: str, key: Any) -> None: ...

    @abc.abstractmethod
    def items(self, namespace: str) -> Iterator[tuple[Any, Any]]:
        """Every (key, value) of a namespace."""

    def flush(self) -> None:
        """Make pending writes visible to a snapshot (end of each batch)."""

    @abc.abstractmethod
    def snapshot(self, directory: Path) -> int:
        """Write a consistent copy into ``directory``; return its size in bytes."""

    @abc.abstractmethod
    def restore(self, directory: Path) -> None:
        """Replace all contents with the copy in ``directory``."""

    def snapshot_delta(self, directory: Path) -> int | None:
        """Write into ``directory`` only the entries changed or deleted since the last
        snapshot, delta or restore; return its size in bytes — or None, writing nothing,
        when a delta is not possible or not worth it (then a full ``snapshot`` is taken)."""
        return None

    def restore_delta(self, directory: Path) -> None:
        """Apply the delta in ``directory`` (from :meth:`snapshot_delta`) on top of the
        current contents."""
        raise NotImplementedError(f"the {self.type_name} backend has no deltas")

    def close(self) -> None:
        """Release resources. Idempotent."""
