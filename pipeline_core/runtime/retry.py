"""Which failures are retried, and how long to wait before each retry."""

from __future__ import annotations

from pipeline_core.errors import (
    ConfigError,
    FatalConnectorError,
    PluginError,
    RecordError,
    SourceChanged,
)
from pipeline_core.model.job import JobConfig

__all__ = ["RemoteFailure", "backoff_seconds", "is_retriable"]

#: Failures a retry cannot fix: a wrong definition, a missing plugin, a connector that
#: says so, a bad record under ``on_error: fail`` (it would fail the same way again).
_PERMANENT = (ConfigError, PluginError, FatalConnectorError, RecordError, SourceChanged)


class RemoteFailure(Exception):
    """A failure in another process (a worker) as its owner sees it: the message, and
    whether that process judged it worth a retry."""

    def __init__(self, message: str, retriable: bool = True) -> None:
        super().__init__(message)
        self.retriable = retriable


def is_retriable(exc: BaseException | None) -> bool:
    if isinstance(exc, RemoteFailure):
        return exc.retriable
    return exc is not None and not isinstance(exc, _PERMANENT)


def backoff_seconds(config: JobConfig, attempt: int) -> float:
    """``retry_interval``, doubled per retry (retries 1, 2, 3 … wait 1, 2, 4 … intervals),
    capped at one hour."""
    return min(3600.0, config.retry_interval.total_seconds() * 2 ** max(0, attempt - 1))
