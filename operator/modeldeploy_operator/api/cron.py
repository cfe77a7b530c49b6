"""Standard five-field cron expressions (`minute hour day-of-month month day-of-week`): the
schema's pattern, the exact parser, and the scheduled times around an instant in a time zone.

Why our own: the schedule trigger needs only the standard syntax, read exactly (croniter also
accepts seconds fields, `L`, `#`, `H` and macros, which the CRD could not reject consistently).

The syntax is Vixie cron's: each field is a comma-separated list of `*`, `N` or `N-M`, each
optionally followed by `/STEP` (`N/STEP` means from N to the field's end); months and weekdays
also by their English three-letter names; weekday 0 and 7 are Sunday. When both day fields are
restricted (neither starts with `*`) a day matches either of them, as in every cron.

Times are wall-clock times in the schedule's zone: a time that a daylight-saving jump skips does
not happen that day; a time that happens twice happens once (its first occurrence).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_ITEM: Final = r"(\*|([0-9]+|[A-Za-z]{3})(-([0-9]+|[A-Za-z]{3}))?)(/[0-9]+)?"
_FIELD: Final = rf"{_ITEM}(,{_ITEM})*"
# The shape the apiserver can check; the values' ranges are checked by `parse_cron`.
CRON_PATTERN: Final = rf"^\s*{_FIELD}(\s+{_FIELD}){{4}}\s*$"
TIME_ZONE_PATTERN: Final = r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$"

_MONTHS: Final = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS: Final = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
# A schedule that matches at all matches within 28 years (the Gregorian calendar's weekday and
# leap-year cycle, outside century years); looking that far back or ahead finds it.
_SEARCH_DAYS: Final = 28 * 366


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS: Final = (
    _FieldSpec("minute", 0, 59, {}),
    _FieldSpec("hour", 0, 23, {}),
    _FieldSpec("day of month", 1, 31, {}),
    _FieldSpec("month", 1, 12, _MONTHS),
    _FieldSpec("day of week", 0, 7, _WEEKDAYS),
)


class CronError(ValueError):
    """An expression that is not a standard five-field cron schedule (the message says why)."""


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # the day-of-month field starts with `*`
    any_weekday: bool  # the day-of-week field starts with `*`
    zone: tzinfo = UTC

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_days and in_weekdays
        return in_days or in_weekdays

    def _times_of(self, day: date) -> list[datetime]:
        """The day's scheduled instants, in order (skipped and repeated wall times as above)."""
        found = []
        for hour in sorted(self.hours):
            for minute in sorted(self.minutes):
                wall = datetime.combine(day, time(hour, minute), self.zone)
                back = wall.astimezone(UTC).astimezone(self.zone)
                if back.replace(tzinfo=None) == wall.replace(tzinfo=None):
                    found.append(wall)
        return found

    def previous(self, at: datetime) -> datetime | None:
        """The latest scheduled time at or before `at` (None: none within the search span)."""
        local = at.astimezone(self.zone)
        for offset in range(_SEARCH_DAYS):
            day = local.date() - timedelta(days=offset)
            if self.matches_day(day):
                for when in reversed(self._times_of(day)):
                    if when <= at:
                        return when.astimezone(UTC)
        return None

    def next(self, after: datetime) -> datetime | None:
        """The earliest scheduled time strictly after `after`."""
        local = after.astimezone(self.zone)
        for offset in range(_SEARCH_DAYS):
            day = local.date() + timedelta(days=offset)
            if self.matches_day(day):
                for when in self._times_of(day):
                    if when > after:
                        return when.astimezone(UTC)
        return None


def _value(text: str, spec: _FieldSpec) -> int:
    if text.isdigit():
        value = int(text)
    elif text.upper() in spec.names:
        value = spec.names[text.upper()]
    else:
        raise CronError(f"{spec.name}: {text!r} is not a number or a name")
    if not spec.low <= value <= spec.high:
        raise CronError(f"{spec.name}: {value} is outside {spec.low}-{spec.high}")
    return value


def _parse_field(text: str, spec: _FieldSpec) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        match = re.fullmatch(_ITEM, item)
        if match is None:
            raise CronError(
                f"{spec.name}: {item!r} is not `*`, `N` or `N-M` (with an optional /STEP)"
            )
        body, start_text, _, end_text, step_text = match.groups()
        step = int(step_text[1:]) if step_text else 1
        if step == 0:
            raise CronError(f"{spec.name}: a step must be at least 1")
        if body == "*":
            start, end = spec.low, spec.high
        else:
            start = _value(start_text, spec)
            # `N/STEP` runs to the field's end; a lone `N` is just N.
            end = _value(end_text, spec) if end_text else (spec.high if step_text else start)
        if start > end:
            raise CronError(f"{spec.name}: the range {item!r} runs backwards")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse_cron(expression: str, time_zone: str | None = None) -> CronSchedule:
    """The schedule an expression names, or CronError saying why it is not one."""
    fields = expression.split()
    if len(fields) != len(_FIELDS):
        raise CronError(
            f"{expression!r} has {len(fields)} fields; a cron schedule has 5: "
            "minute hour day-of-month month day-of-week"
        )
    minutes, hours, days, months, weekdays = (
        _parse_field(text, spec) for text, spec in zip(fields, _FIELDS, strict=True)
    )
    weekdays = frozenset(day % 7 for day in weekdays)  # 7 is Sunday too
    any_day, any_weekday = fields[2].startswith("*"), fields[4].startswith("*")
    # With the weekday unrestricted, the day of month alone decides: it must fit a month named.
    longest = max(calendar.monthrange(2024, month)[1] for month in months)  # a leap year
    if any_weekday and min(days) > longest:
        raise CronError(f"day of month {min(days)} never falls in the months named")
    zone: tzinfo = UTC
    if time_zone is not None:
        try:
            zone = ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise CronError(f"{time_zone!r} is not a known time zone") from err
    return CronSchedule(minutes, hours, days, months, weekdays, any_day, any_weekday, zone)
