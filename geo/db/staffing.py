"""Staff across re-draws: every grid of a draft gets the staff of the published grid it shares most
residents with (not area), grids left without a chief are listed, and publishing a plan with such grids
needs an explicit override with a reason (audited).

Residents are matched point by point: each population unit (its point on surface) is located in the draft
and in the published plan (first grid by code on a shared edge, the lookup's tie rule); the pair with the
most people decides a draft grid's predecessor. Only a grid where nobody lives falls back to the published
grid it overlaps most by area.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from geo.db import plans as db_plans
from geo.db.counting import population_dataset


class StaffingRefused(RuntimeError):
    """Publishing would leave grids without a chief and no override (with a reason) was given."""

    def __init__(self, message: str, without_chief: list[dict]):
        super().__init__(message)
        self.without_chief = without_chief


def proposal(engine: Engine, plan_id: int) -> dict:
    """Proposed staff of every grid of *plan_id*, carried from the published plan by residents.

    Returns
    -------
    dict
        ``published_plan_id``; ``grids``: ``[{code, name, people, source_code, shared_residents, staff:
        [{id, name, role, on_duty}], has_chief}]``; ``without_chief``: the grids with no chief.
    """
    with engine.connect() as conn:
        plan = conn.execute(text("SELECT id, jurisdiction_id, status, params FROM grid_plans WHERE id = :p"),
                            {"p": plan_id}).mappings().first()
        if plan is None:
            raise LookupError(f"plan {plan_id} not found")
        pub = conn.execute(text("SELECT id FROM grid_plans WHERE jurisdiction_id = :j AND status = 'published'"),
                           {"j": plan["jurisdiction_id"]}).scalar()
        ds = population_dataset(conn, plan["jurisdiction_id"], (plan["params"] or {}).get("population_dataset"))
        grids = conn.execute(text("SELECT code, name, kind, population, props FROM grids WHERE plan_id = :p "
                                  "ORDER BY code"), {"p": plan_id}).mappings().all()
        pairs = {}
        if pub is not None and ds is not None:
            rows = conn.execute(text("""
                WITH u AS (
                    SELECT u.people, ST_PointOnSurface(u.geom) AS pt FROM population_units u, jurisdictions j
                    WHERE j.id = :j AND u.dataset = :ds AND ST_Intersects(u.geom, j.geom)
                ), o AS (
                    SELECT u.people,
                        (SELECT g.code FROM grids g WHERE g.plan_id = :d AND ST_Covers(g.geom, u.pt)
                         ORDER BY g.code LIMIT 1) AS dc,
                        (SELECT g.code FROM grids g WHERE g.plan_id = :p AND ST_Covers(g.geom, u.pt)
                         ORDER BY g.code LIMIT 1) AS pc
                    FROM u
                )
                SELECT dc, pc, sum(people) AS n FROM o WHERE dc IS NOT NULL AND pc IS NOT NULL
                GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2
            """), {"j": plan["jurisdiction_id"], "ds": ds, "d": plan_id, "p": pub}).all()
            for dc, pc, n in rows:
                pairs.setdefault(dc, (pc, int(n)))  # first row per draft grid: most residents shared
        if pub is not None:  # a grid nobody lives in: the published grid it overlaps most (by area)
            for dc, pc in conn.execute(text("""
                SELECT DISTINCT ON (d.code) d.code, p.code FROM grids d JOIN grids p
                    ON p.plan_id = :p AND ST_Intersects(d.geom, p.geom)
                WHERE d.plan_id = :d AND NOT (d.code = ANY(:known))
                ORDER BY d.code, ST_Area(ST_Intersection(d.geom, p.geom)) DESC, p.code
            """), {"p": pub, "d": plan_id, "known": list(pairs)}).all():
                pairs[dc] = (pc, 0)
        staff = _staff_of(conn, sorted({pc for pc, _ in pairs.values()} | {g["code"] for g in grids}))
    out = []
    for g in grids:
        src, shared = pairs.get(g["code"], (None, 0))
        if pub is None or plan["status"] == "published":
            src = g["code"]  # the plan in force: its own staff
        carried = staff.get(src, []) if src else []
        props = g["props"] or {}
        out.append({"code": g["code"], "name": g["name"], "kind": g["kind"], "people": g["population"],
                    "source_code": src, "shared_residents": shared, "staff": carried,
                    "has_chief": any(s["role"] == "chief" for s in carried),
                    "file_chief": props.get("chief")})
    return {"plan_id": plan_id, "published_plan_id": pub, "grids": out,
            "without_chief": [{"code": g["code"], "name": g["name"], "people": g["people"],
                               "source_code": g["source_code"], "file_chief": g["file_chief"]}
                              for g in out if not g["has_chief"]]}


def _staff_of(conn: Connection, codes: list[str]) -> dict[str, list[dict]]:
    rows = conn.execute(text("""
        SELECT wg.grid_code, w.id, w.name, w.role, w.on_duty FROM worker_grids wg JOIN workers w ON w.id = wg.worker_id
        WHERE wg.grid_code = ANY(:c) ORDER BY wg.grid_code, w.role = 'chief' DESC, w.id
    """), {"c": codes}).all()
    out: dict[str, list[dict]] = {}
    for code, wid, name, role, duty in rows:
        out.setdefault(code, []).append({"id": wid, "name": name, "role": role, "on_duty": duty})
    return out


def publish_staffed(engine: Engine, plan_id: int, actor: str, *, override_unstaffed: bool = False,
                    reason: str | None = None, switch_in: float = 0.0, rollback: bool = False) -> dict:
    """Publish (or roll back to) a plan with its proposed staff; the one rule for unstaffed grids.

    The proposal's staff replace, in the publishing transaction, every assignment to the new plan's codes and
    to the retired plan's codes.

    Raises
    ------
    StaffingRefused
        Grids without a chief and no ``override_unstaffed`` with a non-empty ``reason``.
    geo.db.plans.PlanError
        Wrong plan state.
    """
    prop = proposal(engine, plan_id)
    missing = prop["without_chief"]
    reason = (reason or "").strip()
    if missing and not (override_unstaffed and reason):
        raise StaffingRefused(
            f"{len(missing)} grid(s) of plan {plan_id} would have no chief (网格长): "
            + ", ".join(m["code"] for m in missing[:10]) + (" …" if len(missing) > 10 else "")
            + "; assign staff first, or publish with override_unstaffed and a reason", missing)
    links = [(s["id"], g["code"]) for g in prop["grids"] for s in g["staff"]]
    new_codes = [g["code"] for g in prop["grids"]]

    def carry(conn: Connection) -> None:
        old = prop["published_plan_id"]
        # staff follow residents, not codes: a code kept by another area must not keep the old staff
        conn.execute(text("""
            DELETE FROM worker_grids wg
            WHERE wg.grid_code = ANY(:new) OR wg.grid_code IN (SELECT code FROM grids WHERE plan_id = :old)
        """), {"old": old if old is not None else -1, "new": new_codes})
        for wid, code in links:
            conn.execute(text("INSERT INTO worker_grids (worker_id, grid_code) VALUES (:w, :c) "
                              "ON CONFLICT DO NOTHING"), {"w": wid, "c": code})

    detail = {"staff_links": len(links), "without_chief": [m["code"] for m in missing]}
    if reason:  # why (an override's, or a rollback's): in the audit row and the publication log
        detail["reason"] = reason
    if missing:
        detail["override_unstaffed"] = True
    return db_plans.publish(engine, plan_id, actor, switch_in=switch_in, rollback=rollback, detail=detail,
                            before_commit=carry) | {"without_chief": missing, "staff_links": len(links)}

