"""Retention: which checkpoints to delete, files and rows together."""

from __future__ import annotations

import datetime as dt
import logging

from pipeline_core.checkpoint.chain import needed_by
from pipeline_core.checkpoint.repository import CheckpointInfo, CheckpointRepository
from pipeline_core.checkpoint.storage import CheckpointStorage

__all__ = ["prune"]

log = logging.getLogger("pipeline_core.checkpoint")


def prune(
    repository: CheckpointRepository,
    storage: CheckpointStorage,
    job_name: str,
    *,
    keep: int = 10,
    max_age: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> list[CheckpointInfo]:
    """Delete completed checkpoints beyond the newest ``keep`` or older than ``max_age``,
    and failed ones. Savepoints and the newest completed checkpoint always stay; PENDING
    ones are left alone (one may be in progress). A checkpoint that a kept incremental
    one builds on (its base and the deltas before it) stays too, until nothing kept
    needs it. Files go first, then the row, so a row never points at deleted files."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = repository.list(job_name)  # newest first
    completed = [r for r in rows if r.status == "COMPLETED" and not r.is_savepoint]
    doomed = [r for r in rows if r.status == "FAILED" and not r.is_savepoint]
    for i, row in enumerate(completed):
        if i == 0:
            continue
        too_old = max_age is not None and row.create_time < now - max_age
        if i >= keep or too_old:
            doomed.append(row)
    gone = {(r.execution_id, r.checkpoint_id) for r in doomed}
    needed = needed_by([r for r in rows if (r.execution_id, r.checkpoint_id) not in gone])
    doomed = [r for r in doomed if (r.execution_id, r.checkpoint_id) not in needed]
    for row in doomed:
        if row.storage_path:
            storage.delete(row.storage_path)
        repository.delete(row)
        log.info("deleted checkpoint %s of execution %s", row.checkpoint_id, row.execution_id)
    return doomed
