"""Events in the closed loop 上报→受理→分流→调处→督办→反馈.

State machine (``from → to: who``; reasons required where marked *):

================  ==========================  ==========================
from              to                          roles
================  ==========================  ==========================
reported          accepted (受理)             dispatcher, admin
reported/accepted rejected* (不予受理)        dispatcher, admin
accepted/returned dispatched (分流/派遣)      dispatcher, admin
returned          rejected*                   dispatcher, admin
dispatched        in_progress (调处)          assignee worker, dispatcher, admin
dispatched/in_pr. returned* (退回)            assignee worker, dispatcher, admin
in_progress       resolved (办结, 待督办核查)  assignee worker, dispatcher, admin
resolved          in_progress* (督办: 核查不通过) dispatcher, admin
resolved          closed (反馈/结案, rating)   dispatcher, admin
================  ==========================  ==========================

Creation is idempotent per ``Idempotency-Key``: the key is unique in
``event_idempotency_keys`` (``events`` is partitioned by month and cannot hold
a unique key of its own; a trigger files every event's key there), so
concurrent retries in any number of API processes produce one event; a retry
with a different body is refused (422). Every change is one
transaction with its transition-log row and its audit row, committed before
the response is sent.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timedelta, timezone

import h3
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from geo.api.core.config import Catalogue
from geo.access import audit, policy
from geo.api.core.security import Principal
from geo.api.errors import APIError

OPEN_STATES = ("reported", "accepted", "dispatched", "in_progress", "returned")
TERMINAL = ("closed", "rejected")
DUPLICATE_RADIUS_M = 50.0
DUPLICATE_WINDOW = timedelta(hours=24)
MAX_DUPLICATES = 10

STAFF = frozenset({"dispatcher", "admin"})
FIELD = frozenset({"worker", "dispatcher", "admin"})
#: (from, to) → (roles, reason required)
TRANSITIONS: dict[tuple[str, str], tuple[frozenset[str], bool]] = {
    ("reported", "accepted"): (STAFF, False),
    ("reported", "rejected"): (STAFF, True),
    ("accepted", "rejected"): (STAFF, True),
    ("returned", "rejected"): (STAFF, True),
    ("accepted", "dispatched"): (STAFF, False),
    ("returned", "dispatched"): (STAFF, False),
    ("dispatched", "in_progress"): (FIELD, False),
    ("dispatched", "returned"): (FIELD, True),
    ("in_progress", "returned"): (FIELD, True),
    ("in_progress", "resolved"): (FIELD, False),
    ("resolved", "in_progress"): (STAFF, True),
    ("resolved", "closed"): (STAFF, False),
}
TIMESTAMP_COLUMN = {"accepted": "accepted_at", "dispatched": "dispatched_at", "resolved": "resolved_at",
                    "closed": "closed_at"}


def allowed_from(state: str) -> list[str]:
    return sorted(to for (frm, to) in TRANSITIONS if frm == state)


def request_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def h3_cells(lon: float, lat: float) -> dict[str, int]:
    """H3 cells containing a point at resolutions 7–10 (signed 64-bit ints for PostgreSQL bigint).

    Each resolution is indexed from the point itself: H3 parents are not spatially nested, so the
    parent of the resolution-10 cell is not always the resolution-8 cell that contains the point.
    """
    return {f"h3_{r}": _signed(h3.str_to_int(h3.latlng_to_cell(lat, lon, r))) for r in (7, 8, 9, 10)}


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= (1 << 63) else v


def cell_hex(v: int) -> str:
    return h3.int_to_str(v + (1 << 64) if v < 0 else v)


def due_time(catalogue: Catalogue, sub, priority: str, start: datetime, calendar=None) -> datetime:
    """The deadline of an event: the sub-type's 处置时限 on working time when it has one and a calendar is
    given, else the priority's clock hours; an urgent event is never later than its clock-hour SLA.

    Parameters
    ----------
    sub : Subtype
    priority : str
    start : datetime (aware)
    calendar : WorkCalendar, optional
    """
    clock = start + timedelta(hours=catalogue.sla_hours[priority])
    if calendar is None or not sub.limit_unit:
        return clock
    due = calendar.add(start, sub.limit_value, sub.limit_unit)
    return min(due, clock) if priority == "urgent" else due


def create_event(conn: Connection, p: Principal, catalogue: Catalogue, *, payload: dict, lon: float, lat: float,
                 grid: dict, idempotency_key: str | None, synthetic: bool = False,
                 now: datetime | None = None, calendar=None) -> tuple[dict, bool]:
    """Insert an event (or return the one created earlier with the same key).

    Parameters
    ----------
    payload : dict
        The validated request (category, subtype, source, description, address, reporter …).
    lon, lat : float
        WGS84 location.
    grid : dict
        Owning grid: ``code``, ``plan_id``, ``jurisdiction_id``, ``jurisdiction_path``.
    now : datetime, optional
        The intake time (default: now), from which the deadline is counted.
    calendar : WorkCalendar, optional
        Working calendar for the sub-type's time limit (see :func:`due_time`).

    Returns
    -------
    (event, created) : the event as returned by :func:`event_json`, and False for an idempotent replay.
    """
    sub = catalogue.get(payload["category"], payload["subtype"])
    priority = payload.get("priority") or sub.priority
    now = now or datetime.now(timezone.utc)
    due = due_time(catalogue, sub, priority, now, calendar)
    rhash = request_hash(payload | {"lon": round(lon, 7), "lat": round(lat, 7)})
    anonymous = bool(payload.get("anonymous"))
    params = {
        "key": idempotency_key, "rhash": rhash, "category": sub.category, "subtype": sub.code,
        "priority": priority, "source": payload["source"], "description": payload.get("description") or "",
        "address": payload.get("address"),
        "rname": None if anonymous else payload.get("reporter_name"),
        "rphone": None if anonymous else payload.get("reporter_phone"),
        "anon": anonymous, "grid": grid["code"], "plan": grid["plan_id"], "jid": grid["jurisdiction_id"],
        "jpath": grid["jurisdiction_path"], "dept": sub.department, "actor": p.actor, "now": now, "due": due,
        "lon": lon, "lat": lat, "synthetic": synthetic, **h3_cells(lon, lat),
    }
    insert = text("""
        INSERT INTO events (idempotency_key, request_hash, category, subtype, priority, source, description, address,
            reporter_name, reporter_phone, anonymous, grid_code, plan_id, jurisdiction_id, jurisdiction_path,
            department, h3_7, h3_8, h3_9, h3_10, created_at, created_by, updated_at, due_at, synthetic, geom)
        VALUES (:key, :rhash, :category, :subtype, :priority, :source, :description, :address, :rname, :rphone,
            :anon, :grid, :plan, :jid, :jpath, :dept, :h3_7, :h3_8, :h3_9, :h3_10, :now, :actor, :now, :due,
            :synthetic, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
        RETURNING id
    """)
    if idempotency_key is None:
        row = conn.execute(insert, params).one()
    else:
        row = _insert_keyed(conn, insert, params)
    if row is None:  # the key was used before (possibly by another process a moment ago)
        prev = conn.execute(text("SELECT e.id, e.request_hash FROM event_idempotency_keys k JOIN events e "
                                 "ON e.id = k.event_id AND e.created_at = k.event_created_at "
                                 "WHERE k.idempotency_key = :k"), {"k": idempotency_key}).one()
        if prev.request_hash != rhash:
            raise APIError(422, "idempotency_key_reused",
                           f"Idempotency-Key {idempotency_key!r} was already used with a different request body",
                           details=[{"field": "Idempotency-Key", "message": "reused with another body"}])
        return get_event(conn, prev.id, p), False
    eid = row.id
    # bbox prefilter (GiST) then the exact geodesic distance; the dispatcher sees the nearest few, newest first
    dups = conn.execute(text("""
        WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g)
        SELECT e.id FROM events e, p
        WHERE e.id <> :id AND e.category = :c AND e.state = ANY(:open) AND e.created_at >= :since
          AND e.geom && ST_Expand(p.g, :deg)
          AND ST_DWithin(e.geom::geography, p.g::geography, :r)
        ORDER BY ST_Distance(e.geom::geography, p.g::geography), e.created_at DESC
        LIMIT :n
    """), {"id": eid, "c": sub.category, "open": list(OPEN_STATES), "since": now - DUPLICATE_WINDOW,
           "lon": lon, "lat": lat, "r": DUPLICATE_RADIUS_M, "n": MAX_DUPLICATES,
           "deg": DUPLICATE_RADIUS_M / 111_000 / max(0.2, math.cos(math.radians(lat)))}).scalars().all()
    if dups:
        conn.execute(text("UPDATE events SET duplicate_of = CAST(:d AS jsonb) WHERE id = :id"),
                     {"d": json.dumps(dups), "id": eid})
    conn.execute(text("INSERT INTO event_transitions (event_id, event_created_at, from_state, to_state, actor, at, "
                      "note) VALUES (:e, :now, NULL, 'reported', :a, :now, :n)"),
                 {"e": eid, "a": p.actor, "now": now, "n": f"source {payload['source']}"})
    audit.record(conn, p, "event.create", "events", eid, jurisdiction_id=grid["jurisdiction_id"],
                 detail={"category": sub.category, "subtype": sub.code, "grid": grid["code"],
                         "duplicates": dups, "idempotency_key": idempotency_key})
    return get_event(conn, eid, p), True


KEY_CONSTRAINT = "event_idempotency_keys_pkey"


def _insert_keyed(conn: Connection, insert, params: dict):
    """Insert an event that carries an Idempotency-Key; None when the key is taken (by a committed event, or by
    one committed while this insert waited for it: the key table's primary key serialises the two)."""
    try:
        with conn.begin_nested():
            return conn.execute(insert, params).one()
    except IntegrityError as exc:
        if getattr(getattr(exc.orig, "diag", None), "constraint_name", None) != KEY_CONSTRAINT:
            raise
        return None


EVENT_COLUMNS = """
    e.id, e.category, e.subtype, e.priority, e.source, e.state, e.description, e.address, e.reporter_name,
    e.reporter_phone, e.anonymous, e.grid_code, e.plan_id, e.jurisdiction_id, e.jurisdiction_path, e.department,
    e.assignee_worker_id, e.duplicate_of, e.created_at, e.created_by, e.updated_at, e.accepted_at, e.dispatched_at,
    e.resolved_at, e.closed_at, e.due_at, e.satisfaction, e.synthetic, ST_X(e.geom) AS lon, ST_Y(e.geom) AS lat,
    (e.state NOT IN ('resolved', 'closed', 'rejected') AND e.due_at < now()) AS overdue, e.reopen_count,
    (SELECT count(*) FROM work_orders wo WHERE wo.event_id = e.id) AS work_order_count,
    (SELECT count(*) FROM work_orders wo WHERE wo.event_id = e.id AND wo.merged) AS merged_orders,
    (SELECT count(*) FROM event_supervisions es WHERE es.event_id = e.id) AS supervisions
"""


def event_json(r, p: Principal) -> dict:
    d = dict(r)
    for k in ("created_at", "updated_at", "accepted_at", "dispatched_at", "resolved_at", "closed_at", "due_at"):
        d[k] = d[k].isoformat() if d[k] else None
    d.pop("jurisdiction_path", None)
    return policy.mask_fields(p, "event", d)


def get_event(conn: Connection, eid: int, p: Principal, *, lock: bool = False):
    r = conn.execute(text(f"SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = :id" + (" FOR UPDATE" if lock else "")),
                     {"id": eid}).mappings().first()
    if r is None:
        raise APIError(404, "not_found", f"event {eid} not found")
    return r


def transitions(conn: Connection, eid: int) -> list[dict]:
    rows = conn.execute(text("SELECT from_state, to_state, actor, at, note FROM event_transitions "
                             "WHERE event_id = :e ORDER BY at, id"), {"e": eid}).mappings().all()
    return [{**dict(r), "at": r["at"].isoformat()} for r in rows]


def transition(conn: Connection, p: Principal, eid: int, *, to: str, note: str | None, reason: str | None,
               assignee_worker_id: int | None, department: str | None, satisfaction: int | None) -> dict:
    """Move an event to *to*; raises 409 for a transition the state machine does not allow."""
    ev = get_event(conn, eid, p, lock=True)
    frm = ev["state"]
    rule = TRANSITIONS.get((frm, to))
    if rule is None:
        raise APIError(409, "invalid_transition", f"event {eid} is '{frm}'; it cannot go to '{to}'",
                       details=[{"field": "to", "message": f"allowed from '{frm}': {allowed_from(frm) or 'none'}"}],
                       extra={"state": frm, "allowed": allowed_from(frm)})
    roles, needs_reason = rule
    if p.role not in roles:
        raise APIError(403, "forbidden", f"role '{p.role}' may not move an event from '{frm}' to '{to}'")
    why = policy.write_refusal(p, "event_transition", ev["jurisdiction_path"], worker_id=ev["assignee_worker_id"])
    if why:
        raise APIError(403, "forbidden", f"event {eid}: {why}; it is not assigned to this credential")
    if needs_reason and not (reason or "").strip():
        raise APIError(422, "validation_error", f"moving to '{to}' needs a reason",
                       details=[{"field": "reason", "message": "required for this transition"}])
    if satisfaction is not None and to != "closed":
        raise APIError(422, "validation_error", "satisfaction is given when closing an event",
                       details=[{"field": "satisfaction", "message": "only with to=closed"}])
    sets = ["state = :to", "updated_at = now()"]
    params: dict = {"id": eid, "to": to}
    if to in TIMESTAMP_COLUMN:
        sets.append(f"{TIMESTAMP_COLUMN[to]} = now()")
    if to == "dispatched":
        if assignee_worker_id is not None:
            w = conn.execute(text("SELECT w.id, j.path FROM workers w JOIN jurisdictions j ON j.id = w.jurisdiction_id "
                                  "WHERE w.id = :w"), {"w": assignee_worker_id}).first()
            if w is None or not policy.covers(p, w.path):  # unknown and out of scope answer alike
                raise APIError(422, "unknown_reference",
                               f"assignee_worker_id: worker {assignee_worker_id} not found in your jurisdiction",
                               details=[{"field": "assignee_worker_id", "message": "unknown or outside your jurisdiction",
                                         "input": str(assignee_worker_id)}])
            sets.append("assignee_worker_id = :w")
            params["w"] = assignee_worker_id
        if department:
            sets.append("department = :dept")
            params["dept"] = department
    if to == "in_progress" and frm == "resolved":  # 核查不通过: the work is done again (返工)
        sets.append("resolved_at = NULL")
        sets.append("reopen_count = reopen_count + 1")
    if satisfaction is not None:
        sets.append("satisfaction = :sat")
        params["sat"] = satisfaction
    conn.execute(text(f"UPDATE events SET {', '.join(sets)} WHERE id = :id"), params)
    full_note = "; ".join(x for x in (reason, note) if x)
    conn.execute(text("INSERT INTO event_transitions (event_id, event_created_at, from_state, to_state, actor, note) "
                      "VALUES (:e, :ec, :f, :t, :a, :n)"),
                 {"e": eid, "ec": ev["created_at"], "f": frm, "t": to, "a": p.actor, "n": full_note or None})
    audit.record(conn, p, f"event.{to}", "events", eid, jurisdiction_id=ev["jurisdiction_id"],
                 detail={"from": frm, "to": to, "reason": reason, "assignee": assignee_worker_id,
                         "satisfaction": satisfaction})
    return get_event(conn, eid, p)
