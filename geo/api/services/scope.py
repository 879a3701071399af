"""Scope rule of the dispatch routes: an object outside the caller's jurisdiction subtree is *not found*.

Answering 404 (not 403) keeps a sibling street from learning which ids, order numbers or grid codes exist
elsewhere; the refusal is still audited.
"""

from __future__ import annotations

from geo.api.core.security import Principal
from geo.api.errors import APIError
from geo.api.services import audit


def hide_outside(engine, p: Principal, path: str | None, action: str, entity: str, entity_id, label: str,
                 jurisdiction_id: int | None = None) -> None:
    """Raise 404 (audited as denied) unless *path* lies inside the caller's subtree.

    Parameters
    ----------
    path : str or None
        The object's jurisdiction path ('/1/5/23/').
    label : str
        The object's name for the message, in Chinese (e.g. '工单').
    """
    if not p.covers(path):
        audit.record_denied(engine, p, action, entity, entity_id, jurisdiction_id=jurisdiction_id,
                            reason="outside the caller's jurisdiction (answered 404)")
        raise APIError(404, "not_found", f"{label} {entity_id} 不存在（或不在您的辖区内）")


def field_error(field: str, label: str, message: str, status: int = 422, code: str = "validation_error",
                **extra) -> APIError:
    """A 4xx naming the field and its Chinese label, e.g. ``field_error('address', '地址', '找不到该地址')``."""
    return APIError(status, code, f"{label}：{message}", details=[{"field": field, "label": label,
                                                                    "message": message}], extra=extra or None)


def grid_scope(state, code: str) -> tuple[str | None, int | None]:
    """(jurisdiction path, id) of a published grid — its community's, else its plan's jurisdiction's — or
    (None, None) when the code is not in a published plan."""
    from sqlalchemy import text

    idx = state.holder.index
    i = idx.by_code.get(code)
    if i is None:
        return None, None
    g = idx.info[i]
    jcode = (g.community or {}).get("code") or g.jurisdiction_code
    with state.engine.connect() as conn:
        r = conn.execute(text("SELECT path, id FROM jurisdictions WHERE code = :c"), {"c": jcode}).first()
    return (r.path, r.id) if r else (None, None)


ROLE_NAMES = {"admin": "管理员", "planner": "规划员", "dispatcher": "调度员", "worker": "网格员", "leader": "领导"}


def require_roles(engine, p: Principal, roles, action: str, what: str) -> None:
    """403 (audited as denied) unless the caller's role is in *roles*; *what* names the action in Chinese."""
    if p.role not in roles:
        need = "、".join(ROLE_NAMES.get(r, r) for r in sorted(roles))
        audit.record_denied(engine, p, action, action.split(".")[0], None, reason=f"role {p.role}")
        raise APIError(403, "forbidden", f"{ROLE_NAMES.get(p.role, p.role)}（{p.role}）不能{what}（需要：{need}）")


def check_day(day) -> None:
    """422 for a day outside 2000–2100 (a typo, and beyond what the calendar and timestamps cover)."""
    from datetime import date

    if not date(2000, 1, 1) <= day <= date(2100, 12, 31):
        raise field_error("day", "日期", f"须在 2000-01-01 至 2100-12-31 之间（收到 {day.isoformat()}）")
