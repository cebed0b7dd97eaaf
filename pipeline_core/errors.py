"""The one exception tree of Pipeline Framework.

::

    PipelineError
     ├── ConfigError               a job definition or component config is wrong
     │    │                         (carries one Problem per mistake)
     │    ├── DependencyConflict   a schedule names unregistered jobs or closes a cycle
     │    └── IncompleteDefinition the model refused parts of a definition; carries
     │                              a probe of the parts that parsed, for the other checks
     ├── PluginError               discovery / registration went wrong
     │    ├── ConnectorNotFound    a job names a type no installed plugin registers
     │    ├── ConnectorConflict    two distributions register the same type name
     │    └── ConnectorLoadError   a plugin module failed to import
     ├── ConnectorError            a source or sink failed at run time
     │    ├── RetriableConnectorError   worth retrying (connection lost, timeout)
     │    └── FatalConnectorError       retrying will not help (auth, schema)
     ├── RecordError               a record failed in a step and on_error is ``fail``
     ├── BackpressureError         the buffer overflowed under the ERROR strategy
     ├── StateError                state backend misuse or failure
     ├── CheckpointError           a checkpoint could not be taken or restored
     └── RegistryError             the metadata database refused an operation
          ├── JobNotFound          no job (or no such version) by that name
          ├── ExecutionNotFound    no execution with that id
          ├── JobAlreadyExists     register() of a name that is taken
          └── SchemaError          the database schema is missing or out of date

Every error carries structured attributes (``job``, ``component``, ``field``) so that
the command line can print one line per problem without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

__all__ = [
    "BackpressureError",
    "CheckpointError",
    "ConfigError",
    "ConnectorConflict",
    "ConnectorError",
    "ConnectorLoadError",
    "ConnectorNotFound",
    "DependencyConflict",
    "ExecutionNotFound",
    "FatalConnectorError",
    "IncompleteDefinition",
    "JobAlreadyExists",
    "JobNotFound",
    "PipelineError",
    "PluginError",
    "Problem",
    "RecordError",
    "RegistryError",
    "RetriableConnectorError",
    "SchemaError",
    "SourceChanged",
    "StateError",
    "did_you_mean",
]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``": did you mean 'file'?"`` for the candidates close to a mistyped ``word`` (a
    type, a step, a job name), else ``""`` — to put right after the name in a message."""
    import difflib  # only on the way to an error message

    close = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    if not close:
        return ""
    return f": did you mean {' or '.join(repr(c) for c in close)}?"


class PipelineError(Exception):
    """Base of every error the framework raises on purpose."""


@attrs.frozen
class Problem:
    """One mistake in a job definition: where it is and what is wrong.

    ``str(problem)`` is the line the CLI prints, e.g.
    ``job 'orders', source (file): field 'batch_size': expected int, got 'abc'``.
    """

    message: str
    job: str | None = None
    component: str | None = None
    field: str | None = None

    def with_context(self, *, job: str | None = None, component: str | None = None) -> Problem:
        """Return a copy with the job / component filled in where still unknown."""
        return attrs.evolve(self, job=self.job or job, component=self.component or component)

    def __str__(self) -> str:
        parts = []
        if self.job is not None:
            parts.append(f"job {self.job!r}")
        if self.component:
            parts.append(self.component)
        where = ", ".join(parts)
        what = f"field {self.field!r}: {self.message}" if self.field else self.message
        return f"{where}: {what}" if where else what


class ConfigError(PipelineError):
    """A job definition or a component's config is wrong; raised before anything runs."""

    def __init__(self, problems: Problem | Sequence[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def job(self) -> str | None:
        return self.problems[0].job if self.problems else None

    @property
    def component(self) -> str | None:
        return self.problems[0].component if self.problems else None

    @property
    def field(self) -> str | None:
        return self.problems[0].field if self.problems else None

    def with_context(self, *, job: str | None = None, component: str | None = None) -> ConfigError:
        """Return a copy whose problems name the job / component where they did not."""
        return ConfigError([p.with_context(job=job, component=component) for p in self.problems])

    @classmethod
    def merge(cls, errors: Iterable[ConfigError]) -> ConfigError:
        """One error with the problems of all (each once, in order): a
        DependencyConflict when every one is, else a ConfigError."""
        errors = list(errors)
        problems = list(dict.fromkeys(p for e in errors for p in e.problems))
        if errors and all(isinstance(e, DependencyConflict) for e in errors):
            return DependencyConflict(problems)
        return ConfigError(problems)


class DependencyConflict(ConfigError):
    """A DEPENDENCY schedule conflicts with what is registered: an upstream job that does
    not exist, or a cycle (the API answers 409)."""


class IncompleteDefinition(ConfigError):
    """The model refused parts of a definition (a field of the wrong type, a bad
    schedule, an unsafe name). ``probe`` is a job built from the parts that parsed —
    broken ones left out, a placeholder name — so that the checks needing the installed
    connectors can still report the other parts' problems; it is never stored or run."""

    def __init__(self, problems: Sequence[Problem], probe: Any = None) -> None:
        super().__init__(problems)
        self.probe = probe


class PluginError(PipelineError):
    """Plugin discovery or registration failed."""


class ConnectorNotFound(PluginError):
    """A job names a component type that no installed plugin registers."""

    def __init__(self, kind: str, type_name: str, installed: Sequence[str]) -> None:
        self.kind = kind
        self.type_name = type_name
        self.installed = sorted(installed)
        listing = ", ".join(self.installed) or "none"
        super().__init__(
            f"unknown {kind} type {type_name!r}{did_you_mean(type_name, self.installed)} "
            f"(installed {kind} types: {listing}; "
            f"is its connector installed? see `pipeline-run connectors`)"
        )


class ConnectorConflict(PluginError):
    """Two distributions register the same component type name."""

    def __init__(self, kind: str, type_name: str, owners: Sequence[str]) -> None:
        self.kind = kind
        self.type_name = type_name
        self.owners = sorted(owners)
        super().__init__(
            f"{kind} type {type_name!r} is registered by more than one distribution: "
            f"{' and '.join(self.owners)}; uninstall one of them"
        )


class ConnectorLoadError(PluginError):
    """A plugin module of the ``pipeline.connectors`` group failed to import."""

    def __init__(self, name: str, distribution: str, cause: BaseException) -> None:
        self.name = name
        self.distribution = distribution
        self.cause = cause
        super().__init__(
            f"plugin {name!r} from {distribution} failed to load: {type(cause).__name__}: {cause}"
        )


class ConnectorError(PipelineError):
    """A source or sink failed while the job ran."""

    retriable: bool = False

    def __init__(self, message: str, *, component: str | None = None) -> None:
        self.component = component
        super().__init__(f"{component}: {message}" if component else message)


class RetriableConnectorError(ConnectorError):
    """A transient failure: a retry (resuming from the last checkpoint) may succeed."""

    retriable = True


class FatalConnectorError(ConnectorError):
    """A permanent failure: retrying will not help."""


#: Longest excerpt of a record (or of an exception's message, which often quotes the
#: record) that an error message shows; error messages end up in the metadata database,
#: the API, the dashboard and logs.
SHOWN_CHARS = 200


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` redacted, then cut to at most ``limit`` characters, ending in ``...`` if
    it was cut. In that order: a secret cut in two no longer matches its value."""
    from pipeline_core.config.secrets import redact  # the redactor imports this module

    text = redact(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_failure(cause: BaseException | str, *, with_message: bool = True) -> str:
    """Why a record failed, for an error message, at most :data:`SHOWN_CHARS` long:
    ``ValueError: <message>`` for an exception (only the type without ``with_message``,
    since exception messages often quote the value that failed); a source's own
    description of a decoding problem as given."""
    if not isinstance(cause, BaseException):
        return shorten(cause)
    name = type(cause).__name__
    message = str(cause) if with_message else ""
    return shorten(f"{name}: {message}") if message else name


class RecordError(PipelineError):
    """A record failed in a step and the job's ``on_error`` policy is ``fail``.

    The message names the step (or the source's ``path:line``), an excerpt of the record
    and why it failed; with ``show_record=False`` (the job's ``record_in_errors: false``)
    neither the record nor an exception's message appears in it, only the exception type
    (a source's description of a decoding problem is kept: it does not quote the record).
    ``record`` and ``cause`` keep the whole of both for code that handles the error.
    """

    def __init__(
        self, step: str, record: Any, cause: BaseException | str, *, show_record: bool = True
    ) -> None:
        self.step = step
        self.record = record
        self.cause = cause
        why = describe_failure(cause, with_message=show_record)
        if show_record:
            super().__init__(f"{step}: record {shorten(repr(record))} failed: {why}")
        else:
            super().__init__(f"{step}: record failed: {why}")


class BackpressureError(PipelineError):
    """The source outran the pipeline and the backpressure strategy is ERROR."""


class StateError(PipelineError):
    """A state backend was misused or failed."""


class CheckpointError(PipelineError):
    """A checkpoint could not be taken, persisted or restored."""


class SourceChanged(CheckpointError):
    """A checkpoint was asked to be restored into a source other than the one it was taken
    from (another broker, group, database, path): its positions would skip or repeat
    records. Not retried."""


class RegistryError(PipelineError):
    """The metadata database refused an operation."""


class JobNotFound(RegistryError):
    """No job by that name, or no such version of it."""


class ExecutionNotFound(RegistryError):
    """No execution with that id."""


class JobAlreadyExists(RegistryError):
    """``register`` of a job name that is already registered (use ``update``)."""


class SchemaError(RegistryError):
    """The metadata database's schema is missing or older than this pipeline-core."""


class LifecycleError(PipelineError):
    """An execution was asked to move to a state its current state cannot reach."""


class JobAlreadyRunning(PipelineError):
    """A trigger found the job running and the job does not allow concurrent executions."""


class JobDisabled(PipelineError):
    """A disabled job was triggered."""
