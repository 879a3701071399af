"""The audit trail: every write and every refusal, with who, when and the request id.

This is the only place that writes ``audit_log`` rows; the db layer (loads, plans, seeding, users) and the
API both call :func:`record`.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, Engine, text

# the id of the HTTP request being served (set by the API's request-context middleware; None outside requests)
from geo.context import request_id

_SQL = text("""
    INSERT INTO audit_log (actor, action, entity, entity_id, outcome, jurisdiction_id, request_id, detail)
    VALUES (:actor, :action, :entity, :entity_id, :outcome, :jid, :rid, CAST(:detail AS jsonb))
""")


def actor_name(actor) -> str:
    """``user:NAME`` / ``key:NAME`` for a principal (anything with an ``actor`` attribute), else ``str(actor)``."""
    return getattr(actor, "actor", None) or str(actor)


def record(conn: Connection, actor, action: str, entity: str, entity_id=None, *, outcome: str = "ok",
           jurisdiction_id: int | None = None, detail: dict | None = None) -> None:
    """Add an audit row inside the caller's transaction.

    Parameters
    ----------
    conn : Connection
        An open transaction: the row commits (or rolls back) with the change it describes.
    actor : principal or str
        Who did it: a principal (its ``actor``) or a name such as ``cli:root``.
    action, entity, entity_id :
        What was done to which row (``worker.create``, ``workers``, 12).
    outcome : str
        ``ok`` or ``denied``.
    jurisdiction_id : int, optional
        The jurisdiction the object belongs to (for scoped audit reads).
    detail : dict, optional
        Extra JSON (non-JSON values are stringified).
    """
    conn.execute(_SQL, {"actor": actor_name(actor), "action": action, "entity": entity,
                        "entity_id": None if entity_id is None else str(entity_id), "outcome": outcome,
                        "jid": jurisdiction_id, "rid": request_id.get(),
                        "detail": json.dumps(detail or {}, ensure_ascii=False, default=str)})


def record_denied(engine: Engine, actor, action: str, entity: str, entity_id=None, *,
                  jurisdiction_id: int | None = None, reason: str = "") -> None:
    """Audit a refusal in its own transaction (the refused change itself never happens)."""
    with engine.begin() as conn:
        record(conn, actor, action, entity, entity_id, outcome="denied", jurisdiction_id=jurisdiction_id,
               detail={"reason": reason})
