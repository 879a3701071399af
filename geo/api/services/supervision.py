"""督办 (supervision of overdue or disputed events, with escalation) and the reopen action (返工).

Rules (one place; the routes only call these):

* 督办 ``overdue``: the event is open and past its working-time deadline; the reason is optional (the
  deadline speaks for itself).
* 督办 ``disputed``: the event was returned (退回), reopened, or rated 1–2 by the resident or the caller's
  回访; a reason is required (what is disputed).
* Each 督办 of the same event escalates one level: 1 社区, 2 街道, 3 区 (at most 3).
* Roles: dispatcher, admin, leader (a leader's 督办 is the usual one; it writes nothing but the record).
* Reopen (返工): ``resolved`` or ``closed`` → ``dispatched`` (same assignee), a reason required;
  ``reopen_count`` + 1; the resolution and closing times are cleared.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from geo.api.core.security import Principal
from geo.api.errors import APIError
from geo.api.services import audit
from geo.api.services import events as ev_svc
from geo.api.services.scope import field_error

LEVEL_NAMES = {1: "社区", 2: "街道", 3: "区"}
OPEN = ev_svc.OPEN_STATES


def _disputed(conn: Connection, ev) -> bool:
    if ev["reopen_count"] > 0 or (ev["satisfaction"] is not None and ev["satisfaction"] <= 2):
        return True
    return bool(conn.execute(text("""
        SELECT EXISTS (SELECT 1 FROM event_transitions WHERE event_id = :e AND to_state = 'returned')
            OR EXISTS (SELECT 1 FROM work_orders WHERE event_id = :e AND callback_satisfaction <= 2)
    """), {"e": ev["id"]}).scalar())


def supervision_json(r) -> dict:
    return {"id": r["id"], "event_id": r["event_id"], "level": r["level"], "level_name": LEVEL_NAMES[r["level"]],
            "kind": r["kind"], "reason": r["reason"], "by": r["actor"], "at": r["at"].isoformat()}


def supervise(conn: Connection, p: Principal, eid: int, *, kind: str, reason: str | None) -> dict:
    """Record one 督办 (raises 403/409/422 per the module rules)."""
    ev = ev_svc.get_event(conn, eid, p, lock=True)
    if kind == "overdue":
        if not ev["overdue"]:
            raise APIError(409, "not_supervisable", f"事件 {eid} 未超期（期限 {ev['due_at']:%Y-%m-%d %H:%M}），不能按超期督办",
                           details=[{"field": "kind", "label": "督办类型", "message": "事件未超期"}])
    else:
        if not (reason or "").strip():
            raise field_error("reason", "原因", "争议督办须填写原因")
        if not _disputed(conn, ev):
            raise APIError(409, "not_supervisable", f"事件 {eid} 没有退回、返工或差评记录，不属于争议事件",
                           details=[{"field": "kind", "label": "督办类型", "message": "不是争议事件"}])
    n = conn.execute(text("SELECT count(*) FROM event_supervisions WHERE event_id = :e"), {"e": eid}).scalar_one()
    level = min(3, n + 1)
    r = conn.execute(text("""
        INSERT INTO event_supervisions (event_id, event_created_at, level, kind, reason, jurisdiction_id, actor)
        VALUES (:e, :ec, :l, :k, :r, :j, :a) RETURNING *
    """), {"e": eid, "ec": ev["created_at"], "l": level, "k": kind, "r": (reason or "").strip() or None, "j": ev["jurisdiction_id"],
           "a": p.actor}).mappings().one()
    conn.execute(text("UPDATE events SET updated_at = now() WHERE id = :e"), {"e": eid})
    conn.execute(text("INSERT INTO event_transitions (event_id, event_created_at, from_state, to_state, actor, note) "
                      "VALUES (:e, :ec, :s, :s, :a, :n)"),
                 {"e": eid, "ec": ev["created_at"], "s": ev["state"], "a": p.actor,
                  "n": f"督办（{LEVEL_NAMES[level]}级，{'超期' if kind == 'overdue' else '争议'}）" + (f"：{reason}" if reason else "")})
    audit.record(conn, p, "event.supervise", "events", eid, jurisdiction_id=ev["jurisdiction_id"],
                 detail={"kind": kind, "level": level, "reason": reason})
    return supervision_json(r)


def supervisions(conn: Connection, eid: int) -> list[dict]:
    rows = conn.execute(text("SELECT * FROM event_supervisions WHERE event_id = :e ORDER BY at, id"),
                        {"e": eid}).mappings().all()
    return [supervision_json(r) for r in rows]


def reopen(conn: Connection, p: Principal, eid: int, *, reason: str) -> dict:
    """Reopen a resolved/closed event (返工); see the module rules."""
    if not (reason or "").strip():
        raise field_error("reason", "原因", "重新打开（返工）须填写原因")
    ev = ev_svc.get_event(conn, eid, p, lock=True)
    if ev["state"] not in ("resolved", "closed"):
        raise APIError(409, "invalid_transition", f"事件 {eid} 当前为 {ev['state']}，只有已办结或已结案的事件可以重新打开",
                       details=[{"field": "state", "label": "状态", "message": "须为 resolved 或 closed"}],
                       extra={"state": ev["state"]})
    conn.execute(text("""
        UPDATE events SET state = 'dispatched', updated_at = now(), resolved_at = NULL, closed_at = NULL,
            dispatched_at = now(), reopen_count = reopen_count + 1 WHERE id = :e
    """), {"e": eid})
    conn.execute(text("INSERT INTO event_transitions (event_id, event_created_at, from_state, to_state, actor, note) "
                      "VALUES (:e, :ec, :f, 'dispatched', :a, :n)"),
                 {"e": eid, "ec": ev["created_at"], "f": ev["state"], "a": p.actor, "n": f"重新打开（返工）：{reason.strip()}"})
    audit.record(conn, p, "event.reopen", "events", eid, jurisdiction_id=ev["jurisdiction_id"],
                 detail={"from": ev["state"], "reason": reason})
    return ev_svc.get_event(conn, eid, p)
