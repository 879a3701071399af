"""The shipped working-day calendar (``geo/data/calendar_cn.json``) into the ``work_calendar`` table."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, text

CALENDAR_FILE = Path(__file__).resolve().parents[1] / "data" / "calendar_cn.json"


def calendar_rows(path: Path = CALENDAR_FILE) -> list[dict]:
    """Rows of the calendar file: day, workday, kind, name (raises ValueError naming the file and entry)."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for i, d in enumerate(doc["days"]):
        try:
            out.append({"day": date.fromisoformat(d["date"]), "workday": bool(d["workday"]), "kind": d["kind"],
                        "name": d.get("name")})
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: days[{i}]: {exc}") from exc
    return out


def seed(conn: Connection, actor: str, path: Path = CALENDAR_FILE) -> int:
    """Insert the file's days that the table does not have yet (the city's own edits win); returns rows added."""
    n = 0
    for r in calendar_rows(path):
        n += conn.execute(text("""
            INSERT INTO work_calendar (day, workday, kind, name, updated_by) VALUES (:day, :workday, :kind, :name, :a)
            ON CONFLICT (day) DO NOTHING
        """), r | {"a": actor}).rowcount
    return n
