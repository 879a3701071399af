"""巡查覆盖率 (patrol coverage): the share of a grid's street length within ``RADIUS_M`` of its workers' tracks
on one day, computed in PostGIS in a metric CRS (the grid's UTM zone).

* Streets: every street centerline clipped to the grid (overlapping lines of two datasets unioned first,
  so a street is not counted twice).
* Tracks: the day's fixes (calendar day in ``GEO_TZ``) of the workers assigned to the grid, joined in time
  order; a step longer than ``MAX_GAP`` in time is not drawn (the GPS was off: nobody walked the straight
  line between), but both its fixes still count as points.
* Covered: street length inside the union of the 30 m buffers of tracks and fixes.

The computation is the big screen's costliest read (a union of one buffer per track step: about 1.2 s for
41 grids and 11,600 fixes on 2 busy cores), and a wall asks for it on every refresh. :class:`CoverageCache`
keeps each grid's result with a fingerprint of its inputs (the day's fixes of its workers, the streets) and
recomputes only grids whose fingerprint changed; concurrent callers wait for one computation instead of
running the same one side by side. Answers stay exact: a grid with a new fix is recomputed before it is shown.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

RADIUS_M = 30.0
MAX_GAP = timedelta(minutes=5)

COVERAGE_SQL = """
WITH g AS MATERIALIZED (
    SELECT g.code, g.name, g.geom,
           32600 + floor((ST_X(ST_Centroid(g.geom)) + 180) / 6)::int + 1
           - CASE WHEN ST_Y(ST_Centroid(g.geom)) < 0 THEN -100 ELSE 0 END AS srid
    FROM grids g WHERE g.plan_id = ANY(:plans) AND g.code = ANY(:codes)
),
s AS MATERIALIZED (
    SELECT g.code, ST_Union(ST_Transform(ST_Intersection(st.geom, g.geom), g.srid)) AS geom
    FROM g JOIN streets st ON st.geom && g.geom AND ST_Intersects(st.geom, g.geom)
    GROUP BY g.code
),
f AS (
    SELECT wg.grid_code AS code, wp.worker_id, wp.ts, wp.geom,
           lag(wp.geom) OVER w AS prev_geom, lag(wp.ts) OVER w AS prev_ts
    FROM worker_positions wp JOIN worker_grids wg ON wg.worker_id = wp.worker_id
    WHERE wg.grid_code = ANY(:codes) AND wp.ts >= :t0 AND wp.ts < :t1
    WINDOW w AS (PARTITION BY wg.grid_code, wp.worker_id ORDER BY wp.ts)
),
t AS MATERIALIZED (
    SELECT f.code, count(DISTINCT f.worker_id) AS workers,
           ST_Union(ST_Buffer(ST_Transform(
               CASE WHEN f.prev_geom IS NOT NULL AND f.ts - f.prev_ts <= :gap
                    THEN ST_MakeLine(f.prev_geom, f.geom) ELSE f.geom END, g.srid), :r, 4)) AS geom
    FROM f JOIN g ON g.code = f.code
    GROUP BY f.code
)
SELECT g.code, g.name, coalesce(ST_Length(s.geom), 0) AS street_m,
       coalesce(ST_Length(ST_Intersection(s.geom, t.geom)), 0) AS covered_m, coalesce(t.workers, 0) AS workers
FROM g LEFT JOIN s ON s.code = g.code LEFT JOIN t ON t.code = g.code
ORDER BY g.code
"""


def day_window(day: date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in time zone *tz*."""
    z = ZoneInfo(tz)
    t0 = datetime.combine(day, time(0), z)
    return t0, t0 + timedelta(days=1)


def coverage(conn: Connection, *, plan_ids: list[int], codes: list[str], day: date, tz: str) -> list[dict]:
    """Patrol coverage of each grid in *codes* on *day* (``coverage`` None where the grid has no streets)."""
    if not codes:
        return []
    t0, t1 = day_window(day, tz)
    rows = conn.execute(text(COVERAGE_SQL), {"plans": plan_ids, "codes": codes, "t0": t0, "t1": t1,
                                             "gap": MAX_GAP, "r": RADIUS_M}).mappings().all()
    return [{"grid_code": r["code"], "grid_name": r["name"], "street_m": round(r["street_m"], 1),
             "covered_m": round(r["covered_m"], 1), "workers": r["workers"],
             "coverage": round(r["covered_m"] / r["street_m"], 4) if r["street_m"] > 0 else None} for r in rows]


FINGERPRINT_SQL = """
SELECT wg.grid_code AS code, count(*) AS n, coalesce(sum(wp.id), 0) AS ids
FROM worker_positions wp JOIN worker_grids wg ON wg.worker_id = wp.worker_id
WHERE wg.grid_code = ANY(:codes) AND wp.ts >= :t0 AND wp.ts < :t1
GROUP BY wg.grid_code
"""


class CoverageCache:
    """Patrol coverage per grid, recomputed only when the grid's inputs changed (one per API process).

    A grid's fingerprint is (plan ids, day, the streets' count and newest load, the number and id sum of the
    day's fixes of the workers assigned to it): a new fix, a reassigned worker, a new street load or a new plan
    changes it. Computations run one at a time (a second caller waits and then finds the results cached).
    """

    def __init__(self, max_days: int = 3):
        self._lock = threading.Lock()
        self._rows: dict[tuple, tuple[tuple, dict]] = {}  # (plans, day, code) -> (fingerprint, result row)
        self.max_days = max_days
        self.computed = 0  # grids computed (for tests and logs)

    def coverage(self, conn: Connection, *, plan_ids: list[int], codes: list[str], day: date, tz: str) -> list[dict]:
        """Like :func:`coverage`, from the cache where the inputs did not change."""
        if not codes:
            return []
        plans = tuple(sorted(plan_ids))
        t0, t1 = day_window(day, tz)
        with self._lock:
            streets = tuple(conn.execute(text("SELECT count(*), coalesce(max(load_id), 0) FROM streets")).one())
            fixes = {r.code: (r.n, r.ids) for r in conn.execute(text(FINGERPRINT_SQL),
                                                                {"codes": list(codes), "t0": t0, "t1": t1})}
            want = {c: (streets, fixes.get(c, (0, 0))) for c in codes}
            stale = [c for c in codes if (self._rows.get((plans, day, c)) or (None,))[0] != want[c]]
            if stale:
                for row in coverage(conn, plan_ids=list(plans), codes=stale, day=day, tz=tz):
                    self._rows[(plans, day, row["grid_code"])] = (want[row["grid_code"]], row)
                self.computed += len(stale)
                self._forget_old_days()
            return [self._rows[(plans, day, c)][1] for c in codes if (plans, day, c) in self._rows]

    def _forget_old_days(self) -> None:
        days = sorted({k[1] for k in self._rows}, reverse=True)
        if len(days) > self.max_days:
            keep = set(days[:self.max_days])
            self._rows = {k: v for k, v in self._rows.items() if k[1] in keep}
