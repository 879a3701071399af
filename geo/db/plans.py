"""Grid plans in PostGIS: write a partition result as a draft, publish, retire, diff.

A plan is a *generation* (as in MapIt): publishing plan N retires the plan that
was published for the same jurisdiction, in one transaction; retired plans are
never deleted, so ``?at=DATE`` lookups and old events keep their grids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Connection, Engine, text

from geo.access import audit


class PlanError(RuntimeError):
    """A plan operation that cannot be done (unknown plan, wrong state …)."""


def _audit(conn: Connection, actor: str, action: str, entity: str, entity_id, jid=None, detail=None) -> None:
    audit.record(conn, actor, action, entity, entity_id, jurisdiction_id=jid, detail=detail)


def write_plan(
    engine: Engine,
    jurisdiction_code: str,
    grids: gpd.GeoDataFrame,
    *,
    actor: str,
    params: dict,
    quality: dict,
    name: str | None = None,
    kind: str = "engine",
    parent_id: int | None = None,
    edits: list | None = None,
) -> int:
    """Store *grids* (any CRS) as a new draft plan of the jurisdiction; returns the plan id.

    Parameters
    ----------
    grids : GeoDataFrame
        Columns ``code``, ``name``, ``kind``, ``people``; optional ``households``,
        ``level``, ``community``, ``parent_code``, ``flags``, ``props`` (dict).
    kind, parent_id, edits
        Where the plan came from (``engine``, ``imported``, ``edited``), the plan it was edited from and
        the list of hand edits (see :mod:`geo.db.edits`).
    """
    g = grids.to_crs(4326) if grids.crs is not None and grids.crs.to_epsg() != 4326 else grids
    geoms = node_shared_edges(np.asarray(g.geometry.values, dtype=object))
    geoms = np.array([shapely.MultiPolygon([x]) if x.geom_type == "Polygon" else x for x in geoms], dtype=object)
    wkb = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
    with engine.begin() as conn:
        jid = conn.execute(text("SELECT id FROM jurisdictions WHERE code = :c"), {"c": jurisdiction_code}).scalar()
        if jid is None:
            raise PlanError(f"jurisdiction {jurisdiction_code!r} not found; load its boundary first")
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('plan:' || :j))"), {"j": jid})
        version = conn.execute(text("SELECT coalesce(max(version), 0) + 1 FROM grid_plans WHERE jurisdiction_id = :j"),
                               {"j": jid}).scalar_one()
        plan_id = conn.execute(text("""
            INSERT INTO grid_plans (jurisdiction_id, version, status, name, params, quality, created_by,
                                    kind, parent_id, edits)
            VALUES (:j, :v, 'draft', :n, CAST(:p AS jsonb), CAST(:q AS jsonb), :a, :k, :par, CAST(:ed AS jsonb))
            RETURNING id
        """), {"j": jid, "v": version, "n": name or f"v{version}", "a": actor, "k": kind, "par": parent_id,
               "ed": json.dumps(edits or [], ensure_ascii=False, default=_json_default),
               "p": json.dumps(params, ensure_ascii=False, default=str),
               "q": json.dumps(quality, ensure_ascii=False, default=_json_default)}).scalar_one()
        comm = dict(conn.execute(text("SELECT code, id FROM jurisdictions WHERE level = 'community'")).all())
        cols = ["plan_id", "code", "name", "level", "kind", "parent_code", "population", "households",
                "community_id", "community_code", "flags", "props", "geom"]
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY grids ({', '.join(cols)}) FROM STDIN") as copy:
            get = g.get
            levels = get("level", [1] * len(g))
            parents = get("parent_code", [None] * len(g))
            hh = get("households", [0] * len(g))
            communities = get("community", [None] * len(g))
            flags = get("flags", [[] for _ in range(len(g))])
            props = get("props", [{} for _ in range(len(g))])
            for i, (code, nm, kind, people) in enumerate(zip(g["code"], g["name"], g["kind"], g["people"])):
                cc = communities.iloc[i] if hasattr(communities, "iloc") else communities[i]
                cc = cc if isinstance(cc, str) and cc else None
                fl = flags.iloc[i] if hasattr(flags, "iloc") else flags[i]
                pr = props.iloc[i] if hasattr(props, "iloc") else props[i]
                copy.write_row((plan_id, code, nm, int(_at(levels, i) or 1), kind, _at(parents, i) or None,
                                int(people), int(_at(hh, i) or 0), comm.get(cc), cc,
                                json.dumps(list(fl) if fl is not None else [], ensure_ascii=False),
                                json.dumps(pr if isinstance(pr, dict) else {}, ensure_ascii=False,
                                           default=_json_default), wkb[i]))
        _audit(conn, actor, "plan.create", "grid_plans", plan_id, jid,
               {"version": version, "grids": len(g), "jurisdiction": jurisdiction_code, "kind": kind,
                "parent_id": parent_id})
    return plan_id


def node_shared_edges(geoms: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Give every grid the vertices its neighbours have on their common boundary.

    Where one grid's vertex lies on the middle of a neighbour's edge (a T-junction), whether that point is
    "on" the neighbour depends on floating-point rounding, and GEOS (the API's index) and PostGIS's own
    point-in-polygon code can round differently. Inserting the vertex into the neighbour (snapping within
    *tol* degrees, ~0.1 mm) makes it a vertex of both, where every implementation agrees.
    """
    if len(geoms) < 2:
        return geoms
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")  # pairs sorted by a
    keep = a != b
    a, b = a[keep], b[keep]
    starts = np.searchsorted(a, np.arange(len(geoms) + 1))
    out = geoms.copy()
    for i in range(len(geoms)):
        nb = b[starts[i]:starts[i + 1]]
        if not len(nb):
            continue
        ref = shapely.multipoints(shapely.get_coordinates(shapely.boundary(geoms[nb])))
        snapped = shapely.snap(geoms[i], ref, tol)
        if shapely.is_valid(snapped) and abs(snapped.area - geoms[i].area) <= 1e-6 * geoms[i].area:
            out[i] = snapped
    return out


def _at(seq, i):
    v = seq.iloc[i] if hasattr(seq, "iloc") else seq[i]
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def publish(engine: Engine, plan_id: int, actor: str, *, switch_in: float = 0.0, rollback: bool = False,
            detail: dict | None = None, before_commit=None) -> dict:
    """Publish a draft: the jurisdiction's published plan (if any) is retired in the same transaction.

    Parameters
    ----------
    switch_in : float
        Seconds from now at which the new plan takes effect (``published_at``, and the old plan's
        ``retired_at``). API processes load the new index as soon as they are notified and all switch at
        that same instant, so no client sees one process answer with the new plan and another, later,
        with the old one. 0 switches at commit.
    rollback : bool
        Re-publish a *retired* plan (roll back to it); audited as ``plan.rollback``. The plan's earlier
        periods in force stay in ``plan_publications`` (see :func:`publications`).
    detail : dict, optional
        More for the audit row (e.g. a staffing override and its reason).
    before_commit : callable(Connection), optional
        Run inside the publishing transaction (e.g. carrying staff to the new grid codes).
    """
    with engine.begin() as conn:
        plan = conn.execute(text("SELECT id, jurisdiction_id, status, version FROM grid_plans WHERE id = :p FOR UPDATE"),
                            {"p": plan_id}).first()
        if plan is None:
            raise PlanError(f"plan {plan_id} not found")
        wanted = "retired" if rollback else "draft"
        if plan.status != wanted:
            raise PlanError(f"plan {plan_id} is {plan.status}; only a {wanted} plan can be "
                            + ("rolled back to" if rollback else "published"))
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('plan:' || :j))"), {"j": plan.jurisdiction_id})
        at = conn.execute(text("SELECT now() + make_interval(secs => :s)"), {"s": float(switch_in)}).scalar_one()
        old = conn.execute(text("""
            UPDATE grid_plans SET status = 'retired', retired_at = :at
            WHERE jurisdiction_id = :j AND status = 'published' RETURNING id
        """), {"j": plan.jurisdiction_id, "at": at}).scalars().all()
        conn.execute(text("""
            UPDATE grid_plans SET status = 'published', published_at = :at, published_by = :a, retired_at = NULL
            WHERE id = :p
        """), {"p": plan_id, "a": actor, "at": at})
        # the publication log keeps every period (grid_plans holds only the latest one of each plan)
        conn.execute(text("""
            UPDATE plan_publications SET retired_at = :at, retired_by_plan_id = :p
            WHERE plan_id = ANY(:old) AND retired_at IS NULL
        """), {"at": at, "p": plan_id, "old": list(old)})
        conn.execute(text("""
            INSERT INTO plan_publications (plan_id, action, published_at, published_by, reason)
            VALUES (:p, :act, :at, :a, :r)
        """), {"p": plan_id, "act": "rollback" if rollback else "publish", "at": at, "a": actor,
               "r": (detail or {}).get("reason")})
        if before_commit is not None:
            before_commit(conn)
        _audit(conn, actor, "plan.rollback" if rollback else "plan.publish", "grid_plans", plan_id,
               plan.jurisdiction_id, {"version": plan.version, "retired": old, "effective_at": at.isoformat(),
                                      **(detail or {})})
    return {"published": plan_id, "retired": old, "effective_at": at.isoformat()}


def publications(conn: Connection, plan_ids: list[int]) -> dict[int, list[dict]]:
    """Every period each plan was in force, oldest first: ``{action, published_at, published_by, reason,
    retired_at, retired_by_plan_id}`` (timestamps ISO 8601)."""
    rows = conn.execute(text("""
        SELECT plan_id, action, published_at, published_by, reason, retired_at, retired_by_plan_id
        FROM plan_publications WHERE plan_id = ANY(:ids) ORDER BY plan_id, published_at, id
    """), {"ids": list(plan_ids)}).mappings().all()
    out: dict[int, list[dict]] = {int(i): [] for i in plan_ids}
    for r in rows:
        out[r["plan_id"]].append({"action": r["action"], "published_at": r["published_at"].isoformat(),
                                  "published_by": r["published_by"], "reason": r["reason"],
                                  "retired_at": r["retired_at"].isoformat() if r["retired_at"] else None,
                                  "retired_by_plan_id": r["retired_by_plan_id"]})
    return out


#: Plans in force at a moment ``{t}`` (an SQL expression): a publication period that covers it. The one rule
#: of ``?at=`` lookups and of the API's index (now, and at the next scheduled switch).
IN_FORCE_SQL = """
    SELECT DISTINCT plan_id FROM plan_publications
    WHERE published_at <= {t} AND (retired_at IS NULL OR retired_at > {t}) ORDER BY plan_id
"""


@dataclass
class PlanDiff:
    added: list[str]
    removed: list[str]
    changed: list[str]
    unchanged: int
    residents_moved: int
    residents_total: int

    def as_dict(self) -> dict:
        return {"added": self.added, "removed": self.removed, "changed": self.changed,
                "unchanged": self.unchanged, "residents_moved": self.residents_moved,
                "residents_total": self.residents_total,
                "residents_moved_share": (self.residents_moved / self.residents_total) if self.residents_total else 0.0}


def diff(engine: Engine, a: int, b: int) -> PlanDiff:
    """Compare plan *a* (e.g. published) with plan *b* (e.g. a draft).

    A grid is *unchanged* when the same code has the same geometry (within 1 cm²
    of symmetric difference) in both; *changed* when the code exists in both but
    the area differs; added/removed by code. Residents moved = people of the
    population units (inside either plan) whose owning grid code differs.
    """
    with engine.connect() as conn:
        for pid in (a, b):
            if conn.execute(text("SELECT 1 FROM grid_plans WHERE id = :p"), {"p": pid}).first() is None:
                raise PlanError(f"plan {pid} not found")
        rows = conn.execute(text("""
            SELECT coalesce(ga.code, gb.code) AS code, ga.id IS NOT NULL AS in_a, gb.id IS NOT NULL AS in_b,
                   CASE WHEN ga.id IS NOT NULL AND gb.id IS NOT NULL THEN
                        ST_Area(ST_SymDifference(ga.geom, gb.geom)::geography) END AS sym_m2
            FROM (SELECT * FROM grids WHERE plan_id = :a) ga
            FULL JOIN (SELECT * FROM grids WHERE plan_id = :b) gb ON ga.code = gb.code
            ORDER BY 1
        """), {"a": a, "b": b}).all()
        moved = conn.execute(text("""
            WITH units AS (
                SELECT u.people, ST_PointOnSurface(u.geom) AS pt FROM population_units u
                WHERE EXISTS (SELECT 1 FROM grids g WHERE g.plan_id IN (:a, :b) AND ST_Intersects(g.geom, u.geom))
            ), owners AS (
                SELECT u.people,
                    (SELECT g.code FROM grids g WHERE g.plan_id = :a AND ST_Covers(g.geom, u.pt) ORDER BY g.code LIMIT 1) AS ca,
                    (SELECT g.code FROM grids g WHERE g.plan_id = :b AND ST_Covers(g.geom, u.pt) ORDER BY g.code LIMIT 1) AS cb
                FROM units u
            )
            SELECT coalesce(sum(people) FILTER (WHERE ca IS DISTINCT FROM cb), 0), coalesce(sum(people), 0) FROM owners
        """), {"a": a, "b": b}).one()
    added = [r.code for r in rows if r.in_b and not r.in_a]
    removed = [r.code for r in rows if r.in_a and not r.in_b]
    changed = [r.code for r in rows if r.in_a and r.in_b and (r.sym_m2 or 0) > 0.01]
    unchanged = sum(1 for r in rows if r.in_a and r.in_b and (r.sym_m2 or 0) <= 0.01)
    return PlanDiff(added, removed, changed, unchanged, int(moved[0]), int(moved[1]))


def plan_grids(engine: Engine, plan_id: int) -> gpd.GeoDataFrame:
    """The grids of a plan as a GeoDataFrame (EPSG:4326)."""
    with engine.connect() as conn:
        return gpd.read_postgis(text("""
            SELECT code, name, kind, level, parent_code, population AS people, households, community_code AS community,
                   flags, geom FROM grids WHERE plan_id = :p ORDER BY code
        """), conn, geom_col="geom", params={"p": plan_id}).rename_geometry("geometry")


def published_plan_id(engine: Engine, jurisdiction_code: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(text("""
            SELECT p.id FROM grid_plans p JOIN jurisdictions j ON j.id = p.jurisdiction_id
            WHERE j.code = :c AND p.status = 'published'
        """), {"c": jurisdiction_code}).scalar()
