"""When a job runs: the ``schedule`` block of a job definition (ScheduleConfig)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import attrs

from pipeline_core.config.converter import FieldError
from pipeline_core.model.cron import Cron, parse_timezone
from pipeline_core.model.names import check_name

__all__ = ["ScheduleConfig", "ScheduleType"]


class ScheduleType(enum.StrEnum):
    CRON = "CRON"  #: at the times of a cron expression, in a time zone
    MANUAL = "MANUAL"  #: only when started (CLI, API, Python)
    EVENT = "EVENT"  #: when a message arrives on a topic/queue (a trigger plugin)
    DEPENDENCY = "DEPENDENCY"  #: when all upstream jobs completed since this job's last run


@attrs.frozen(kw_only=True)
class ScheduleConfig:
    """The original design's ScheduleConfig.

    ``cron`` (CRON): 5 fields, or 6 with seconds first; ``timezone``: IANA name.
    ``event_trigger`` + ``event_topic`` (EVENT): the trigger type a connector registered
    (``rabbitmq``, ``kafka``) and the queue/topic; ``event_config``: that trigger's options.
    ``dependencies`` (DEPENDENCY): upstream job names.
    """

    type: ScheduleType = ScheduleType.MANUAL
    cron: str | None = None
    timezone: str = "UTC"
    event_trigger: str | None = None
    event_topic: str | None = None
    event_config: dict[str, Any] = attrs.field(factory=dict)
    dependencies: tuple[str, ...] = ()
    enabled: bool = True

    def __attrs_post_init__(self) -> None:
        problems = self.problems()
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise ExceptionGroup("invalid schedule", problems)

    def problems(self) -> list[FieldError]:
        """Every mistake of this schedule (``__attrs_post_init__`` raises them all)."""
        problems: list[FieldError] = []
        timezone = self.timezone
        try:
            parse_timezone(self.timezone)
        except FieldError as exc:
            problems.append(exc)
            timezone = "UTC"  # the cron expression is still checked
        for name, value in (
            ("event_trigger", self.event_trigger),
            ("event_topic", self.event_topic),
            ("event_config", self.event_config),
            ("dependencies", self.dependencies),
        ):
            owner = ScheduleType.DEPENDENCY if name == "dependencies" else ScheduleType.EVENT
            if value and self.type is not owner:
                problems.append(
                    FieldError(
                        f"{name} is only for {owner} schedules, this one is {self.type}", name
                    )
                )
        for upstream in self.dependencies:
            try:
                check_name(upstream, "dependencies")
            except FieldError as exc:
                problems.append(exc)
        if self.type is ScheduleType.CRON:
            if not self.cron:
                problems.append(FieldError("a CRON schedule needs a cron expression", "cron"))
            else:
                try:  # validates it, and that it fires at all ("0 0 30 2 *" never does)
                    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                    Cron(self.cron, timezone).next_after(now)
                except FieldError as exc:
                    problems.append(exc)
        elif self.cron:
            problems.append(
                FieldError(f"cron is only for CRON schedules, this one is {self.type}", "cron")
            )
        if self.type is ScheduleType.EVENT and not (self.event_trigger and self.event_topic):
            problems.append(
                FieldError(
                    "an EVENT schedule needs event_trigger (e.g. 'rabbitmq') and event_topic",
                    "event_trigger" if not self.event_trigger else "event_topic",
                )
            )
        if self.type is ScheduleType.DEPENDENCY and not self.dependencies:
            problems.append(
                FieldError("a DEPENDENCY schedule needs at least one upstream job", "dependencies")
            )
        return problems

    def cron_schedule(self) -> Cron:
        assert self.cron is not None
        return Cron(self.cron, self.timezone)
