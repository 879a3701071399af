"""Working time on the city calendar: hours inside working intervals, whole working days, holidays and
make-up workdays; the shipped calendar agrees with chinese_calendar."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from geo.api.services.workcal import DayInfo, WorkCalendar
from geo.db.workcal import calendar_rows

CST = ZoneInfo("Asia/Shanghai")
HOURS = [("09:00", "12:00"), ("13:30", "17:30")]


@pytest.fixture(scope="module")
def cal():
    return WorkCalendar({r["day"]: DayInfo(**r) for r in calendar_rows()}, HOURS, "Asia/Shanghai")


def t(*a):
    return datetime(*a, tzinfo=CST)


@pytest.mark.parametrize("start,value,unit,due", [
    (t(2026, 9, 30, 16, 0), 4, "work_hours", t(2026, 10, 8, 11, 30)),    # across 国庆
    (t(2026, 10, 9, 17, 0), 4, "work_hours", t(2026, 10, 10, 14, 0)),    # Saturday 10 Oct is a make-up workday
    (t(2026, 9, 19, 20, 0), 2, "work_hours", t(2026, 9, 20, 11, 0)),     # Sunday 20 Sep is a make-up workday
    (t(2026, 11, 2, 12, 30), 1, "work_hours", t(2026, 11, 2, 14, 30)),   # lunch break does not count
    (t(2026, 11, 6, 8, 0), 7, "work_hours", t(2026, 11, 6, 17, 30)),     # one full day is 7 h
    (t(2026, 11, 6, 17, 45), 0.5, "work_hours", t(2026, 11, 9, 9, 30)),  # Friday evening → Monday
    (t(2026, 9, 30, 10, 0), 1, "work_days", t(2026, 10, 8, 17, 30)),
    (t(2026, 10, 9, 10, 0), 1, "work_days", t(2026, 10, 10, 17, 30)),
    (t(2026, 10, 9, 10, 0), 3, "work_days", t(2026, 10, 13, 17, 30)),
    (t(2027, 1, 8, 10, 0), 1, "work_days", t(2027, 1, 11, 17, 30)),      # beyond the file: weekday rule
])
def test_deadlines(cal, start, value, unit, due):
    assert cal.add(start, value, unit) == due
    if unit == "work_hours":
        assert cal.working_seconds(start, due) == pytest.approx(value * 3600)


def test_bad_units_and_hours(cal):
    with pytest.raises(ValueError, match="unit"):
        cal.add(t(2026, 1, 5, 9), 1, "hours")
    with pytest.raises(ValueError, match="negative"):
        cal.add(t(2026, 1, 5, 9), -1, "work_hours")
    with pytest.raises(ValueError, match="work_hours"):
        WorkCalendar({}, [("12:00", "09:00")], "Asia/Shanghai")


def test_days_kinds(cal):
    kinds = {d.day: d.kind for d in cal.days(date(2026, 9, 19), date(2026, 10, 11))}
    assert kinds[date(2026, 9, 20)] == "makeup_workday" and kinds[date(2026, 10, 10)] == "makeup_workday"
    assert all(kinds[date(2026, 10, d)] == "holiday" for d in range(1, 8))
    assert kinds[date(2026, 10, 11)] == "weekend" and kinds[date(2026, 10, 9)] == "workday"


def test_shipped_calendar_matches_chinese_calendar():
    cc = pytest.importorskip("chinese_calendar")
    rows = {r["day"]: r for r in calendar_rows()}
    d = date(2025, 1, 1)
    while d <= date(2026, 12, 31):
        weekday_rule = d.weekday() < 5
        expected = cc.is_workday(d)
        got = rows[d]["workday"] if d in rows else weekday_rule
        assert got == expected, d
        d += timedelta(days=1)
