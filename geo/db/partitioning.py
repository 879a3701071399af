"""Run the partition engine on what is loaded in PostGIS and store the result as a draft plan.

``io → partition → db``: the engine (:mod:`geo.partition`) knows nothing of the
database; this module reads its inputs from PostGIS, calls it, and writes the
plan (grids + quality report + parameters + author).

The quality report stored with a plan is :func:`geo.partition.verify.verify`
of its grids against the input. A plan that breaks an invariant (residents
counted outside the grid whose polygon holds them, a building split between
grids, a grid in pieces without an island reason, overlapping grids) is not
stored: :class:`PlanRefusedError` says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
from sqlalchemy import Engine, text

from geo.db import plans as db_plans
from geo.partition.inputs import PartitionInputError as _EngineInputError


class PartitionInputError(_EngineInputError):
    """The inputs in the database are missing or ambiguous for this jurisdiction (or unusable by the engine)."""


class PlanRefusedError(PartitionInputError):
    """The engine's plan breaks an invariant checked by verify(); it is not stored.

    Attributes
    ----------
    report : dict
        The full verify report (``report["invariants"]["failed"]`` lists the reasons).
    """

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


@dataclass
class Inputs:
    jurisdiction: gpd.GeoDataFrame
    population: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame | None
    communities: gpd.GeoDataFrame | None
    special: gpd.GeoDataFrame | None
    previous: gpd.GeoDataFrame | None
    previous_plan_id: int | None
    previous_kind: str | None
    population_dataset: str
    streets_dataset: str | None


def _one_dataset(conn, table: str, geom_sql: str, jid: int, wanted: str | None, what: str) -> str | None:
    rows = conn.execute(text(f"""
        SELECT t.dataset, count(*) FROM {table} t, jurisdictions j
        WHERE j.id = :j AND {geom_sql} GROUP BY 1 ORDER BY 2 DESC
    """), {"j": jid}).all()
    names = [r[0] for r in rows]
    if wanted:
        if wanted not in names:
            raise PartitionInputError(f"{what} dataset {wanted!r} has no rows in this jurisdiction; "
                                      f"available here: {names or 'none'}")
        return wanted
    if len(names) > 1:
        raise PartitionInputError(f"several {what} datasets cover this jurisdiction ({names}); choose one with "
                                  f"--{what}-dataset so nothing is counted twice")
    return names[0] if names else None


def read_inputs(engine: Engine, jurisdiction_code: str, *, population_dataset: str | None = None,
                streets_dataset: str | None = None, use_streets: bool = True) -> Inputs:
    """Everything the engine needs for one jurisdiction, as GeoDataFrames in EPSG:4326."""
    with engine.connect() as conn:
        j = conn.execute(text("SELECT id, code, name, path FROM jurisdictions WHERE code = :c"),
                         {"c": jurisdiction_code}).first()
        if j is None:
            raise PartitionInputError(f"jurisdiction {jurisdiction_code!r} not found; load its boundary first")
        pop_ds = _one_dataset(conn, "population_units", "ST_Intersects(t.geom, j.geom)", j.id, population_dataset,
                              "population")
        if pop_ds is None:
            raise PartitionInputError(f"no population units inside {j.name} ({j.code}); load population first")
        st_ds = None
        if use_streets:
            st_ds = _one_dataset(conn, "streets", "ST_Intersects(t.geom, j.geom)", j.id, streets_dataset, "streets")
        jur = gpd.read_postgis(text("SELECT code, name, geom FROM jurisdictions WHERE id = :j"), conn,
                               geom_col="geom", params={"j": j.id})
        pop = gpd.read_postgis(text("""
            SELECT u.source_id, u.people, coalesce(u.households, 0) AS households, u.building, u.geom
            FROM population_units u, jurisdictions j
            WHERE j.id = :j AND u.dataset = :d AND ST_Intersects(u.geom, j.geom) ORDER BY u.id
        """), conn, geom_col="geom", params={"j": j.id, "d": pop_ds})
        streets = None
        if st_ds:
            # the OSM highway tag: the class column when the file had only `highway`, else kept in props
            streets = gpd.read_postgis(text("""
                SELECT s.name, s.klass, coalesce(s.props->>'highway', s.klass) AS highway, s.geom
                FROM streets s, jurisdictions j
                WHERE j.id = :j AND s.dataset = :d AND ST_Intersects(s.geom, j.geom) ORDER BY s.id
            """), conn, geom_col="geom", params={"j": j.id, "d": st_ds})
        comm = gpd.read_postgis(text("""
            SELECT c.code, c.name, NOT c.urban AS rural, c.geom FROM jurisdictions c
            WHERE c.level = 'community' AND c.path LIKE :p || '%' ORDER BY c.code
        """), conn, geom_col="geom", params={"p": j.path})
        special = gpd.read_postgis(text("""
            SELECT s.source_id AS id, s.name, s.kind, s.geom FROM special_areas s, jurisdictions j
            WHERE j.id = :j AND ST_Intersects(s.geom, j.geom) ORDER BY s.id
        """), conn, geom_col="geom", params={"j": j.id})
        prev_row = conn.execute(text("SELECT id, kind FROM grid_plans WHERE jurisdiction_id = :j "
                                     "AND status = 'published'"), {"j": j.id}).first()
        prev_id, prev_kind = (prev_row.id, prev_row.kind) if prev_row else (None, None)
    prev = db_plans.plan_grids(engine, prev_id) if prev_id else None
    for g in (jur, pop, streets, comm, special):
        if g is not None:
            g.rename_geometry("geometry", inplace=True)
    if pop["building"].isna().all():
        pop = pop.drop(columns=["building"])
    return Inputs(jurisdiction=jur, population=pop, streets=streets,
                  communities=comm if len(comm) else None, special=special if len(special) else None,
                  previous=prev, previous_plan_id=prev_id, previous_kind=prev_kind, population_dataset=pop_ds,
                  streets_dataset=st_ds)


def run_partition(
    engine: Engine,
    jurisdiction_code: str,
    *,
    actor: str,
    min_pop: int = 1000,
    max_pop: int = 2000,
    by: str = "people",
    seed: int = 0,
    population_dataset: str | None = None,
    streets_dataset: str | None = None,
    use_streets: bool = True,
    stable: bool = True,
    progress: Callable[[str, float], None] | None = None,
    street_classes: list[str] | None = None,
    buildings: gpd.GeoDataFrame | None = None,
) -> tuple[int, object]:
    """Partition a jurisdiction from its loaded inputs and store a draft plan.

    Parameters
    ----------
    stable : bool
        With a published plan, re-draw from it (keep in-range grids, stable codes); otherwise from scratch.
    street_classes : list of str, optional
        Street classes (OSM ``highway``) that bound blocks; default the vehicle classes.
    buildings : GeoDataFrame, optional
        Building footprints no grid edge may cross.

    Returns
    -------
    (plan_id, Plan) : the stored draft's id and the engine's result (without atoms when grids were kept
    exactly, see :mod:`geo.db.keep_redraw`).

    Raises
    ------
    PartitionInputError
        Inputs missing, ambiguous or unusable (the engine's message names row and field).
    PlanRefusedError
        The plan breaks an invariant of verify(); nothing is stored.
    """
    from geo.partition import partition

    t0 = time.perf_counter()
    inp = read_inputs(engine, jurisdiction_code, population_dataset=population_dataset,
                      streets_dataset=streets_dataset, use_streets=use_streets)
    if progress:
        progress("inputs read", 0.05)
    kept = None
    if stable and inp.previous is not None:  # locked grids, and in-range grids of hand-made plans, stay exactly
        from geo.db.keep_redraw import kept_mask

        kept = kept_mask(inp.previous, inp.previous_kind or "engine", inp.previous["people"].to_numpy(),
                         min_pop, max_pop)
    if kept is not None and kept.any():
        from geo.db.keep_redraw import redraw_keeping

        from geo.partition import Plan

        grids, quality = redraw_keeping(inp, kept, min_pop=min_pop, max_pop=max_pop, by=by, seed=seed,
                                        progress=progress)
        quality["runtime_s"] = time.perf_counter() - t0
        plan = Plan(grids, None, quality, {"min_pop": min_pop, "max_pop": max_pop, "kept": int(kept.sum())})
    else:
        try:
            plan = partition(
                jurisdiction=inp.jurisdiction, population=inp.population, streets=inp.streets,
                communities=inp.communities, special=inp.special, min_pop=min_pop, max_pop=max_pop, by=by,
                previous=inp.previous if stable else None, seed=seed, progress=progress,
                street_classes=street_classes, buildings=buildings,
            )
        except _EngineInputError as exc:
            if isinstance(exc, PartitionInputError):
                raise
            raise PartitionInputError(f"{jurisdiction_code}: {exc}") from exc
        grids, quality = plan.grids, plan.report
    inv = quality.get("invariants", {})
    if not inv.get("ok", True):
        reasons = "; ".join(f["reason"] for f in inv.get("failed", []))
        raise PlanRefusedError(f"plan for {jurisdiction_code} not stored: {reasons}", quality)
    params = {"min_pop": min_pop, "max_pop": max_pop, "by": by, "seed": seed,
              "population_dataset": inp.population_dataset, "streets_dataset": inp.streets_dataset,
              "previous_plan_id": inp.previous_plan_id if stable else None,
              "street_classes": plan.params.get("street_classes"), "buildings": buildings is not None,
              "seconds": round(time.perf_counter() - t0, 2)}
    plan_id = db_plans.write_plan(engine, jurisdiction_code, grids, actor=actor, params=params,
                                  quality=quality)
    if progress:
        progress("stored", 1.0)
    return plan_id, plan


def jurisdictions_to_partition(engine: Engine, level: str = "street", under: str | None = None) -> list[str]:
    """Codes of every jurisdiction of *level* (optionally under a code) that has population loaded."""
    with engine.connect() as conn:
        return list(conn.execute(text("""
            SELECT j.code FROM jurisdictions j
            WHERE j.level = :l AND (CAST(:u AS text) IS NULL OR j.path LIKE
                  (SELECT path FROM jurisdictions WHERE code = :u) || '%')
              AND EXISTS (SELECT 1 FROM population_units u WHERE ST_Intersects(u.geom, j.geom))
            ORDER BY j.code
        """), {"l": level, "u": under}).scalars())
