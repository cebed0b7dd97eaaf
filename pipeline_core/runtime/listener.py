"""How a running execution reports to its owner: a typed listener, one per execution.

The runtime calls these methods on the event loop of the execution, in order; they must
return quickly (queue work, never wait on a database). Whoever drives
:func:`~pipeline_core.runtime.runner.execute` passes one: the executor's journal (which
writes the execution's rows and then notifies plugins), a worker process's forwarder
(which sends the events to the owning ``serve`` process), or — by default —
:class:`PluginNotifier`, which only calls the plugin hooks. Third-party listeners stay
pluggy hooks (``pipeline_job_started`` …); the listener is the owner's own channel.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pipeline_core.model.job import PipelineJob
    from pipeline_core.plugins.manager import Plugins
    from pipeline_core.runtime.result import JobResult

__all__ = ["PluginNotifier", "RunListener", "notify_plugins"]

log = logging.getLogger("pipeline_core.runtime")


class RunListener(Protocol):
    """Events of one execution, in the order they happen."""

    def job_started(self) -> None:
        """Every component is open and the first batch is about to be read."""

    def checkpoint_started(self, checkpoint_id: int) -> None:
        """A barrier was reached; the snapshot is being taken."""

    def checkpoint_completed(self, checkpoint_id: int, state: dict[str, Any]) -> None:
        """The checkpoint is durable (row COMPLETED); sinks have committed it."""

    def checkpoint_failed(self, checkpoint_id: int, error: BaseException) -> None:
        """The checkpoint was abandoned; the previous one stays the restore point."""

    def job_ended(self, result: JobResult) -> None:
        """The run is over (COMPLETED, FAILED or CANCELLED); every component is closed."""


def notify_plugins(plugins: Plugins, hook: str, **kwargs: Any) -> None:
    """Call a notification hook; a plugin that raises is logged, never breaks the job."""
    try:
        getattr(plugins.hook, hook)(**kwargs)
    except Exception:
        log.exception("plugin hook %s raised; ignored", hook)


class PluginNotifier:
    """The default listener: the lifecycle notification hooks of the plugins."""

    def __init__(self, plugins: Plugins, job: PipelineJob, execution_id: str) -> None:
        self.plugins, self.job, self.execution_id = plugins, job, execution_id

    def _call(self, hook: str, **kwargs: Any) -> None:
        notify_plugins(self.plugins, hook, job=self.job, execution_id=self.execution_id, **kwargs)

    def job_started(self) -> None:
        self._call("pipeline_job_started")

    def checkpoint_started(self, checkpoint_id: int) -> None:
        self._call("pipeline_checkpoint_started", checkpoint_id=checkpoint_id)

    def checkpoint_completed(self, checkpoint_id: int, state: dict[str, Any]) -> None:
        self._call("pipeline_checkpoint_completed", checkpoint_id=checkpoint_id, state=state)

    def checkpoint_failed(self, checkpoint_id: int, error: BaseException) -> None:
        self._call("pipeline_checkpoint_failed", checkpoint_id=checkpoint_id, error=error)

    def job_ended(self, result: JobResult) -> None:
        from pipeline_core.runtime.result import ExecutionStatus

        if result.status is ExecutionStatus.FAILED and result.exception is not None:
            self._call("pipeline_job_failed", error=result.exception, result=result)
        else:
            self._call("pipeline_job_finished", result=result)
