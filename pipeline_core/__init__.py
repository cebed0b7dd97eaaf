"""Pipeline Framework core: Source → transform → Sink data jobs.

The public API is what ``__all__`` lists; connectors import only from here.
"""

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
    FatalConnectorError,
    JobAlreadyExists,
    JobNotFound,
    PipelineError,
    PluginError,
    Problem,
    RecordError,
    RegistryError,
    RetriableConnectorError,
    SchemaError,
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
from pipeline_core.plugins.manager import ENTRY_POINT_GROUP, PluginInfo, Plugins, load_plugins
from pipeline_core.plugins.registry import Registration, TypeRegistry
from pipeline_core.runtime.metrics import RunMetrics
from pipeline_core.runtime.prepare import PreparedJob, prepare
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.runtime.runner import execute, run_job
from pipeline_core.runtime.stream import Stream
from pipeline_core.state import MemoryStateBackend, StateBackend

__version__ = "0.1.0"

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
    "ExecutionStatus",
    "FailedRecord",
    "FatalConnectorError",
    "FieldError",
    "JobAlreadyExists",
    "JobBuilder",
    "JobConfig",
    "JobNotFound",
    "JobResult",
    "JobType",
    "MemoryStateBackend",
    "OnError",
    "PipelineError",
    "PipelineJob",
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
    "SchemaError",
    "Sink",
    "Source",
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
]
