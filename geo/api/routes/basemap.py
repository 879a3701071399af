"""The project's own offline basemap as Mapbox Vector Tiles from PostGIS (``ST_AsMVT``).

``GET /v1/tiles/basemap/{z}/{x}/{y}.mvt`` — every role; the caller's jurisdiction only. Layers:

* ``streets``: centerlines (``name``, ``klass``) that cross the caller's jurisdiction; below zoom 12 only
  the main roads (minor classes would be noise at district scale);
* ``communities``: community/village boundaries of the subtree (``code``, ``name``);
* ``labels``: one point per community (on its surface) with its name, for text labels.

No tile server: the dashboard styles these layers itself, so the map is readable on an intranet.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request, Response
from sqlalchemy import text

from geo.api.core.security import Principal
from geo.api.deps import get_state, require
from geo.api.errors import APIError
from geo.api.routes.plans import tile_bounds

router = APIRouter(prefix="/v1", tags=["basemap"])

MINOR = ("residential", "service", "footway", "path", "track", "cycleway", "steps", "pedestrian", "living_street",
         "unclassified", "corridor", "bridleway")

BASEMAP_SQL = """
WITH b AS (SELECT ST_MakeEnvelope(:x0, :y0, :x1, :y1, 3857) AS env),
b4 AS (SELECT ST_Transform(env, 4326) AS env4 FROM b),
me AS (SELECT geom FROM jurisdictions WHERE id = :jid),
st AS (
    SELECT s.name, s.klass, ST_AsMVTGeom(ST_Transform(s.geom, 3857), b.env, 4096, 64, true) AS geom
    FROM streets s CROSS JOIN b CROSS JOIN b4 CROSS JOIN me
    WHERE s.geom && b4.env4 AND ST_Intersects(s.geom, me.geom)
      AND (:z >= 12 OR s.klass IS NULL OR s.klass <> ALL(:minor))
),
co AS (
    SELECT j.code, j.name, ST_AsMVTGeom(ST_Transform(j.geom, 3857), b.env, 4096, 64, true) AS geom
    FROM jurisdictions j CROSS JOIN b CROSS JOIN b4
    WHERE j.level = 'community' AND j.path LIKE :path || '%' AND j.geom && b4.env4
),
la AS (
    SELECT j.code, j.name, ST_AsMVTGeom(ST_Transform(ST_PointOnSurface(j.geom), 3857), b.env, 4096, 0, true) AS geom
    FROM jurisdictions j CROSS JOIN b CROSS JOIN b4
    WHERE j.level = 'community' AND j.path LIKE :path || '%' AND j.geom && b4.env4
)
SELECT coalesce((SELECT ST_AsMVT(st, 'streets', 4096, 'geom') FROM st WHERE geom IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(co, 'communities', 4096, 'geom') FROM co WHERE geom IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(la, 'labels', 4096, 'geom') FROM la WHERE geom IS NOT NULL), '')
"""


@router.get("/tiles/basemap/{z}/{x}/{y}.mvt", summary="Offline basemap tile: streets, communities, labels (ST_AsMVT)")
def basemap_tile(request: Request, z: int = Path(..., ge=0, le=22), x: int = Path(..., ge=0), y: int = Path(..., ge=0),
                 p: Principal = Depends(require("read"))):
    if x >= 2 ** z or y >= 2 ** z:
        raise APIError(422, "validation_error", f"瓦片 {z}/{x}/{y} 不存在：x、y 须小于 2^z",
                       details=[{"field": "x/y", "message": f"must be < {2 ** z}"}])
    state = get_state(request)
    x0, y0, x1, y1 = tile_bounds(z, x, y)
    with state.engine.connect() as conn:
        data = conn.execute(text(BASEMAP_SQL), {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "z": z, "minor": list(MINOR),
                                                "path": p.jurisdiction_path, "jid": p.jurisdiction_id}).scalar()
    return Response(bytes(data or b""), media_type="application/vnd.mapbox-vector-tile",
                    headers={"Cache-Control": "private, max-age=300"})
