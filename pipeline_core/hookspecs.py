"""The plugin hooks of Pipeline Framework — this module is their reference.

Every hook is synchronous and called with keyword arguments. Registration hooks are
called once per process, when plugins are discovered (:func:`pipeline_core.load_plugins`),
and only *register* classes; all asynchronous work lives on the Source, Sink, StateBackend
and Trigger objects they register. Notification hooks are called by the runtime at
lifecycle points, never per record. Hook arguments only ever grow; none is renamed.

A connector distribution exposes one module of ``@hookimpl`` functions and names it in
the entry-point group ``pipeline.connectors``::

    [project.entry-points."pipeline.connectors"]
    kafka = "pipeline_connector_kafka.plugin"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pipeline_core.model.job import PipelineJob
    from pipeline_core.plugins.registry import TypeRegistry
    from pipeline_core.runtime.result import JobResult

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("pipeline")
hookimpl = pluggy.HookimplMarker("pipeline")


# --- registration: called once, when plugins are loaded ----------------------------


@hookspec
def pipeline_register_sources(registry: TypeRegistry) -> None:
    """Register Source classes: ``registry.add(FileSource)``.

    Each class needs a class-level ``type_name`` (what a job file writes as
    ``source.type``) and ``config_cls`` (an attrs class the job's ``config`` dict is
    structured into). Return nothing.
    """


@hookspec
def pipeline_register_sinks(registry: TypeRegistry) -> None:
    """Register Sink classes: ``registry.add(FileSink)``. Same rules as sources."""


@hookspec
def pipeline_register_state_backends(registry: TypeRegistry) -> None:
    """Register StateBackend classes (``memory``, ``lmdb``, …) by ``type_name``."""


@hookspec
def pipeline_register_triggers(registry: TypeRegistry) -> None:
    """Register event Trigger classes for the scheduler (a Kafka topic, a RabbitMQ queue).

    This keeps the core broker-agnostic: the scheduler only knows the trigger's
    ``type_name`` and its ``config_cls``.
    """


# --- notifications: called by the runtime; never per record ------------------------


@hookspec
def pipeline_job_started(job: PipelineJob, execution_id: str) -> None:
    """Called after the source and sink opened, just before the first record is read."""


@hookspec
def pipeline_job_finished(job: PipelineJob, execution_id: str, result: JobResult) -> None:
    """Called when an execution completed (bounded input exhausted) or was cancelled.

    ``result.status`` says which (``COMPLETED`` or ``CANCELLED``).
    """


@hookspec
def pipeline_job_failed(
    job: PipelineJob, execution_id: str, error: BaseException, result: JobResult
) -> None:
    """Called when an execution failed; ``error`` is the exception that ended it.

    The place for alerting plugins. An exception raised here is logged and ignored.
    """


@hookspec
def pipeline_checkpoint_started(job: PipelineJob, execution_id: str, checkpoint_id: int) -> None:
    """Called when a checkpoint barrier reached the pipeline and the snapshot begins."""


@hookspec
def pipeline_checkpoint_completed(
    job: PipelineJob, execution_id: str, checkpoint_id: int, state: dict[str, Any]
) -> None:
    """Called after a checkpoint was persisted and committed to source and sink."""


@hookspec
def pipeline_checkpoint_failed(
    job: PipelineJob, execution_id: str, checkpoint_id: int, error: BaseException
) -> None:
    """Called when a checkpoint could not be taken (the previous one stays intact)."""
