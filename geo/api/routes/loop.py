"""The closed loop's extra steps: 督办, reopen (返工), and the working-day calendar.

Access: 督办 — leader, dispatcher, admin; reopen — dispatcher, admin; calendar read — every role,
calendar edit — admin. Events outside the caller's subtree are 404.
"""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import text

from geo.api.core.responses import JSON
from geo.api.core.security import Principal
from geo.api.deps import AppState, authorize, get_state, require
from geo.api.errors import APIError
from geo.api.schemas import CalendarDayIn, ReopenIn, SuperviseIn
from geo.api.services import audit
from geo.api.services import events as ev_svc
from geo.api.services import hotline
from geo.api.services import supervision as svc
from geo.api.services.scope import field_error
from geo.api.services.workcal import calendar_of, invalidate

router = APIRouter(prefix="/v1", tags=["closed loop"])


def _root_path(state: AppState) -> str | None:
    """The path of the top of the jurisdiction tree (the calendar is the whole deployment's)."""
    with state.engine.connect() as conn:
        return conn.execute(text("SELECT path FROM jurisdictions WHERE parent_id IS NULL ORDER BY id LIMIT 1")).scalar()


def _event_in_scope(state: AppState, p: Principal, eid: int, kind: str, write: bool = False) -> None:
    """The policy on the event named in the URL: 404 outside the subtree (existing or not)."""
    with state.engine.connect() as conn:
        r = conn.execute(text("SELECT jurisdiction_path, jurisdiction_id FROM events WHERE id = :e"), {"e": eid}).first()
    authorize(state, p, kind, r.jurisdiction_path if r else None, entity_id=eid,
              jurisdiction_id=r.jurisdiction_id if r else None, write=write)


@router.post("/events/{event_id}/supervise", status_code=201, summary="督办 an overdue or disputed event (escalates)")
def supervise(request: Request, event_id: int, body: SuperviseIn,
              p: Principal = Depends(require("event.supervise"))):
    state = get_state(request)
    _event_in_scope(state, p, event_id, "supervision", write=True)
    with state.engine.begin() as conn:
        out = svc.supervise(conn, p, event_id, kind=body.kind, reason=body.reason)
    return JSON(out, status_code=201)


@router.get("/events/{event_id}/supervisions", summary="督办 records of an event, oldest first")
def list_supervisions(request: Request, event_id: int, p: Principal = Depends(require("read"))):
    state = get_state(request)
    _event_in_scope(state, p, event_id, "supervision")
    with state.engine.connect() as conn:
        return svc.supervisions(conn, event_id)


@router.post("/events/{event_id}/reopen", summary="Reopen a resolved or closed event (返工; reason required)")
def reopen(request: Request, event_id: int, body: ReopenIn, p: Principal = Depends(require("event.reopen"))):
    state = get_state(request)
    _event_in_scope(state, p, event_id, "event_reopen", write=True)
    with state.engine.begin() as conn:
        ev = svc.reopen(conn, p, event_id, reason=body.reason)
        hotline.event_moved(conn, event_id, reason=body.reason, kind="order.reopened")  # status back to 12345
    return ev_svc.event_json(ev, p)


@router.get("/calendar", summary="Working-day calendar: holidays, make-up workdays (调休上班), working hours")
def calendar(request: Request, from_: date = Query(..., alias="from"), to: date = Query(...),
             p: Principal = Depends(require("read"))):
    if to < from_ or (to - from_) > timedelta(days=400):
        raise field_error("to", "结束时间", "须不早于开始日期，且跨度不超过 400 天")
    if from_.year < 1900 or to.year > 2200:
        raise field_error("from", "开始时间", "须在 1900–2200 年之间")
    state = get_state(request)
    authorize(state, p, "calendar_day", None)  # public: every reader, the city's one calendar
    cal = calendar_of(state)
    return {"work_hours": state.catalogue.work_hours, "timezone": state.settings.timezone,
            "days": [{"date": d.day.isoformat(), "workday": d.workday, "kind": d.kind, "name": d.name}
                     for d in cal.days(from_, to)]}


@router.put("/calendar/{day}", summary="Set one day as a workday or a day off (the city's edit; admin)")
def set_day(request: Request, body: CalendarDayIn, day: date = Path(...),
            p: Principal = Depends(require("calendar.write"))):
    state = get_state(request)
    # one calendar for the whole deployment: only an admin of the root (no parent) jurisdiction changes it
    authorize(state, p, "calendar_day", _root_path(state), entity_id=day.isoformat(), write=True)
    weekday = day.weekday() < 5
    kind = ("workday" if weekday else "makeup_workday") if body.workday else ("weekend" if not weekday else "holiday")
    with state.engine.begin() as conn:
        if body.workday == weekday and not body.name:  # back to the weekday rule
            conn.execute(text("DELETE FROM work_calendar WHERE day = :d"), {"d": day})
        else:
            conn.execute(text("""
                INSERT INTO work_calendar (day, workday, kind, name, updated_at, updated_by)
                VALUES (:d, :w, :k, :n, now(), :a)
                ON CONFLICT (day) DO UPDATE SET workday = :w, kind = :k, name = :n, updated_at = now(), updated_by = :a
            """), {"d": day, "w": body.workday, "k": kind, "n": body.name, "a": p.actor})
        audit.record(conn, p, "calendar.set", "work_calendar", day.isoformat(),
                     detail={"workday": body.workday, "name": body.name})
    invalidate(state)
    return {"date": day.isoformat(), "workday": body.workday, "kind": kind, "name": body.name}
