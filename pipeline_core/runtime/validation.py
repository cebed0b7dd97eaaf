"""The one validation every way in runs (CLI register/import, ``serve --jobs``, the API,
``validate``): a definition is checked against the installed connectors exactly as a run
would check it — components, every config field, functions — before anything is stored.

Where it runs in the control plane (``serve``, the API) no user code runs: function
references are checked by reading their module's source, not by importing it."""

from __future__ import annotations

from collections.abc import Callable

from pipeline_core.model.functions import static_references
from pipeline_core.model.job import PipelineJob
from pipeline_core.plugins.manager import Plugins
from pipeline_core.runtime.prepare import prepare

__all__ = ["job_validator"]


def job_validator(plugins: Plugins) -> Callable[[PipelineJob], None]:
    """A validator for :class:`~pipeline_core.store.JobRegistry`: raises ConfigError
    listing every problem of the job; functions are checked statically (the same
    check in the CLI as in the API)."""

    def validate(job: PipelineJob) -> None:
        with static_references():
            prepare(job, plugins)

    return validate
