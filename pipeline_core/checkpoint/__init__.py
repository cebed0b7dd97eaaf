"""Checkpoints: aligned barriers, persisted snapshots, restore and retention."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline_core.lazy import lazy_exports

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

__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "CheckpointInfo",
    "CheckpointRepository",
    "CheckpointStorage",
    "InMemoryCheckpointRepository",
]
