"""ExecutionControl: pause, resume and stop-at-checkpoint for one running execution."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline_core.checkpoint.coordinator import CheckpointCoordinator

__all__ = ["ExecutionControl"]


class ExecutionControl:
    """Handed to :func:`~pipeline_core.runtime.runner.execute` by whoever drives it.

    - ``pause()``: the source task stops pulling (a broker consumer stops fetching, its
      offsets stay where they are); what was read is still processed and checkpoints are
      still taken. ``resume()`` continues. No record is lost or skipped.
    - ``stop_at_checkpoint()``: take a checkpoint now and end the execution right after it
      (graceful shutdown): the result is CANCELLED with ``stopped_at_checkpoint`` set, and
      a later execution resumes exactly there.
    """

    def __init__(self) -> None:
        self._running = asyncio.Event()
        self._running.set()
        self.stop_requested = False
        self.coordinator: CheckpointCoordinator | None = None

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    async def wait_running(self) -> None:
        await self._running.wait()

    def checkpoint(self, savepoint: str | None = None) -> bool:
        """Ask for a checkpoint (or a savepoint); False if the execution has none."""
        if self.coordinator is None:
            return False
        self.coordinator.request(savepoint)
        return True

    def stop_at_checkpoint(self) -> bool:
        """False if there is no checkpointing (the caller then cancels outright)."""
        if self.coordinator is None:
            return False
        self.stop_requested = True
        self.coordinator.request(None)
        return True
