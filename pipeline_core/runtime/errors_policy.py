"""Where failed records go: the job's ``on_error`` policy applied per batch."""

from __future__ import annotations

from typing import Any

from pipeline_core.errors import RecordError, describe_failure, shorten
from pipeline_core.io import FailedRecord
from pipeline_core.model.job import OnError

__all__ = ["FailureCollector"]


class FailureCollector:
    """Collects the failures of one batch; raises at once when the policy is ``fail``.

    ``record_in_errors=False`` keeps record contents out of every error text it makes
    (the RecordError message and the ``error`` of each failed record): they name where
    and the exception type only. The failed record itself still travels in
    ``FailedRecord.record`` (to the dead-letter sink).
    """

    __slots__ = ("failures", "policy", "raised", "record_in_errors")

    def __init__(self, policy: OnError, *, record_in_errors: bool = True) -> None:
        self.policy = policy
        self.record_in_errors = record_in_errors
        self.failures: list[FailedRecord] = []
        #: A RecordError was raised (``fail``): the job fails on that record, which the
        #: runtime still counts in failed_records.
        self.raised = False

    def record(self, record: Any, exc: BaseException | str, where: str) -> None:
        """Report that ``record`` failed in ``where``."""
        if self.policy is OnError.FAIL:
            self.raised = True
            if isinstance(exc, RecordError):
                raise exc
            error = RecordError(where, record, exc, show_record=self.record_in_errors)
            if not isinstance(exc, BaseException):
                raise error
            if self.record_in_errors:
                raise error from exc
            # Keep the frames (where it failed) but not the cause's message, which may
            # quote the record: it would reach the stored stack trace.
            raise error.with_traceback(exc.__traceback__) from None
        why = describe_failure(exc, with_message=self.record_in_errors)
        self.failures.append(FailedRecord(record=record, error=why, where=where))

    def record_remote(self, record: Any, type_name: str, message: str, where: str) -> None:
        """Report that ``record`` failed in a worker process with ``type_name: message``."""
        why = shorten(f"{type_name}: {message}") if self.record_in_errors and message else type_name
        self.record(record, why, where)

    def extend(self, failed: list[FailedRecord]) -> None:
        """Failures a source reported in its batch."""
        for f in failed:
            f.error = shorten(f.error)
        if self.policy is OnError.FAIL and failed:
            self.raised = True
            first = failed[0]
            raise RecordError(
                first.where, first.record, first.error, show_record=self.record_in_errors
            )
        self.failures.extend(failed)

    def take(self) -> list[FailedRecord]:
        out, self.failures = self.failures, []
        return out
