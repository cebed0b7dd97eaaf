"""Log lines of executions: a bounded tail per execution in ``pipeline_job_execution_log``.

Lines arrive in batches from the owner's journal (the one writer of an execution's rows),
are numbered per execution (``seq``, from 1, across attempts and owners) and the ones
that fall out of the newest ``keep`` are deleted in the same transaction, so the table
holds at most ``keep`` lines per execution whatever a job logs. Any instance sharing the
database reads them: the API's ``/api/executions/{id}/logs``, ``pipeline-run executions
logs``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import attrs
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import Session

from pipeline_core.config.secrets import redact
from pipeline_core.errors import ExecutionNotFound
from pipeline_core.store import models as m

__all__ = ["LogLine", "LogRecordRow", "LogStore", "LogTail"]

#: (time in UTC without tzinfo, level name, logger name, message), as
#: :mod:`pipeline_core.service.logs` captures them
LogLine = tuple[dt.datetime, str, str, str]

#: the stored column widths
LEVEL_CHARS = 20
LOGGER_CHARS = 200


@attrs.frozen
class LogRecordRow:
    """One stored line."""

    seq: int
    attempt: int
    time: dt.datetime
    level: str
    logger: str
    message: str


@attrs.frozen
class LogTail:
    """Some of an execution's lines (oldest first) and the newest ``seq`` it has."""

    execution_id: str
    lines: list[LogRecordRow]
    last_seq: int


class LogStore:
    """Writes (from the journal) and reads an execution's log lines."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(
        self,
        execution_id: str,
        lines: Sequence[LogLine],
        *,
        keep: int,
        attempt: int = 0,
        owner: str | None = None,
    ) -> int:
        """Store ``lines`` after the execution's newest one and delete all but the newest
        ``keep``; returns how many were stored. With ``owner``, nothing is stored once
        another owner holds the execution (a run that lost its lease writes no lines
        next to its successor's)."""
        if not lines or keep <= 0:
            return 0
        lines = lines[-keep:]
        x, g = m.Execution, m.ExecutionLog
        with Session(self.engine) as session, session.begin():
            holder = session.execute(
                select(x.owner_instance).where(x.execution_id == execution_id)
            ).first()
            if holder is None or (owner is not None and holder[0] not in (None, owner)):
                return 0
            last = session.execute(
                select(func.max(g.seq)).where(g.execution_id == execution_id)
            ).scalar()
            first = (last or 0) + 1
            session.execute(
                insert(g),
                [
                    {
                        "execution_id": execution_id,
                        "seq": first + i,
                        "attempt": attempt,
                        "log_time": time,
                        "level": level[:LEVEL_CHARS],
                        "logger": logger[:LOGGER_CHARS],
                        # redacted in the process that resolved the secrets; again here
                        # for what this one resolved itself
                        "message": redact(message),
                    }
                    for i, (time, level, logger, message) in enumerate(lines)
                ],
            )
            newest = first + len(lines) - 1
            if newest > keep:
                session.execute(
                    delete(g).where(g.execution_id == execution_id, g.seq <= newest - keep)
                )
        return len(lines)

    def tail(self, execution_id: str, *, after: int | None = None, limit: int = 500) -> LogTail:
        """The newest ``limit`` lines, or (with ``after``) the oldest ``limit`` lines after
        that ``seq``; oldest first either way. ExecutionNotFound if there is no such
        execution."""
        x, g = m.Execution, m.ExecutionLog
        with Session(self.engine) as session:
            found = session.execute(select(x.id).where(x.execution_id == execution_id)).first()
            if found is None:
                raise ExecutionNotFound(f"no execution {execution_id!r}")
            stmt = select(g.seq, g.attempt, g.log_time, g.level, g.logger, g.message).where(
                g.execution_id == execution_id
            )
            if after is not None:
                rows = session.execute(stmt.where(g.seq > after).order_by(g.seq).limit(limit)).all()
            else:
                rows = list(
                    reversed(session.execute(stmt.order_by(g.seq.desc()).limit(limit)).all())
                )
            last = session.execute(
                select(func.max(g.seq)).where(g.execution_id == execution_id)
            ).scalar()
        return LogTail(execution_id, [LogRecordRow(*r) for r in rows], last or 0)
