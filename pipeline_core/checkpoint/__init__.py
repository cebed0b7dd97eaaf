"""Checkpoints: aligned barriers, persisted snapshots, restore and retention."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline_core.checkpoint.repository import (
        CheckpointInfo,
        CheckpointRepository,
        InMemoryCheckpointRepository,
    )
    from pipeline_core.checkpoint.storage import CheckpointStorage

# Loaded on first use: the storage brings fsspec, which importing ``pipeline_core`` (for
# its small helpers, e.g. ``url_identity``) must not pay for.
_EXPORTS = {
    "CheckpointInfo": "pipeline_core.checkpoint.repository",
    "CheckpointRepository": "pipeline_core.checkpoint.repository",
    "InMemoryCheckpointRepository": "pipeline_core.checkpoint.repository",
    "CheckpointStorage": "pipeline_core.checkpoint.storage",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "CheckpointInfo",
    "CheckpointRepository",
    "CheckpointStorage",
    "InMemoryCheckpointRepository",
]
