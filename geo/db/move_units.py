"""What a hand edit can move out of a grid: its street blocks and, inside them, groups of whole buildings.

A grid of the engine is often a single street block, or a piece of a gated estate cut between buildings:
moving "the street block" would move the whole grid. So a move takes one of two units
(:func:`geo.partition.split.movable_units`, the units the engine itself groups into grids):

* ``block`` — a street block of the grid (cut along the streets reaching inside it, estate roads included);
* ``buildings`` — a group of whole buildings inside a block (a slab between buildings, or a building's
  cell), so a multi-entrance building is never cut.

By default (``unit`` not given) the block at the point moves, or its building group when the block is the
whole grid. :func:`move_options` lists, for one grid, every unit on its boundary with each neighbouring
grid of the same community and says whether moving it is allowed (and the figures after) or why not — the
planner's map offers those, so nobody has to guess a point.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
import shapely.ops
from sqlalchemy import Engine, text

from geo.crs import local_metric_crs
from geo.db.counting import count_residents, population_dataset

UNITS = ("block", "buildings")
MIN_SHARED_M = 1.0  # a unit touches a neighbour when they share this much boundary
MICRO_M2 = 1.0  # parts of a cut smaller than this are rounding, not geography
NECK_M = 1.0  # a grid joined only through a neck narrower than this is in pieces on the ground
DENSIFY_DEG = 5e-5


class Units:
    """The movable units of one grid, in EPSG:4326 (and their metric originals for labels)."""

    def __init__(self, blocks, units, unit_block, people, households, labels_b, labels_u, points, building):
        self.blocks, self.units, self.unit_block = blocks, units, unit_block
        self.people, self.households = people, households
        self.block_label, self.unit_label = labels_b, labels_u
        self.points, self.building = points, building  # address points (EPSG:4326) and their building ids

    def buildings_cut(self, moved) -> list[str]:
        """Buildings with entrances on both sides of *moved* (a street block may run across one)."""
        if not len(self.points):
            return []
        inside = shapely.covers(moved, self.points)
        has = self.building != None  # noqa: E711 — an object array of ids and None
        cut = set(self.building[inside & has]) & set(self.building[~inside & has])
        return sorted(str(b) for b in cut)

    def at(self, pt: shapely.Point, unit: str | None, grid_geom) -> tuple[str, object, tuple] | None:
        """(unit kind, polygon, label point) of the unit at *pt*; None when no unit holds it."""
        b = _holder(self.blocks, pt)
        if b is None:
            return None
        whole = abs(shapely.area(self.blocks[b]) - shapely.area(grid_geom)) <= 1e-6 * shapely.area(grid_geom)
        kind = unit or ("buildings" if whole else "block")
        if kind == "block":
            return kind, self.blocks[b], self.block_label[b]
        u = _holder(self.units, pt)
        if u is None:
            return None
        return kind, self.units[u], self.unit_label[u]


def _holder(geoms, pt):
    hit = np.flatnonzero(shapely.covers(geoms, pt)) if len(geoms) else []
    return int(hit[0]) if len(hit) else None


def _label(g) -> tuple[float, float]:
    """A point well inside a (metric) polygon: its pole of inaccessibility (a click there is unambiguous)."""
    parts = shapely.get_parts(g)
    big = parts[int(np.argmax(shapely.area(parts)))] if len(parts) else g
    try:
        p = shapely.ops.polylabel(big, tolerance=0.5)
    except Exception:  # noqa: BLE001 — degenerate polygon: any interior point
        p = shapely.point_on_surface(big)
    return p.x, p.y


def grid_units(engine: Engine, plan: dict, grid_geom, crs) -> Units:
    """The blocks and building groups of one grid (EPSG:4326 polygon), from the loaded streets and population."""
    wkb = shapely.to_wkb(grid_geom, hex=True)
    with engine.connect() as conn:
        ds = population_dataset(conn, plan["jurisdiction_id"], (plan["params"] or {}).get("population_dataset"))
        pts = conn.execute(text("""
            SELECT ST_X(p) AS x, ST_Y(p) AS y, u.people, coalesce(u.households, 0) AS households, u.building
            FROM population_units u, LATERAL (SELECT ST_PointOnSurface(u.geom) AS p) q
            WHERE u.dataset = :d AND ST_Covers(ST_GeomFromWKB(decode(:g, 'hex'), 4326), q.p)
        """), {"d": ds, "g": wkb}).all() if ds else []
        lines = conn.execute(text("""
            SELECT ST_AsBinary(s.geom) FROM streets s
            WHERE ST_Intersects(s.geom, ST_GeomFromWKB(decode(:g, 'hex'), 4326))
        """), {"g": wkb}).scalars().all()
    from geo.partition.split import movable_units

    # straight edges in degrees are curves in metres: densify (~5 m) before projecting, so a cut along a street
    # or ending on the outline comes back onto it to well under a millimetre
    metric = gpd.GeoSeries([shapely.segmentize(grid_geom, DENSIFY_DEG)], crs=4326).to_crs(crs).iloc[0]
    roads = np.array([], dtype=object)
    if lines:
        dense = shapely.segmentize(shapely.from_wkb([bytes(b) for b in lines]), DENSIFY_DEG)
        roads = np.asarray(gpd.GeoSeries(dense, crs=4326).to_crs(crs).values, dtype=object)
    xy = np.zeros((0, 2))
    if pts:
        p = gpd.GeoSeries(shapely.points([r.x for r in pts], [r.y for r in pts]), crs=4326).to_crs(crs)
        xy = shapely.get_coordinates(np.asarray(p.values, dtype=object))
    mu = movable_units(metric, roads, crs, xy, np.array([r.building for r in pts], dtype=object),
                       np.array([r.people for r in pts]), np.array([r.households for r in pts]))

    def back(geoms):
        g = np.asarray(gpd.GeoSeries(list(geoms), crs=crs).to_crs(4326).values, dtype=object)
        # the outline of a unit is the grid's outline, transformed twice: put it back on the grid's vertices
        return np.array([shapely.snap(x, grid_geom, 1e-7) for x in g], dtype=object)

    def labels(geoms):
        if not len(geoms):
            return []
        xy = np.array([_label(g) for g in geoms])
        ll = gpd.GeoSeries(shapely.points(xy), crs=crs).to_crs(4326)
        return [(float(q.x), float(q.y)) for q in ll]

    ll = shapely.points([r.x for r in pts], [r.y for r in pts]) if pts else np.array([], dtype=object)
    bid = np.array([r.building if r.building is not None and r.building == r.building else None for r in pts],
                   dtype=object)
    return Units(back(mu["blocks"]), back(mu["units"]), np.asarray(mu["unit_block"]), mu["unit_people"],
                 mu["unit_households"], labels(mu["blocks"]), labels(mu["units"]), ll, bid)


def carve(src, piece, crs) -> tuple[object, object]:
    """(the rest of *src*, the part of *src* that moves) for a unit *piece* of it; both from *src* by one
    difference and one intersection, so they tile it. Rounding crumbs of the rest (under 1 m²) move along.

    The unit was cut in metres and projected back: where it ends on the grid's outline its corners may
    fall a nanodegree inside, which would leave the rest joined by a hairline along the outline (one piece
    to a computer, two on the ground). So the unit is grown by ~1 mm (1e-8°) before it is cut out."""
    piece = shapely.buffer(shapely.snap(piece, src, 1e-7), 1e-8, join_style="mitre")
    rest = shapely.difference(src, piece)
    moved = shapely.intersection(src, piece)
    parts = shapely.get_parts(rest)
    if len(parts) > 1:
        m2 = np.asarray(gpd.GeoSeries(parts, crs=4326).to_crs(crs).area)
        crumbs = parts[m2 < MICRO_M2]
        if len(crumbs):
            rest = shapely.union_all(parts[m2 >= MICRO_M2])
            moved = shapely.union_all([moved, *crumbs])
    return _polygonal(rest), _polygonal(moved)


def _polygonal(g):
    parts = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and not p.is_empty]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def single(geom) -> bool:
    return geom.geom_type == "Polygon" or (geom.geom_type == "MultiPolygon" and len(geom.geoms) == 1)


def shared_m(a, b, crs) -> float:
    s = gpd.GeoSeries([a, b], crs=4326).to_crs(crs)
    return float(shapely.intersection(s.iloc[0].boundary, s.iloc[1].buffer(0.5)).length)


def area_m2(g, crs) -> float:
    return float(gpd.GeoSeries([g], crs=4326).to_crs(crs).area.iloc[0])


def pieces_on_the_ground(geom, crs) -> int:
    """Parts of *geom* once necks narrower than :data:`NECK_M` are cut (a grid whose two halves meet at a
    corner, or through a centimetre of rounding, is two pieces to the people who walk it)."""
    if not single(geom):
        return len(shapely.get_parts(geom))
    m = gpd.GeoSeries([geom], crs=4326).to_crs(crs).iloc[0]
    core = shapely.get_parts(shapely.buffer(m, -NECK_M / 2, join_style="mitre"))
    return max(1, int((shapely.area(core) >= MICRO_M2).sum()))


def check_move(src, dst, moved, rest, crs, units: Units | None = None) -> tuple[str, str] | None:
    """Why moving *moved* from *src* to *dst* is not allowed ((reason, words)); None when it is."""
    if moved.is_empty or shared_m(moved, dst, crs) < MIN_SHARED_M:
        return "not_adjacent", "the block does not touch the target grid: only a neighbouring grid can take it"
    if rest.is_empty or area_m2(rest, crs) < MICRO_M2:
        return "empties_grid", "the block is all of its grid: merge the two grids instead"
    n = pieces_on_the_ground(rest, crs)
    if n > 1:
        return "breaks_contiguity", f"moving the block would cut its grid into {n} separate parts"
    if pieces_on_the_ground(shapely.union_all([dst, moved]), crs) > 1:
        return "breaks_contiguity", "the target grid would not be one piece"
    cut = units.buildings_cut(moved) if units is not None else []
    if cut:
        return "splits_building", (f"building {', '.join(cut[:3])} has entrances on both sides: move its group of "
                                   "buildings (unit buildings) instead")
    return None


def move_options(engine: Engine, plan: dict, g: gpd.GeoDataFrame, code: str, to: str | None = None) -> list[dict]:
    """Every unit of grid *code* on its boundary with each neighbouring grid (or with *to*) of the same
    community: ``{from, to, unit, lon, lat, people, households, ok, reason, message, after: {code: people},
    geometry}``; allowed moves first. ``lon``/``lat`` is a point well inside the unit — what a move takes."""
    codes = list(g["code"])
    a = codes.index(code)
    src = g.geometry.iat[a]
    crs = local_metric_crs(g)
    locked = lambda i: "locked" in (g["flags"].iat[i] or [])  # noqa: E731
    neighbours = [i for i in range(len(g)) if i != a and (to is None or codes[i] == to)
                  and g["community"].iat[i] == g["community"].iat[a] and shapely.intersects(src, g.geometry.iat[i])
                  and shared_m(src, g.geometry.iat[i], crs) >= MIN_SHARED_M]
    if not neighbours:
        return []
    units = grid_units(engine, plan, src, crs)
    whole = shapely.area(src)
    per_block = np.bincount(units.unit_block, minlength=len(units.blocks)) if len(units.units) else []
    cands = []
    for k, blk in enumerate(units.blocks):
        if abs(shapely.area(blk) - whole) > 1e-6 * whole:  # the whole grid is a merge, not a move
            cands.append(("block", blk, units.block_label[k]))
    for k, u in enumerate(units.units):
        if len(units.blocks) == 1 or per_block[units.unit_block[k]] > 1:  # a block of one unit is listed once
            cands.append(("buildings", u, units.unit_label[k]))
    with engine.connect() as conn:
        ds = population_dataset(conn, plan["jurisdiction_id"], (plan["params"] or {}).get("population_dataset"))
        out = []
        for b in neighbours:
            dst = g.geometry.iat[b]
            lock = next((i for i in (a, b) if locked(i)), None)
            for kind, piece, (lon, lat) in cands:
                if shared_m(piece, dst, crs) < MIN_SHARED_M:
                    continue
                rest, moved = carve(src, piece, crs)
                why = (("locked", f"grid {codes[lock]} is locked; unlock it first") if lock is not None
                       else check_move(src, dst, moved, rest, crs, units))
                # counted as the live figures of the edit will be: each grid alone, the pair in code order
                (n_moved,), (h_moved,) = count_residents(conn, [moved], ds)
                pair = sorted([(code, rest), (codes[b], shapely.union_all([dst, moved]))])
                after, _ = count_residents(conn, [x for _, x in pair], ds)
                out.append({"from": code, "to": codes[b], "unit": kind, "lon": lon, "lat": lat, "ok": why is None,
                            "reason": why[0] if why else None, "message": why[1] if why else None,
                            "people": int(n_moved), "households": int(h_moved),
                            "after": {c: int(n) for (c, _), n in zip(pair, after)},
                            "geometry": shapely.geometry.mapping(moved)})
    out.sort(key=lambda o: (not o["ok"], o["to"], o["unit"] != "block", -o["people"]))
    return out
