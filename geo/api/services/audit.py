"""The audit trail: every write and every refusal, with who, when and the request id."""

from __future__ import annotations

import json

from sqlalchemy import Connection, Engine, text

from geo.api.core.context import request_id
from geo.api.core.security import Principal

_SQL = text("""
    INSERT INTO audit_log (actor, action, entity, entity_id, outcome, jurisdiction_id, request_id, detail)
    VALUES (:actor, :action, :entity, :entity_id, :outcome, :jid, :rid, CAST(:detail AS jsonb))
""")


def record(conn: Connection, actor: Principal | str, action: str, entity: str, entity_id=None, *,
           outcome: str = "ok", jurisdiction_id: int | None = None, detail: dict | None = None) -> None:
    """Add an audit row inside the caller's transaction."""
    name = actor.actor if isinstance(actor, Principal) else actor
    conn.execute(_SQL, {"actor": name, "action": action, "entity": entity,
                        "entity_id": None if entity_id is None else str(entity_id), "outcome": outcome,
                        "jid": jurisdiction_id, "rid": request_id.get(),
                        "detail": json.dumps(detail or {}, ensure_ascii=False, default=str)})


def record_denied(engine: Engine, actor: Principal | str, action: str, entity: str, entity_id=None, *,
                  jurisdiction_id: int | None = None, reason: str = "") -> None:
    """Audit a refusal in its own transaction (the refused change itself never happens)."""
    with engine.begin() as conn:
        record(conn, actor, action, entity, entity_id, outcome="denied", jurisdiction_id=jurisdiction_id,
               detail={"reason": reason})
