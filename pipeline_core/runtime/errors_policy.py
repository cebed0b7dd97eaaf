"""Where failed records go: the job's ``on_error`` policy applied per batch."""

from __future__ import annotations

from typing import Any

from pipeline_core.errors import RecordError
from pipeline_core.io import FailedRecord
from pipeline_core.model.job import OnError

__all__ = ["FailureCollector"]


class FailureCollector:
    """Collects the failures of one batch; raises at once when the policy is ``fail``."""

    __slots__ = ("failures", "policy")

    def __init__(self, policy: OnError) -> None:
        self.policy = policy
        self.failures: list[FailedRecord] = []

    def record(self, record: Any, exc: BaseException | str, where: str) -> None:
        """Report that ``record`` failed in ``where``."""
        if self.policy is OnError.FAIL:
            if isinstance(exc, RecordError):
                raise exc
            raise RecordError(where, record, exc) from (
                exc if isinstance(exc, BaseException) else None
            )
        why = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else exc
        self.failures.append(FailedRecord(record=record, error=why, where=where))

    def extend(self, failed: list[FailedRecord]) -> None:
        """Failures a source reported in its batch."""
        if self.policy is OnError.FAIL and failed:
            first = failed[0]
            raise RecordError(first.where, first.record, first.error)
        self.failures.extend(failed)

    def take(self) -> list[FailedRecord]:
        out, self.failures = self.failures, []
        return out
