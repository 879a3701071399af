"""12345 work orders: intake (idempotent on 工单号, 并单), poll by ``updated_since``, one order, 回访.

Each status change of an order taken in with an API key that has a webhook is sent back to it, signed, through
the job queue (:mod:`geo.api.services.hotline`); the poll below stays for hotlines without one.

Access: intake and 回访 — dispatcher, admin (the hotline's API key is a dispatcher key of its city or
district); reads — every role, own subtree; an order outside the subtree is 404.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from geo.api.core.responses import JSON
from geo.api.core.security import Principal
from geo.access import policy
from geo.api.deps import AppState, authorize, get_state, require
from geo.api.errors import APIError
from geo.api.routes.events import owning_grid
from geo.api.schemas import CallbackIn, WorkOrderIn
from geo.api.services import hotline
from geo.api.services import workorders as svc
from geo.api.services.geocode import geocode_of, grid_namer
from geo.api.services.scope import field_error
from geo.api.services.workcal import calendar_of
from geo.crs import point_to_wgs84

router = APIRouter(prefix="/v1/work-orders", tags=["12345"])


def _grid_name(state: AppState, code: str | None):
    idx = state.holder.index
    i = idx.by_code.get(code) if code else None
    return idx.info[i].name if i is not None else None


def _json(state: AppState, r, p: Principal) -> dict:
    return svc.order_json(r, p, state.catalogue, _grid_name(state, r["grid_code"]))


def _locate(state: AppState, p: Principal, body: WorkOrderIn) -> tuple[float, float, str | None]:
    if (body.lon is None) != (body.lat is None):
        raise field_error("lat" if body.lat is None else "lon", "纬度" if body.lat is None else "经度",
                          "经度和纬度须同时填写")
    if body.lon is not None:
        lon, lat = point_to_wgs84(body.lon, body.lat, body.crs)
        return lon, lat, body.address
    if not (body.address or "").strip():
        raise field_error("address", "地址", "请填写地址，或同时填写经度和纬度")
    idx = geocode_of(state)
    best = idx.search_rows(body.address, p.jurisdiction_path, limit=1)
    if not best:
        raise field_error("address", "地址", f"在您的辖区内找不到地址“{body.address}”，请核对或改填经纬度")
    i = best[0].row
    return float(idx.rows["lon"][i]), float(idx.rows["lat"][i]), body.address


def _intake(state: AppState, p: Principal, body: WorkOrderIn):
    cat = state.catalogue
    if cat.get(body.category, body.subtype) is None:
        known = [f"{s.category}/{s.code} {s.dcode} {s.name}" for s in cat.services()]
        raise field_error("subtype", "小类", f"未知的事件类型 {body.category}/{body.subtype}", known=known[:40])
    now = datetime.now(timezone.utc)
    if body.called_at.tzinfo is None:
        raise field_error("called_at", "来电时间", "须带时区，例如 2026-10-09T09:12:00+08:00")
    if body.called_at > now + timedelta(minutes=5):
        raise field_error("called_at", "来电时间", "不能晚于当前时间")
    if body.called_at < datetime(2000, 1, 1, tzinfo=timezone.utc):
        raise field_error("called_at", "来电时间", "不能早于 2000-01-01")
    lon, lat, address = _locate(state, p, body)
    grid = owning_grid(state, lon, lat)
    # the order's location must lie in the caller's subtree (a grid's existence is public: 403, not 404)
    authorize(state, p, "work_order", grid["jurisdiction_path"], entity_id=grid["code"],
              jurisdiction_id=grid["jurisdiction_id"], write=True, must_see=False)
    payload = body.model_dump(exclude={"lon", "lat", "crs"}) | {"address": address}
    with state.engine.begin() as conn:
        row, created = svc.intake(conn, p, cat, body=payload, lon=lon, lat=lat, grid=grid,
                                  radius_m=state.settings.merge_radius_m,
                                  window=timedelta(hours=state.settings.merge_window_hours),
                                  calendar=calendar_of(state), intake_key_id=p.id if p.kind == "api_key" else None)
        if created and row["merged"]:
            hotline.order_merged(conn, row["id"])  # 并单, back to the hotline's webhook
    return _json(state, row, p), created


@router.post("", status_code=201, summary="Take in a 12345 work order (idempotent on order_no; 并单 into an open event)")
async def create_order(request: Request, body: WorkOrderIn, p: Principal = Depends(require("work_order.write"))):
    """201 with the order (``merged`` tells whether it joined an open event); the same order again → 200 with
    ``Idempotent-Replayed: true``; the same 工单号 with another body → 409."""
    state = get_state(request)
    out, created = await run_in_threadpool(_intake, state, p, body)
    headers = {"Location": f"/v1/work-orders/{out['order_no']}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSON(out, status_code=201 if created else 200, headers=headers)


@router.get("", summary="Work orders changed since updated_since (the hotline's poll), oldest change first")
def list_orders(request: Request, updated_since: datetime | None = None,
                status: str | None = Query(None, pattern="^(open|closed)$"),
                limit: int = Query(100, ge=1, le=1000), p: Principal = Depends(require("read"))):
    state = get_state(request)
    if updated_since is not None and updated_since.tzinfo is None:
        updated_since = updated_since.replace(tzinfo=timezone.utc)
    with state.engine.connect() as conn:
        rows = svc.poll(conn, p, since=updated_since, status=status, limit=limit)
    rows = [r for r in rows if policy.can_read(p, "work_order", r["jurisdiction_path"])]
    items = [_json(state, r, p) for r in rows]
    nxt = items[-1]["updated_at"] if items else (updated_since.isoformat() if updated_since else None)
    return {"items": items, "next_updated_since": nxt}


def _order_in_scope(state: AppState, p: Principal, order_no: str, write: bool = False):
    """The order row, after the policy (404 outside the subtree, whether it exists or not)."""
    with state.engine.connect() as conn:
        r = svc.get_order(conn, order_no)
    authorize(state, p, "work_order", r["jurisdiction_path"] if r else None, entity_id=order_no,
              jurisdiction_id=r["jurisdiction_id"] if r else None, write=write)
    return r


@router.get("/{order_no}", summary="One work order with its status (expected_datetime = working-time deadline)")
def get_order(request: Request, order_no: str, p: Principal = Depends(require("read"))):
    state = get_state(request)
    return _json(state, _order_in_scope(state, p, order_no), p)


@router.post("/{order_no}/callback", summary="回访: the caller's satisfaction once the order is resolved")
def post_callback(request: Request, order_no: str, body: CallbackIn,
                  p: Principal = Depends(require("work_order.write"))):
    state = get_state(request)
    _order_in_scope(state, p, order_no, write=True)
    with state.engine.begin() as conn:
        r = svc.callback(conn, p, order_no, satisfaction=body.satisfaction, reached=body.reached, note=body.note)
        hotline.order_called_back(conn, r["id"])
    return _json(state, r, p)


geo_router = APIRouter(prefix="/v1", tags=["geocode"])


@geo_router.get("/geocode", summary="Standard-address search (标准地址): ranked candidates in the caller's jurisdiction")
def geocode(request: Request, q: str = Query(..., min_length=1, max_length=100),
            limit: int = Query(10, ge=1, le=50),
            jurisdiction: str | None = Query(None, pattern=r"^\d{12}$", description="Narrow to this jurisdiction"),
            p: Principal = Depends(require("read"))):
    state = get_state(request)
    if not q.strip():
        raise field_error("q", "地址", "请输入要查找的地址")
    path = p.jurisdiction_path
    if jurisdiction:
        from sqlalchemy import text

        with state.engine.connect() as conn:
            jp = conn.execute(text("SELECT path FROM jurisdictions WHERE code = :c"), {"c": jurisdiction}).scalar()
        authorize(state, p, "geocode", jp, entity_id=jurisdiction)
        path = jp
    idx = geocode_of(state)
    namer = grid_namer(state)
    cands = idx.search_rows(q, path, limit=limit)
    return {"query": q, "total_indexed": idx.n, "candidates": [idx.candidate_json(c, namer) for c in cands]}
