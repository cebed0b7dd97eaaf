"""The one validation every way in runs (CLI register/import, ``serve --jobs``, the API,
``validate``): a definition is checked against the installed connectors exactly as a run
would check it — components, every config field, functions — before anything is stored.

It runs no user code, in whichever process: function references are checked by reading
their module's source, not by importing it (``model/functions.py``); an execution
imports them, and checks what it got again."""

from __future__ import annotations

from collections.abc import Callable

from pipeline_core.model.functions import static_references
from pipeline_core.model.job import PipelineJob
from pipeline_core.plugins.manager import Plugins
from pipeline_core.runtime.prepare import PreparedJob, prepare

__all__ = ["job_validator", "static_prepare"]


def static_prepare(job: PipelineJob, plugins: Plugins) -> PreparedJob:
    """:func:`prepare` with function references checked statically: everything a run
    would check, without importing a step's module (its functions are placeholders)."""
    with static_references():
        return prepare(job, plugins)


def job_validator(plugins: Plugins) -> Callable[[PipelineJob], None]:
    """A validator for :class:`~pipeline_core.store.JobRegistry`: raises ConfigError
    listing every problem of the job; functions are checked statically (the same
    check in the CLI as in the API)."""

    def validate(job: PipelineJob) -> None:
        static_prepare(job, plugins)

    return validate
