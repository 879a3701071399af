"""考评 KPIs as the 数字城管 standards define them — one SQL definition used by the KPI and ranking routes.

Over events created in the window (with the caller's filters):

* 应结案 ``due``: filed (受理/立案: accepted at some point), not rejected, and either closed or past their
  deadline by the end of the window (or now, whichever is earlier);
* 结案 ``closed``: of those, closed; 按期结案 ``closed_on_time``: closed by the deadline;
* 结案率 = closed / due; 按期结案率 = closed_on_time / due (over 应结案, not over 立案);
* 派遣准确率 = dispatched events never returned (退回) / dispatched events;
* 返工率 = closed events reopened at least once / closed events;
* 满意率 = ratings ≥ 4 / ratings, counting the event's rating and every 12345 回访 of its orders;
* ranking ``score`` = 60·按期结案率 + 20·(1 − 返工率) + 20·满意率 (a missing rate counts as 0 / 1 / 0).
"""

from __future__ import annotations

EVAL_SQL = """
    count(*) FILTER (WHERE e.accepted_at IS NOT NULL AND e.state <> 'rejected'
                     AND (e.state = 'closed' OR e.due_at <= least(CAST(:t AS timestamptz), now()))) AS due,
    count(*) FILTER (WHERE e.accepted_at IS NOT NULL AND e.state = 'closed') AS closed,
    count(*) FILTER (WHERE e.accepted_at IS NOT NULL AND e.state = 'closed' AND e.closed_at <= e.due_at)
        AS closed_on_time,
    count(*) FILTER (WHERE e.dispatched_at IS NOT NULL) AS dispatched,
    count(*) FILTER (WHERE e.dispatched_at IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM event_transitions t WHERE t.event_id = e.id AND t.to_state = 'returned')) AS dispatched_right,
    count(*) FILTER (WHERE e.state = 'closed' AND e.reopen_count > 0) AS reworked,
    (count(*) FILTER (WHERE e.satisfaction >= 4)
     + coalesce(sum((SELECT count(*) FROM work_orders wo WHERE wo.event_id = e.id
                     AND wo.callback_satisfaction >= 4)), 0))::int AS satisfied,
    (count(e.satisfaction)
     + coalesce(sum((SELECT count(*) FROM work_orders wo WHERE wo.event_id = e.id
                     AND wo.callback_satisfaction IS NOT NULL)), 0))::int AS ratings
"""


def _ratio(a, b):
    return round(a / b, 4) if b else None


def evaluation(r) -> dict:
    """The rates from one row of :data:`EVAL_SQL`."""
    out = {k: int(r[k]) for k in ("due", "closed", "closed_on_time", "dispatched", "reworked", "ratings")}
    out.update(closing_rate=_ratio(r["closed"], r["due"]), on_time_closing_rate=_ratio(r["closed_on_time"], r["due"]),
               dispatch_accuracy=_ratio(r["dispatched_right"], r["dispatched"]),
               rework_rate=_ratio(r["reworked"], r["closed"]), satisfaction_rate=_ratio(r["satisfied"], r["ratings"]))
    return out


def score(ev: dict) -> float:
    """The ranking score of an :func:`evaluation` (0–100)."""
    on_time = ev["on_time_closing_rate"] or 0.0
    rework = ev["rework_rate"] if ev["rework_rate"] is not None else 0.0
    sat = ev["satisfaction_rate"] or 0.0
    return round(60 * on_time + 20 * (1 - rework) + 20 * sat, 2)


def filters(category: str | None, subtype: str | None, params: dict, alias: str = "e") -> str:
    """SQL conditions for the category/subtype filters (adds their parameters to *params*)."""
    out = ""
    if category:
        out += f" AND {alias}.category = :cat"
        params["cat"] = category
    if subtype:
        out += f" AND {alias}.subtype = :sub"
        params["sub"] = subtype
    return out
