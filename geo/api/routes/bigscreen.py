"""Big-screen and dispatch helpers: emergency mode (平急转换), live feed, grid panel, patrol coverage,
ranking (考评), assignee suggestions and kiosk tokens for wall displays.

Access (all scoped to the caller's subtree; objects outside it are 404):

=============================  ===============================================
GET  /v1/emergency             every role
POST /v1/emergency             leader, admin (own jurisdiction)
GET  /v1/emergency/grids       every role
GET  /v1/feed                  every role
GET  /v1/grids/{code}/panel    every role
GET  /v1/stats/patrol-coverage every role
GET  /v1/stats/ranking         every role
GET  /v1/events/{id}/suggestions  dispatcher, admin
POST/GET/DELETE /v1/kiosk-tokens  leader, admin (keys of their own jurisdiction)
=============================  ===============================================
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import text

from geo.api.core.responses import JSON
from geo.api.core.security import Principal
from geo.access import policy
from geo.api.deps import AppState, authorize, get_state, require
from geo.api.errors import APIError
from geo.api.routes.stats import _window
from geo.api.schemas import EmergencyIn, KioskIn
from geo.api.services import audit, emergency, evaluation, patrol
from geo.api.services.scope import check_day, field_error, grid_scope

router = APIRouter(prefix="/v1", tags=["big screen"])
PANEL_OPEN = ("reported", "accepted", "dispatched", "in_progress", "returned")


# --------------------------------------------------------------------------- emergency


@router.get("/emergency", summary="Is the caller's jurisdiction in emergency mode (平急转换)?")
def get_emergency(request: Request, p: Principal = Depends(require("read"))):
    state = get_state(request)
    authorize(state, p, "emergency_mode", p.jurisdiction_path)
    with state.engine.connect() as conn:
        return emergency.mode_json(emergency.active_mode(conn, p.jurisdiction_path))


@router.post("/emergency", summary="Switch emergency mode on (reason required) or off; mobilises 下沉干部")
def set_emergency(request: Request, body: EmergencyIn, p: Principal = Depends(require("emergency.switch"))):
    state = get_state(request)
    # the mode switched is the caller's own jurisdiction's
    authorize(state, p, "emergency_mode", p.jurisdiction_path, entity_id=p.jurisdiction_id,
              jurisdiction_id=p.jurisdiction_id, write=True)
    with state.engine.begin() as conn:
        return emergency.switch(conn, p, active=body.active, reason=body.reason)


@router.get("/emergency/grids", summary="下沉干部 per grid: assigned and mobilised")
def emergency_grids(request: Request, p: Principal = Depends(require("read"))):
    state = get_state(request)
    authorize(state, p, "emergency_mode", p.jurisdiction_path)
    idx = state.holder.index
    with state.engine.connect() as conn:
        mode = emergency.active_mode(conn, p.jurisdiction_path)
        rows = emergency.grids_mobilisation(conn, p.jurisdiction_path)
    for r in rows:
        i = idx.by_code.get(r["grid_code"])
        r["grid_name"] = idx.info[i].name if i is not None else None
        if mode is None:
            r["mobilised"] = 0  # on duty is not mobilised outside an emergency
    return {"active": mode is not None, "grids": rows}


# --------------------------------------------------------------------------- live feed


@router.get("/feed", summary="New and urgent events and overdue alerts since a time, newest first")
def feed(request: Request, since: datetime | None = None, limit: int = Query(50, ge=1, le=500),
         p: Principal = Depends(require("read"))):
    state = get_state(request)
    now = datetime.now(timezone.utc)
    since = since or now - timedelta(hours=1)
    if since.year < 1900:
        raise field_error("since", "起始时间", "须晚于 1900 年")
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    cat = state.catalogue
    with state.engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT * FROM (
                SELECT CASE WHEN priority = 'urgent' THEN 'urgent' ELSE 'new' END AS kind, id, created_at AS at,
                       category, subtype, priority, grid_code, address, jurisdiction_path
                FROM events WHERE jurisdiction_path LIKE :path || '%' AND created_at > :since AND created_at <= :now
                UNION ALL
                SELECT 'overdue', id, due_at, category, subtype, priority, grid_code, address, jurisdiction_path
                FROM events WHERE jurisdiction_path LIKE :path || '%' AND due_at > :since AND due_at <= :now
                  AND state NOT IN ('resolved', 'closed', 'rejected')
            ) f ORDER BY at DESC, id DESC LIMIT :n
        """), {"path": p.jurisdiction_path, "since": since, "now": now, "n": limit}).mappings().all()
    idx = state.holder.index
    out = []
    for r in rows:
        if not policy.can_read(p, "feed_item", r["jurisdiction_path"]):
            continue
        sub = cat.get(r["category"], r["subtype"])
        i = idx.by_code.get(r["grid_code"])
        label = {"new": "新事件", "urgent": "紧急事件", "overdue": "超期"}[r["kind"]]
        out.append({"kind": r["kind"], "event_id": r["id"], "at": r["at"].isoformat(), "priority": r["priority"],
                    "title": f"{label}：{sub.name if sub else r['subtype']}" + (f"（{r['address']}）" if r["address"] else ""),
                    "grid_code": r["grid_code"], "grid_name": idx.info[i].name if i is not None else None})
    return {"items": out, "now": now.isoformat()}


# --------------------------------------------------------------------------- grid panel and patrol


def _grid_in_scope(state: AppState, p: Principal, code: str, kind: str) -> int:
    """The grid's index row after the policy for *kind* (404 outside the subtree or not published)."""
    path, jid = grid_scope(state, code)
    authorize(state, p, kind, path, entity_id=code, jurisdiction_id=jid)
    return state.holder.index.by_code[code]


def _today(state: AppState) -> date:
    return datetime.now(ZoneInfo(state.settings.timezone)).date()


@router.get("/grids/{code}/panel", summary="A grid's panel: population, staff on duty, open events, patrol today")
def grid_panel(request: Request, code: str, p: Principal = Depends(require("read"))):
    state = get_state(request)
    i = _grid_in_scope(state, p, code, "grid_panel")
    idx = state.holder.index
    g = idx.info[i]
    with state.engine.connect() as conn:
        ev = conn.execute(text("""
            SELECT count(*) AS open, count(*) FILTER (WHERE due_at < now()) AS overdue,
                   count(*) FILTER (WHERE priority = 'urgent') AS urgent
            FROM events WHERE grid_code = :c AND state = ANY(:open) AND jurisdiction_path LIKE :path || '%'
        """), {"c": code, "open": list(PANEL_OPEN), "path": p.jurisdiction_path}).mappings().one()
        hh = conn.execute(text("SELECT households FROM grids WHERE plan_id = :pl AND code = :c"),
                          {"pl": g.plan_id, "c": code}).scalar()
        cov = state.patrol.coverage(conn, plan_ids=list(idx.plan_ids), codes=[code], day=_today(state),
                                    tz=state.settings.timezone)
        mode = emergency.active_mode(conn, p.jurisdiction_path)
    staff = state.holder.staff.get(code, [])
    chief = next((s.name for s in staff if s.role == "chief"), None)
    return {"code": code, "name": g.name, "kind": g.kind, "population": g.population, "households": hh,
            "community": g.community, "street": g.street,
            "staff": {"total": len(staff), "on_duty": sum(1 for s in staff if s.on_duty),
                      "chief": chief,
                      "part_time": sum(1 for s in staff if s.role == "part_time")},
            "events": dict(ev), "emergency": mode is not None,
            "patrol_coverage_today": cov[0]["coverage"] if cov else None}


@router.get("/stats/patrol-coverage", summary="巡查覆盖率 per grid on a day (street length within 30 m of tracks)")
def patrol_coverage(request: Request, day: date | None = None, grid: str | None = Query(None, pattern=r"^\d{15}$"),
                    p: Principal = Depends(require("read"))):
    state = get_state(request)
    idx = state.holder.index
    day = day or _today(state)
    check_day(day)
    if grid:
        _grid_in_scope(state, p, grid, "patrol_coverage")
        codes = [grid]
    else:
        with state.engine.connect() as conn:
            codes = conn.execute(text("""
                SELECT g.code FROM grids g JOIN grid_plans gp ON gp.id = g.plan_id
                JOIN jurisdictions j ON j.id = gp.jurisdiction_id LEFT JOIN jurisdictions c ON c.code = g.community_code
                WHERE g.plan_id = ANY(:plans) AND coalesce(c.path, j.path) LIKE :path || '%' ORDER BY g.code
            """), {"plans": list(idx.plan_ids), "path": p.jurisdiction_path}).scalars().all()
    with state.engine.connect() as conn:
        items = state.patrol.coverage(conn, plan_ids=list(idx.plan_ids), codes=list(codes), day=day,
                                      tz=state.settings.timezone)
    return {"day": day.isoformat(), "radius_m": patrol.RADIUS_M, "items": items}


# --------------------------------------------------------------------------- ranking (考评)


def _month_window(month: str, tz: str) -> tuple[datetime, datetime]:
    try:
        y, m = (int(x) for x in month.split("-"))
        if not 2000 <= y <= 2100:
            raise ValueError(month)
        start = datetime(y, m, 1, tzinfo=ZoneInfo(tz))
        end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=ZoneInfo(tz))
    except ValueError:
        raise field_error("month", "月份", f"须为 YYYY-MM（2000–2100），例如 2026-10（收到 {month!r}）") from None
    return start, end


@router.get("/stats/ranking", summary="考评 ranking by street, community or worker (month or window; filters)")
def ranking(request: Request, by: Literal["street", "community", "worker"] = "community",
            month: str | None = Query(None, max_length=7), from_: datetime | None = Query(None, alias="from"),
            to: datetime | None = None, category: str | None = None, subtype: str | None = None,
            p: Principal = Depends(require("read"))):
    state = get_state(request)
    f, t = _month_window(month, state.settings.timezone) if month else _window(from_, to)
    params: dict = {"path": p.jurisdiction_path, "f": f, "t": t}
    extra = evaluation.filters(category, subtype, params)
    base = (f"FROM events e WHERE e.jurisdiction_path LIKE :path || '%' AND e.created_at >= :f "
            f"AND e.created_at < :t {extra}")
    with state.engine.connect() as conn:
        if by == "worker":
            rows = conn.execute(text(f"SELECT e.assignee_worker_id AS key, {evaluation.EVAL_SQL} {base} "
                                     "AND e.assignee_worker_id IS NOT NULL GROUP BY 1"), params).mappings().all()
            names = dict(conn.execute(text("SELECT id, name FROM workers WHERE id = ANY(:ids)"),
                                      {"ids": [r["key"] for r in rows]}).all())
            codes = {k: None for k in names}
        else:
            # by the jurisdiction of that level containing the event (robust to trees with or without a city)
            rows = conn.execute(text(f"""
                SELECT j.id AS key, {evaluation.EVAL_SQL}
                FROM events e JOIN jurisdictions j ON j.level = :lvl AND e.jurisdiction_path LIKE j.path || '%'
                WHERE e.jurisdiction_path LIKE :path || '%' AND e.created_at >= :f AND e.created_at < :t {extra}
                GROUP BY 1
            """), params | {"lvl": by}).mappings().all()
            jr = conn.execute(text("SELECT id, code, name FROM jurisdictions WHERE id = ANY(:ids)"),
                              {"ids": [r["key"] for r in rows]}).all()
            names, codes = {r.id: r.name for r in jr}, {r.id: r.code for r in jr}
    items = []
    for r in rows:
        ev = evaluation.evaluation(r)
        items.append({"id": r["key"], "code": codes.get(r["key"]), "name": names.get(r["key"]), **ev,
                      "score": evaluation.score(ev)})
    items.sort(key=lambda x: (-x["score"], -x["due"], str(x["code"] or x["id"])))
    for k, it in enumerate(items, 1):
        it["rank"] = k
    return {"by": by, "month": month, "from": f.isoformat(), "to": t.isoformat(), "category": category,
            "subtype": subtype, "items": items}


# --------------------------------------------------------------------------- suggestions


@router.get("/events/{event_id}/suggestions", summary="Who to dispatch: the grid's workers in dispatch order")
def suggestions(request: Request, event_id: int, p: Principal = Depends(require("event.suggest"))):
    state = get_state(request)
    with state.engine.connect() as conn:
        ev = conn.execute(text("SELECT grid_code, jurisdiction_path, jurisdiction_id, ST_X(geom) AS lon, "
                               "ST_Y(geom) AS lat FROM events WHERE id = :e"), {"e": event_id}).mappings().first()
    authorize(state, p, "suggestion", ev["jurisdiction_path"] if ev else None, entity_id=event_id,
              jurisdiction_id=ev["jurisdiction_id"] if ev else None)
    with state.engine.connect() as conn:
        mode = emergency.active_mode(conn, ev["jurisdiction_path"]) is not None
        rows = emergency.ranked_workers(conn, grid_code=ev["grid_code"], path=p.jurisdiction_path, lon=ev["lon"],
                                        lat=ev["lat"], emergency=mode)
    rows = [policy.mask_fields(p, "suggestion", r) for r in rows]
    for r in rows:
        r["worker_id"] = r.pop("id")
        r["reason"] = ("应急下沉干部" if r["mobilised"] else "在岗" if r["on_duty"] else "不在岗") + (
            f"，距离约 {r['distance_m']:.0f} 米" if r["distance_m"] is not None else "")
    return {"event_id": event_id, "emergency": mode, "items": rows}


# --------------------------------------------------------------------------- kiosk tokens

KIOSK_PREFIX = "kiosk:"


@router.post("/kiosk-tokens", status_code=201, summary="A long-lived read-only (leader) key for a wall display")
def create_kiosk(request: Request, body: KioskIn, p: Principal = Depends(require("kiosk.manage"))):
    state = get_state(request)
    # a kiosk key belongs to the caller's own jurisdiction (never wider than the caller)
    authorize(state, p, "kiosk_token", p.jurisdiction_path, jurisdiction_id=p.jurisdiction_id, write=True)
    from geo.db.users import add_api_key

    with state.engine.connect() as conn:
        code = conn.execute(text("SELECT code FROM jurisdictions WHERE id = :j"), {"j": p.jurisdiction_id}).scalar_one()
    key = add_api_key(state.engine, KIOSK_PREFIX + body.name.strip(), "leader", code, actor=p.actor)
    with state.engine.connect() as conn:
        kid = conn.execute(text("SELECT id FROM api_keys WHERE prefix = :p AND name = :n ORDER BY id DESC LIMIT 1"),
                           {"p": key[:8], "n": KIOSK_PREFIX + body.name.strip()}).scalar_one()
    return JSON({"id": kid, "name": body.name.strip(), "token": key, "role": "leader", "jurisdiction_code": code,
                 "header": "X-API-Key"}, status_code=201)


def _kiosk_rows(conn, p: Principal):
    return conn.execute(text("""
        SELECT k.id, substr(k.name, :n) AS name, k.prefix, k.active, k.created_at, k.created_by, j.code, j.path
        FROM api_keys k JOIN jurisdictions j ON j.id = k.jurisdiction_id
        WHERE k.name LIKE :pre || '%' AND j.path LIKE :path || '%' ORDER BY k.id
    """), {"n": len(KIOSK_PREFIX) + 1, "pre": KIOSK_PREFIX, "path": p.jurisdiction_path}).mappings().all()


@router.get("/kiosk-tokens", summary="Kiosk tokens of the caller's subtree (no secrets)")
def list_kiosk(request: Request, p: Principal = Depends(require("kiosk.manage"))):
    state = get_state(request)
    with state.engine.connect() as conn:
        return [{"id": r["id"], "name": r["name"], "prefix": r["prefix"], "active": r["active"],
                 "jurisdiction_code": r["code"], "created_at": r["created_at"].isoformat(), "created_by": r["created_by"]}
                for r in _kiosk_rows(conn, p) if policy.can_read(p, "kiosk_token", r["path"])]


@router.delete("/kiosk-tokens/{token_id}", summary="Revoke a kiosk token (effective within 30 s everywhere)")
def revoke_kiosk(request: Request, token_id: int, p: Principal = Depends(require("kiosk.manage"))):
    state = get_state(request)
    with state.engine.connect() as conn:
        k = conn.execute(text("SELECT j.path, k.jurisdiction_id, k.name LIKE :pre || '%' AS kiosk FROM api_keys k "
                              "JOIN jurisdictions j ON j.id = k.jurisdiction_id WHERE k.id = :i"),
                         {"i": token_id, "pre": KIOSK_PREFIX}).first()
    # only kiosk keys are managed here (another API key is "not found" as well)
    authorize(state, p, "kiosk_token", k.path if k and k.kiosk else None, entity_id=token_id,
              jurisdiction_id=k.jurisdiction_id if k else None, write=True)
    with state.engine.begin() as conn:
        r = next((r for r in _kiosk_rows(conn, p) if r["id"] == token_id), None)
        if r is None:
            raise APIError(404, "not_found", f"大屏令牌 {token_id} 不存在（或不在您的辖区内）")
        conn.execute(text("UPDATE api_keys SET active = false WHERE id = :i"), {"i": token_id})
        audit.record(conn, p, "kiosk.revoke", "api_keys", token_id, detail={"name": r["name"]})
    state.forget()  # this process forgets cached principals at once; others within their 30 s TTL
    return {"id": token_id, "active": False}
