"""Pipeline Framework core: Source → transform → Sink data jobs.

The public API is what ``__all__`` lists; connectors import only from here.
"""

from typing import TYPE_CHECKING

from pipeline_core.checkpoint.identity import url_identity
from pipeline_core.config.converter import FieldError, parse_duration, structure
from pipeline_core.config.secrets import resolve_references
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
from pipeline_core.lazy import lazy_exports
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
from pipeline_core.state import MemoryStateBackend, StateBackend
from pipeline_core.triggers import EventMessage, EventTrigger, FireCallback

if TYPE_CHECKING:
    from pipeline_core.service import JobExecutor, JobScheduler, PipelineService
    from pipeline_core.store import (
        ExecutionRecord,
        ExecutionStore,
        JobDefinition,
        JobRegistry,
        MetadataStore,
    )

__version__ = "0.1.0"

# The metadata database pulls in SQLAlchemy and Alembic; jobs that never touch it should
# not pay for importing them, so these names load on first use.
_LAZY = {
    "MetadataStore": "pipeline_core.store",
    "JobRegistry": "pipeline_core.store",
    "JobDefinition": "pipeline_core.store",
    "ExecutionStore": "pipeline_core.store",
    "ExecutionRecord": "pipeline_core.store",
    "JobExecutor": "pipeline_core.service",
    "JobScheduler": "pipeline_core.service",
    "PipelineService": "pipeline_core.service",
}


__getattr__ = lazy_exports(__name__, _LAZY)


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
    "resolve_references",
    "run_job",
    "structure",
    "url_identity",
]
