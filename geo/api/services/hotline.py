"""Status back to the 12345 hotline by webhook: what is sent, to whom, and the delivery log.

A hotline API key (role dispatcher or admin) may carry a webhook: a callback URL and a secret
(``hotline_webhooks``). Each status change of a work order the key took in (``work_orders.intake_key_id``)
writes one delivery row and defers its job **in the transaction of the change** (:func:`geo.jobs.queue.defer_in`):
no change without its delivery, no delivery of a change that rolled back. ``geo worker`` POSTs it, signed,
with retries (:mod:`geo.jobs.hotline`).

Changes (``kind``):

* ``order.merged`` — 并单: the order was linked to an open event at intake (``linked_orders``: the orders
  already on it);
* ``order.<state>`` — the order's event moved: ``accepted``, ``rejected``, ``dispatched``, ``in_progress``,
  ``returned``, ``resolved``, ``closed``; ``order.reopened`` — reopened (返工) after resolution;
* ``order.callback`` — 回访 recorded (satisfaction, reached).

Every order on an event hears of the event's moves, each through the webhook of the key that took it in.
Payloads carry no personal data (the hotline has the caller's); ``seq`` counts the changes of one order for
one webhook from 1, without gaps.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

from sqlalchemy import Connection, text

from geo.api.services.workorders import STATUS_NAMES

TERMINAL = ("closed", "rejected")
#: the procrastinate queue of deliveries: ``geo worker`` takes every queue; ``geo worker --queue hotline`` runs
#: deliveries apart from partitions (a 10-minute partition then never delays a status change)
QUEUE = "hotline"

_ORDERS = """
    SELECT wo.id, wo.order_no, wo.event_id, wo.merged, wo.jurisdiction_path, wo.callback_at,
           wo.callback_satisfaction, wo.callback_reached, wo.callback_note, h.id AS webhook_id,
           e.state, e.due_at, e.grid_code, e.department, e.resolved_at, e.closed_at,
           greatest(wo.updated_at, e.updated_at) AS updated_at,
           (SELECT g.name FROM grids g WHERE g.plan_id = e.plan_id AND g.code = e.grid_code) AS grid_name
    FROM work_orders wo
    JOIN events e ON e.id = wo.event_id
    JOIN hotline_webhooks h ON h.api_key_id = wo.intake_key_id AND h.active
    JOIN api_keys k ON k.id = h.api_key_id AND k.active
"""


def _iso(v) -> str | None:
    return v.isoformat() if v else None


def _order_view(r) -> dict:
    return {"order_no": r["order_no"], "event_id": r["event_id"], "merged": r["merged"], "status": r["state"],
            "status_name": STATUS_NAMES.get(r["state"], r["state"]), "closed": r["state"] in TERMINAL,
            "grid_code": r["grid_code"], "grid_name": r["grid_name"], "department": r["department"],
            "due_at": _iso(r["due_at"]), "expected_datetime": _iso(r["due_at"]),
            "resolved_at": _iso(r["resolved_at"]), "closed_at": _iso(r["closed_at"]),
            "updated_at": _iso(r["updated_at"])}


def _enqueue(conn: Connection, r, kind: str, extra: dict) -> int:
    from geo.jobs.queue import defer_in

    seq = conn.execute(text("SELECT coalesce(max(seq), 0) + 1 FROM hotline_deliveries "
                            "WHERE webhook_id = :h AND work_order_id = :o"),
                       {"h": r["webhook_id"], "o": r["id"]}).scalar_one()
    did = str(uuid.uuid4())
    payload = {"delivery_id": did, "type": kind, "seq": seq,
               "occurred_at": datetime.now(timezone.utc).isoformat(), "order": _order_view(r), **extra}
    row = conn.execute(text("""
        INSERT INTO hotline_deliveries (delivery_id, webhook_id, work_order_id, order_no, jurisdiction_path, seq,
                                        kind, payload)
        VALUES (:d, :h, :o, :no, :path, :seq, :k, CAST(:p AS jsonb)) RETURNING id
    """), {"d": did, "h": r["webhook_id"], "o": r["id"], "no": r["order_no"], "path": r["jurisdiction_path"],
           "seq": seq, "k": kind, "p": json.dumps(payload, ensure_ascii=False)}).scalar_one()
    job = defer_in(conn, "hotline_deliver", queue_name=QUEUE, lock=f"hotline:{r['webhook_id']}:{r['id']}",
                   delivery_id=row)
    conn.execute(text("UPDATE hotline_deliveries SET queue_job_id = :j WHERE id = :i"), {"j": job, "i": row})
    return row


def event_moved(conn: Connection, event_id: int, *, reason: str | None = None, note: str | None = None,
                kind: str | None = None) -> int:
    """Queue ``order.<new state>`` (or *kind*) for every order of event *event_id* whose key has a webhook.

    Call it inside the transaction that moved the event, after the move: the from/to states are read from the
    transition row just written. Returns the number of deliveries queued.
    """
    rows = conn.execute(text(_ORDERS + " WHERE wo.event_id = :e ORDER BY wo.id FOR UPDATE OF wo"),
                        {"e": event_id}).mappings().all()
    if not rows:
        return 0
    t = conn.execute(text("SELECT from_state, to_state FROM event_transitions WHERE event_id = :e "
                          "ORDER BY id DESC LIMIT 1"), {"e": event_id}).one()
    change = {"from": t.from_state, "to": t.to_state, "reason": (reason or "").strip() or None,
              "note": (note or "").strip() or None}
    for r in rows:
        _enqueue(conn, r, kind or f"order.{t.to_state}", {"change": change})
    return len(rows)


def order_merged(conn: Connection, order_id: int) -> int:
    """Queue ``order.merged`` for a just-merged order (并单), naming the orders already on its event."""
    r = conn.execute(text(_ORDERS + " WHERE wo.id = :o FOR UPDATE OF wo"), {"o": order_id}).mappings().first()
    if r is None:
        return 0
    linked = conn.execute(text("SELECT order_no FROM work_orders WHERE event_id = :e AND id <> :o "
                               "ORDER BY called_at, id"), {"e": r["event_id"], "o": order_id}).scalars().all()
    _enqueue(conn, r, "order.merged", {"linked_orders": list(linked)})
    return 1


def order_called_back(conn: Connection, order_id: int) -> int:
    """Queue ``order.callback`` for the 回访 just recorded on *order_id*."""
    r = conn.execute(text(_ORDERS + " WHERE wo.id = :o FOR UPDATE OF wo"), {"o": order_id}).mappings().first()
    if r is None:
        return 0
    _enqueue(conn, r, "order.callback", {"callback": {
        "satisfaction": r["callback_satisfaction"], "reached": r["callback_reached"], "note": r["callback_note"],
        "at": _iso(r["callback_at"])}})
    return 1


# --------------------------------------------------------------------------- admin: webhooks and the log


def webhook_json(r) -> dict:
    return {"id": r["id"], "api_key_id": r["api_key_id"], "api_key_name": r["key_name"],
            "api_key_active": r["key_active"], "jurisdiction_code": r["code"], "url": r["url"],
            "active": r["active"], "created_at": _iso(r["created_at"]), "created_by": r["created_by"],
            "updated_at": _iso(r["updated_at"]), "updated_by": r["updated_by"]}


WEBHOOKS_SQL = """
    SELECT h.id, h.api_key_id, h.url, h.active, h.created_at, h.created_by, h.updated_at, h.updated_by,
           k.name AS key_name, k.active AS key_active, j.code, j.path
    FROM hotline_webhooks h JOIN api_keys k ON k.id = h.api_key_id JOIN jurisdictions j ON j.id = k.jurisdiction_id
"""


def delivery_json(r) -> dict:
    return {"id": r["id"], "delivery_id": str(r["delivery_id"]), "type": r["kind"], "seq": r["seq"],
            "order_no": r["order_no"], "state": r["state"], "attempts": r["attempts"],
            "last_status_code": r["last_status_code"], "last_error": r["last_error"], "history": r["history"],
            "created_at": _iso(r["created_at"]), "last_attempt_at": _iso(r["last_attempt_at"]),
            "next_attempt_at": _iso(r["next_attempt_at"]), "delivered_at": _iso(r["delivered_at"]),
            "webhook_id": r["webhook_id"], "api_key_name": r["key_name"], "url": r["url"], "payload": r["payload"]}


def deliveries(conn: Connection, path: str, *, order_no: str | None, state: str | None, limit: int,
               offset: int) -> tuple[int, list]:
    """The delivery log of orders inside the subtree at *path*, newest first."""
    where, params = ["d.jurisdiction_path LIKE :path || '%'"], {"path": path, "limit": limit, "offset": offset}
    if order_no:
        where.append("d.order_no = :no")
        params["no"] = order_no
    if state:
        where.append("d.state = :st")
        params["st"] = state
    w = " AND ".join(where)
    total = conn.execute(text(f"SELECT count(*) FROM hotline_deliveries d WHERE {w}"), params).scalar_one()
    rows = conn.execute(text(f"""
        SELECT d.*, h.url, k.name AS key_name FROM hotline_deliveries d
        JOIN hotline_webhooks h ON h.id = d.webhook_id JOIN api_keys k ON k.id = h.api_key_id
        WHERE {w} ORDER BY d.id DESC LIMIT :limit OFFSET :offset
    """), params).mappings().all()
    return total, rows
