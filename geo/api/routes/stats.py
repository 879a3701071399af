"""KPIs, H3 heatmaps, trends and top grids — aggregated in SQL, never by shipping raw events.

KPI definitions (events created in [from, to), the caller's jurisdiction):

* ``report_coverage``: share of the published grids with at least one event
* ``dispatch_rate``: dispatched (ever) / events not rejected
* ``resolution_rate``: resolved or closed / events not rejected
* ``on_time_rate``: resolved by their SLA deadline / resolved
* ``satisfaction``: mean resident rating (1–5) of closed events; ``satisfied_share``: rating ≥ 4
* ``overdue``: open events past their deadline now
* ``events_today`` and the trend's days are calendar days in ``GEO_TZ`` (default Asia/Shanghai)
* ``evaluation``: 结案率, 按期结案率 over 应结案, 派遣准确率, 返工率, 满意率 (:mod:`geo.api.services.evaluation`)
* ``grids`` (综合 = standard + rural, 专属 = exclusive), ``workers`` online of total, ``counts`` by stage

Every route takes ``category`` and ``subtype`` filters; the KPI route also ``from``/``to``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import text

from geo.api.core.security import Principal
from geo.api.deps import get_state, require
from geo.api.errors import APIError
from geo.api.schemas import Moment
from geo.api.services.events import cell_hex

router = APIRouter(prefix="/v1/stats", tags=["stats"])

LEVEL_DEPTH = {"district": 2, "street": 3, "community": 4}


def _window(from_: datetime | None, to: datetime | None, default_days: int = 30):
    now = datetime.now(timezone.utc)
    to = to or now
    from_ = from_ or (to - timedelta(days=default_days))
    if to.tzinfo is None:
        to = to.replace(tzinfo=timezone.utc)
    if from_.tzinfo is None:
        from_ = from_.replace(tzinfo=timezone.utc)
    if from_ >= to:
        raise APIError(422, "validation_error", "'from' must be before 'to'",
                       details=[{"field": "from", "message": "not before 'to'"}])
    return from_, to


KPI_SQL = """
    count(*) AS events,
    count(*) FILTER (WHERE e.created_at >= date_trunc('day', now(), :tz)) AS events_today,
    count(*) FILTER (WHERE e.state <> 'rejected') AS not_rejected,
    count(*) FILTER (WHERE e.dispatched_at IS NOT NULL AND e.state <> 'rejected') AS dispatched,
    count(*) FILTER (WHERE e.state IN ('resolved', 'closed')) AS resolved,
    count(*) FILTER (WHERE e.resolved_at IS NOT NULL) AS resolved_ever,
    count(*) FILTER (WHERE e.resolved_at IS NOT NULL AND e.resolved_at <= e.due_at) AS on_time,
    avg(e.satisfaction)::float AS satisfaction,
    count(e.satisfaction) AS rated,
    count(*) FILTER (WHERE e.satisfaction >= 4) AS satisfied,
    count(*) FILTER (WHERE e.state NOT IN ('resolved', 'closed', 'rejected') AND e.due_at < now()) AS overdue,
    count(DISTINCT e.grid_code) AS grids_with_reports
"""


def _ratio(a, b):
    return round(a / b, 4) if b else None


def _kpi(r, grids_total: int | None) -> dict:
    return {
        "events": r["events"], "events_today": r["events_today"], "overdue": r["overdue"],
        "dispatch_rate": _ratio(r["dispatched"], r["not_rejected"]),
        "resolution_rate": _ratio(r["resolved"], r["not_rejected"]),
        "on_time_rate": _ratio(r["on_time"], r["resolved_ever"]),
        "satisfaction": round(r["satisfaction"], 3) if r["satisfaction"] is not None else None,
        "satisfied_share": _ratio(r["satisfied"], r["rated"]),
        "grids_with_reports": r["grids_with_reports"], "grids_total": grids_total,
        "report_coverage": _ratio(r["grids_with_reports"], grids_total),
    }


@router.get("/kpis", summary="KPIs for the caller's jurisdiction, or grouped per grid/community/street/district")
def kpis(request: Request, by: Literal["all", "grid", "community", "street", "district"] = "all",
         from_: Moment | None = Query(None, alias="from"), to: Moment | None = None,
         category: str | None = Query(None, max_length=40), subtype: str | None = Query(None, max_length=60),
         p: Principal = Depends(require("read"))):
    from geo.api.services import evaluation

    st = get_state(request)
    f, t = _window(from_, to)
    params = {"path": p.jurisdiction_path, "f": f, "t": t, "plans": list(st.holder.index.plan_ids),
              "tz": st.settings.timezone}
    base = ("FROM events e WHERE e.jurisdiction_path LIKE :path || '%' AND e.created_at >= :f AND e.created_at < :t"
            + evaluation.filters(category, subtype, params))
    with st.engine.connect() as conn:
        kinds = dict(conn.execute(text("""
            SELECT g.kind, count(*) FROM grids g JOIN grid_plans gp ON gp.id = g.plan_id
            JOIN jurisdictions j ON j.id = gp.jurisdiction_id
            LEFT JOIN jurisdictions c ON c.code = g.community_code
            WHERE g.plan_id = ANY(:plans) AND coalesce(c.path, j.path) LIKE :path || '%' GROUP BY 1
        """), params).all())
        grids_total = sum(kinds.values())
        workers_on_duty, workers_total = conn.execute(text("""
            SELECT count(*) FILTER (WHERE w.on_duty), count(*) FROM workers w
            JOIN jurisdictions j ON j.id = w.jurisdiction_id WHERE j.path LIKE :path || '%'
        """), params).one()
        if by == "all":
            r = conn.execute(text(f"""SELECT {KPI_SQL}, {evaluation.EVAL_SQL},
                count(*) FILTER (WHERE e.state IN ('reported', 'accepted')) AS n_reported,
                count(*) FILTER (WHERE e.state IN ('dispatched', 'in_progress', 'returned')) AS n_in_progress,
                count(*) FILTER (WHERE e.state = 'resolved') AS n_resolved,
                count(*) FILTER (WHERE e.state = 'closed') AS n_closed {base}"""), params).mappings().one()
            return {"from": f.isoformat(), "to": t.isoformat(), "category": category, "subtype": subtype,
                    "workers_on_duty": workers_on_duty, **_kpi(r, grids_total),
                    "grids": {"total": grids_total, "comprehensive": kinds.get("standard", 0) + kinds.get("rural", 0),
                              "standard": kinds.get("standard", 0), "rural": kinds.get("rural", 0),
                              "exclusive": kinds.get("exclusive", 0)},
                    "workers": {"online": workers_on_duty, "total": workers_total},
                    "counts": {"reported": r["n_reported"], "in_progress": r["n_in_progress"],
                               "resolved": r["n_resolved"], "closed": r["n_closed"]},
                    "evaluation": evaluation.evaluation(r)}
        if by == "grid":
            rows = conn.execute(text(f"SELECT e.grid_code AS key, {KPI_SQL} {base} GROUP BY 1 ORDER BY 2 DESC"),
                                params).mappings().all()
            groups = [{"grid_code": r["key"], **_kpi(r, 1)} for r in rows]
        else:
            depth = LEVEL_DEPTH[by]
            rows = conn.execute(text(f"""
                SELECT split_part(e.jurisdiction_path, '/', :d + 1)::int AS key, {KPI_SQL} {base}
                GROUP BY 1 ORDER BY 2 DESC
            """), params | {"d": depth}).mappings().all()
            names = dict(conn.execute(text("SELECT id, code || ' ' || name FROM jurisdictions")).all())
            groups = [{"jurisdiction": names.get(r["key"]), **_kpi(r, None)} for r in rows if r["key"]]
    return {"from": f.isoformat(), "to": t.isoformat(), "by": by, "groups": groups}


@router.get("/heatmap", summary="Event counts per H3 cell (resolution 7–10), aggregated in SQL")
def heatmap(request: Request, res: int = Query(9, ge=7, le=10), from_: Moment | None = Query(None, alias="from"),
            to: Moment | None = None, category: str | None = None, p: Principal = Depends(require("read"))):
    st = get_state(request)
    f, t = _window(from_, to, default_days=7)
    where = "e.jurisdiction_path LIKE :path || '%' AND e.created_at >= :f AND e.created_at < :t"
    params = {"path": p.jurisdiction_path, "f": f, "t": t}
    if category:
        where += " AND e.category = :c"
        params["c"] = category
    with st.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT h3_{res} AS cell, count(*) AS n FROM events e WHERE {where} "
                                 f"GROUP BY 1 ORDER BY 2 DESC"), params).all()
    cells = [{"cell": cell_hex(c), "count": n} for c, n in rows]
    return {"res": res, "from": f.isoformat(), "to": t.isoformat(), "category": category,
            "total": sum(c["count"] for c in cells), "cells": cells}


@router.get("/trend", summary="Events per day (created, resolved)")
def trend(request: Request, days: int = Query(30, ge=1, le=366), category: str | None = None,
          subtype: str | None = None, p: Principal = Depends(require("read"))):
    st = get_state(request)
    params = {"path": p.jurisdiction_path, "days": days, "c": category, "s": subtype, "tz": st.settings.timezone}
    with st.engine.connect() as conn:  # one pass per measure, grouped by day (not a scan per day)
        rows = conn.execute(text("""
            WITH d AS (SELECT generate_series(date_trunc('day', now(), :tz) - make_interval(days => :days - 1),
                                              date_trunc('day', now(), :tz), interval '1 day') AS day),
            c AS (SELECT date_trunc('day', created_at, :tz) AS day, count(*) AS n FROM events
                  WHERE jurisdiction_path LIKE :path || '%' AND (CAST(:c AS text) IS NULL OR category = :c)
                    AND (CAST(:s AS text) IS NULL OR subtype = :s) AND created_at >= (SELECT min(day) FROM d) GROUP BY 1),
            r AS (SELECT date_trunc('day', resolved_at, :tz) AS day, count(*) AS n FROM events
                  WHERE jurisdiction_path LIKE :path || '%' AND (CAST(:c AS text) IS NULL OR category = :c)
                    AND (CAST(:s AS text) IS NULL OR subtype = :s) AND resolved_at >= (SELECT min(day) FROM d) GROUP BY 1)
            SELECT d.day, coalesce(c.n, 0) AS created, coalesce(r.n, 0) AS resolved
            FROM d LEFT JOIN c ON c.day = d.day LEFT JOIN r ON r.day = d.day ORDER BY d.day
        """), params).all()
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(st.settings.timezone)
    return [{"day": r.day.astimezone(tz).date().isoformat(), "created": r.created, "resolved": r.resolved} for r in rows]


@router.get("/top-grids", summary="Grids with the most events (and open events) in a window")
def top_grids(request: Request, n: int = Query(10, ge=1, le=100), from_: Moment | None = Query(None, alias="from"),
              to: Moment | None = None, p: Principal = Depends(require("read"))):
    st = get_state(request)
    f, t = _window(from_, to, default_days=7)
    idx = st.holder.index
    with st.engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT grid_code, count(*) AS events,
                   count(*) FILTER (WHERE state NOT IN ('resolved', 'closed', 'rejected')) AS open
            FROM events WHERE jurisdiction_path LIKE :path || '%' AND created_at >= :f AND created_at < :t
            GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT :n
        """), {"path": p.jurisdiction_path, "f": f, "t": t, "n": n}).all()
    return [{"grid_code": r.grid_code, "name": idx.info[idx.by_code[r.grid_code]].name if r.grid_code in idx.by_code
             else None, "events": r.events, "open": r.open} for r in rows]


@router.get("/open-by-grid", summary="Open events per grid (for colouring grid outlines)")
def open_by_grid(request: Request, p: Principal = Depends(require("read"))):
    st = get_state(request)
    with st.engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT grid_code, count(*) FROM events
            WHERE jurisdiction_path LIKE :path || '%' AND state NOT IN ('resolved', 'closed', 'rejected')
            GROUP BY 1
        """), {"path": p.jurisdiction_path}).all()
    return {r[0]: r[1] for r in rows}
