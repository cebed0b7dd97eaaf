"""Checkpoints: aligned barriers, persisted snapshots, restore and retention."""

from pipeline_core.checkpoint.repository import (
    CheckpointInfo,
    CheckpointRepository,
    InMemoryCheckpointRepository,
)
from pipeline_core.checkpoint.storage import CheckpointStorage

__all__ = [
    "CheckpointInfo",
    "CheckpointRepository",
    "CheckpointStorage",
    "InMemoryCheckpointRepository",
]
