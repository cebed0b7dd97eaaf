"""Operator state backends."""

from pipeline_core.state.backend import StateBackend
from pipeline_core.state.memory import MemoryStateBackend

__all__ = ["MemoryStateBackend", "StateBackend"]
