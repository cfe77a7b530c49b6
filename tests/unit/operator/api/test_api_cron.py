"""Standard five-field cron: what is accepted and refused, and the scheduled times around an
instant (expected times written out by hand, in UTC and across daylight-saving changes)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from modeldeploy_operator.api.cron import CRON_PATTERN, CronError, parse_cron


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expression", "at", "previous", "following"),
    [
        # Sundays at 03:00; 2026-12-01 is a Tuesday.
        ("0 3 * * 0", utc(2026, 12, 1, 12), utc(2026, 11, 29, 3), utc(2026, 12, 6, 3)),
        ("0 3 * * 7", utc(2026, 12, 1, 12), utc(2026, 11, 29, 3), utc(2026, 12, 6, 3)),
        ("0 3 * * SUN", utc(2026, 12, 1, 12), utc(2026, 11, 29, 3), utc(2026, 12, 6, 3)),
        # Exactly at a scheduled time: it is the previous one, and the next is the one after.
        (
            "*/15 * * * *",
            utc(2026, 12, 1, 12, 30),
            utc(2026, 12, 1, 12, 30),
            utc(2026, 12, 1, 12, 45),
        ),
        (
            "5-10/5 * * * *",
            utc(2026, 12, 1, 12, 7),
            utc(2026, 12, 1, 12, 5),
            utc(2026, 12, 1, 12, 10),
        ),
        (
            "30/15 9 * * *",
            utc(2026, 12, 1, 9, 50),
            utc(2026, 12, 1, 9, 45),
            utc(2026, 12, 2, 9, 30),
        ),
        ("0 0 1 jan,Jul *", utc(2026, 12, 1), utc(2026, 7, 1), utc(2027, 1, 1)),
        # Both day fields restricted: either matches (the 13th, or any Friday).
        ("0 0 13 * 5", utc(2026, 12, 1), utc(2026, 11, 27), utc(2026, 12, 4)),
        # A weekday field starting with `*` restricts nothing more: both must match.
        ("0 0 13 * */1", utc(2026, 12, 1), utc(2026, 11, 13), utc(2026, 12, 13)),
        # Leap days only.
        ("0 12 29 2 *", utc(2026, 12, 1), utc(2024, 2, 29, 12), utc(2028, 2, 29, 12)),
    ],
)
def test_scheduled_times(
    expression: str, at: datetime, previous: datetime, following: datetime
) -> None:
    schedule = parse_cron(expression)
    assert schedule.previous(at) == previous
    assert schedule.next(at) == following


def test_a_time_zone_reads_the_schedule_in_its_wall_clock() -> None:
    paris = parse_cron("0 3 * * *", "Europe/Paris")
    # Winter: UTC+1.
    assert paris.next(utc(2026, 12, 1, 12)) == utc(2026, 12, 2, 2)
    # 2026-03-29 02:00 → 03:00: 03:00 exists (UTC+2), the day's run is at 01:00 UTC.
    assert paris.next(utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1)


def test_a_skipped_wall_time_does_not_happen_and_a_repeated_one_happens_once() -> None:
    paris = parse_cron("30 2 * * *", "Europe/Paris")
    # 2026-03-29 02:30 does not exist in Paris: the next is on the 30th (UTC+2).
    assert paris.next(utc(2026, 3, 28, 12)) == utc(2026, 3, 30, 0, 30)
    # 2026-10-25 02:30 happens twice (UTC+2, then UTC+1): only the first counts.
    assert paris.next(utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 0, 30)
    assert paris.next(utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 26, 1, 30)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 3 * *", "has 4 fields"),
        ("0 3 * * * *", "has 6 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("0 24 * * *", "hour: 24 is outside 0-23"),
        ("0 0 0 * *", "day of month: 0 is outside 1-31"),
        ("0 0 * 13 *", "month: 13 is outside 1-12"),
        ("0 0 * * 8", "day of week: 8 is outside 0-7"),
        ("0 0 * foo *", "month: 'foo' is not a number or a name"),
        ("0 0 * * MON-FOO", "day of week: 'FOO' is not a number or a name"),
        ("*/0 * * * *", "minute: a step must be at least 1"),
        ("10-5 * * * *", "the range '10-5' runs backwards"),
        ("0 0 31 4,6 *", "day of month 31 never falls in the months named"),
        ("0 0 30 2 *", "day of month 30 never falls in the months named"),
        ("0 0 L * *", "day of month: 'L' is not"),
        ("@daily", "has 1 fields"),
    ],
)
def test_what_is_not_a_standard_cron_schedule(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=re.escape(message)):
        parse_cron(expression)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(CronError, match="'Mars/Olympus' is not a known time zone"):
        parse_cron("0 3 * * *", "Mars/Olympus")


@pytest.mark.parametrize(
    ("expression", "shaped"),
    [
        ("0 3 * * 0", True),
        (" 0,30 9-17/2 1 jan-jun MON-FRI ", True),
        ("0 3 * *", False),
        ("0 3 * * * *", False),
        ("0 3 ? * 0", False),
        ("0 3 L * 0", False),
        ("@weekly", False),
    ],
)
def test_the_schemas_pattern_checks_the_shape(expression: str, shaped: bool) -> None:
    assert (re.search(CRON_PATTERN, expression) is not None) is shaped
