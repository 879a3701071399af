"""Jurisdictions, grid plans (list, quality, diff, publish), grids as GeoJSON, vector tiles."""

from __future__ import annotations

import math

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import text

from geo.access import policy
from geo.api.core.security import Principal
from geo.api.deps import authorize, get_state, require
from geo.api.errors import APIError
from geo.api.routes.planner import PublishIn  # noqa: F401  (the publish body)
from geo.db import plans as db_plans

router = APIRouter(prefix="/v1", tags=["plans"])


def _jurisdiction(conn, code: str):
    r = conn.execute(text("SELECT id, code, name, level, urban, path, parent_id FROM jurisdictions WHERE code = :c"),
                     {"c": code}).mappings().first()
    if r is None:
        raise APIError(404, "not_found", f"jurisdiction {code!r} not found")
    return r


@router.get("/jurisdictions", summary="Jurisdictions in the caller's subtree (flat, with parent codes)")
def list_jurisdictions(request: Request, p: Principal = Depends(require("read"))):
    state = get_state(request)
    with state.engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT j.id, j.code, j.name, j.level, j.urban, pj.code AS parent_code,
                   (SELECT count(*) FROM grid_plans gp WHERE gp.jurisdiction_id = j.id) AS plans,
                   (SELECT gp.id FROM grid_plans gp WHERE gp.jurisdiction_id = j.id AND gp.status = 'published')
                       AS published_plan_id,
                   ST_XMin(j.geom) AS minx, ST_YMin(j.geom) AS miny, ST_XMax(j.geom) AS maxx, ST_YMax(j.geom) AS maxy
            FROM jurisdictions j LEFT JOIN jurisdictions pj ON pj.id = j.parent_id
            WHERE j.path LIKE :p || '%' ORDER BY j.path
        """), {"p": p.jurisdiction_path}).mappings().all()
    return [{**{k: r[k] for k in ("id", "code", "name", "level", "urban", "parent_code", "plans",
                                   "published_plan_id")},
             "bbox": [r["minx"], r["miny"], r["maxx"], r["maxy"]]} for r in rows]


@router.get("/jurisdictions/{code}", summary="One jurisdiction with its children")
def get_jurisdiction(request: Request, code: str, p: Principal = Depends(require("read"))):
    state = get_state(request)
    with state.engine.connect() as conn:
        j = _jurisdiction(conn, code)
    authorize(state, p, "jurisdiction", j["path"], entity_id=code, jurisdiction_id=j["id"])
    with state.engine.connect() as conn:
        children = conn.execute(text("SELECT code, name, level, urban FROM jurisdictions WHERE parent_id = :i ORDER BY code"),
                                {"i": j["id"]}).mappings().all()
        geom = conn.execute(text("SELECT ST_AsGeoJSON(geom, 6) FROM jurisdictions WHERE id = :i"), {"i": j["id"]}).scalar()
    return {"code": j["code"], "name": j["name"], "level": j["level"], "urban": j["urban"],
            "children": [dict(c) for c in children], "geometry": orjson.loads(geom)}


def _plan_row(conn, plan_id: int):
    r = conn.execute(text("""
        SELECT gp.*, j.code AS jurisdiction_code, j.name AS jurisdiction_name, j.path,
               (SELECT count(*) FROM grids g WHERE g.plan_id = gp.id) AS grids
        FROM grid_plans gp JOIN jurisdictions j ON j.id = gp.jurisdiction_id WHERE gp.id = :p
    """), {"p": plan_id}).mappings().first()
    if r is None:
        raise APIError(404, "not_found", f"plan {plan_id} not found")
    return r


def _plan_json(r, publications: list[dict], with_quality: bool = True) -> dict:
    """A plan; ``published_at``/``retired_at`` are its latest period, ``publications`` every period (a plan
    rolled back to was in force more than once)."""
    out = {k: r[k] for k in ("id", "version", "status", "name", "jurisdiction_code", "jurisdiction_name", "grids",
                             "created_by", "published_by")}
    for k in ("created_at", "published_at", "retired_at"):
        out[k] = r[k].isoformat() if r[k] else None
    out["params"] = r["params"]
    out["kind"], out["parent_id"] = r.get("kind", "engine"), r.get("parent_id")  # migration 0006
    out["publications"] = publications
    if with_quality:
        out["quality"] = r["quality"]
    return out


@router.get("/jurisdictions/{code}/plans", summary="Plans of a jurisdiction, newest first")
def list_plans(request: Request, code: str, p: Principal = Depends(require("read"))):
    state = get_state(request)
    with state.engine.connect() as conn:
        j = _jurisdiction(conn, code)
    authorize(state, p, "plan", j["path"], entity_id=f"of {code}", jurisdiction_id=j["id"])
    with state.engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM grid_plans WHERE jurisdiction_id = :j ORDER BY version DESC"),
                           {"j": j["id"]}).scalars().all()
        pubs = db_plans.publications(conn, ids)
        return [_plan_json(_plan_row(conn, i), pubs[i], with_quality=False) for i in ids]


@router.get("/plans/{plan_id}", summary="A plan with its quality report")
def get_plan(request: Request, plan_id: int, p: Principal = Depends(require("read"))):
    state = get_state(request)
    with state.engine.connect() as conn:
        r = _plan_row(conn, plan_id)
    authorize(state, p, "plan", r["path"], entity_id=plan_id, jurisdiction_id=r["jurisdiction_id"])
    with state.engine.connect() as conn:
        pubs = db_plans.publications(conn, [plan_id])[plan_id]
    return _plan_json(r, pubs)


@router.get("/plans/{a}/diff/{b}", summary="Compare two plans: grids added/removed/changed, residents moved")
def diff_plans(request: Request, a: int, b: int, p: Principal = Depends(require("read"))):
    state = get_state(request)
    with state.engine.connect() as conn:
        rows = [_plan_row(conn, pid) for pid in (a, b)]
    for pid, r in zip((a, b), rows):
        authorize(state, p, "plan", r["path"], entity_id=pid, jurisdiction_id=r["jurisdiction_id"])
    return db_plans.diff(state.engine, a, b).as_dict()


@router.post("/plans/{plan_id}/publish", summary="Publish a draft (planner); the previous plan is retired")
def publish_plan(request: Request, plan_id: int, body: "PublishIn | None" = None,
                 p: Principal = Depends(require("plan.write"))):
    """Staff are carried to the new grids (see ``GET /v1/plans/{id}/staffing``); with grids left without a
    chief it answers 409 unless ``override_unstaffed`` is given with a ``reason`` (audited)."""
    from geo.api.routes.planner import publish_or_refuse

    return publish_or_refuse(get_state(request), p, plan_id, body, rollback=False)


# --------------------------------------------------------------------------- grids as GeoJSON / MVT


def simplify_tolerance(zoom: int | None) -> float:
    """Degrees per screen pixel at *zoom* (half a pixel): detail below it cannot be seen."""
    if zoom is None:
        return 0.0
    return 360.0 / (256 * 2 ** zoom) / 2


def _bbox(bbox: str | None):
    if not bbox:
        return None
    try:
        v = [float(x) for x in bbox.split(",")]
        if len(v) != 4 or not all(math.isfinite(x) for x in v):
            raise ValueError
    except ValueError:
        raise APIError(422, "validation_error", "bbox must be minlon,minlat,maxlon,maxlat",
                       details=[{"field": "bbox", "message": "four comma-separated numbers", "input": bbox}]) from None
    if v[0] > v[2] or v[1] > v[3]:
        raise APIError(422, "validation_error", "bbox min must not exceed max",
                       details=[{"field": "bbox", "message": "min > max", "input": bbox}])
    return v


GRID_ROWS_SQL = """
    SELECT g.code, g.name, g.kind, g.level, g.population, g.households, g.community_code, g.flags, g.plan_id,
           ST_AsBinary(g.geom) AS wkb
    FROM grids g JOIN grid_plans gp ON gp.id = g.plan_id
    JOIN jurisdictions j ON j.id = gp.jurisdiction_id
    LEFT JOIN jurisdictions c ON c.code = g.community_code
    WHERE g.plan_id = ANY(:plans) AND coalesce(c.path, j.path) LIKE :path || '%'
    ORDER BY g.code
"""


def grids_geojson(engine, plan_ids: list[int], bbox, zoom, path_prefix: str) -> bytes:
    """A FeatureCollection of the grids of *plan_ids* in the caller's subtree.

    With *zoom*, the grids are simplified together as one coverage (see :mod:`geo.api.services.coverage`)
    to half a pixel at that zoom, then filtered by *bbox*; coordinates are rounded to 6 decimals (identical
    shared vertices round identically, so shared edges stay shared).
    """
    import numpy as np
    import shapely

    from geo.api.services.coverage import simplified

    tol = simplify_tolerance(zoom)
    with engine.connect() as conn:
        rows = conn.execute(text(GRID_ROWS_SQL), {"plans": plan_ids, "path": path_prefix}).mappings().all()
    geoms = shapely.from_wkb(np.array([bytes(r["wkb"]) for r in rows], dtype=object)) if rows else np.array([])
    if tol > 0 and len(geoms):
        geoms = simplified((tuple(sorted(plan_ids)), path_prefix), geoms, tol)
    keep = np.ones(len(geoms), dtype=bool)
    if bbox and len(geoms):
        keep = shapely.intersects(geoms, shapely.box(*bbox))
    feats = []
    for r, g, k in zip(rows, geoms, keep):
        if not k:
            continue
        g = shapely.transform(g, lambda c: np.round(c, 6))
        feats.append({"type": "Feature", "id": r["code"], "geometry": orjson.Fragment(shapely.to_geojson(g)),
                      "properties": {"code": r["code"], "name": r["name"], "kind": r["kind"], "level": r["level"],
                                     "population": r["population"], "households": r["households"],
                                     "community_code": r["community_code"], "flags": r["flags"],
                                     "plan_id": r["plan_id"]}})
    return orjson.dumps({"type": "FeatureCollection", "features": feats})


@router.get("/plans/{plan_id}/grids", summary="A plan's grids as GeoJSON (bbox filter, zoom simplification)")
def plan_grids(request: Request, plan_id: int, bbox: str | None = Query(None, description="minlon,minlat,maxlon,maxlat"),
               zoom: int | None = Query(None, ge=0, le=22), p: Principal = Depends(require("read"))):
    state = get_state(request)
    with state.engine.connect() as conn:
        r = _plan_row(conn, plan_id)
    authorize(state, p, "plan", r["path"], entity_id=plan_id, jurisdiction_id=r["jurisdiction_id"])
    return Response(grids_geojson(state.engine, [plan_id], _bbox(bbox), zoom, p.jurisdiction_path),
                    media_type="application/geo+json")


@router.get("/grids", summary="Grids of the published plans as GeoJSON (bbox filter, zoom simplification)")
def published_grids(request: Request, bbox: str | None = Query(None, description="minlon,minlat,maxlon,maxlat"),
                    zoom: int | None = Query(None, ge=0, le=22), p: Principal = Depends(require("read"))):
    state = get_state(request)
    plans = list(state.holder.index.plan_ids)
    return Response(grids_geojson(state.engine, plans, _bbox(bbox), zoom, p.jurisdiction_path),
                    media_type="application/geo+json")


@router.get("/grids/{code}", summary="One grid of the published plans with its staff")
def get_grid(request: Request, code: str = Path(..., pattern=r"^\d{15}$"), p: Principal = Depends(require("read"))):
    state = get_state(request)
    idx = state.holder.index
    i = idx.by_code.get(code)
    if i is None:
        raise APIError(404, "not_found", f"grid {code} is not in a published plan")
    from geo.api.routes.lookup import grid_payload, staff_dict, staff_payload

    body = grid_payload(idx, i)
    staff = policy.staff_view(p, idx.info[i].path, [staff_dict(s) for s in state.holder.staff.get(code, [])])
    body.update(staff_payload(staff))
    body["workers"] = None if staff is None else [{k: s[k] for k in ("id", "name", "role", "on_duty")} for s in staff]
    return body


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Web-Mercator bounds of tile z/x/y in EPSG:3857 metres."""
    size = 2 * 20037508.342789244 / (2 ** z)
    minx = -20037508.342789244 + x * size
    maxy = 20037508.342789244 - y * size
    return minx, maxy - size, minx + size, maxy


@router.get("/tiles/{z}/{x}/{y}.mvt", summary="Vector tile of the published grids (layer 'grids', ST_AsMVT)")
def tile(request: Request, z: int = Path(..., ge=0, le=22), x: int = Path(..., ge=0), y: int = Path(..., ge=0),
         p: Principal = Depends(require("read"))):
    if x >= 2 ** z or y >= 2 ** z:
        raise APIError(422, "validation_error", f"tile {z}/{x}/{y} does not exist: x and y must be < 2^z",
                       details=[{"field": "x/y", "message": f"must be < {2 ** z}"}])
    state = get_state(request)
    x0, y0, x1, y1 = tile_bounds(z, x, y)
    with state.engine.connect() as conn:
        data = conn.execute(text("""
            WITH b AS (SELECT ST_MakeEnvelope(:x0, :y0, :x1, :y1, 3857) AS env),
            feats AS (
                SELECT g.code, g.name, g.kind, g.population,
                       ST_AsMVTGeom(ST_Transform(g.geom, 3857), b.env, 4096, 64, true) AS geom
                FROM grids g CROSS JOIN b JOIN grid_plans gp ON gp.id = g.plan_id
                JOIN jurisdictions j ON j.id = gp.jurisdiction_id
                LEFT JOIN jurisdictions c ON c.code = g.community_code
                WHERE g.plan_id = ANY(:plans) AND coalesce(c.path, j.path) LIKE :path || '%'
                  AND g.geom && ST_Transform(b.env, 4326)
            )
            SELECT ST_AsMVT(feats, 'grids', 4096, 'geom') FROM feats WHERE geom IS NOT NULL
        """), {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "plans": list(state.holder.index.plan_ids),
               "path": p.jurisdiction_path}).scalar()
    return Response(bytes(data or b""), media_type="application/vnd.mapbox-vector-tile")
