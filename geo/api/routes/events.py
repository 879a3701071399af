"""Events: create (idempotent), list/filter, detail with transition log, state transitions, catalogue."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from geo.api.core.responses import JSON
from sqlalchemy import text

from geo.access import audit, policy
from geo.api.core.security import Principal
from geo.api.deps import AppState, authorize, get_state, require
from geo.api.errors import APIError
from geo.api.schemas import EventIn, Moment, TransitionIn
from geo.api.services import events as svc
from geo.api.services import hotline
from geo.api.services.workcal import calendar_of
from geo.crs import point_to_wgs84

router = APIRouter(prefix="/v1", tags=["events"])


@router.get("/catalogue", summary="Event categories, sub-types, SLAs and responsible departments (权责清单)")
async def catalogue(request: Request):
    """Every category carries its 大类 ``dcode``; every sub-type its 4-digit ``dcode`` (大类+小类), 立案标准
    ``filing_standard``, 结案标准 ``closing_standard`` and 处置时限 ``time_limit`` (work_hours | work_days)."""
    c = get_state(request).catalogue
    return {"sla_hours": c.sla_hours, "sources": c.sources, "work_hours": c.work_hours,
            "categories": [{"code": code, "name": name, "dcode": (c.category_codes or {}).get(code, ""),
                            "subtypes": [subtype_json(s) for s in c.services() if s.category == code]}
                           for code, name in c.categories.items()]}


def subtype_json(s) -> dict:
    """A catalogue sub-type as the API shows it."""
    return {"code": s.code, "name": s.name, "priority": s.priority, "department": s.department, "dcode": s.dcode,
            "filing_standard": s.filing_standard, "closing_standard": s.closing_standard,
            "time_limit": {"value": s.limit_value, "unit": s.limit_unit} if s.limit_unit else None}


def owning_grid(state: AppState, lon: float, lat: float) -> dict:
    """The published grid at a WGS84 point with its community's id/path (422 if outside every grid)."""
    idx = state.holder.index
    i = idx.lookup(lon, lat)
    if i < 0:
        near = ""
        if len(idx):
            j, d = idx.nearest(lon, lat)
            near = f"; the nearest grid is {idx.codes[j]} ({idx.info[j].name}) {d:.0f} m away"
        raise APIError(422, "outside_all_grids", f"({lon:.6f}, {lat:.6f}) is outside every published grid{near}",
                       details=[{"field": "lon/lat", "message": "not inside a published grid"}])
    g = idx.info[i]
    with state.engine.connect() as conn:
        r = conn.execute(text("SELECT id, path FROM jurisdictions WHERE code = :c"),
                         {"c": (g.community or {}).get("code") or g.jurisdiction_code}).first()
    return {"code": g.code, "plan_id": g.plan_id, "jurisdiction_id": r.id if r else None,
            "jurisdiction_path": r.path if r else None}


def _create(state: AppState, p: Principal, body: EventIn, key: str | None, synthetic: bool = False):
    if state.catalogue.get(body.category, body.subtype) is None:
        known = [f"{s.category}/{s.code}" for s in state.catalogue.services()]
        raise APIError(422, "validation_error", f"unknown category/subtype {body.category}/{body.subtype}",
                       details=[{"field": "subtype", "message": f"expected one of {known[:30]}"}])
    lon, lat = point_to_wgs84(body.lon, body.lat, body.crs)
    grid = owning_grid(state, lon, lat)
    # the grid is public (anyone may know where it is), so a location outside the subtree is a 403, not a 404
    authorize(state, p, "event", grid["jurisdiction_path"], entity_id=f"at grid {grid['code']}",
              jurisdiction_id=grid["jurisdiction_id"], write=True, must_see=False)
    payload = body.model_dump(exclude={"lon", "lat", "crs"})
    with state.engine.begin() as conn:
        ev, created = svc.create_event(conn, p, state.catalogue, payload=payload, lon=lon, lat=lat, grid=grid,
                                       idempotency_key=key, synthetic=synthetic, calendar=calendar_of(state))
    return svc.event_json(ev, p), created


@router.post("/events", status_code=201, summary="Report an event; Idempotency-Key makes retries safe")
async def create_event(
    request: Request,
    body: EventIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=200),
    p: Principal = Depends(require("event.create")),
):
    """The event is routed to the grid that owns its location and to the department of its sub-type.
    A retry with the same ``Idempotency-Key`` returns the first event (200, ``Idempotent-Replayed: true``)."""
    state = get_state(request)
    ev, created = await run_in_threadpool(_create, state, p, body, idempotency_key)
    headers = {"Location": f"/v1/events/{ev['id']}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSON(ev, status_code=201 if created else 200, headers=headers)


@router.get("/events", summary="Events in the caller's jurisdiction, filtered")
def list_events(
    request: Request,
    state_: list[str] | None = Query(None, alias="state"),
    category: str | None = None,
    grid: str | None = Query(None, pattern=r"^\d{15}$"),
    overdue: bool | None = None,
    from_: Moment | None = Query(None, alias="from"),
    to: Moment | None = None,
    limit: int = Query(100, ge=1, le=5000),
    offset: int = Query(0, ge=0, le=10_000_000),
    p: Principal = Depends(require("read")),
):
    st = get_state(request)
    where = ["e.jurisdiction_path LIKE :path || '%'"]
    params: dict = {"path": p.jurisdiction_path, "limit": limit, "offset": offset}
    if state_:
        bad = [s for s in state_ if s not in ("reported", "accepted", "dispatched", "in_progress", "resolved",
                                              "closed", "returned", "rejected")]
        if bad:
            raise APIError(422, "validation_error", f"unknown state {bad[0]!r}",
                           details=[{"field": "state", "message": "not a state", "input": bad[0]}])
        where.append("e.state = ANY(:states)")
        params["states"] = state_
    if category:
        where.append("e.category = :cat")
        params["cat"] = category
    if grid:
        where.append("e.grid_code = :grid")
        params["grid"] = grid
    if overdue is not None:
        cond = "(e.state NOT IN ('resolved', 'closed', 'rejected') AND e.due_at < now())"
        where.append(cond if overdue else f"NOT {cond}")
    if from_:
        where.append("e.created_at >= :from")
        params["from"] = from_
    if to:
        where.append("e.created_at < :to")
        params["to"] = to
    w = " AND ".join(where)
    with st.engine.connect() as conn:
        total = conn.execute(text(f"SELECT count(*) FROM events e WHERE {w}"), params).scalar_one()
        rows = conn.execute(text(f"SELECT {svc.EVENT_COLUMNS} FROM events e WHERE {w} "
                                 "ORDER BY e.created_at DESC, e.id DESC LIMIT :limit OFFSET :offset"), params).mappings().all()
    return {"total": total, "limit": limit, "offset": offset, "items": [svc.event_json(r, p) for r in rows]}


@router.get("/events/{event_id}", summary="An event with its transition log and possible duplicates")
def get_event(request: Request, event_id: int, p: Principal = Depends(require("read"))):
    st = get_state(request)
    with st.engine.connect() as conn:
        ev = svc.get_event(conn, event_id, p)
    authorize(st, p, "event", ev["jurisdiction_path"], entity_id=event_id, jurisdiction_id=ev["jurisdiction_id"])
    with st.engine.connect() as conn:
        out = svc.event_json(ev, p)
        out["transitions"] = svc.transitions(conn, event_id)
        out["allowed_transitions"] = svc.allowed_from(ev["state"])
        if ev["duplicate_of"]:
            dups = conn.execute(text("SELECT id, state, description, created_at, jurisdiction_path FROM events "
                                     "WHERE id = ANY(:ids) ORDER BY id"),
                                {"ids": list(ev["duplicate_of"])}).mappings().all()
            # a suggestion from another street is not shown at all (its description is that street's business)
            out["possible_duplicates"] = [
                {"id": d["id"], "state": d["state"], "description": d["description"],
                 "created_at": d["created_at"].isoformat()}
                for d in dups if policy.can_read(p, "duplicate", d["jurisdiction_path"])]
        orders = conn.execute(text("SELECT order_no, appeal_type, called_at, merged FROM work_orders "
                                   "WHERE event_id = :e ORDER BY called_at, id"), {"e": event_id}).mappings().all()
        out["work_orders"] = [{**dict(o), "called_at": o["called_at"].isoformat()} for o in orders]
    return out


@router.post("/events/{event_id}/transitions", summary="Move an event through the closed loop (409 if not allowed)")
def move_event(request: Request, event_id: int, body: TransitionIn, p: Principal = Depends(require("event.transition"))):
    st = get_state(request)
    with st.engine.connect() as conn:
        ev = svc.get_event(conn, event_id, p)
    authorize(st, p, "event", ev["jurisdiction_path"], entity_id=event_id, jurisdiction_id=ev["jurisdiction_id"],
              action=f"event.{body.to}")
    try:
        with st.engine.begin() as conn:
            out = svc.transition(conn, p, event_id, to=body.to, note=body.note, reason=body.reason,
                                 assignee_worker_id=body.assignee_worker_id, department=body.department,
                                 satisfaction=body.satisfaction)
            hotline.event_moved(conn, event_id, reason=body.reason, note=body.note)  # status back to 12345
    except APIError as exc:
        if exc.status == 403 or exc.code == "unknown_reference":
            audit.record_denied(st.engine, p, f"event.{body.to}", "events", event_id,
                                jurisdiction_id=ev["jurisdiction_id"], reason=exc.message)
        raise
    return svc.event_json(out, p)
