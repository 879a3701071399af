"""The synthetic event seed (``geo demo``'s events) at every time of day.

CI once failed on a run in the UTC afternoon or evening: moving an event from early that day to its "daily
rhythm" hour (up to 21:59) put it in the future, and the loop stage's probability went negative. These tests run the seed with ``now`` at each
hour of one day.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from shapely.geometry import Point
from sqlalchemy import text

from geo.api.core.config import get_catalogue
from geo.db.seed import _daytime, seed_events
from tests.api.conftest import DX, DY, X0, Y0

DAY = datetime(2026, 12, 2, tzinfo=timezone.utc)


@pytest.mark.parametrize("hour", range(24))
def test_daytime_never_moves_an_event_into_the_future(hour):
    now = DAY + timedelta(hours=hour, minutes=37)
    for back_h in range(0, 72):
        c = now - timedelta(hours=back_h, minutes=11)
        for h in range(7, 22):
            moved = _daytime(c, h, now)
            assert moved <= now
            if back_h >= 14:  # more than 14 h old: moved to that hour, on its own day or the day before
                assert moved.hour == h and (c.date() - moved.date()).days in (0, 1)
            else:
                assert moved == c


def test_seed_events_at_every_hour_of_a_day(world, engine):
    with engine.begin() as c:
        lid = c.execute(text("INSERT INTO loads (kind, dataset, source, rows_read, rows_loaded, created_by) "
                             "VALUES ('population', 'p', 't', 4, 4, 't') RETURNING id")).scalar_one()
        for i in range(4):
            c.execute(text("INSERT INTO population_units (dataset, source_id, people, geom, load_id) VALUES "
                           "('p', :s, 500, ST_GeomFromText(:g, 4326), :l)"),
                      {"s": str(i), "g": Point(X0 + DX * (i + 0.5), Y0 + DY * 0.5).wkt, "l": lid})
    cat = get_catalogue()
    for hour in range(24):
        now = DAY + timedelta(hours=hour, minutes=5)
        assert seed_events(engine, [world["plan"]], cat, n=300, days=3, seed=hour, now=now) == 300
        with engine.connect() as c:
            latest, bad = c.execute(text("""
                SELECT max(created_at), count(*) FILTER (WHERE coalesce(closed_at, resolved_at, dispatched_at,
                                                                        accepted_at, created_at) < created_at)
                FROM events WHERE synthetic""")).one()
        assert latest <= now and bad == 0, hour
