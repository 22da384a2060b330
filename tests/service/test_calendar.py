"""Business-hours arithmetic checked against hand-computed UTC instants.

Offsets used in the comments: Berlin CET = UTC+1, CEST = UTC+2 (2026 changes: Sun 29 March
02:00 CET -> 03:00 CEST, Sun 25 October 03:00 CEST -> 02:00 CET); New York EST = UTC-5,
EDT = UTC-4 (2026 changes: Sun 8 March 02:00 EST -> 03:00 EDT, Sun 1 November 02:00 EDT ->
01:00 EST). 2026-01-16, 2026-03-06/27 and 2026-10-30 are Fridays.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.service.calendar import ALWAYS, BusinessCalendar

H = 3600


def z(*args: int) -> datetime:
    """A UTC instant (the expected values are written in UTC, computed by hand)."""
    return datetime(*args, tzinfo=UTC)


def cal(tz: str, hours: dict[str, list[list[str]]], holidays: list[str] | None = None):
    return BusinessCalendar.from_spec({"timezone": tz, "hours": hours, "holidays": holidays or []})


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
ALL_DAYS = (*WEEKDAYS, "sat", "sun")
BERLIN = cal("Europe/Berlin", {d: [["09:00", "17:00"]] for d in WEEKDAYS})
BERLIN_DAILY = cal("Europe/Berlin", {d: [["09:00", "17:00"]] for d in ALL_DAYS})
BERLIN_LUNCH = cal("Europe/Berlin", {d: [["09:00", "12:00"], ["13:00", "17:00"]] for d in WEEKDAYS})
BERLIN_EARLY = cal("Europe/Berlin", {d: [["00:00", "04:00"]] for d in ALL_DAYS})
NIGHT = {d: [["00:00", "06:00"], ["22:00", "24:00"]] for d in ALL_DAYS}
BERLIN_NIGHT = cal("Europe/Berlin", NIGHT)
NY = cal("America/New_York", {d: [["09:00", "17:00"]] for d in WEEKDAYS})
NY_EARLY = cal("America/New_York", {d: [["00:00", "04:00"]] for d in ALL_DAYS})
NY_NIGHT = cal("America/New_York", NIGHT)


# --- weekends, holidays, lunch, boundaries ----------------------------------------------------


def test_weekend_is_skipped() -> None:
    # Fri 16:00 CET (15:00Z): 1 h to 17:00, then Mon 09:00 CET + 1 h = Mon 10:00 CET = 09:00Z.
    assert BERLIN.add_business_time(z(2026, 1, 16, 15), 2 * H) == z(2026, 1, 19, 9)
    assert BERLIN.business_seconds(z(2026, 1, 16, 15), z(2026, 1, 19, 9)) == 2 * H


def test_holiday_monday_after_weekend() -> None:
    cal_ = cal("Europe/Berlin", {d: [["09:00", "17:00"]] for d in WEEKDAYS}, ["2026-01-19"])
    # Fri 16:00 CET: 1 h Friday; Sat, Sun, holiday Mon closed; Tue 09:00 + 1 h = 09:00Z Tue.
    assert cal_.add_business_time(z(2026, 1, 16, 15), 2 * H) == z(2026, 1, 20, 9)
    assert cal_.business_seconds(z(2026, 1, 16, 15), z(2026, 1, 20, 9)) == 2 * H
    # A start inside the holiday counts from the next opening: Tue 09:00 CET + 1 h = 09:00Z.
    assert cal_.add_business_time(z(2026, 1, 19, 10), 1 * H) == z(2026, 1, 20, 9)
    assert cal_.open_intervals(z(2026, 1, 19), z(2026, 1, 20)) == []


def test_lunch_break() -> None:
    # Mon 11:00 CET (10:00Z): 11-12 = 1 h, lunch, 13:00 + 1 h = 14:00 CET = 13:00Z.
    assert BERLIN_LUNCH.add_business_time(z(2026, 1, 19, 10), 2 * H) == z(2026, 1, 19, 13)
    assert BERLIN_LUNCH.business_seconds(z(2026, 1, 19, 10), z(2026, 1, 19, 13)) == 2 * H
    # Whole Monday: 3 h + 4 h = 7 h, two intervals 08-11Z and 12-16Z.
    assert BERLIN_LUNCH.business_seconds(z(2026, 1, 19), z(2026, 1, 20)) == 7 * H
    assert BERLIN_LUNCH.open_intervals(z(2026, 1, 19), z(2026, 1, 20)) == [
        (z(2026, 1, 19, 8), z(2026, 1, 19, 11)),
        (z(2026, 1, 19, 12), z(2026, 1, 19, 16)),
    ]
    # Exactly at the start of lunch (12:00 CET = 11:00Z): next hour starts 13:00 -> 13:00 CET.
    assert BERLIN_LUNCH.add_business_time(z(2026, 1, 19, 11), 30 * 60) == z(2026, 1, 19, 12, 30)


def test_start_outside_hours() -> None:
    # Mon 07:00 CET (06:00Z): counting starts 09:00 CET, + 1 h = 10:00 CET = 09:00Z.
    assert BERLIN.add_business_time(z(2026, 1, 19, 6), 1 * H) == z(2026, 1, 19, 9)
    # Sat noon: next opening Mon 09:00 CET, + 1 h = Mon 09:00Z.
    assert BERLIN.add_business_time(z(2026, 1, 17, 11), 1 * H) == z(2026, 1, 19, 9)
    # Mon 20:00 CET (19:00Z): Tue 09:00 CET + 30 min = Tue 08:30Z.
    assert BERLIN.add_business_time(z(2026, 1, 19, 19), 1800) == z(2026, 1, 20, 8, 30)


def test_start_exactly_at_opening_and_closing() -> None:
    # Mon 09:00 CET (08:00Z) + 8 h = 17:00 CET same day (the earliest instant, not Tue 09:00).
    assert BERLIN.add_business_time(z(2026, 1, 19, 8), 8 * H) == z(2026, 1, 19, 16)
    # Mon 17:00 CET (16:00Z) + 1 h = Tue 10:00 CET = 09:00Z.
    assert BERLIN.add_business_time(z(2026, 1, 19, 16), 1 * H) == z(2026, 1, 20, 9)
    # Closing to next opening holds no business time.
    assert BERLIN.business_seconds(z(2026, 1, 19, 16), z(2026, 1, 20, 8)) == 0


def test_zero_and_reversed() -> None:
    saturday = z(2026, 1, 17, 11)
    assert BERLIN.add_business_time(saturday, 0) == saturday
    assert BERLIN.business_seconds(saturday, saturday) == 0
    assert BERLIN.business_seconds(z(2026, 1, 19, 12), z(2026, 1, 19, 10)) == 0


def test_aware_non_utc_inputs_are_accepted() -> None:
    cet = timezone(timedelta(hours=1))
    # Fri 16:00+01:00 is the same instant as the weekend test.
    assert BERLIN.add_business_time(datetime(2026, 1, 16, 16, tzinfo=cet), 2 * H) == z(
        2026, 1, 19, 9
    )


# --- daylight saving ----------------------------------------------------------------------------


def test_berlin_spring_9_to_17() -> None:
    # Fri 27 Mar 16:00 CET = 15:00Z; 1 h Fri; Mon 30 Mar 09:00 CEST + 1 h = 10:00 CEST = 08:00Z.
    assert BERLIN.add_business_time(z(2026, 3, 27, 15), 2 * H) == z(2026, 3, 30, 8)
    # Fri 09:00 CET (08:00Z) to Mon 17:00 CEST (15:00Z): 8 h + 8 h.
    assert BERLIN.business_seconds(z(2026, 3, 27, 8), z(2026, 3, 30, 15)) == 16 * H
    # Daily hours: Sat 28 08-16Z (CET) + Sun 29 07-15Z (CEST) = 8 h + 8 h.
    assert BERLIN_DAILY.business_seconds(z(2026, 3, 28), z(2026, 3, 30)) == 16 * H
    assert BERLIN_DAILY.open_intervals(z(2026, 3, 29), z(2026, 3, 30)) == [
        (z(2026, 3, 29, 7), z(2026, 3, 29, 15))
    ]


def test_berlin_autumn_9_to_17() -> None:
    # Sat 24 Oct 16:00 CEST = 14:00Z: 1 h Sat; Sun 25 09:00 CET (08:00Z) + 1 h = 09:00Z.
    assert BERLIN_DAILY.add_business_time(z(2026, 10, 24, 14), 2 * H) == z(2026, 10, 25, 9)
    # Sun 25 Oct 09-17 CET = 08-16Z: still 8 h.
    assert BERLIN_DAILY.business_seconds(z(2026, 10, 25), z(2026, 10, 26)) == 8 * H


def test_berlin_wall_clock_interval_across_the_change() -> None:
    # Spring: 00:00 CET (28th 23:00Z) .. 04:00 CEST (02:00Z) = 3 h real time.
    assert BERLIN_EARLY.business_seconds(z(2026, 3, 28, 12), z(2026, 3, 29, 12)) == 3 * H
    assert BERLIN_EARLY.open_intervals(z(2026, 3, 28, 12), z(2026, 3, 29, 12)) == [
        (z(2026, 3, 28, 23), z(2026, 3, 29, 2))
    ]
    # 2.5 h from 23:00Z is 01:30Z (= 03:30 CEST, the clock skipped 02:00-03:00).
    assert BERLIN_EARLY.add_business_time(z(2026, 3, 28, 23), 2.5 * H) == z(2026, 3, 29, 1, 30)
    # Autumn: 00:00 CEST (24th 22:00Z) .. 04:00 CET (03:00Z) = 5 h (02:00-03:00 happens twice).
    assert BERLIN_EARLY.business_seconds(z(2026, 10, 24, 12), z(2026, 10, 25, 12)) == 5 * H
    assert BERLIN_EARLY.add_business_time(z(2026, 10, 24, 22), 4.5 * H) == z(2026, 10, 25, 2, 30)
    # An ordinary day: 00:00-04:00 CET = 23:00Z-03:00Z = 4 h.
    assert BERLIN_EARLY.business_seconds(z(2026, 1, 18, 12), z(2026, 1, 19, 12)) == 4 * H


def test_berlin_night_shift() -> None:
    # Spring: Sat 22:00 CET (21:00Z) .. Sun 06:00 CEST (04:00Z) = 7 h.
    assert BERLIN_NIGHT.business_seconds(z(2026, 3, 28, 12), z(2026, 3, 29, 12)) == 7 * H
    assert BERLIN_NIGHT.open_intervals(z(2026, 3, 28, 12), z(2026, 3, 29, 12)) == [
        (z(2026, 3, 28, 21), z(2026, 3, 29, 4))
    ]
    assert BERLIN_NIGHT.add_business_time(z(2026, 3, 28, 21), 6 * H) == z(2026, 3, 29, 3)
    # Autumn: Sat 22:00 CEST (20:00Z) .. Sun 06:00 CET (05:00Z) = 9 h.
    assert BERLIN_NIGHT.business_seconds(z(2026, 10, 24, 12), z(2026, 10, 25, 12)) == 9 * H
    assert BERLIN_NIGHT.add_business_time(z(2026, 10, 24, 20), 8 * H) == z(2026, 10, 25, 4)
    # Start at 12:00Z Sat, 9 h ends exactly at Sun 06:00 CET (05:00Z), not at next opening.
    assert BERLIN_NIGHT.add_business_time(z(2026, 10, 24, 12), 9 * H) == z(2026, 10, 25, 5)


def test_new_york_9_to_17() -> None:
    # Spring: Fri 6 Mar 16:00 EST = 21:00Z; 1 h Fri; Mon 9 Mar 09:00 EDT + 1 h = 14:00Z.
    assert NY.add_business_time(z(2026, 3, 6, 21), 2 * H) == z(2026, 3, 9, 14)
    assert NY.business_seconds(z(2026, 3, 6, 21), z(2026, 3, 9, 14)) == 2 * H
    # Autumn: Fri 30 Oct 16:00 EDT = 20:00Z; Mon 2 Nov 09:00 EST + 1 h = 10:00 EST = 15:00Z.
    assert NY.add_business_time(z(2026, 10, 30, 20), 2 * H) == z(2026, 11, 2, 15)
    assert NY.business_seconds(z(2026, 10, 30, 20), z(2026, 11, 2, 15)) == 2 * H


def test_new_york_wall_clock_interval_and_night_shift() -> None:
    # Spring 8 Mar: 00:00 EST (05:00Z) .. 04:00 EDT (08:00Z) = 3 h.
    assert NY_EARLY.business_seconds(z(2026, 3, 8), z(2026, 3, 9)) == 3 * H
    # Autumn 1 Nov: 00:00 EDT (04:00Z) .. 04:00 EST (09:00Z) = 5 h.
    assert NY_EARLY.business_seconds(z(2026, 11, 1), z(2026, 11, 2)) == 5 * H
    assert NY_EARLY.add_business_time(z(2026, 11, 1, 4), 5 * H) == z(2026, 11, 1, 9)
    # Night shift, spring: Sat 22:00 EST (8 Mar 03:00Z) .. Sun 06:00 EDT (10:00Z) = 7 h.
    assert NY_NIGHT.business_seconds(z(2026, 3, 7, 12), z(2026, 3, 8, 12)) == 7 * H
    # Start Sat 21:00 EST (02:00Z) -> opens 03:00Z, + 5 h = 08:00Z (= 04:00 EDT).
    assert NY_NIGHT.add_business_time(z(2026, 3, 8, 2), 5 * H) == z(2026, 3, 8, 8)
    # Autumn: Sat 22:00 EDT (1 Nov 02:00Z) .. Sun 06:00 EST (11:00Z) = 9 h.
    assert NY_NIGHT.business_seconds(z(2026, 10, 31, 12), z(2026, 11, 1, 12)) == 9 * H
    assert NY_NIGHT.add_business_time(z(2026, 11, 1, 2), 8 * H) == z(2026, 11, 1, 10)


def test_two_year_span_is_exact() -> None:
    # 2026 and 2027 are not leap years: 730 days.
    assert ALWAYS.business_seconds(z(2026, 1, 1), z(2028, 1, 1)) == 730 * 86400
    assert ALWAYS.add_business_time(z(2026, 1, 1), 730 * 86400) == z(2028, 1, 1)
    # 2026 starts on a Thursday, 2027 on a Friday: 52 weeks + 1 weekday each = 261 + 261 days;
    # local New York midnight 1 Jan 2026 = 05:00Z, same for 2028 (EST).
    assert NY.business_seconds(z(2026, 1, 1, 5), z(2028, 1, 1, 5)) == 522 * 8 * H
    assert NY.add_business_time(z(2026, 1, 1, 5), 522 * 8 * H) == z(2027, 12, 31, 22)


# --- pauses -----------------------------------------------------------------------------------


def test_pause_spanning_a_weekend() -> None:
    # Open Fri 10:00 CET (09:00Z), pending customer Fri 16:00 CET (15:00Z) .. Mon 10:00 CET
    # (09:00Z). 8 h target: Fri 10-16 = 6 h, Mon from 10:00 + 2 h = 12:00 CET = 11:00Z.
    pauses = [(z(2026, 1, 16, 15), z(2026, 1, 19, 9))]
    assert BERLIN.due_with_pauses(z(2026, 1, 16, 9), 8 * H, pauses) == z(2026, 1, 19, 11)
    # Without the pause: Fri 10-17 = 7 h, Mon 09:00 + 1 h = 10:00 CET = 09:00Z.
    assert BERLIN.due_with_pauses(z(2026, 1, 16, 9), 8 * H, []) == z(2026, 1, 19, 9)
    # Elapsed to Mon 17:00 CET (16:00Z): Fri 6 h + Mon 10-17 7 h = 13 h.
    assert BERLIN.elapsed_with_pauses(z(2026, 1, 16, 9), z(2026, 1, 19, 16), pauses) == 13 * H


def test_overlapping_pauses() -> None:
    # Mon 08-16Z is 8 h; pauses 10-12Z and 11-13Z union to 10-13Z (3 h); 14:00-14:30Z is
    # inside 13:30-15:00Z. Left: 8 - 3 - 1.5 = 3.5 h.
    pauses = [
        (z(2026, 1, 19, 10), z(2026, 1, 19, 12)),
        (z(2026, 1, 19, 14), z(2026, 1, 19, 14, 30)),
        (z(2026, 1, 19, 11), z(2026, 1, 19, 13)),
        (z(2026, 1, 19, 13, 30), z(2026, 1, 19, 15)),
    ]
    assert BERLIN.elapsed_with_pauses(z(2026, 1, 19, 8), z(2026, 1, 19, 16), pauses) == 3.5 * H
    # 3 h target: 08-10Z = 2 h, 13:00-13:30Z = 0.5 h, 15:00Z + 0.5 h = 15:30Z.
    assert BERLIN.due_with_pauses(z(2026, 1, 19, 8), 3 * H, pauses) == z(2026, 1, 19, 15, 30)


def test_open_pause_stops_the_timer() -> None:
    pauses = [(z(2026, 1, 19, 12), None)]
    # 4 h elapse (08-12Z) before the open pause: an 8 h target is never due while it lasts.
    assert BERLIN.due_with_pauses(z(2026, 1, 19, 8), 8 * H, pauses) is None
    # A 3 h target was reached before the pause: 08:00Z + 3 h = 11:00Z (already due).
    assert BERLIN.due_with_pauses(z(2026, 1, 19, 8), 3 * H, pauses) == z(2026, 1, 19, 11)
    # Elapsed up to Tue 17:00 CET counts only the 4 h before the pause.
    assert BERLIN.elapsed_with_pauses(z(2026, 1, 19, 8), z(2026, 1, 20, 16), pauses) == 4 * H
    # A closed pause overlapping the open one extends it backwards: stopped from 11:00Z.
    both = [(z(2026, 1, 19, 11), z(2026, 1, 19, 13)), (z(2026, 1, 19, 12), None)]
    assert BERLIN.elapsed_with_pauses(z(2026, 1, 19, 8), z(2026, 1, 20, 16), both) == 3 * H
    assert BERLIN.due_with_pauses(z(2026, 1, 19, 8), 3 * H, both) == z(2026, 1, 19, 11)


def test_bad_pauses_refused() -> None:
    with pytest.raises(ValueError, match="pauses\\[0\\]"):
        BERLIN.elapsed_with_pauses(
            z(2026, 1, 19), z(2026, 1, 20), [(z(2026, 1, 19, 12), z(2026, 1, 19, 11))]
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        BERLIN.due_with_pauses(z(2026, 1, 19), 60, [(datetime(2026, 1, 19, 12), None)])


# --- round trip -------------------------------------------------------------------------------

ROUND_TRIP_CALENDARS = [
    BERLIN_LUNCH,
    cal("Europe/Berlin", {d: [["09:00", "17:00"]] for d in WEEKDAYS}, ["2026-03-30", "2026-10-26"]),
    BERLIN_EARLY,
    NY_NIGHT,
    ALWAYS,
]


@settings(max_examples=60, deadline=None)
@given(
    calendar=st.sampled_from(ROUND_TRIP_CALENDARS),
    start=st.datetimes(
        min_value=datetime(2026, 2, 20), max_value=datetime(2026, 11, 10), timezones=st.just(UTC)
    ),
    seconds=st.integers(min_value=0, max_value=120 * H),
)
def test_round_trip(calendar: BusinessCalendar, start: datetime, seconds: int) -> None:
    start = start.replace(microsecond=0)
    due = calendar.add_business_time(start, seconds)
    assert calendar.business_seconds(start, due) == seconds
    if seconds:
        # The earliest such instant: one second earlier is not enough.
        assert calendar.business_seconds(start, due - timedelta(seconds=1)) == seconds - 1


# --- validation -------------------------------------------------------------------------------


def test_naive_datetimes_refused() -> None:
    naive = datetime(2026, 1, 19, 10)
    with pytest.raises(ValueError, match="start_utc must be timezone-aware"):
        BERLIN.add_business_time(naive, 60)
    with pytest.raises(ValueError, match="end_utc must be timezone-aware"):
        BERLIN.business_seconds(z(2026, 1, 19), naive)
    with pytest.raises(ValueError, match="start_utc"):
        BERLIN.open_intervals(naive, z(2026, 1, 20))


def test_negative_duration_refused() -> None:
    with pytest.raises(ValueError, match="seconds"):
        BERLIN.add_business_time(z(2026, 1, 19), -1)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"timezone": "Europe/Berlln"}, "timezone"),
        ({"hours": {}}, "timezone"),
        ({"timezone": "UTC", "hours": {"funday": []}}, "hours.funday"),
        ({"timezone": "UTC", "hours": {"mon": [["17:00", "09:00"]]}}, "hours.mon\\[0\\]"),
        ({"timezone": "UTC", "hours": {"tue": [["22:00", "06:00"]]}}, "hours.tue\\[0\\]"),
        (
            {"timezone": "UTC", "hours": {"wed": [["09:00", "13:00"], ["12:00", "17:00"]]}},
            "hours.wed\\[1\\]",
        ),
        (
            {"timezone": "UTC", "hours": {"thu": [["13:00", "17:00"], ["09:00", "12:00"]]}},
            "hours.thu\\[1\\]",
        ),
        ({"timezone": "UTC", "hours": {"fri": [["9am", "17:00"]]}}, "hours.fri\\[0\\]"),
        ({"timezone": "UTC", "hours": {"fri": [["24:00", "24:00"]]}}, "hours.fri\\[0\\]"),
        ({"timezone": "UTC", "hours": {"sat": [["09:00"]]}}, "hours.sat\\[0\\]"),
        ({"timezone": "UTC", "hours": {"sun": "09:00-17:00"}}, "hours.sun"),
        ({"timezone": "UTC", "holidays": ["2026-12-25", "2026-13-01"]}, "holidays\\[1\\]"),
        ({"timezone": "UTC", "holidays": "2026-12-25"}, "holidays"),
        ({"timezone": "UTC", "holiday": []}, "holiday"),
    ],
)
def test_invalid_spec_names_the_key(spec: dict, key: str) -> None:
    with pytest.raises(ValueError, match=f"^{key}"):
        BusinessCalendar.from_spec(spec)


def test_direct_construction_validates() -> None:
    nine_five = ((time(9), time(17)),)
    with pytest.raises(ValueError, match="hours"):
        BusinessCalendar(tz="UTC", weekly=(nine_five,) * 6)
    with pytest.raises(ValueError, match="hours.mon\\[1\\]"):
        BusinessCalendar(
            tz="UTC", weekly=(((time(9), time(12)), (time(11), time(17))),) + ((),) * 6
        )
    with pytest.raises(ValueError, match="no business hours"):
        BusinessCalendar(tz="UTC", weekly=((),) * 7).add_business_time(z(2026, 1, 1), 1)


def test_spec_round_trip() -> None:
    spec = {
        "timezone": "America/New_York",
        "hours": {"mon": [["00:00", "06:00"], ["22:00", "24:00"]], "fri": [["09:30", "12:00"]]},
        "holidays": ["2026-07-03", "2026-12-25"],
    }
    calendar = BusinessCalendar.from_spec(spec)
    assert calendar.to_spec() == spec
    assert calendar.holidays == frozenset({date(2026, 7, 3), date(2026, 12, 25)})
    assert calendar.weekly[0] == ((time(0), time(6)), (time(22), time(0)))
    assert BusinessCalendar.from_spec(calendar.to_spec()) == calendar
    assert ALWAYS.to_spec()["timezone"] == "UTC"


def test_boundary_inside_skipped_or_repeated_hour() -> None:
    # The clock never reads 02:00-03:00 on 29 Mar: 02:30-05:00 opens when it reads 03:00 CEST
    # (01:00Z) and closes at 05:00 CEST (03:00Z) = 2 h.
    late = cal("Europe/Berlin", {d: [["02:30", "05:00"]] for d in ALL_DAYS})
    assert late.open_intervals(z(2026, 3, 29), z(2026, 3, 30)) == [
        (z(2026, 3, 29, 1), z(2026, 3, 29, 3))
    ]
    assert late.add_business_time(z(2026, 3, 28, 12), 1 * H) == z(2026, 3, 29, 2)
    # On 25 Oct the clock reads 01:00-02:30 CEST from 24th 23:00Z to 00:30Z, then 02:30-03:00
    # CEST (closed) until 01:00Z, when it falls back to 02:00 CET and reads 02:00-02:30 again
    # until 01:30Z: 1.5 h + 0.5 h = 2 h in two pieces (both readings of 02:00-02:30 count).
    early = cal("Europe/Berlin", {d: [["01:00", "02:30"]] for d in ALL_DAYS})
    assert early.business_seconds(z(2026, 10, 24, 12), z(2026, 10, 25, 12)) == 2 * H
    assert early.open_intervals(z(2026, 10, 24, 12), z(2026, 10, 25, 12)) == [
        (z(2026, 10, 24, 23), z(2026, 10, 25, 0, 30)),
        (z(2026, 10, 25, 1), z(2026, 10, 25, 1, 30)),
    ]
    assert early.add_business_time(z(2026, 10, 24, 23), 2 * H) == z(2026, 10, 25, 1, 30)
    # Adjacent intervals split inside the repeated hour still tile the night: 00:00-02:30 and
    # 02:30-04:00 cover 24th 22:00Z .. 25th 03:00Z = 5 h, like 00:00-04:00.
    split = cal("Europe/Berlin", {d: [["00:00", "02:30"], ["02:30", "04:00"]] for d in ALL_DAYS})
    assert split.business_seconds(z(2026, 10, 24, 12), z(2026, 10, 25, 12)) == 5 * H


def _minutes_open_brute_force(calendar: BusinessCalendar, start: datetime, minutes: int) -> int:
    """Independent oracle: look at the local wall clock at every minute (boundaries are on :00
    or :30, so a one-minute step is exact)."""
    zone = ZoneInfo(calendar.tz)
    count = 0
    for i in range(minutes):
        local = (start + timedelta(minutes=i)).astimezone(zone)
        if local.date() in calendar.holidays:
            continue
        wall = local.time().replace(tzinfo=None, fold=0)
        for s, e in calendar.weekly[local.weekday()]:
            if s <= wall and (e == time(0) or wall < e):
                count += 1
                break
    return count


@pytest.mark.parametrize(
    "calendar",
    [
        pytest.param(BERLIN_EARLY, id="berlin-00-04"),
        pytest.param(BERLIN_NIGHT, id="berlin-night"),
        pytest.param(BERLIN_LUNCH, id="berlin-lunch"),
        pytest.param(
            cal("Europe/Berlin", {d: [["01:00", "02:30"], ["02:30", "03:00"]] for d in ALL_DAYS}),
            id="berlin-split-in-changed-hour",
        ),
        pytest.param(NY_EARLY, id="ny-00-04"),
        pytest.param(NY_NIGHT, id="ny-night"),
        pytest.param(
            cal("America/New_York", {d: [["01:30", "03:30"]] for d in ALL_DAYS}),
            id="ny-01:30-03:30",
        ),
    ],
)
@pytest.mark.parametrize("day", [z(2026, 3, 7), z(2026, 3, 28), z(2026, 10, 24), z(2026, 10, 31)])
def test_matches_wall_clock_oracle_around_changes(
    calendar: BusinessCalendar, day: datetime
) -> None:
    minutes = 2 * 24 * 60  # the Saturday and the Sunday of the change, in UTC
    expected = _minutes_open_brute_force(calendar, day, minutes) * 60
    assert calendar.business_seconds(day, day + timedelta(minutes=minutes)) == expected
