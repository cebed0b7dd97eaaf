"""The service: executor, scheduler and the runner instance that hosts them."""

from pipeline_core.service.app import PipelineService, SingleInstanceError
from pipeline_core.service.executor import ExecutionHandle, JobExecutor
from pipeline_core.service.scheduler import JobScheduler

__all__ = [
    "ExecutionHandle",
    "JobExecutor",
    "JobScheduler",
    "PipelineService",
    "SingleInstanceError",
]
