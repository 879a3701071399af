"""Helpers of the dispatch routes that are not access rules: field errors with Chinese labels, the
jurisdiction a published grid belongs to, day bounds.

Who may see or change what is decided only by :mod:`geo.access.policy` (through ``geo.api.deps.authorize``).
"""

from __future__ import annotations

from geo.api.errors import APIError


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


def check_day(day) -> None:
    """422 for a day outside 2000–2100 (a typo, and beyond what the calendar and timestamps cover)."""
    from datetime import date

    if not date(2000, 1, 1) <= day <= date(2100, 12, 31):
        raise field_error("day", "日期", f"须在 2000-01-01 至 2100-12-31 之间（收到 {day.isoformat()}）")
