"""Running jobs from tests."""

from __future__ import annotations

import asyncio
from typing import Any

from pipeline_core.model.job import PipelineJob
from pipeline_core.plugins.manager import Plugins
from pipeline_core.runtime.result import ExecutionStatus, JobResult
from pipeline_core.runtime.runner import run_job

__all__ = ["run"]


def run(
    job: PipelineJob,
    plugins: Plugins | None = None,
    *,
    expect: ExecutionStatus | None = ExecutionStatus.COMPLETED,
    **kwargs: Any,
) -> JobResult:
    """Run ``job`` to its end in a fresh event loop.

    With ``expect`` set (the default: COMPLETED), a different final status raises the
    job's own exception (or an AssertionError), so a failing job fails the test loudly.
    """
    result = asyncio.run(run_job(job, plugins, **kwargs))
    if expect is not None and result.status is not expect:
        if result.exception is not None:
            raise result.exception
        raise AssertionError(f"job ended {result.status}, expected {expect}: {result.error}")
    return result
