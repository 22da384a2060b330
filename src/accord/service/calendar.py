"""Business-hours calendars for SLA timers: exact across weekends, holidays and DST.

Semantics (the reason this module exists: help desks get these wrong):

* Weekly hours are local wall-clock intervals per weekday; ``end`` of ``00:00`` means
  midnight at the end of the day (``"24:00"`` in a spec). An interval never crosses midnight:
  a night shift is two intervals (``22:00-24:00`` and ``00:00-06:00`` of the next weekday).
* An instant is "open" when the local wall clock reads a time inside one of that local date's
  intervals and the date is not a holiday. So on a DST date an interval counts the real time
  the clock spends inside it: ``00:00-04:00`` is 3 h on a spring-forward night and 5 h on a
  fall-back night in Europe/Berlin; a ``09:00-17:00`` day is 8 h on both sides of a change.
* A holiday closes the intervals that belong to its local date (the ``00:00-06:00`` part of a
  night shift belongs to the date it falls on).
* ``add_business_time`` returns the earliest instant at which the requested business time has
  elapsed: from a start outside hours (or on a holiday) counting begins at the next opening;
  zero seconds returns the start itself; a target ending exactly at closing is due at closing.

Only the standard library (``zoneinfo``) is used. Work is done day by day (a few ``utcoffset``
look-ups per date, plus a binary search on the rare dates with an offset change), never minute
by minute.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY = timedelta(days=1)
# UTC offsets stay within about -12h..+15h (historic LMT included); margins cover them.
_MARGIN = timedelta(hours=16)

Interval = tuple[time, time]
Pause = tuple[datetime, datetime | None]


def _seconds_of_day(value: time, *, is_end: bool) -> int:
    seconds = value.hour * 3600 + value.minute * 60 + value.second
    return 86400 if is_end and seconds == 0 and value.microsecond == 0 else seconds


def _fmt(value: time, *, is_end: bool) -> str:
    if is_end and value == time(0):
        return "24:00"
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def require_aware(name: str, value: datetime) -> datetime:
    """Refuse naive datetimes: a naive SLA instant is a bug waiting for a DST change."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value


def _utc_naive(name: str, value: datetime) -> datetime:
    return require_aware(name, value).astimezone(UTC).replace(tzinfo=None)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def _duration(seconds: float) -> timedelta:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError("seconds must be a number")
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError("seconds must be a finite number >= 0")
    return timedelta(seconds=seconds)


def _merge(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for a, b in sorted(spans):
        if a >= b:
            continue
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


@dataclass(frozen=True)
class BusinessCalendar:
    """A team's working time: IANA time zone, weekly wall-clock hours, closed dates."""

    tz: str
    weekly: tuple[tuple[Interval, ...], ...]
    holidays: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.tz, str) or not self.tz:
            raise ValueError("timezone: must be an IANA time zone name")
        try:
            zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone: unknown time zone {self.tz!r}") from exc
        weekly = tuple(tuple((s, e) for s, e in day) for day in self.weekly)
        if len(weekly) != 7:
            raise ValueError("hours: need exactly 7 weekdays (Monday first)")
        for name, day in zip(DAY_NAMES, weekly, strict=True):
            previous_end = -1
            for i, (start, end) in enumerate(day):
                if not isinstance(start, time) or not isinstance(end, time):
                    raise ValueError(f"hours.{name}[{i}]: start and end must be times")
                if start.tzinfo is not None or end.tzinfo is not None:
                    raise ValueError(f"hours.{name}[{i}]: times are local wall-clock, no tzinfo")
                s = _seconds_of_day(start, is_end=False)
                e = _seconds_of_day(end, is_end=True)
                if start.microsecond or end.microsecond:
                    raise ValueError(f"hours.{name}[{i}]: whole seconds only")
                if s >= e:
                    raise ValueError(
                        f"hours.{name}[{i}]: start {_fmt(start, is_end=False)} must be before "
                        f"end {_fmt(end, is_end=True)} (split intervals at midnight)"
                    )
                if s < previous_end:
                    raise ValueError(f"hours.{name}[{i}]: intervals must be sorted and not overlap")
                previous_end = e
        holidays = frozenset(self.holidays)
        for d in holidays:
            if not isinstance(d, date) or isinstance(d, datetime):
                raise ValueError(f"holidays: {d!r} is not a date")
        object.__setattr__(self, "weekly", weekly)
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "_zone", zone)

    # --- spec (JSON-able) -------------------------------------------------------------------

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> BusinessCalendar:
        """Build from ``{"timezone", "hours": {"mon": [["09:00","17:00"]]}, "holidays"}``."""
        if not isinstance(spec, Mapping):
            raise ValueError("calendar spec must be an object")
        unknown = sorted(set(spec) - {"timezone", "hours", "holidays"})
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown key")
        if "timezone" not in spec:
            raise ValueError("timezone: required")
        tz = spec["timezone"]
        if not isinstance(tz, str):
            raise ValueError("timezone: must be a string")
        hours = spec.get("hours", {})
        if not isinstance(hours, Mapping):
            raise ValueError("hours: must be an object keyed by mon..sun")
        bad_days = sorted(str(k) for k in hours if k not in DAY_NAMES)
        if bad_days:
            raise ValueError(f"hours.{bad_days[0]}: unknown weekday (use mon..sun)")
        weekly: list[tuple[Interval, ...]] = []
        for name in DAY_NAMES:
            raw = hours.get(name, [])
            if not isinstance(raw, Sequence) or isinstance(raw, str):
                raise ValueError(f"hours.{name}: must be a list of [start, end] pairs")
            day: list[Interval] = []
            for i, pair in enumerate(raw):
                key = f"hours.{name}[{i}]"
                if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
                    raise ValueError(f"{key}: must be a [start, end] pair")
                start = _parse_time(key, pair[0], is_end=False)
                end = _parse_time(key, pair[1], is_end=True)
                day.append((start, end))
            weekly.append(tuple(day))
        raw_holidays = spec.get("holidays", [])
        if not isinstance(raw_holidays, Sequence) or isinstance(raw_holidays, str):
            raise ValueError("holidays: must be a list of YYYY-MM-DD dates")
        holidays: set[date] = set()
        for i, raw_day in enumerate(raw_holidays):
            try:
                if not isinstance(raw_day, str) or len(raw_day) != 10:
                    raise ValueError
                holidays.add(date.fromisoformat(raw_day))
            except ValueError:
                raise ValueError(f"holidays[{i}]: {raw_day!r} is not a date (YYYY-MM-DD)") from None
        return cls(tz=tz, weekly=tuple(weekly), holidays=frozenset(holidays))

    def to_spec(self) -> dict[str, Any]:
        return {
            "timezone": self.tz,
            "hours": {
                name: [[_fmt(s, is_end=False), _fmt(e, is_end=True)] for s, e in day]
                for name, day in zip(DAY_NAMES, self.weekly, strict=True)
                if day
            },
            "holidays": sorted(d.isoformat() for d in self.holidays),
        }

    # --- core: the open intervals of one local date -------------------------------------------

    def _offset(self, utc: datetime) -> timedelta:
        offset = utc.replace(tzinfo=UTC).astimezone(self._zone).utcoffset()
        assert offset is not None
        return offset

    def _segments(self, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime, timedelta]]:
        """Split naive-UTC [lo, hi) into runs of constant UTC offset."""
        out: list[tuple[datetime, datetime, timedelta]] = []
        while True:
            first = self._offset(lo)
            if self._offset(hi) == first:
                out.append((lo, hi, first))
                return out
            # Binary search (whole seconds; tzdata transitions are) for the first change.
            good, bad = 0, int((hi - lo).total_seconds())
            while bad - good > 1:
                mid = (good + bad) // 2
                if self._offset(lo + timedelta(seconds=mid)) == first:
                    good = mid
                else:
                    bad = mid
            cut = lo + timedelta(seconds=bad)
            out.append((lo, cut, first))
            lo = cut

    def _day(self, d: date) -> list[tuple[datetime, datetime]]:
        """Naive-UTC open intervals of local date ``d`` (empty on holidays)."""
        spans = self.weekly[d.weekday()]
        if not spans or d in self.holidays:
            return []
        midnight = datetime.combine(d, time())
        segments = self._segments(midnight - _MARGIN, midnight + _DAY + _MARGIN)
        out: list[tuple[datetime, datetime]] = []
        for start, end in spans:
            wall_start = midnight + timedelta(seconds=_seconds_of_day(start, is_end=False))
            wall_end = midnight + timedelta(seconds=_seconds_of_day(end, is_end=True))
            for lo, hi, offset in segments:
                a = max(wall_start, lo + offset)
                b = min(wall_end, hi + offset)
                if a < b:
                    out.append((a - offset, b - offset))
        return _merge(out)

    def _local_date(self, utc: datetime) -> date:
        return utc.replace(tzinfo=UTC).astimezone(self._zone).date()

    def _forward(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Naive-UTC open intervals from ``start`` onwards, in order, clipped at ``start``."""
        if not any(self.weekly):
            raise ValueError("calendar has no business hours")
        d = self._local_date(start) - _DAY  # a fall-back over midnight can revisit a date
        pending: list[tuple[datetime, datetime]] = []
        while True:
            for a, b in self._day(d):
                if b > start:
                    heapq.heappush(pending, (max(a, start), b))
            # Later dates only hold instants after (next midnight - margin): safe to release.
            horizon = datetime.combine(d + _DAY, time()) - _MARGIN
            while pending and pending[0][1] <= horizon:
                yield heapq.heappop(pending)
            d += _DAY

    def _between(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        if end <= start:
            return []
        spans: list[tuple[datetime, datetime]] = []
        d = self._local_date(start) - _DAY
        last = self._local_date(end) + _DAY
        while d <= last:
            for a, b in self._day(d):
                a, b = max(a, start), min(b, end)
                if a < b:
                    spans.append((a, b))
            d += _DAY
        return _merge(spans)

    # --- public API ---------------------------------------------------------------------------

    def open_intervals(
        self, start_utc: datetime, end_utc: datetime
    ) -> list[tuple[datetime, datetime]]:
        """Business intervals within [start, end) as UTC-aware pairs, adjacent ones merged."""
        start = _utc_naive("start_utc", start_utc)
        end = _utc_naive("end_utc", end_utc)
        return [(_aware(a), _aware(b)) for a, b in self._between(start, end)]

    def business_seconds(self, start_utc: datetime, end_utc: datetime) -> float:
        """Business time between two instants (0 when end <= start)."""
        return self.elapsed_with_pauses(start_utc, end_utc, ())

    def add_business_time(self, start_utc: datetime, seconds: float) -> datetime:
        """Earliest instant at which ``seconds`` of business time have elapsed since start."""
        due = self.due_with_pauses(start_utc, seconds, ())
        assert due is not None
        return due

    def elapsed_with_pauses(
        self, start_utc: datetime, end_utc: datetime, pauses: Iterable[Pause]
    ) -> float:
        """Business seconds in [start, end) outside every pause (open pause: to infinity)."""
        start = _utc_naive("start_utc", start_utc)
        end = _utc_naive("end_utc", end_utc)
        stops = _normalise_pauses(pauses)
        total = timedelta()
        for a, b in _subtract(self._between(start, end), stops):
            total += b - a
        return total.total_seconds()

    def due_with_pauses(
        self, start_utc: datetime, seconds: float, pauses: Iterable[Pause]
    ) -> datetime | None:
        """When the target is reached, skipping pauses; ``None`` if an open pause stops it first."""
        start = _utc_naive("start_utc", start_utc)
        remaining = _duration(seconds)
        stops = _normalise_pauses(pauses)
        if not remaining:
            return _aware(start)
        stop_at = stops[-1][0] if stops and stops[-1][1] is None else None
        closed = [(a, b) for a, b in stops if b is not None]
        for a, b in self._forward(start):
            if stop_at is not None and a >= stop_at:
                return None
            if stop_at is not None:
                b = min(b, stop_at)
            for x, y in _subtract([(a, b)], closed):
                if y - x >= remaining:
                    return _aware(x + remaining)
                remaining -= y - x
            if stop_at is not None and b >= stop_at:
                return None
        raise AssertionError("unreachable: _forward never ends")


def _parse_time(key: str, raw: Any, *, is_end: bool) -> time:
    if not isinstance(raw, str):
        raise ValueError(f"{key}: times must be strings like '09:00'")
    if raw == "24:00":
        if not is_end:
            raise ValueError(f"{key}: 24:00 is only valid as an end time")
        return time(0)
    parts = raw.split(":")
    try:
        if len(parts) not in (2, 3) or not all(len(p) == 2 and p.isdigit() for p in parts):
            raise ValueError
        return time(*(int(p) for p in parts))
    except ValueError:
        raise ValueError(f"{key}: {raw!r} is not a time (HH:MM)") from None


def _normalise_pauses(pauses: Iterable[Pause]) -> list[tuple[datetime, datetime | None]]:
    """Merge pauses; an open one (end None) swallows every later pause."""
    closed: list[tuple[datetime, datetime]] = []
    open_from: datetime | None = None
    for i, pause in enumerate(pauses):
        try:
            raw_start, raw_end = pause
        except (TypeError, ValueError):
            raise ValueError(f"pauses[{i}]: must be a (start, end or None) pair") from None
        a = _utc_naive(f"pauses[{i}] start", raw_start)
        if raw_end is None:
            open_from = a if open_from is None else min(open_from, a)
            continue
        b = _utc_naive(f"pauses[{i}] end", raw_end)
        if b < a:
            raise ValueError(f"pauses[{i}]: end is before start")
        closed.append((a, b))
    merged: list[tuple[datetime, datetime | None]] = []
    for a, b in _merge(closed):
        if open_from is not None and b >= open_from:
            open_from = min(open_from, a)
            break
        merged.append((a, b))
    if open_from is not None:
        merged.append((open_from, None))
    return merged


def _subtract(
    spans: Iterable[tuple[datetime, datetime]], stops: Sequence[tuple[datetime, datetime | None]]
) -> Iterator[tuple[datetime, datetime]]:
    """Sorted spans minus sorted disjoint stops (a stop ending in None never ends)."""
    for a, b in spans:
        for x, y in stops:
            if y is not None and y <= a:
                continue
            if x >= b:
                break
            if x > a:
                yield (a, x)
            if y is None or y >= b:
                a = b
                break
            a = y
        if a < b:
            yield (a, b)


ALWAYS = BusinessCalendar(tz="UTC", weekly=tuple(((time(0), time(0)),) for _ in range(7)))
