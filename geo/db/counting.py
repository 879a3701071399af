"""Residents and households of grid polygons, counted from the polygons and the loaded population.

One function, :func:`count_residents`, used by every figure of imported and hand-edited plans (import
report, live figures after an edit, staffing carry): address points (楼栋) are counted in the polygon that
covers them (a point on a shared edge goes to the first polygon given), census polygons by areal weighting
(people × covered share of the unit's area). When the engine's own ``verify`` lands on this branch this
function is the one place to point at it.
"""

from __future__ import annotations

import numpy as np
import shapely
from sqlalchemy import Connection, text

_SQL = text("""
    WITH g AS (
        SELECT (t.ord - 1)::int AS i, ST_SetSRID(ST_GeomFromWKB(decode(t.wkb, 'hex')), 4326) AS geom
        FROM unnest(CAST(:wkb AS text[])) WITH ORDINALITY AS t(wkb, ord)
    ), pts AS (
        SELECT DISTINCT ON (u.id) g.i, u.people, coalesce(u.households, 0) AS households
        FROM population_units u JOIN g ON ST_Covers(g.geom, u.geom)
        WHERE u.dataset = :ds AND GeometryType(u.geom) IN ('POINT', 'MULTIPOINT')
        ORDER BY u.id, g.i
    ), polys AS (
        SELECT g.i,
               u.people * ST_Area(ST_Intersection(u.geom, g.geom)::geography)
                   / nullif(ST_Area(u.geom::geography), 0) AS people,
               coalesce(u.households, 0) * ST_Area(ST_Intersection(u.geom, g.geom)::geography)
                   / nullif(ST_Area(u.geom::geography), 0) AS households
        FROM population_units u JOIN g ON ST_Intersects(g.geom, u.geom)
        WHERE u.dataset = :ds AND GeometryType(u.geom) NOT IN ('POINT', 'MULTIPOINT')
    )
    SELECT i, sum(people), sum(households) FROM (SELECT * FROM pts UNION ALL SELECT * FROM polys) x GROUP BY i
""")


def count_residents(conn: Connection, geoms, dataset: str | None) -> tuple[np.ndarray, np.ndarray]:
    """People and households inside each polygon.

    Parameters
    ----------
    conn : Connection
        Open connection to the geo database.
    geoms : sequence of shapely geometries in EPSG:4326
    dataset : str or None
        Population dataset to count (None: nothing is loaded — all zeros).

    Returns
    -------
    (people, households) : int64 arrays, one value per polygon (areal weights rounded to whole people).
    """
    n = len(geoms)
    people, hh = np.zeros(n), np.zeros(n)
    if n == 0 or dataset is None:
        return people.astype(np.int64), hh.astype(np.int64)
    wkb = list(shapely.to_wkb(np.asarray(geoms, dtype=object), hex=True))
    for i, p, h in conn.execute(_SQL, {"wkb": wkb, "ds": dataset}).all():
        people[i], hh[i] = float(p or 0), float(h or 0)
    return np.round(people).astype(np.int64), np.round(hh).astype(np.int64)


def population_dataset(conn: Connection, jurisdiction_id: int, wanted: str | None = None) -> str | None:
    """The population dataset of a jurisdiction: *wanted* if given, else the one (largest) covering it."""
    if wanted:
        return wanted
    return conn.execute(text("""
        SELECT u.dataset FROM population_units u, jurisdictions j
        WHERE j.id = :j AND ST_Intersects(u.geom, j.geom) GROUP BY 1 ORDER BY count(*) DESC LIMIT 1
    """), {"j": jurisdiction_id}).scalar()
