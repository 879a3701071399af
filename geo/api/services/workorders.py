"""12345 work orders (工单): idempotent intake, 并单 (merging into an open event), status, 回访.

An order always points at one event. On intake, an open event of the same category and sub-type within
``GEO_MERGE_RADIUS_M`` of the order's point, created at most ``GEO_MERGE_WINDOW_HOURS`` before the call,
takes the order (``merged``); otherwise a new event is created from the order (source ``hotline_12345``,
its deadline counted from 来电时间 on working time). Intakes of one sub-type are serialised by an
advisory lock, so two calls about the same matter arriving together still make one event.
The order number (工单号) is unique: the same order again replays it, another body with the same number
is refused (409).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from geo.access import policy
from geo.api.core.security import Principal
from geo.api.services import audit
from geo.api.services import events as ev_svc
from geo.api.services.scope import field_error

STATUS_NAMES = {"reported": "待受理", "accepted": "已受理", "dispatched": "已派遣", "in_progress": "处置中",
                "returned": "已退回", "resolved": "已办结", "closed": "已结案", "rejected": "不予受理"}

ORDER_SQL = """
    SELECT wo.id, wo.order_no, wo.called_at, wo.appeal_type, wo.category, wo.subtype, wo.content, wo.address,
           wo.caller_name, wo.caller_phone, wo.event_id, wo.merged, wo.jurisdiction_path, wo.created_at,
           wo.created_by, greatest(wo.updated_at, e.updated_at) AS updated_at, wo.callback_at, wo.callback_by,
           wo.callback_satisfaction, wo.callback_reached, wo.callback_note, wo.request_hash,
           ST_X(wo.geom) AS lon, ST_Y(wo.geom) AS lat, e.state, e.due_at, e.grid_code, e.jurisdiction_id,
           e.resolved_at, e.closed_at
    FROM work_orders wo JOIN events e ON e.id = wo.event_id
"""


def order_json(r, p: Principal, catalogue, grid_name=None) -> dict:
    """An order as the API shows it (caller masked unless the role sees personal data)."""
    sub = catalogue.get(r["category"], r["subtype"])
    cb = None
    if r["callback_at"]:
        cb = {"satisfaction": r["callback_satisfaction"], "reached": r["callback_reached"],
              "note": r["callback_note"], "at": r["callback_at"].isoformat(), "by": r["callback_by"]}
    return policy.mask_fields(p, "work_order", {
        "order_no": r["order_no"], "id": r["id"], "event_id": r["event_id"], "merged": r["merged"],
        "called_at": r["called_at"].isoformat(), "appeal_type": r["appeal_type"], "category": r["category"],
        "subtype": r["subtype"], "subtype_name": sub.name if sub else None, "code": sub.dcode if sub else None,
        "content": r["content"], "address": r["address"], "lon": r["lon"], "lat": r["lat"],
        "caller_name": r["caller_name"], "caller_phone": r["caller_phone"],
        "status": r["state"], "status_name": STATUS_NAMES.get(r["state"], r["state"]),
        "closed": r["state"] in ev_svc.TERMINAL,
        "due_at": r["due_at"].isoformat(), "expected_datetime": r["due_at"].isoformat(),
        "grid_code": r["grid_code"], "grid_name": grid_name, "callback": cb,
        "created_at": r["created_at"].isoformat(), "updated_at": r["updated_at"].isoformat(),
    })


def get_order(conn: Connection, order_no: str, *, lock: bool = False):
    """The order row (with its event's state), or None."""
    sql = ORDER_SQL + " WHERE wo.order_no = :n" + (" FOR UPDATE OF wo" if lock else "")
    return conn.execute(text(sql), {"n": order_no}).mappings().first()


def find_open_event(conn: Connection, *, category: str, subtype: str, lon: float, lat: float, called_at: datetime,
                    radius_m: float, window: timedelta) -> int | None:
    """The nearest open event of the same sub-type within *radius_m*, created since ``called_at - window``."""
    return conn.execute(text("""
        WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g)
        SELECT e.id FROM events e, p
        WHERE e.category = :c AND e.subtype = :s AND e.state = ANY(:open)
          AND e.created_at >= :since AND e.created_at <= :until
          AND ST_DWithin(e.geom::geography, p.g::geography, :r)
        ORDER BY ST_Distance(e.geom::geography, p.g::geography), e.created_at DESC, e.id
        LIMIT 1
    """), {"lon": lon, "lat": lat, "c": category, "s": subtype, "open": list(ev_svc.OPEN_STATES),
           "since": called_at - window, "until": called_at + timedelta(minutes=5), "r": radius_m}).scalar()


def intake(conn: Connection, p: Principal, catalogue, *, body: dict, lon: float, lat: float, grid: dict,
           radius_m: float, window: timedelta, calendar, intake_key_id: int | None = None) -> tuple[dict, bool]:
    """Take one order in; returns (order row, created). See the module docstring for the rules.

    Parameters
    ----------
    body : dict
        Validated request: order_no, called_at, appeal_type, category, subtype, content, address,
        caller_name, caller_phone.
    lon, lat : float
        WGS84 point of the order (given, or geocoded from the address).
    grid : dict
        Owning grid (see ``routes.events.owning_grid``).
    intake_key_id : int, optional
        The API key taking the order in (its webhook, if any, hears of the order's changes).
    """
    rhash = ev_svc.request_hash(body | {"lon": round(lon, 7), "lat": round(lat, 7)})
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": "wo:" + body["order_no"]})
    prev = get_order(conn, body["order_no"])
    if prev is not None:
        if prev["request_hash"] != rhash:
            raise field_error("order_no", "工单号", f"工单号 {body['order_no']} 已用于另一张不同内容的工单",
                              status=409, code="order_no_conflict")
        return prev, False
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                 {"k": f"wo-merge:{body['category']}.{body['subtype']}"})
    called = body["called_at"]
    eid = find_open_event(conn, category=body["category"], subtype=body["subtype"], lon=lon, lat=lat,
                          called_at=called, radius_m=radius_m, window=window)
    merged = eid is not None
    if merged:
        state = conn.execute(text("UPDATE events SET updated_at = now() WHERE id = :e RETURNING state"),
                             {"e": eid}).scalar_one()
        conn.execute(text("INSERT INTO event_transitions (event_id, from_state, to_state, actor, note) "
                          "VALUES (:e, :s, :s, :a, :n)"),
                     {"e": eid, "s": state, "a": p.actor, "n": f"并单: 12345工单 {body['order_no']}"})
    else:
        payload = {"category": body["category"], "subtype": body["subtype"], "source": "hotline_12345",
                   "description": body["content"], "address": body.get("address"),
                   "reporter_name": body.get("caller_name"), "reporter_phone": body.get("caller_phone"),
                   "anonymous": not (body.get("caller_name") or body.get("caller_phone"))}
        ev, _ = ev_svc.create_event(conn, p, catalogue, payload=payload, lon=lon, lat=lat, grid=grid,
                                    idempotency_key=f"12345:{body['order_no']}", now=called, calendar=calendar)
        eid = ev["id"]
    oid = conn.execute(text("""
        INSERT INTO work_orders (order_no, request_hash, called_at, appeal_type, category, subtype, content, address,
            caller_name, caller_phone, event_id, merged, jurisdiction_path, created_by, intake_key_id, geom)
        VALUES (:no, :h, :called, :appeal, :c, :s, :content, :addr, :cn, :cp, :e, :m, :path, :actor, :key,
                ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
        RETURNING id
    """), {"no": body["order_no"], "h": rhash, "called": called, "appeal": body["appeal_type"], "c": body["category"],
           "s": body["subtype"], "content": body["content"], "addr": body.get("address"), "cn": body.get("caller_name"),
           "cp": body.get("caller_phone"), "e": eid, "m": merged, "path": grid["jurisdiction_path"], "actor": p.actor,
           "key": intake_key_id, "lon": lon, "lat": lat}).scalar_one()
    audit.record(conn, p, "work_order.create", "work_orders", oid, jurisdiction_id=grid["jurisdiction_id"],
                 detail={"order_no": body["order_no"], "event_id": eid, "merged": merged})
    return get_order(conn, body["order_no"]), True


def poll(conn: Connection, p: Principal, *, since: datetime | None, status: str | None, limit: int) -> list:
    """Orders of the caller's subtree changed after *since* (order or event), oldest change first."""
    where, params = ["wo.jurisdiction_path LIKE :path || '%'"], {"path": p.jurisdiction_path, "limit": limit}
    if since is not None:
        where.append("greatest(wo.updated_at, e.updated_at) > :since")
        params["since"] = since
    if status == "open":
        where.append("e.state <> ALL(:term)")
        params["term"] = list(ev_svc.TERMINAL)
    elif status == "closed":
        where.append("e.state = ANY(:term)")
        params["term"] = list(ev_svc.TERMINAL)
    return conn.execute(text(ORDER_SQL + " WHERE " + " AND ".join(where)
                             + " ORDER BY greatest(wo.updated_at, e.updated_at), wo.id LIMIT :limit"),
                        params).mappings().all()


def callback(conn: Connection, p: Principal, order_no: str, *, satisfaction: int | None, reached: bool,
             note: str | None) -> dict:
    """Record the 回访 of a resolved or closed order (once)."""
    r = get_order(conn, order_no, lock=True)
    if r["state"] not in ("resolved", "closed"):
        raise field_error("order_no", "工单号", f"工单 {order_no} 尚未办结（当前：{STATUS_NAMES.get(r['state'])}），不能回访",
                          status=409, code="not_resolved")
    if r["callback_at"] is not None:
        raise field_error("order_no", "工单号", f"工单 {order_no} 已于 {r['callback_at']:%Y-%m-%d %H:%M} 回访",
                          status=409, code="already_called_back")
    if reached and satisfaction is None:
        raise field_error("satisfaction", "满意度", "联系到来电人时必须填写满意度（1–5）")
    conn.execute(text("""
        UPDATE work_orders SET callback_at = now(), callback_by = :a, callback_satisfaction = :s,
            callback_reached = :r, callback_note = :n, updated_at = now() WHERE id = :id
    """), {"a": p.actor, "s": satisfaction, "r": reached, "n": note, "id": r["id"]})
    audit.record(conn, p, "work_order.callback", "work_orders", r["id"], jurisdiction_id=r["jurisdiction_id"],
                 detail={"order_no": order_no, "satisfaction": satisfaction, "reached": reached})
    return get_order(conn, order_no)

