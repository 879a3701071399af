"""Working time (工作时/工作日) on the city's calendar: public holidays and make-up workdays.

Why a table the city edits (``work_calendar``) rather than a library at run time: the State Council
publishes next year's holidays each November, and ``chinese_calendar`` (1.11.0) covers 2004–2026 only
("no available data for year 2027"); ``holidays`` lists CN holidays but its make-up workdays lag behind.
A city also adds local days off (e.g. a typhoon day). So migration 0007 seeds the table from
``geo/data/calendar_cn.json`` (generated from ``chinese_calendar``; a test cross-checks the two), the
city edits it (``PUT /v1/calendar/{date}``), and days not in the table follow the weekday rule
(Monday–Friday work). Time limits are counted in the working hours of the catalogue (``work_hours``).

Rules
-----
* ``work_hours`` N: N hours counted inside the working intervals of workdays, from the intake time.
* ``work_days`` N: the end of the working day of the N-th workday after the intake day (the intake day
  itself does not count, as 数字城管 tables count whole working days).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text

MAX_DAYS = 3 * 366  # a limit longer than this is a catalogue error, not a wait
CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class DayInfo:
    day: date
    workday: bool
    kind: str  # workday | weekend | holiday | makeup_workday
    name: str | None = None


class WorkCalendar:
    """Workdays and working hours in one time zone.

    Parameters
    ----------
    overrides : dict[date, DayInfo]
        Days that depart from the weekday rule (holidays, make-up workdays).
    work_hours : list of (start, end) ``"HH:MM"`` strings
        Working intervals of a workday, in order, not overlapping.
    tz : str
        IANA time zone of the intervals (``GEO_TZ``).
    """

    def __init__(self, overrides: dict[date, DayInfo], work_hours: list[tuple[str, str]], tz: str):
        self.overrides = overrides
        self.tz = ZoneInfo(tz)
        self.intervals = [(dtime.fromisoformat(a), dtime.fromisoformat(b)) for a, b in work_hours]
        if not self.intervals or any(a >= b for a, b in self.intervals):
            raise ValueError(f"work_hours must be non-empty (start, end) pairs with start < end: {work_hours}")

    def info(self, d: date) -> DayInfo:
        """What kind of day *d* is."""
        if d in self.overrides:
            return self.overrides[d]
        wk = d.weekday() < 5
        return DayInfo(d, wk, "workday" if wk else "weekend")

    def is_workday(self, d: date) -> bool:
        return self.info(d).workday

    def _local(self, t: datetime) -> datetime:
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        return t.astimezone(self.tz)

    def add(self, start: datetime, value: float, unit: str) -> datetime:
        """The deadline *value* ``work_hours``/``work_days`` after *start* (an aware datetime, returned in UTC).

        Raises ValueError for an unknown unit or a negative value.
        """
        if value < 0:
            raise ValueError(f"time limit must not be negative: {value}")
        t = self._local(start)
        if unit == "work_days":
            d, left = t.date(), int(round(value))
            for _ in range(MAX_DAYS):
                d += timedelta(days=1)
                if self.is_workday(d):
                    left -= 1
                    if left <= 0:
                        return datetime.combine(d, self.intervals[-1][1], self.tz).astimezone(timezone.utc)
            raise ValueError(f"no {value} working days within {MAX_DAYS} days of {start}")
        if unit != "work_hours":
            raise ValueError(f"unknown time-limit unit {unit!r}; expected work_hours or work_days")
        left = timedelta(hours=value)
        d = t.date()
        for _ in range(MAX_DAYS):
            if self.is_workday(d):
                for a, b in self.intervals:
                    s = max(datetime.combine(d, a, self.tz), t)
                    e = datetime.combine(d, b, self.tz)
                    if s >= e:
                        continue
                    if e - s >= left:
                        return (s + left).astimezone(timezone.utc)
                    left -= e - s
            d += timedelta(days=1)
        raise ValueError(f"no {value} working hours within {MAX_DAYS} days of {start}")

    def working_seconds(self, a: datetime, b: datetime) -> float:
        """Working seconds between *a* and *b* (negative when b < a)."""
        if b < a:
            return -self.working_seconds(b, a)
        a, b = self._local(a), self._local(b)
        total, d = 0.0, a.date()
        while d <= b.date():
            if self.is_workday(d):
                for x, y in self.intervals:
                    s = max(datetime.combine(d, x, self.tz), a)
                    e = min(datetime.combine(d, y, self.tz), b)
                    if e > s:
                        total += (e - s).total_seconds()
            d += timedelta(days=1)
        return total

    def days(self, start: date, end: date) -> list[DayInfo]:
        """Every day from *start* to *end* inclusive."""
        out, d = [], start
        while d <= end:
            out.append(self.info(d))
            d += timedelta(days=1)
        return out


class CalendarHolder:
    """The calendar read from ``work_calendar``, re-read at most every ``CACHE_SECONDS`` (edits by any process
    show up everywhere within that time)."""

    def __init__(self, engine: Engine, work_hours: list[tuple[str, str]], tz: str):
        self.engine, self.work_hours, self.tz = engine, work_hours, tz
        self._cal: WorkCalendar | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self) -> WorkCalendar:
        with self._lock:
            if self._cal is None or time.monotonic() - self._at > CACHE_SECONDS:
                with self.engine.connect() as conn:
                    rows = conn.execute(text("SELECT day, workday, kind, name FROM work_calendar")).all()
                self._cal = WorkCalendar({r.day: DayInfo(r.day, r.workday, r.kind, r.name) for r in rows},
                                         self.work_hours, self.tz)
                self._at = time.monotonic()
            return self._cal

    def invalidate(self) -> None:
        with self._lock:
            self._cal = None


_holders_lock = threading.Lock()


def calendar_of(state) -> WorkCalendar:
    """The working calendar of an :class:`~geo.api.deps.AppState` (one holder per application state)."""
    h = getattr(state, "_workcal", None)
    if h is None:
        with _holders_lock:
            h = getattr(state, "_workcal", None)
            if h is None:
                h = CalendarHolder(state.engine, state.catalogue.work_hours, state.settings.timezone)
                state._workcal = h
    return h.get()


def invalidate(state) -> None:
    h = getattr(state, "_workcal", None)
    if h is not None:
        h.invalidate()
