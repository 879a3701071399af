"""Grid workers: registry, duty status, GPS fixes (idempotent batches), latest positions, daily tracks."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import text

from geo.access import audit, policy
from geo.api.core.security import Principal
from geo.api.deps import authorize, get_state, refuse_reference, require
from geo.api.errors import APIError
from geo.api.schemas import WORKER_ROLES, FixesIn, WorkerIn, WorkerPatch
from geo.crs import gcj02_to_wgs84

router = APIRouter(prefix="/v1", tags=["workers"])


def _worker(conn, wid: int):
    r = conn.execute(text("""
        SELECT w.*, j.path, j.code AS jurisdiction_code, j.name AS jurisdiction_name,
               coalesce((SELECT array_agg(grid_code ORDER BY grid_code) FROM worker_grids WHERE worker_id = w.id), '{}')
                   AS grid_codes
        FROM workers w JOIN jurisdictions j ON j.id = w.jurisdiction_id WHERE w.id = :w
    """), {"w": wid}).mappings().first()
    if r is None:
        raise APIError(404, "not_found", f"worker {wid} not found")
    return r


def _worker_json(r, p: Principal) -> dict:
    return policy.mask_fields(p, "worker", {
        "id": r["id"], "name": r["name"], "role": r["role"], "on_duty": r["on_duty"], "phone": r["phone"],
        "jurisdiction_code": r["jurisdiction_code"], "jurisdiction_name": r["jurisdiction_name"], "grid_codes": list(r["grid_codes"]), "synthetic": r["synthetic"]})


def _check_grids(state, p: Principal, codes: list[str], action: str) -> None:
    """Every grid code once, published, and inside the caller's subtree (else 422 naming the code)."""
    seen = set()
    for k, c in enumerate(codes):
        if c in seen:
            raise APIError(422, "validation_error", f"grid_codes: {c} is given twice",
                           details=[{"field": f"grid_codes.{k}", "message": "repeated grid code", "input": c}])
        seen.add(c)
    idx = state.holder.index
    for c in codes:
        i = idx.by_code.get(c)
        if i is None or not policy.covers(p, idx.info[i].path):
            refuse_reference(state, p, "grid_codes", c, "grid", action)


def _check_user(state, p: Principal, conn, username: str, action: str) -> int:
    """The id of a login the caller may link a worker to (in its subtree), else 422."""
    u = conn.execute(text("SELECT u.id, j.path, j.id AS jid FROM users u JOIN jurisdictions j ON j.id = u.jurisdiction_id "
                          "WHERE u.username = :u"), {"u": username}).first()
    if u is None or not policy.covers(p, u.path):
        refuse_reference(state, p, "username", username, "user", action)
    return u.id


@router.get("/workers", summary="Workers in the caller's jurisdiction, filtered")
def list_workers(request: Request,
                 grid: str | None = Query(None, pattern=r"^\d{15}$", description="serving this grid (15 digits)"),
                 jurisdiction: str | None = Query(None, pattern=r"^\d{12}$",
                                                  description="belonging to this community / street or below it "
                                                              "(12 digits; inside the caller's jurisdiction)"),
                 role: WORKER_ROLES | None = Query(None, description="chief, full_time, auxiliary or part_time "
                                                                      "(下沉干部)"),
                 on_duty: bool | None = None,
                 name: str | None = Query(None, min_length=1, max_length=50, description="part of the name"),
                 p: Principal = Depends(require("read"))):
    """Filters combine (AND). A ``jurisdiction`` outside the caller's subtree is not found (404), like any
    object there; without one the list is the caller's whole subtree."""
    st = get_state(request)
    where, params = ["j.path LIKE :path || '%'"], {"path": p.jurisdiction_path}
    if jurisdiction:
        with st.engine.connect() as conn:
            jr = conn.execute(text("SELECT id, path FROM jurisdictions WHERE code = :c"), {"c": jurisdiction}).first()
        if jr is None:
            raise APIError(404, "not_found", f"jurisdiction {jurisdiction!r} not found")
        authorize(st, p, "jurisdiction", jr.path, entity_id=jurisdiction, jurisdiction_id=jr.id)
        where.append("j.path LIKE :jpath || '%'")
        params["jpath"] = jr.path
    if grid:
        where.append("EXISTS (SELECT 1 FROM worker_grids wg WHERE wg.worker_id = w.id AND wg.grid_code = :g)")
        params["g"] = grid
    if role:
        where.append("w.role = :role")
        params["role"] = role
    if on_duty is not None:
        where.append("w.on_duty = :d")
        params["d"] = on_duty
    if name is not None:
        if not name.strip():
            raise APIError(422, "validation_error", "name: give at least one character that is not a space",
                           details=[{"field": "name", "message": "blank", "input": name}])
        where.append(r"w.name ILIKE '%' || :name || '%' ESCAPE '\'")
        params["name"] = re.sub(r"([\\%_])", r"\\\1", name.strip())
    with st.engine.connect() as conn:
        ids = conn.execute(text(f"SELECT w.id FROM workers w JOIN jurisdictions j ON j.id = w.jurisdiction_id "
                                f"WHERE {' AND '.join(where)} ORDER BY w.id"), params).scalars().all()
        return [_worker_json(_worker(conn, i), p) for i in ids]


@router.post("/workers", status_code=201, summary="Register a worker and the grids they serve")
def create_worker(request: Request, body: WorkerIn, p: Principal = Depends(require("worker.write"))):
    st = get_state(request)
    with st.engine.connect() as conn:
        j = conn.execute(text("SELECT id, path FROM jurisdictions WHERE code = :c"), {"c": body.jurisdiction_code}).first()
    if j is None or not policy.covers(p, j.path):
        refuse_reference(st, p, "jurisdiction_code", body.jurisdiction_code, "jurisdiction", "worker.create")
    _check_grids(st, p, body.grid_codes, "worker.create")
    with st.engine.begin() as conn:
        uid = _check_user(st, p, conn, body.username, "worker.create") if body.username else None
        wid = conn.execute(text("""
            INSERT INTO workers (name, phone, role, jurisdiction_id, user_id, on_duty, duty_changed_at, created_by)
            VALUES (:n, :ph, :r, :j, :u, :d, now(), :a) RETURNING id
        """), {"n": body.name, "ph": body.phone, "r": body.role, "j": j.id, "u": uid, "d": body.on_duty,
               "a": p.actor}).scalar_one()
        for c in body.grid_codes:
            conn.execute(text("INSERT INTO worker_grids (worker_id, grid_code) VALUES (:w, :c)"), {"w": wid, "c": c})
        audit.record(conn, p, "worker.create", "workers", wid, jurisdiction_id=j.id,
                     detail={"name": body.name, "role": body.role, "grids": body.grid_codes})
        return _worker_json(_worker(conn, wid), p)


@router.patch("/workers/{worker_id}", summary="Change duty status, phone, role or grids")
def patch_worker(request: Request, worker_id: int, body: WorkerPatch, p: Principal = Depends(require("read"))):
    st = get_state(request)
    with st.engine.connect() as conn:
        w = _worker(conn, worker_id)
    duty_only = body.grid_codes is None and body.phone is None and body.role is None
    authorize(st, p, "worker_duty" if duty_only else "worker", w["path"], entity_id=worker_id,
              jurisdiction_id=w["jurisdiction_id"], write=True, worker_id=worker_id, action="worker.update")
    if body.grid_codes is not None:
        _check_grids(st, p, body.grid_codes, "worker.update")
    with st.engine.begin() as conn:
        if body.on_duty is not None:
            conn.execute(text("UPDATE workers SET on_duty = :d, duty_changed_at = now() WHERE id = :w"),
                         {"d": body.on_duty, "w": worker_id})
        if body.phone is not None:
            conn.execute(text("UPDATE workers SET phone = :ph WHERE id = :w"), {"ph": body.phone, "w": worker_id})
        if body.role is not None:
            conn.execute(text("UPDATE workers SET role = :r WHERE id = :w"), {"r": body.role, "w": worker_id})
        if body.grid_codes is not None:
            conn.execute(text("DELETE FROM worker_grids WHERE worker_id = :w"), {"w": worker_id})
            for c in body.grid_codes:
                conn.execute(text("INSERT INTO worker_grids (worker_id, grid_code) VALUES (:w, :c)"),
                             {"w": worker_id, "c": c})
        audit.record(conn, p, "worker.update", "workers", worker_id, jurisdiction_id=w["jurisdiction_id"],
                     detail=body.model_dump(exclude_none=True))
        return _worker_json(_worker(conn, worker_id), p)


@router.post("/workers/{worker_id}/positions", summary="Batched GPS fixes (idempotent per timestamp; GCJ-02 accepted)")
def post_positions(request: Request, worker_id: int, body: FixesIn, p: Principal = Depends(require("position.write"))):
    """Each fix is stored once per (worker, ts): re-sending a batch inserts nothing twice. A fix outside the
    worker's own grids is flagged (``outside_own_grids``)."""
    st = get_state(request)
    with st.engine.connect() as conn:
        w = _worker(conn, worker_id)
    authorize(st, p, "position", w["path"], entity_id=worker_id, jurisdiction_id=w["jurisdiction_id"], write=True,
              worker_id=worker_id)
    lon = np.array([f.lon for f in body.fixes])
    lat = np.array([f.lat for f in body.fixes])
    if body.crs == "gcj02":
        lon, lat = gcj02_to_wgs84(lon, lat)
    idx = st.holder.index
    gi = idx.lookup_many(lon, lat)
    own = set(w["grid_codes"])
    rows = []
    for k, f in enumerate(body.fixes):
        code = idx.codes[gi[k]] if gi[k] >= 0 else None
        ts = f.ts if f.ts.tzinfo else f.ts.replace(tzinfo=timezone.utc)
        rows.append({"w": worker_id, "ts": ts, "acc": f.accuracy_m, "g": code,
                     "out": bool(own) and code not in own, "lon": float(lon[k]), "lat": float(lat[k])})
    with st.engine.begin() as conn:  # one statement for the whole batch
        inserted = conn.execute(text("""
            INSERT INTO worker_positions (worker_id, ts, accuracy_m, grid_code, outside_own_grids, geom)
            SELECT :w, t.ts, t.acc, t.g, t.out, ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326)
            FROM unnest(CAST(:ts AS timestamptz[]), CAST(:acc AS float8[]), CAST(:g AS text[]),
                        CAST(:out AS boolean[]), CAST(:lon AS float8[]), CAST(:lat AS float8[]))
                 AS t(ts, acc, g, out, lon, lat)
            ON CONFLICT (worker_id, ts) DO NOTHING
        """), {"w": worker_id, **{k: [r[k] for r in rows] for k in ("ts", "acc", "g", "out", "lon", "lat")}}).rowcount
        audit.record(conn, p, "position.write", "workers", worker_id, jurisdiction_id=w["jurisdiction_id"],
                     detail={"fixes": len(rows), "inserted": inserted})
    return {"received": len(rows), "inserted": inserted, "duplicates": len(rows) - inserted,
            "outside_own_grids": sum(r["out"] for r in rows),
            "latest": {"ts": max(r["ts"] for r in rows).astimezone(timezone.utc).isoformat(),
                       "grid_code": rows[-1]["g"]}}


@router.get("/workers/positions/latest", summary="Each worker's latest fix (for the map)")
def latest_positions(request: Request, since_hours: float = Query(24, gt=0, le=24 * 30),
                     p: Principal = Depends(require("read"))):
    st = get_state(request)
    with st.engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT DISTINCT ON (w.id) w.id, w.name, w.role, w.on_duty, wp.ts, wp.grid_code, wp.outside_own_grids,
                   ST_X(wp.geom) AS lon, ST_Y(wp.geom) AS lat
            FROM workers w JOIN jurisdictions j ON j.id = w.jurisdiction_id
            JOIN worker_positions wp ON wp.worker_id = w.id
            WHERE j.path LIKE :path || '%' AND wp.ts >= now() - make_interval(secs => :secs)
            ORDER BY w.id, wp.ts DESC
        """), {"path": p.jurisdiction_path, "secs": since_hours * 3600}).mappings().all()
    return [{**dict(r), "ts": r["ts"].isoformat()} for r in rows]


@router.get("/workers/{worker_id}/track", summary="A worker's fixes on one day, in time order")
def track(request: Request, worker_id: int,
          day: date | None = Query(None, description="YYYY-MM-DD, a calendar day in GEO_TZ (default today), the same "
                                                     "day as patrol coverage's; from 2000-01-01 to 2100-12-31",
                                   ge=date(2000, 1, 1), le=date(2100, 12, 31)),
          p: Principal = Depends(require("read"))):
    from zoneinfo import ZoneInfo

    st = get_state(request)
    tz = ZoneInfo(st.settings.timezone)
    day = day or datetime.now(tz).date()
    from geo.api.services.scope import check_day

    check_day(day)
    with st.engine.connect() as conn:
        w = _worker(conn, worker_id)
    authorize(st, p, "track", w["path"], entity_id=worker_id, jurisdiction_id=w["jurisdiction_id"])
    with st.engine.connect() as conn:
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        rows = conn.execute(text("""
            SELECT ts, ST_X(geom) AS lon, ST_Y(geom) AS lat, grid_code, outside_own_grids FROM worker_positions
            WHERE worker_id = :w AND ts >= :s AND ts < :e ORDER BY ts
        """), {"w": worker_id, "s": start, "e": start + timedelta(days=1)}).mappings().all()
    pts = [{**dict(r), "ts": r["ts"].isoformat()} for r in rows]
    return {"worker_id": worker_id, "day": day.isoformat(), "fixes": pts,
            "geometry": {"type": "LineString", "coordinates": [[r["lon"], r["lat"]] for r in pts]}}


@router.get("/grids/{code}/workers", summary="A grid's workers: mobilised 下沉干部 first in an emergency, then on duty, "
                                            "then nearest to a point")
def grid_workers(request: Request, code: str, lon: float | None = Query(None, ge=-180, le=180),
                 lat: float | None = Query(None, ge=-90, le=90), p: Principal = Depends(require("read"))):
    from geo.api.services.emergency import active_mode, ranked_workers
    from geo.api.services.scope import grid_scope

    st = get_state(request)
    gpath, _ = grid_scope(st, code)
    with st.engine.connect() as conn:
        emergency = active_mode(conn, gpath or p.jurisdiction_path) is not None
        rows = ranked_workers(conn, grid_code=code, path=p.jurisdiction_path, lon=lon, lat=lat, emergency=emergency)
    return [policy.mask_fields(p, "grid_staff", r) for r in rows]
