"""平急转换: the emergency mode of a jurisdiction, its 下沉干部 (role ``part_time``) and dispatch preference.

* A leader or admin switches it on (reason required) or off for their own jurisdiction; both are audited.
* On: every 下沉干部 assigned to a grid of the subtree is mobilised (put on duty; the ids are kept in the
  mode's ``detail`` so switching off stands down exactly those who were not on duty before).
* The mode applies to a jurisdiction's whole subtree, so a community is in emergency when it or an
  ancestor is.
* While it is on, dispatch lists mobilised 下沉干部 of the grid first (:func:`ranked_workers`).
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, text

from geo.api.core.security import Principal
from geo.api.errors import APIError
from geo.api.services import audit
from geo.api.services.scope import field_error



def active_mode(conn: Connection, path: str):
    """The active mode covering jurisdiction *path* (its own or an ancestor's), or None."""
    return conn.execute(text("""
        SELECT m.*, j.code AS jurisdiction_code, j.name AS jurisdiction_name FROM emergency_modes m
        JOIN jurisdictions j ON j.id = m.jurisdiction_id
        WHERE m.ended_at IS NULL AND :path LIKE j.path || '%'
        ORDER BY length(j.path) LIMIT 1
    """), {"path": path}).mappings().first()


def mode_json(m) -> dict:
    if m is None:
        return {"active": False}
    return {"active": True, "since": m["started_at"].isoformat(), "by": m["started_by"], "reason": m["reason"],
            "jurisdiction_code": m["jurisdiction_code"], "jurisdiction_name": m["jurisdiction_name"],
            "mobilised": len(m["detail"].get("mobilised", []))}


def switch(conn: Connection, p: Principal, *, active: bool, reason: str | None) -> dict:
    """Switch the caller's jurisdiction's mode on or off (409 when it already is; the route checks the role
    against ``policy.ACTIONS["emergency.switch"]``)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"emergency:{p.jurisdiction_id}"})
    own = conn.execute(text("SELECT * FROM emergency_modes WHERE jurisdiction_id = :j AND ended_at IS NULL"),
                       {"j": p.jurisdiction_id}).mappings().first()
    if active:
        if not (reason or "").strip():
            raise field_error("reason", "原因", "启动应急状态须填写原因")
        if own is not None:
            raise APIError(409, "already_active", f"应急状态已于 {own['started_at']:%Y-%m-%d %H:%M} 启动")
        ids = conn.execute(text("""
            SELECT DISTINCT w.id FROM workers w JOIN jurisdictions j ON j.id = w.jurisdiction_id
            JOIN worker_grids wg ON wg.worker_id = w.id
            WHERE w.role = 'part_time' AND NOT w.on_duty AND j.path LIKE :path || '%'
        """), {"path": p.jurisdiction_path}).scalars().all()
        conn.execute(text("UPDATE workers SET on_duty = true, duty_changed_at = now() WHERE id = ANY(:ids)"),
                     {"ids": list(ids)})
        mid = conn.execute(text("""
            INSERT INTO emergency_modes (jurisdiction_id, reason, started_by, detail)
            VALUES (:j, :r, :a, CAST(:d AS jsonb)) RETURNING id
        """), {"j": p.jurisdiction_id, "r": reason.strip(), "a": p.actor,
               "d": json.dumps({"mobilised": list(ids)})}).scalar_one()
        audit.record(conn, p, "emergency.on", "emergency_modes", mid, jurisdiction_id=p.jurisdiction_id,
                     detail={"reason": reason, "mobilised": list(ids)})
    else:
        if own is None:
            raise APIError(409, "not_active", "当前辖区未处于应急状态")
        ids = own["detail"].get("mobilised", [])
        conn.execute(text("UPDATE workers SET on_duty = false, duty_changed_at = now() WHERE id = ANY(:ids)"),
                     {"ids": ids})
        conn.execute(text("UPDATE emergency_modes SET ended_at = now(), ended_by = :a WHERE id = :id"),
                     {"a": p.actor, "id": own["id"]})
        audit.record(conn, p, "emergency.off", "emergency_modes", own["id"], jurisdiction_id=p.jurisdiction_id,
                     detail={"reason": reason, "stood_down": ids})
    return mode_json(active_mode(conn, p.jurisdiction_path))


def grids_mobilisation(conn: Connection, path: str) -> list[dict]:
    """Per grid of the subtree with 下沉干部: assigned and mobilised (on duty) counts."""
    rows = conn.execute(text("""
        SELECT wg.grid_code, count(*) AS assigned, count(*) FILTER (WHERE w.on_duty) AS mobilised
        FROM worker_grids wg JOIN workers w ON w.id = wg.worker_id JOIN jurisdictions j ON j.id = w.jurisdiction_id
        WHERE w.role = 'part_time' AND j.path LIKE :path || '%'
        GROUP BY 1 ORDER BY 1
    """), {"path": path}).mappings().all()
    return [dict(r) for r in rows]


RANKED_SQL = """
    SELECT w.id, w.name, w.role, w.on_duty, w.phone, lp.ts, ST_X(lp.geom) AS lon, ST_Y(lp.geom) AS lat,
           (CAST(:emergency AS boolean) AND w.role = 'part_time' AND w.on_duty) AS mobilised,
           CASE WHEN CAST(:lon AS float8) IS NOT NULL AND CAST(:lat AS float8) IS NOT NULL
                AND lp.geom IS NOT NULL THEN
                ST_Distance(lp.geom::geography, ST_SetSRID(ST_MakePoint(CAST(:lon AS float8),
                                                                       CAST(:lat AS float8)), 4326)::geography)
           END AS distance_m
    FROM worker_grids wg JOIN workers w ON w.id = wg.worker_id
    JOIN jurisdictions j ON j.id = w.jurisdiction_id
    LEFT JOIN LATERAL (SELECT ts, geom FROM worker_positions WHERE worker_id = w.id ORDER BY ts DESC LIMIT 1) lp
        ON true
    WHERE wg.grid_code = :code AND j.path LIKE :path || '%'
    ORDER BY (CAST(:emergency AS boolean) AND w.role = 'part_time' AND w.on_duty) DESC, w.on_duty DESC,
             distance_m NULLS LAST, w.id
"""


def ranked_workers(conn: Connection, *, grid_code: str, path: str, lon: float | None, lat: float | None,
                   emergency: bool) -> list[dict]:
    """A grid's workers in dispatch order: mobilised 下沉干部 first in an emergency, then on duty, then nearest."""
    rows = conn.execute(text(RANKED_SQL), {"code": grid_code, "lon": lon, "lat": lat, "path": path,
                                           "emergency": emergency}).mappings().all()
    return [{**dict(r), "ts": r["ts"].isoformat() if r["ts"] else None,
             "distance_m": round(r["distance_m"], 1) if r["distance_m"] is not None else None} for r in rows]
