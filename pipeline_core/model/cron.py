"""Cron expressions: standard 5 fields, or 6 with a leading seconds field (Spring style).

``*/15 * * * *`` every 15 minutes; ``0 30 2 * * MON-FRI`` (6 fields) at 02:30:00 on
weekdays; ``@daily`` and the other croniter macros. Times are read in the schedule's IANA
time zone and stored as UTC; across a DST change a wall-clock time that does not exist is
run at the first moment after the gap, one that occurs twice runs once.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

import attrs
from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from pipeline_core.config.converter import FieldError

__all__ = ["Cron", "parse_timezone", "time_zones"]


@functools.cache
def time_zones() -> frozenset[str]:
    """The IANA names accepted (the API's schema lists the same)."""
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def parse_timezone(name: str) -> zoneinfo.ZoneInfo:
    try:
        if name not in time_zones():
            raise ValueError(name)
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise FieldError(
            f"unknown time zone {name!r} (an IANA name like 'Europe/Berlin')", "timezone"
        ) from None


@attrs.frozen
class Cron:
    expression: str
    timezone: str = "UTC"

    def __attrs_post_init__(self) -> None:
        parse_timezone(self.timezone)
        fields = self.expression.split()
        if not self.expression.startswith("@") and len(fields) not in (5, 6):
            raise FieldError(
                f"cron expression {self.expression!r} has {len(fields)} fields; expected 5 "
                "(minute hour day month weekday) or 6 (second first)",
                "cron",
            )
        try:
            self._iter(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        except (CroniterBadCronError, ValueError, KeyError) as exc:
            raise FieldError(
                f"invalid cron expression {self.expression!r}: {exc}", "cron"
            ) from None

    @property
    def has_seconds(self) -> bool:
        return len(self.expression.split()) == 6

    def _iter(self, start: dt.datetime) -> croniter:
        return croniter(self.expression, start, second_at_beginning=self.has_seconds)

    def next_after(self, after_utc: dt.datetime) -> dt.datetime:
        """The first fire time strictly after ``after_utc`` (naive UTC in, naive UTC out)."""
        zone = parse_timezone(self.timezone)
        local = after_utc.replace(tzinfo=dt.UTC).astimezone(zone)
        try:
            nxt: dt.datetime = self._iter(local).get_next(dt.datetime)
        except CroniterBadDateError as exc:  # e.g. "30 2 30 2 *": never
            raise FieldError(f"cron expression {self.expression!r} never fires", "cron") from exc
        return nxt.astimezone(dt.UTC).replace(tzinfo=None)
