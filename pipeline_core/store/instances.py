"""``pipeline_runner_instance``: the ``pipeline-run serve`` processes sharing a database."""

from __future__ import annotations

import datetime as dt
import os
import socket

import attrs
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from pipeline_core.store import models as m

__all__ = ["InstanceRecord", "InstanceStore"]


@attrs.frozen(kw_only=True)
class InstanceRecord:
    instance_name: str
    host: str
    pid: int
    started_time: dt.datetime
    heartbeat_time: dt.datetime
    stopped_time: dt.datetime | None


def _record(row: m.RunnerInstance) -> InstanceRecord:
    return InstanceRecord(
        instance_name=row.instance_name,
        host=row.host,
        pid=row.pid,
        started_time=row.started_time,
        heartbeat_time=row.heartbeat_time,
        stopped_time=row.stopped_time,
    )


class InstanceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, name: str) -> None:
        now = m.utcnow()
        with Session(self.engine) as session, session.begin():
            row = session.execute(
                select(m.RunnerInstance).where(m.RunnerInstance.instance_name == name)
            ).scalar_one_or_none()
            if row is None:
                row = m.RunnerInstance(instance_name=name, host="", pid=0)
                session.add(row)
            row.host, row.pid = socket.gethostname(), os.getpid()
            row.started_time = row.heartbeat_time = now
            row.stopped_time = None

    def _touch(self, name: str, column: str) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(
                update(m.RunnerInstance)
                .where(m.RunnerInstance.instance_name == name)
                .values({column: m.utcnow()})
            )

    def beat(self, name: str) -> None:
        self._touch(name, "heartbeat_time")

    def stop(self, name: str) -> None:
        self._touch(name, "stopped_time")

    def live(self, lease: dt.timedelta, *, exclude: str | None = None) -> list[InstanceRecord]:
        """Instances that have not stopped and heart-beat within ``lease``."""
        cutoff = m.utcnow() - lease
        stmt = select(m.RunnerInstance).where(
            m.RunnerInstance.stopped_time.is_(None), m.RunnerInstance.heartbeat_time >= cutoff
        )
        if exclude is not None:
            stmt = stmt.where(m.RunnerInstance.instance_name != exclude)
        with Session(self.engine) as session:
            return [_record(r) for r in session.execute(stmt).scalars()]

    def list(self) -> list[InstanceRecord]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(m.RunnerInstance).order_by(m.RunnerInstance.started_time.desc())
            ).scalars()
            return [_record(r) for r in rows]
