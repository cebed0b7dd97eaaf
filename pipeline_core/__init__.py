"""Pipeline Framework core: Source → transform → Sink data jobs.

The public API is what ``__all__`` lists; connectors import only from here.
"""

from typing import TYPE_CHECKING

from pipeline_core.lazy import lazy_exports

if TYPE_CHECKING:
    from pipeline_core.checkpoint.identity import url_identity
    from pipeline_core.config.converter import FieldError, parse_duration, structure
    from pipeline_core.config.secrets import redact, remember_secret, resolve_references
    from pipeline_core.errors import (
        BackpressureError,
        CheckpointError,
        ConfigError,
        ConnectorConflict,
        ConnectorError,
        ConnectorLoadError,
        ConnectorNotFound,
        DependencyConflict,
        ExecutionNotFound,
        FatalConnectorError,
        JobAlreadyExists,
        JobAlreadyRunning,
        JobDisabled,
        JobNotFound,
        LifecycleError,
        PipelineError,
        PluginError,
        Problem,
        RecordError,
        RegistryError,
        RetriableConnectorError,
        SchemaError,
        SourceChanged,
        StateError,
    )
    from pipeline_core.hookspecs import hookimpl, hookspec
    from pipeline_core.io import (
        Batch,
        DeliveryGuarantee,
        FailedRecord,
        RuntimeContext,
        Sink,
        Source,
        SourceProgress,
    )
    from pipeline_core.model.job import (
        BackpressureStrategy,
        ComponentSpec,
        JobBuilder,
        JobConfig,
        JobType,
        OnError,
        PipelineJob,
        StepSpec,
    )
    from pipeline_core.model.loader import job_from_dict, load_job_file
    from pipeline_core.model.schedule import ScheduleConfig, ScheduleType
    from pipeline_core.plugins.manager import ENTRY_POINT_GROUP, PluginInfo, Plugins, load_plugins
    from pipeline_core.plugins.registry import Registration, TypeRegistry
    from pipeline_core.runtime.control import ExecutionControl
    from pipeline_core.runtime.metrics import RunMetrics
    from pipeline_core.runtime.prepare import PreparedJob, prepare
    from pipeline_core.runtime.result import ExecutionStatus, JobResult
    from pipeline_core.runtime.runner import execute, run_job
    from pipeline_core.runtime.stream import Stream
    from pipeline_core.service import JobExecutor, JobScheduler, PipelineService
    from pipeline_core.state import MemoryStateBackend, StateBackend
    from pipeline_core.store import (
        ExecutionRecord,
        ExecutionStore,
        JobDefinition,
        JobRegistry,
        MetadataStore,
    )
    from pipeline_core.triggers import EventMessage, EventTrigger, FireCallback

__version__ = "0.1.0"

# Every name loads on first use, from the module that defines it (as pydantic 2 does):
# a process pays only for the parts it touches. `pipeline-run --help` must not import
# the models, the runtime or rich, a connector importing `Source` must not import the
# store (SQLAlchemy), and a plugin module must not import its client library.
_EXPORTS = {
    "url_identity": "pipeline_core.checkpoint.identity",
    "FieldError": "pipeline_core.config.converter",
    "parse_duration": "pipeline_core.config.converter",
    "structure": "pipeline_core.config.converter",
    "redact": "pipeline_core.config.secrets",
    "remember_secret": "pipeline_core.config.secrets",
    "resolve_references": "pipeline_core.config.secrets",
    "BackpressureError": "pipeline_core.errors",
    "CheckpointError": "pipeline_core.errors",
    "ConfigError": "pipeline_core.errors",
    "ConnectorConflict": "pipeline_core.errors",
    "ConnectorError": "pipeline_core.errors",
    "ConnectorLoadError": "pipeline_core.errors",
    "ConnectorNotFound": "pipeline_core.errors",
    "DependencyConflict": "pipeline_core.errors",
    "ExecutionNotFound": "pipeline_core.errors",
    "FatalConnectorError": "pipeline_core.errors",
    "JobAlreadyExists": "pipeline_core.errors",
    "JobAlreadyRunning": "pipeline_core.errors",
    "JobDisabled": "pipeline_core.errors",
    "JobNotFound": "pipeline_core.errors",
    "LifecycleError": "pipeline_core.errors",
    "PipelineError": "pipeline_core.errors",
    "PluginError": "pipeline_core.errors",
    "Problem": "pipeline_core.errors",
    "RecordError": "pipeline_core.errors",
    "RegistryError": "pipeline_core.errors",
    "RetriableConnectorError": "pipeline_core.errors",
    "SchemaError": "pipeline_core.errors",
    "SourceChanged": "pipeline_core.errors",
    "StateError": "pipeline_core.errors",
    "hookimpl": "pipeline_core.hookspecs",
    "hookspec": "pipeline_core.hookspecs",
    "Batch": "pipeline_core.io",
    "DeliveryGuarantee": "pipeline_core.io",
    "FailedRecord": "pipeline_core.io",
    "RuntimeContext": "pipeline_core.io",
    "Sink": "pipeline_core.io",
    "Source": "pipeline_core.io",
    "SourceProgress": "pipeline_core.io",
    "BackpressureStrategy": "pipeline_core.model.job",
    "ComponentSpec": "pipeline_core.model.job",
    "JobBuilder": "pipeline_core.model.job",
    "JobConfig": "pipeline_core.model.job",
    "JobType": "pipeline_core.model.job",
    "OnError": "pipeline_core.model.job",
    "PipelineJob": "pipeline_core.model.job",
    "StepSpec": "pipeline_core.model.job",
    "job_from_dict": "pipeline_core.model.loader",
    "load_job_file": "pipeline_core.model.loader",
    "ScheduleConfig": "pipeline_core.model.schedule",
    "ScheduleType": "pipeline_core.model.schedule",
    "ENTRY_POINT_GROUP": "pipeline_core.plugins.manager",
    "PluginInfo": "pipeline_core.plugins.manager",
    "Plugins": "pipeline_core.plugins.manager",
    "load_plugins": "pipeline_core.plugins.manager",
    "Registration": "pipeline_core.plugins.registry",
    "TypeRegistry": "pipeline_core.plugins.registry",
    "ExecutionControl": "pipeline_core.runtime.control",
    "RunMetrics": "pipeline_core.runtime.metrics",
    "PreparedJob": "pipeline_core.runtime.prepare",
    "prepare": "pipeline_core.runtime.prepare",
    "ExecutionStatus": "pipeline_core.runtime.result",
    "JobResult": "pipeline_core.runtime.result",
    "execute": "pipeline_core.runtime.runner",
    "run_job": "pipeline_core.runtime.runner",
    "Stream": "pipeline_core.runtime.stream",
    "JobExecutor": "pipeline_core.service",
    "JobScheduler": "pipeline_core.service",
    "PipelineService": "pipeline_core.service",
    "MemoryStateBackend": "pipeline_core.state",
    "StateBackend": "pipeline_core.state",
    "ExecutionRecord": "pipeline_core.store",
    "ExecutionStore": "pipeline_core.store",
    "JobDefinition": "pipeline_core.store",
    "JobRegistry": "pipeline_core.store",
    "MetadataStore": "pipeline_core.store",
    "EventMessage": "pipeline_core.triggers",
    "EventTrigger": "pipeline_core.triggers",
    "FireCallback": "pipeline_core.triggers",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "ENTRY_POINT_GROUP",
    "BackpressureError",
    "BackpressureStrategy",
    "Batch",
    "CheckpointError",
    "ComponentSpec",
    "ConfigError",
    "ConnectorConflict",
    "ConnectorError",
    "ConnectorLoadError",
    "ConnectorNotFound",
    "DeliveryGuarantee",
    "DependencyConflict",
    "EventMessage",
    "EventTrigger",
    "ExecutionControl",
    "ExecutionNotFound",
    "ExecutionRecord",
    "ExecutionStatus",
    "ExecutionStore",
    "FailedRecord",
    "FatalConnectorError",
    "FieldError",
    "FireCallback",
    "JobAlreadyExists",
    "JobAlreadyRunning",
    "JobBuilder",
    "JobConfig",
    "JobDefinition",
    "JobDisabled",
    "JobExecutor",
    "JobNotFound",
    "JobRegistry",
    "JobResult",
    "JobScheduler",
    "JobType",
    "LifecycleError",
    "MemoryStateBackend",
    "MetadataStore",
    "OnError",
    "PipelineError",
    "PipelineJob",
    "PipelineService",
    "PluginError",
    "PluginInfo",
    "Plugins",
    "PreparedJob",
    "Problem",
    "RecordError",
    "Registration",
    "RegistryError",
    "RetriableConnectorError",
    "RunMetrics",
    "RuntimeContext",
    "ScheduleConfig",
    "ScheduleType",
    "SchemaError",
    "Sink",
    "Source",
    "SourceChanged",
    "SourceProgress",
    "StateBackend",
    "StateError",
    "StepSpec",
    "Stream",
    "TypeRegistry",
    "execute",
    "hookimpl",
    "hookspec",
    "job_from_dict",
    "load_job_file",
    "load_plugins",
    "parse_duration",
    "prepare",
    "redact",
    "remember_secret",
    "resolve_references",
    "run_job",
    "structure",
    "url_identity",
]
