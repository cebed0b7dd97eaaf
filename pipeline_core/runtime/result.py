"""What an execution ends with."""

from __future__ import annotations

import enum
from typing import Any

import attrs

from pipeline_core.config.secrets import redact

__all__ = ["ExecutionStatus", "JobResult"]


class ExecutionStatus(enum.StrEnum):
    """The lifecycle states of the original design."""

    REGISTERED = "REGISTERED"
    SCHEDULED = "SCHEDULED"
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    CHECKPOINTING = "CHECKPOINTING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@attrs.frozen(kw_only=True)
class JobResult:
    """Summary of one execution. ``error`` and ``error_trace`` are redacted (no secret
    value resolved in the process that ran it); ``exception`` is the original."""

    job_name: str
    execution_id: str
    status: ExecutionStatus
    records_read: int
    records_written: int
    failed_records: int
    dropped_records: int
    duration_s: float
    error: str | None = None
    error_trace: str | None = None
    exception: BaseException | None = attrs.field(default=None, eq=False, repr=False)
    last_position: dict[str, Any] | None = None
    #: "sink (file): 4 files in out/" — what each sink says it committed.
    outputs: tuple[str, ...] = ()
    #: Ids of the checkpoints this execution completed, in order.
    checkpoints: tuple[int, ...] = ()
    #: Ended by ExecutionControl.stop_at_checkpoint: resume from the last checkpoint.
    stopped_at_checkpoint: bool = False

    @classmethod
    def not_started(
        cls, job_name: str, execution_id: str, exc: BaseException, *, keep: bool = True
    ) -> JobResult:
        """The result of a run that failed before reading anything (a bad definition, a
        missing plugin). ``keep=False`` leaves the exception out (to cross processes)."""
        return cls(
            job_name=job_name,
            execution_id=execution_id,
            status=ExecutionStatus.FAILED,
            records_read=0,
            records_written=0,
            failed_records=0,
            dropped_records=0,
            duration_s=0.0,
            error=redact(str(exc)),
            exception=exc if keep else None,
        )

    @property
    def processed_records(self) -> int:
        """The original design's ``processed_records``: records read from the source."""
        return self.records_read
