"""Editing a plan by hand: move a block to a neighbouring grid, merge two grids, split one grid with the
engine, lock / unlock, rename — and undo.

Every edit makes a new *draft* version (kind ``edited``, ``parent_id`` = the plan edited) carrying the list
of edits so far (who, when, what, grids touched), and is audited. After the edit the touched grids' figures
— residents, households (:func:`geo.db.counting.count_residents`), contiguity, in range — and the plan's
coverage are computed from the polygons. An edit that would make a grid non-contiguous, leave a gap or an
overlap, cross a community boundary or touch a locked grid is refused (:class:`EditRefused`) and nothing is
stored.
"""

from __future__ import annotations

from datetime import datetime, timezone

import geopandas as gpd
import numpy as np
import orjson
import shapely
from sqlalchemy import Engine, text

from geo.access import audit
from geo.crs import local_metric_crs
from geo.db import move_units as mu
from geo.db import plans as db_plans
from geo.db.counting import count_residents, population_dataset

LOCKED = "locked"
OPS = ("move", "merge", "split", "lock", "unlock", "rename")


class EditRefused(ValueError):
    """The edit is not allowed; ``reason`` is a machine code, the message says why in words."""

    def __init__(self, reason: str, message: str, status: int = 409):
        super().__init__(message)
        self.reason, self.status = reason, status


def load_plan(engine: Engine, plan_id: int) -> tuple[dict, gpd.GeoDataFrame]:
    """(plan row, its grids with every stored column, EPSG:4326)."""
    with engine.connect() as conn:
        plan = conn.execute(text("""
            SELECT gp.id, gp.version, gp.status, gp.kind, gp.params, gp.edits, gp.parent_id, gp.jurisdiction_id,
                   j.code AS jcode, ST_AsBinary(j.geom) AS jgeom
            FROM grid_plans gp JOIN jurisdictions j ON j.id = gp.jurisdiction_id WHERE gp.id = :p
        """), {"p": plan_id}).mappings().first()
        if plan is None:
            raise EditRefused("not_found", f"plan {plan_id} not found", 404)
        g = gpd.read_postgis(text("""
            SELECT code, name, kind, level, parent_code, population AS people, households,
                   community_code AS community, flags, props, geom FROM grids WHERE plan_id = :p ORDER BY code
        """), conn, geom_col="geom", params={"p": plan_id}).rename_geometry("geometry")
    return dict(plan), g


def _locked(g, i) -> bool:
    return LOCKED in (g["flags"].iat[i] or [])


def _index(g, code: str) -> int:
    hit = np.flatnonzero(g["code"].to_numpy() == code)
    if not len(hit):
        raise EditRefused("unknown_grid", f"grid {code} is not in this plan", 404)
    return int(hit[0])


def _next_code(codes, prefix: str) -> str:
    serials = [int(c[12:]) for c in codes if c[:12] == prefix]
    return f"{prefix}{(max(serials) + 1 if serials else 1):03d}"


def _apply(engine: Engine, plan: dict, g: gpd.GeoDataFrame, edit: dict) -> tuple[gpd.GeoDataFrame, list[str]]:
    """The grids after *edit* and the codes touched; raises EditRefused."""
    op = edit.get("op")
    g = g.copy()
    crs = local_metric_crs(g)
    if op in ("lock", "unlock"):
        codes = list(edit.get("codes") or [])
        for c in codes:
            i = _index(g, c)
            fl = [f for f in (g["flags"].iat[i] or []) if f != LOCKED]
            g.at[g.index[i], "flags"] = fl + ([LOCKED] if op == "lock" else [])
        return g, codes
    if op == "rename":
        i = _index(g, edit["code"])
        name = str(edit.get("name") or "").strip()
        if not name:
            raise EditRefused("empty_name", "a grid name cannot be empty", 422)
        if name in set(g["name"]) - {g["name"].iat[i]}:
            raise EditRefused("duplicate_name", f"another grid is already called {name}", 409)
        g.at[g.index[i], "name"] = name
        return g, [edit["code"]]
    if op == "move":
        return _move(engine, plan, g, edit, crs)
    if op == "merge":
        codes = list(edit.get("codes") or [])
        if len(codes) != 2 or codes[0] == codes[1]:
            raise EditRefused("bad_request", "merge takes two different grid codes", 422)
        a, b = _index(g, codes[0]), _index(g, codes[1])
        for i in (a, b):
            if _locked(g, i):
                raise EditRefused("locked", f"grid {g['code'].iat[i]} is locked; unlock it first")
        if g["community"].iat[a] != g["community"].iat[b]:
            raise EditRefused("crosses_community", "the two grids are in different communities")
        if mu.shared_m(g.geometry.iat[a], g.geometry.iat[b], crs) < 1.0:
            raise EditRefused("not_adjacent", f"grids {codes[0]} and {codes[1]} do not share a boundary")
        u = shapely.union_all([g.geometry.iat[a], g.geometry.iat[b]])
        if not mu.single(u):
            raise EditRefused("breaks_contiguity", "the merged grid would not be one piece")
        geoms = list(g.geometry)
        geoms[a] = u
        g = g.set_geometry(gpd.GeoSeries(geoms, crs=4326, index=g.index))
        g = g.drop(index=g.index[b]).reset_index(drop=True)
        return g, codes
    if op == "split":
        return _split(engine, plan, g, edit)
    raise EditRefused("unknown_op", f"unknown edit {op!r}; expected one of {', '.join(OPS)}", 422)


def _move(engine: Engine, plan: dict, g: gpd.GeoDataFrame, edit: dict, crs):
    """Move the unit at the point (its street block, or a group of its buildings: :mod:`geo.db.move_units`)
    from the grid holding the point to the neighbouring grid *to*."""
    pt = shapely.Point(float(edit["lon"]), float(edit["lat"]))
    src = next((i for i, geom in enumerate(g.geometry) if geom.covers(pt)), None)
    if src is None:
        raise EditRefused("no_grid_here", f"no grid of this plan at {edit['lon']}, {edit['lat']}", 422)
    dst = _index(g, edit["to"])
    if dst == src:
        raise EditRefused("same_grid", f"the block is already in grid {edit['to']}", 409)
    for i in (src, dst):
        if _locked(g, i):
            raise EditRefused("locked", f"grid {g['code'].iat[i]} is locked; unlock it first")
    if g["community"].iat[src] != g["community"].iat[dst]:
        raise EditRefused("crosses_community", f"grid {edit['to']} is in community {g['community'].iat[dst]},"
                          f" the block in {g['community'].iat[src]}: grids never cross communities")
    unit = edit.get("unit")
    if unit is not None and unit not in mu.UNITS:
        raise EditRefused("bad_request", f"unit must be one of {', '.join(mu.UNITS)}", 422)
    src_geom, dst_geom = g.geometry.iat[src], g.geometry.iat[dst]
    units = mu.grid_units(engine, plan, src_geom, crs)
    found = units.at(pt, unit, src_geom)
    if found is None:
        raise EditRefused("no_block", "no street block found at that point", 422)
    kind, piece, _ = found
    rest, moved = mu.carve(src_geom, piece, crs)
    why = mu.check_move(src_geom, dst_geom, moved, rest, crs, units)
    if why is not None:
        raise EditRefused(why[0], why[1].replace("its grid", f"grid {g['code'].iat[src]}")
                          .replace("the target grid", f"grid {edit['to']}"))
    new_dst = shapely.union_all([dst_geom, moved])
    g = g.set_geometry(gpd.GeoSeries([rest if i == src else (new_dst if i == dst else x)
                                      for i, x in enumerate(g.geometry)], crs=4326, index=g.index))
    edit["from"], edit["unit"] = g["code"].iat[src], kind
    return g, [g["code"].iat[src], g["code"].iat[dst]]


def _split(engine: Engine, plan: dict, g: gpd.GeoDataFrame, edit: dict):
    """Split one grid into k by the engine run on that grid alone (its population, streets, community)."""
    from geo.partition import partition

    i = _index(g, edit["code"])
    if _locked(g, i):
        raise EditRefused("locked", f"grid {edit['code']} is locked; unlock it first")
    k = int(edit.get("k") or 2)
    if not 2 <= k <= 20:
        raise EditRefused("bad_request", "k must be between 2 and 20", 422)
    geom = g.geometry.iat[i]
    wkb = shapely.to_wkb(geom, hex=True)
    with engine.connect() as conn:
        ds = population_dataset(conn, plan["jurisdiction_id"], (plan["params"] or {}).get("population_dataset"))
        pop = gpd.read_postgis(text("""
            SELECT u.people, coalesce(u.households, 0) AS households, u.building, u.geom FROM population_units u
            WHERE u.dataset = :d AND ST_Intersects(u.geom, ST_GeomFromWKB(decode(:g, 'hex'), 4326))
        """), conn, geom_col="geom", params={"d": ds, "g": wkb}).rename_geometry("geometry")
        streets = gpd.read_postgis(text("""
            SELECT s.name, s.klass AS highway, s.geom FROM streets s
            WHERE ST_Intersects(s.geom, ST_GeomFromWKB(decode(:g, 'hex'), 4326))
        """), conn, geom_col="geom", params={"g": wkb}).rename_geometry("geometry")
        comm = gpd.read_postgis(text("""
            SELECT code, name, NOT urban AS rural, ST_Intersection(geom, ST_GeomFromWKB(decode(:g, 'hex'), 4326))
                   AS geom FROM jurisdictions WHERE code = :c
        """), conn, geom_col="geom", params={"g": wkb, "c": g["community"].iat[i]}).rename_geometry("geometry")
    total = float(pop["people"].sum())
    if total <= 0:
        raise EditRefused("no_population", f"grid {edit['code']} has no residents to divide", 409)
    if pop["building"].isna().all():
        pop = pop.drop(columns=["building"])
    target = total / k
    plan_k = partition(jurisdiction=gpd.GeoDataFrame(geometry=[geom], crs=4326), population=pop,
                       streets=streets if len(streets) else None, communities=comm if len(comm) else None,
                       min_pop=int(target * 0.6), max_pop=int(np.ceil(target * 1.4)), target=target,
                       seed=int(edit.get("seed") or 0), prefix=edit["code"][:12])
    parts = plan_k.grids.to_crs(4326).reset_index(drop=True)
    if len(parts) < 2:
        raise EditRefused("cannot_split", f"the engine found no way to split grid {edit['code']} along its blocks",
                          409)
    from geo.db.grid_import import valid_polygons
    from geo.db.keep_redraw import _fit_new_grids

    pieces = _fit_new_grids(list(parts.geometry.values), [True] * len(parts), geom)
    pieces = valid_polygons(pieces)
    codes = list(g["code"])
    new_codes = [edit["code"]]
    for _ in range(len(pieces) - 1):
        c = _next_code(codes + new_codes, edit["code"][:12])
        new_codes.append(c)
    base = g.iloc[[i]]
    rows = []
    for n, (c, pg) in enumerate(zip(new_codes, pieces)):
        r = base.copy()
        r["code"] = c
        r["name"] = g["name"].iat[i] if n == 0 else f"{g['name'].iat[i]}之{n + 1}"
        r = r.set_geometry(gpd.GeoSeries([pg], crs=4326, index=r.index))
        rows.append(r)
    out = gpd.GeoDataFrame(pd_concat([g.drop(index=g.index[i])] + rows), crs=4326)
    edit["into"] = new_codes
    return out.sort_values("code").reset_index(drop=True), new_codes


def pd_concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def figures(engine: Engine, plan: dict, g: gpd.GeoDataFrame, codes: list[str]) -> tuple[list[dict], dict]:
    """Live figures of the touched grids and the plan's coverage, from the polygons and the population."""
    p = plan["params"] or {}
    lo, hi = p.get("min_pop", 1000), p.get("max_pop", 2000)
    sel = g[g["code"].isin(codes)].reset_index(drop=True)
    with engine.connect() as conn:
        ds = population_dataset(conn, plan["jurisdiction_id"], p.get("population_dataset"))
        people, hh = count_residents(conn, list(sel.geometry.values), ds)
    crs = local_metric_crs(g)
    # coverage in the polygons' own coordinates (degrees): straight edges bend when projected, which would
    # show as centimetre slivers; m² from the local scale
    jur = shapely.from_wkb(bytes(plan["jgeom"]))
    u = shapely.union_all(np.asarray(g.geometry.values))
    scale = float(gpd.GeoSeries([jur], crs=4326).to_crs(crs).area[0] / jur.area) if jur.area else 0.0
    out = [{"code": c, "name": n, "kind": k, "people": int(pp), "households": int(h),
            "contiguous": mu.single(geom), "area_m2": round(float(gpd.GeoSeries([geom], crs=4326).to_crs(crs).area[0]), 1),
            "in_range": bool(k == "exclusive" or lo <= pp <= hi), "locked": LOCKED in (fl or [])}
           for c, n, k, pp, h, geom, fl in zip(sel["code"], sel["name"], sel["kind"], people, hh, sel.geometry,
                                              sel["flags"])]
    inside = shapely.intersection(u, jur).area
    cov = {"covered_share": round(float(inside / jur.area), 8) if jur.area else None,
           "gap_m2": round(float(max(jur.area - inside, 0.0)) * scale, 2),
           "overlap_m2": round(float(max(sum(shapely.area(np.asarray(g.geometry.values))) - u.area, 0.0)) * scale, 2),
           "min_pop": lo, "max_pop": hi}
    return out, cov


def apply_edit(engine: Engine, plan_id: int, edit: dict, actor: str) -> dict:
    """Apply *edit* to plan *plan_id*; store the result as a new draft. Returns the new plan id and figures.

    Parameters
    ----------
    edit : dict
        ``{"op": "move", "lon", "lat", "to", "unit"}`` (the street block at the point, or with ``unit``
        ``buildings`` the group of whole buildings at it, goes to neighbouring grid *to*; without ``unit`` the
        block, or its building group when the block is the whole grid — see :mod:`geo.db.move_units`), ``{"op": "merge", "codes": [a, b]}`` (b joins a), ``{"op": "split", "code", "k"}``,
        ``{"op": "lock"|"unlock", "codes": [...]}``, ``{"op": "rename", "code", "name"}``.
    actor : str
        The editor (stored in the edit list and the audit log).

    Raises
    ------
    EditRefused
        With the reason; nothing is stored.
    """
    plan, g = load_plan(engine, plan_id)
    edit = {k: v for k, v in edit.items() if v is not None}
    new, touched = _apply(engine, plan, g, edit)
    if edit["op"] in ("move", "merge", "split"):
        old = g[g["code"].isin(set(touched) | {edit.get("code"), *(edit.get("codes") or [])})]
        now = new[new["code"].isin(touched)]
        crs = local_metric_crs(g)
        before_union = shapely.union_all(np.asarray(old.to_crs(crs).geometry.values))
        after_union = shapely.union_all(np.asarray(now.to_crs(crs).geometry.values))
        diff = shapely.symmetric_difference(before_union, after_union).area
        if diff > 1.0:
            raise EditRefused("breaks_coverage", f"the edit would leave {diff:,.1f} m² uncovered or doubly covered")
        overlap = sum(now.to_crs(crs).area) - after_union.area
        if overlap > 1.0:
            raise EditRefused("breaks_coverage", f"the edit would make grids overlap by {overlap:,.1f} m²")
    figs, cov = figures(engine, plan, new, touched)
    for f in figs:
        if not f["contiguous"] and edit["op"] in ("move", "merge", "split"):
            raise EditRefused("breaks_contiguity", f"grid {f['code']} would not be one piece")
    people = dict((f["code"], f["people"]) for f in figs)
    hh = dict((f["code"], f["households"]) for f in figs)
    new["people"] = [people.get(c, p) for c, p in zip(new["code"], new["people"])]
    new["households"] = [hh.get(c, h) for c, h in zip(new["code"], new["households"])]
    entry = {**edit, "touched": touched, "by": actor, "at": datetime.now(timezone.utc).isoformat(),
             "from_plan": plan_id}
    edits = list(plan["edits"] or []) + [entry]
    quality = _quality(new, plan, cov)
    new_id = db_plans.write_plan(engine, plan["jcode"], new, actor=actor, params=plan["params"] or {},
                                 quality=quality, name=f"手工调整 v{plan['version']}+{len(edits)}", kind="edited",
                                 parent_id=plan_id, edits=edits)
    _audit(engine, actor, "plan.edit", new_id, plan["jurisdiction_id"], entry)
    return {"plan_id": new_id, "parent_id": plan_id, "edit": entry, "grids": figs, "coverage": cov,
            "edits": len(edits)}


def _quality(g: gpd.GeoDataFrame, plan: dict, cov: dict) -> dict:
    from geo.db.grid_import import plan_quality

    p = plan["params"] or {}
    return plan_quality(g, g["people"].to_numpy(), p.get("min_pop", 1000), p.get("max_pop", 2000),
                        covered=cov["covered_share"], gap_m2=cov["gap_m2"], overlap_m2=cov["overlap_m2"],
                        multipart=int(sum(1 for x in g.geometry if not mu.single(x))))


def _audit(engine: Engine, actor: str, action: str, plan_id: int, jid: int, detail: dict) -> None:
    with engine.begin() as conn:  # detail through orjson first: numpy figures stay numbers
        audit.record(conn, actor, action, "grid_plans", plan_id, jurisdiction_id=jid,
                     detail=orjson.loads(orjson.dumps(detail, default=str)))


def undo(engine: Engine, plan_id: int, actor: str) -> dict:
    """A new draft equal to the plan before the last edit of *plan_id* (its edit list one shorter)."""
    plan, _ = load_plan(engine, plan_id)
    if plan["kind"] != "edited" or not plan["edits"] or plan["parent_id"] is None:
        raise EditRefused("nothing_to_undo", f"plan {plan_id} has no hand edit to undo")
    parent, g = load_plan(engine, plan["parent_id"])
    edits = list(plan["edits"])[:-1]
    with engine.connect() as conn:
        pq = conn.execute(text("SELECT quality FROM grid_plans WHERE id = :p"), {"p": parent["id"]}).scalar_one()
    new_id = db_plans.write_plan(engine, plan["jcode"], g, actor=actor, params=parent["params"] or {}, quality=pq,
                                 name=f"撤销 #{plan_id} 的最后一步", kind="edited" if edits else parent["kind"],
                                 parent_id=parent["parent_id"] if edits else None, edits=edits)
    last = plan["edits"][-1]
    _audit(engine, actor, "plan.undo", new_id, plan["jurisdiction_id"], {"undone": last, "from_plan": plan_id,
                                                                         "same_as": parent["id"]})
    touched = list(last.get("touched") or [])
    figs, cov = figures(engine, parent, g, [c for c in touched if c in set(g["code"])])
    return {"plan_id": new_id, "same_as": parent["id"], "undone": last, "grids": figs, "coverage": cov,
            "edits": len(edits)}
