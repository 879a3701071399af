"""Public entry point: :func:`partition` a jurisdiction into grids → :class:`Plan`.

Pipeline::

    population (+ streets, communities, special units)
      ── atoms ──────── street blocks + population      (geo.partition.blocks / .population)
      │                 or the population polygons themselves (census blocks, cells)
      ── split ──────── atoms above max_pop cut into pieces (geo.partition.split,
      │                 fallback: split_polygon_by_area), along the lines inside them
      ── adjacency ──── rook-by-length graph, narrow gaps bridged   (geo.partition.adjacency)
      │                 + the part of each shared edge off the streets (off_street_lengths)
      ── regions ────── contiguous, compact, balanced regions       (geo.partition.regions)
      │                 or a stable re-draw of a previous plan      (geo.partition.redraw);
      │                 boundaries off the streets cost extra
      ── refine ─────── communities left infeasible: their blocks cut into groups of
      │                 250–600 (then 100–300, 50–150) people and solved again
      │                 (refine_infeasible)
      ── grids ──────── dissolve, codes and names                   (geo.partition.codes)
      ── report ─────── quality report                              (geo.partition.quality)
                        + no building split between grids           (buildings_across_grids)

Atoms are worked on in a metric CRS (the input's when it is projected in
metres, else the local UTM zone); grids are returned in the CRS of the
population input.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from geo.crs import as_geoseries, local_metric_crs

from .adjacency import build_adjacency
from .population import largest_remainder
from .codes import DEFAULT_PREFIX, assign_codes, check_code_capacity
from .quality import coverage_union, quality_report
from .regions import RegionBuilder

__all__ = [
    "Plan",
    "partition",
    "atoms_from_polygons",
    "split_polygon_by_area",
    "split_atoms_by_area",
    "build_grids",
    "buildings_across_grids",
    "off_street_lengths",
    "refine_infeasible",
    "metric_crs",
    "ATOM_CONTRACT",
    "GRID_LEVEL",
]

#: Columns every atoms frame carries (plus ``geometry``).
ATOM_CONTRACT = ["people", "households", "community", "special", "special_name", "block", "building_split"]

#: ``level`` of the grids made here: 1 = basic grid (基础网格). Sub-grids
#: (微网格, e.g. from village groups) would get level 2.
GRID_LEVEL = 1


class Plan:
    """A grid plan: grids, atoms and the quality report.

    Attributes
    ----------
    grids : GeoDataFrame
        One row per grid, in the population input's CRS: ``code`` (15
        digits), ``name``, ``kind`` (``standard``/``exclusive``/``rural``),
        ``level``, ``people``, ``households``, ``community``, ``flags``
        (``"; "``-joined reasons a grid may be out of range, ``""`` for none)
        and ``geometry`` (the dissolve of its atoms).
    atoms : GeoDataFrame
        The atoms (metric CRS) with the ``grid`` code of each.
    report : dict
        :func:`geo.partition.quality.quality_report` plus ``engine`` (stage
        timings), ``atoms`` (how atoms were made) and ``redraw`` when a
        previous plan was given.
    params : dict
        The parameters used.
    """

    def __init__(self, grids: gpd.GeoDataFrame, atoms: gpd.GeoDataFrame, report: dict, params: dict):
        self.grids = grids
        self.atoms = atoms
        self.report = report
        self.params = params

    def __repr__(self) -> str:
        r = self.report.get("range", {})
        return (f"Plan({len(self.grids)} grids, {r.get('in_range_share', float('nan')):.1%} in "
                f"[{self.params.get('min_pop')}, {self.params.get('max_pop')}])")

    def summary(self) -> str:
        """Human-readable summary of the report."""
        from .quality import format_report

        return format_report(self.report)


# --------------------------------------------------------------------------- CRS helpers


def metric_crs(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> CRS:
    """The CRS to work in: the input's when projected in metres, else its UTM zone."""
    crs = gdf.crs
    if crs is None:
        raise ValueError("the input has no CRS")
    if crs.is_projected:
        units = {a.unit_name for a in crs.axis_info}
        if units <= {"metre", "meter"}:
            return crs
    return local_metric_crs(gdf)


def _as_gs(obj: Any, crs) -> gpd.GeoSeries | None:
    return None if obj is None else as_geoseries(obj, crs)


# --------------------------------------------------------------------------- atoms


def _int_col(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.zeros(len(df), dtype=np.int64)
    v = pd.to_numeric(df[col], errors="coerce").fillna(0).to_numpy(dtype=float)
    v = np.where(v > 0, v, 0.0)
    if np.all(v == np.floor(v)):
        return v.astype(np.int64)
    return largest_remainder(v, int(round(v.sum())))


def atoms_from_polygons(population: gpd.GeoDataFrame, people: str = "people", households: str = "households",
                        crs: Any = None) -> gpd.GeoDataFrame:
    """The trivial adapter: population polygons (census blocks, cells) as atoms.

    Parameters
    ----------
    population : GeoDataFrame
        Polygons with a *people* column and optionally *households* (any CRS).
    people, households : str
        Column names.
    crs : optional
        Metric CRS to project to (default :func:`metric_crs`).

    Returns
    -------
    GeoDataFrame
        The atoms contract (:data:`ATOM_CONTRACT`), RangeIndex, metric CRS;
        ``block`` is the input row number, the other columns are empty.
    """
    if people not in population.columns:
        raise ValueError(f"population needs a {people!r} column")
    target = crs or metric_crs(population)
    g = population.to_crs(target)
    geoms = shapely.make_valid(np.asarray(g.geometry.values))
    n = len(g)
    return gpd.GeoDataFrame(
        {
            "people": _int_col(g, people),
            "households": _int_col(g, households),
            "community": pd.Series([None] * n, dtype=object),
            "special": pd.Series([None] * n, dtype=object),
            "special_name": pd.Series([None] * n, dtype=object),
            "block": np.arange(n, dtype=np.int64),
            "building_split": np.zeros(n, dtype=bool),
        },
        geometry=geoms,
        crs=target,
    )


def split_polygon_by_area(geom, people: int, households: int = 0, n: int | None = None,
                          target: float = 1500.0) -> list[tuple[Any, int, int]]:
    """Cut a polygon into *n* equal-area strips along its long axis.

    Fallback for an atom above ``max_pop`` when only polygons are known
    (no buildings): the strips run across the long axis of the minimum
    rotated rectangle, and people and households are shared by area
    (largest remainder, totals kept).

    Parameters
    ----------
    geom : Polygon or MultiPolygon (metric CRS)
    people, households : int
        Totals to share.
    n : int, optional
        Number of pieces; default ``ceil(people / target)``.
    target : float
        Preferred piece population.

    Returns
    -------
    list of (geometry, people, households)
    """
    if n is None:
        n = max(1, math.ceil(people / target))
    if n <= 1 or geom.is_empty:
        return [(geom, int(people), int(households))]
    rect = shapely.minimum_rotated_rectangle(geom)
    xy = np.asarray(rect.exterior.coords)[:4]
    e1, e2 = xy[1] - xy[0], xy[2] - xy[1]
    axis = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    u = axis / np.hypot(*axis)
    v = np.array([-u[1], u[0]])
    coords = shapely.get_coordinates(geom)
    t = coords @ u
    s = coords @ v
    t0, t1 = t.min() - 1.0, t.max() + 1.0
    s0, s1 = s.min() - 1.0, s.max() + 1.0
    total = geom.area

    def band(a: float, b: float):
        pts = [a * u + s0 * v, b * u + s0 * v, b * u + s1 * v, a * u + s1 * v]
        return shapely.Polygon(pts)

    cuts = [t0]
    for k in range(1, n):
        want = total * k / n
        lo, hi = cuts[-1], t1
        for _ in range(50):  # bisection on the cut position (area is monotone in it)
            mid = (lo + hi) / 2.0
            if shapely.intersection(geom, band(t0, mid)).area < want:
                lo = mid
            else:
                hi = mid
        cuts.append((lo + hi) / 2.0)
    cuts.append(t1)
    pieces = [shapely.intersection(geom, band(cuts[k], cuts[k + 1])) for k in range(n)]
    pieces = [shapely.make_valid(p) for p in pieces]
    areas = np.array([p.area for p in pieces])
    pp = largest_remainder(areas, int(people))
    hh = largest_remainder(areas, int(households))
    return [(p, int(a), int(b)) for p, a, b in zip(pieces, pp, hh) if not p.is_empty]


def split_atoms_by_area(atoms: gpd.GeoDataFrame, max_pop: float, target: float) -> gpd.GeoDataFrame:
    """Replace atoms above *max_pop* (not special, not building) by area strips.

    Returns
    -------
    GeoDataFrame
        Same columns, RangeIndex; pieces keep their atom's ``block``,
        ``community`` and other attributes.
    """
    special = atoms["special"].notna() if "special" in atoms.columns else pd.Series(False, index=atoms.index)
    bsplit = atoms["building_split"].astype(bool) if "building_split" in atoms.columns else special & False
    big = (atoms["people"] > max_pop) & ~special & ~bsplit
    if not big.any():
        return atoms.reset_index(drop=True)
    rows = []
    for k in np.flatnonzero(big.to_numpy()):
        row = atoms.iloc[k]
        for geom, p, h in split_polygon_by_area(row.geometry, int(row["people"]), int(row.get("households", 0)),
                                                target=target):
            r = row.copy()
            r["people"], r["households"] = p, h
            r[atoms.geometry.name] = geom
            rows.append(r)
    pieces = gpd.GeoDataFrame(rows, columns=atoms.columns, crs=atoms.crs, geometry=atoms.geometry.name)
    out = pd.concat([atoms[~big.to_numpy()], pieces], ignore_index=True)
    out = gpd.GeoDataFrame(out, geometry=atoms.geometry.name, crs=atoms.crs)
    out = out.sort_values("block", kind="stable").reset_index(drop=True)
    for c in ("people", "households"):
        out[c] = out[c].astype(np.int64)
    return out


def _ensure_contract(atoms: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    atoms = atoms.reset_index(drop=True)
    n = len(atoms)
    for c in ("community", "special", "special_name"):
        if c not in atoms.columns:
            atoms[c] = pd.Series([None] * n, dtype=object)
    if "households" not in atoms.columns:
        atoms["households"] = np.zeros(n, dtype=np.int64)
    if "block" not in atoms.columns:
        atoms["block"] = np.arange(n, dtype=np.int64)
    if "building_split" not in atoms.columns:
        atoms["building_split"] = np.zeros(n, dtype=bool)
    return atoms


def _lattice_blocks(jur, crs, cell: float) -> gpd.GeoDataFrame:
    """Square cells of *cell* metres clipped to the jurisdiction (points without streets)."""
    minx, miny, maxx, maxy = jur.bounds
    xs = np.arange(minx, maxx + cell, cell)
    ys = np.arange(miny, maxy + cell, cell)
    gx, gy = np.meshgrid(xs[:-1], ys[:-1])
    boxes = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + cell, gy.ravel() + cell)
    clipped = shapely.intersection(boxes, jur)
    clipped = clipped[~shapely.is_empty(clipped) & (shapely.area(clipped) > 0)]
    return gpd.GeoDataFrame({"block": np.arange(len(clipped), dtype=np.int64)}, geometry=clipped, crs=crs)


def _split(atoms, points, min_pop, max_pop, target, internal_roads):
    """Split oversized atoms: geo.partition.split when available, else area strips."""
    try:
        from .split import split_oversized
    except ImportError:  # the other module is not there: area-proportional fallback
        return split_atoms_by_area(atoms, max_pop, target), {"method": "split_polygon_by_area"}, points
    out, rep = split_oversized(atoms, points, min_pop=int(min_pop), max_pop=int(max_pop), target=target,
                               internal_roads=internal_roads)
    info = rep.to_dict() if hasattr(rep, "to_dict") else {}
    info["method"] = "geo.partition.split.split_oversized"
    return out, info, (rep.points if points is not None else None)


def _make_atoms(population, jurisdiction, streets, communities, special, crs, min_pop, max_pop, target,
                internal_roads, lattice_cell, report):
    """Atoms (metric CRS) from whatever the caller gave."""
    types = set(population.geometry.geom_type.dropna().unique())
    is_points = types <= {"Point", "MultiPoint"}
    has_hh = "households" in population.columns
    jur_gs = _as_gs(jurisdiction, population.crs)
    points = None
    if streets is None and not is_points and jur_gs is None and communities is None and special is None:
        atoms = atoms_from_polygons(population, crs=crs)
        report["atoms"] = {"method": "population polygons as atoms"}
    else:
        from .population import assign_population

        if jur_gs is None:
            if is_points:
                raise ValueError("address points need a jurisdiction (or population polygons to take it from)")
            jur_gs = gpd.GeoSeries([shapely.union_all(np.asarray(population.to_crs(crs).geometry.values))], crs=crs)
        if streets is not None:
            from .blocks import street_blocks

            blocks = street_blocks(streets, jur_gs, crs=crs)
            method = "street blocks"
        elif not is_points:
            from .blocks import polygon_blocks

            blocks = polygon_blocks(population, jur_gs, crs=crs)
            method = "population polygons cut by communities / special units"
        else:
            jur = shapely.union_all(np.asarray(jur_gs.to_crs(crs).values))
            blocks = _lattice_blocks(jur, crs, lattice_cell)
            method = f"{lattice_cell:g} m lattice cells (no streets given)"
        atoms, prep = assign_population(blocks, population, by="people",
                                        households="households" if has_hh else None,
                                        communities=communities, special=special)
        points = prep.points if is_points else None
        report["atoms"] = {"method": method, "population": prep.to_dict() if hasattr(prep, "to_dict") else {}}
    atoms = _ensure_contract(atoms)
    atoms, split_info, points = _split(atoms, points, min_pop, max_pop, target, internal_roads)
    report["atoms"]["split"] = split_info
    atoms = _ensure_contract(atoms)
    if atoms.crs is None or not atoms.crs.equals(crs):
        atoms = atoms.to_crs(crs)
    report["atoms"]["n_atoms"] = int(len(atoms))
    return atoms, jur_gs, points


def _line_array(*sources: Any, crs: Any = None, assume: Any = None) -> np.ndarray:
    """All line geometries of *sources* (GeoDataFrame / GeoSeries / arrays / None) in *crs*.

    Sources without a CRS are taken to be in *assume* (default *crs*).
    """
    out = []
    for src in sources:
        if src is None:
            continue
        s = _as_gs(src, assume if assume is not None else crs)
        if crs is not None and s.crs is not None:
            s = s.to_crs(crs)
        g = np.asarray(s.values, dtype=object)
        out.append(g[~shapely.is_missing(g)])
    return np.concatenate(out) if out else np.zeros(0, dtype=object)


def off_street_lengths(atoms: gpd.GeoDataFrame, adj, lines: np.ndarray, tol: float = 2.0,
                       step: float = 5.0) -> np.ndarray:
    """Per adjacency edge, the length of the shared boundary that does not run along *lines*.

    Only edges between pieces of one street block (same ``block``) can be
    off the streets: blocks meet along street centerlines by construction.
    The shared boundary is cut into pieces of at most *step* metres and a
    piece whose midpoint lies within *tol* of a line counts as on a street,
    as in :func:`geo.partition.quality.quality_report`.

    Returns
    -------
    ndarray of float, one value per edge of *adj* (0 for bridged edges).
    """
    from .quality import _explode_segments

    out = np.zeros(adj.n_edges)
    block = atoms["block"].to_numpy()
    idx = np.flatnonzero((block[adj.i] == block[adj.j]) & ~adj.bridged & (adj.length > 0))
    if idx.size == 0:
        return out
    g = np.asarray(atoms.geometry.values, dtype=object)
    bnd = shapely.boundary(g)
    a, b = adj.i[idx], adj.j[idx]
    shared = shapely.intersection(bnd[a], shapely.buffer(bnd[b], 1e-3, quad_segs=1))
    shared = shapely.segmentize(shared, step)
    parts, owner = shapely.get_parts(shared, return_index=True)
    lines_ok = shapely.get_type_id(parts) == 1
    parts, owner = parts[lines_ok], owner[lines_ok]
    if parts.size == 0:
        return out
    coords, k = shapely.get_coordinates(parts, return_index=True)
    same = k[1:] == k[:-1]
    segs = shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1))
    seg_owner = owner[k[:-1][same]]
    w = shapely.length(segs)
    on = np.zeros(segs.size, dtype=bool)
    ln = _explode_segments(np.asarray(lines, dtype=object)) if len(lines) else np.zeros(0, dtype=object)
    if ln.size:
        mid = shapely.line_interpolate_point(segs, 0.5, normalized=True)
        on[shapely.STRtree(ln).query(mid, predicate="dwithin", distance=tol)[0]] = True
    out[idx] = np.bincount(seg_owner, weights=np.where(on, 0.0, w), minlength=idx.size)
    return out


#: Group sizes (shares of ``min_pop``: smallest, largest, preferred) of the successive refinements of
#: communities that cannot be divided legally: first street blocks cut into groups of 250–600 people
#: (1,000–2,000 grids), then, where that is still not enough (every block already small, e.g. the
#: natural villages of a village, or a tight total), groups of 100–300 and 50–150.
REFINE_LEVELS = ((0.25, 0.6, 0.4), (0.1, 0.3, 0.2), (0.05, 0.15, 0.1))


def refine_infeasible(atoms: gpd.GeoDataFrame, points: gpd.GeoDataFrame | None, labels: np.ndarray,
                      flags: list[list[str]], min_pop: float, internal_roads: Any = None,
                      max_pop: float | None = None, level: tuple[float, float, float] = REFINE_LEVELS[0],
                      adjacency=None):
    """Cut the street blocks of communities that could not be divided legally into building groups.

    Whole street blocks are the preferred bricks (grid edges on streets), but
    blocks of ~1,000–1,500 people can leave a community with no legal
    combination. There, and only there, every block with address points is
    cut into groups of whole buildings of about ``level × min_pop`` people
    (default ``0.25–0.6``; without address points, into pieces of that
    population by area), along the roads inside the blocks where possible,
    so the engine can balance; the engine still prefers block edges (see
    ``off_street`` in :class:`~geo.partition.regions.RegionBuilder`). Never
    splits a building, a special unit or a building atom. Without
    communities the infeasible regions and their neighbours (*adjacency*)
    are cut.

    Returns
    -------
    (atoms, info, points) or None when nothing was infeasible or nothing could
    be cut finer. *points* carry the ``atom`` (position in the new atoms) of
    each point when they came with one.
    """
    from .regions import FLAG_INFEASIBLE

    bad = np.array([FLAG_INFEASIBLE in f for f in flags])
    if not bad.any():
        return None
    in_bad = bad[labels]
    comm = atoms["community"].to_numpy(dtype=object)
    if any(c is not None for c in comm[in_bad]):
        targets = {c for c in comm[in_bad] if c is not None}
        mask = np.array([c in targets for c in comm])
    else:
        mask = in_bad.copy()
        if adjacency is not None:  # the neighbouring regions too: the fix may need their atoms
            near = np.unique(np.concatenate([labels[adjacency.j[in_bad[adjacency.i]]],
                                             labels[adjacency.i[in_bad[adjacency.j]]]]))
            mask |= np.isin(labels, near)
    lo, hi_g, tg = level
    mask &= atoms["special"].isna().to_numpy() & ~atoms["building_split"].to_numpy(dtype=bool)
    mask &= atoms["people"].to_numpy() > int(min_pop * hi_g)  # only what can be cut finer
    if not mask.any():
        return None
    try:
        from .split import split_oversized
    except ImportError:
        return None
    sub = atoms[mask].reset_index(drop=True)
    n = len(atoms)
    keep_pos = np.full(n, -1, dtype=np.int64)  # old atom -> position in the result
    keep_pos[~mask] = np.arange(int((~mask).sum()))
    sub_pos = np.full(n, -1, dtype=np.int64)
    sub_pos[mask] = np.arange(int(mask.sum()))
    pts = None
    if points is not None:
        if "atom" in points.columns:  # the atom of each point, as the engine counted it
            pa = points["atom"].to_numpy(dtype=np.int64)
            inside = (pa >= 0) & (pa < n)
            in_sub = inside & mask[pa.clip(0, n - 1)]
            pts = points[in_sub].assign(atom=sub_pos[pa[in_sub]])
        else:
            pts = points[points.geometry.intersects(shapely.union_all(np.asarray(sub.geometry.values)))]
    fine, rep = split_oversized(sub, pts, min_pop=int(min_pop * lo), max_pop=int(min_pop * hi_g),
                                target=min_pop * tg, internal_roads=internal_roads)
    # a building above the group size is indivisible but not a grid of its own: only one above the
    # grid maximum is (split_oversized marks every building above *its* max_pop as building_split)
    hi = float(max_pop) if max_pop is not None else 2.0 * float(min_pop)
    fine["building_split"] = fine["building_split"].to_numpy(dtype=bool) & (fine["people"].to_numpy() > hi)
    out = pd.concat([atoms[~mask], fine], ignore_index=True)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=atoms.crs)
    info = {"reason": "communities with no legal division into whole street blocks",
            "communities": sorted(str(c) for c in set(comm[mask]) if c is not None),
            "atoms_cut": int(mask.sum()), "pieces": int(len(fine)),
            "group_people": [int(min_pop * lo), int(min_pop * hi_g)]}
    new_points = points
    if points is not None and "atom" in points.columns and rep.points is not None:
        pa = points["atom"].to_numpy(dtype=np.int64)
        inside = (pa >= 0) & (pa < n)
        new_atom = np.where(inside, keep_pos[pa.clip(0, n - 1)], -1)
        offset = int((~mask).sum())
        fa = rep.points["atom"].to_numpy(dtype=np.int64)
        new_atom[np.flatnonzero(in_sub)] = np.where(fa >= 0, fa + offset, -1)
        new_points = points.assign(atom=new_atom)
    return _ensure_contract(out), info, new_points


def buildings_across_grids(points: gpd.GeoDataFrame, atoms: gpd.GeoDataFrame, building: str = "building") -> dict:
    """Check that no building (楼栋) is split between grids.

    Every address point is taken to the atom it was counted in (its
    ``atom`` column, as the pipeline keeps it; located in the atoms when
    absent), atoms carry the ``grid`` of each, and the points sharing a
    *building* id must all be in one grid.

    Returns
    -------
    dict
        ``n_buildings``, ``split_between_grids`` (buildings whose points lie
        in more than one grid; 0 is the rule) and up to 20 ``examples``.
    """
    from .population import locate_points

    if points is None or building not in points.columns or "grid" not in atoms.columns:
        return {"n_buildings": 0, "split_between_grids": 0, "examples": []}
    pts = points.to_crs(atoms.crs) if points.crs is not None else points
    if "atom" in pts.columns:  # where the engine counted each point
        where = pts["atom"].to_numpy(dtype=np.int64)
        where = np.where(where < len(atoms), where, -1)
    else:
        where, _, _ = locate_points(np.asarray(pts.geometry.values, dtype=object),
                                    np.asarray(atoms.geometry.values, dtype=object), snap_distance=np.inf)
    grid = np.where(where >= 0, atoms["grid"].to_numpy(dtype=object)[where.clip(0)], None)
    df = pd.DataFrame({"b": pts[building].to_numpy(dtype=object), "g": grid}).dropna(subset=["b"])
    n = df.groupby("b")["g"].nunique()
    bad = n[n > 1]
    return {"n_buildings": int(n.size), "split_between_grids": int(bad.size),
            "examples": [str(b) for b in bad.index[:20]]}


# --------------------------------------------------------------------------- grids


def _dissolve(geoms: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Union of the atoms of each region 0..k-1 (coverage union when valid)."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    out = np.empty(k, dtype=object)
    for r in range(k):
        members = geoms[order[bounds[r]:bounds[r + 1]]]
        if members.size == 1:
            out[r] = members[0]
            continue
        out[r] = fill_pinholes(coverage_union(members))
    return out


def fill_pinholes(geom, max_area: float = 1.0):
    """Drop interior rings smaller than *max_area* (m²): rounding gaps between atoms, not real holes.

    A grid enclosing another grid keeps that hole (it is far larger); needle-thin gaps left where
    neighbouring atoms' edges do not meet exactly would otherwise show as specks inside the grid.
    """
    def fix(poly):
        keep = [r for r in poly.interiors if shapely.Polygon(r).area >= max_area]
        return poly if len(keep) == len(poly.interiors) else shapely.Polygon(poly.exterior, keep)

    if geom.geom_type == "Polygon":
        return fix(geom)
    if geom.geom_type == "MultiPolygon":
        return shapely.MultiPolygon([fix(p) for p in geom.geoms])
    return geom


def build_grids(atoms: gpd.GeoDataFrame, labels: np.ndarray, kinds: list[str], flags: list[list[str]],
                communities: gpd.GeoDataFrame | None = None, previous: gpd.GeoDataFrame | None = None,
                prefix: str = DEFAULT_PREFIX, jurisdiction_name: str = "") -> gpd.GeoDataFrame:
    """Dissolve atoms into grids and give them codes and names.

    Parameters
    ----------
    atoms : GeoDataFrame
        Atoms (metric CRS) with the atoms contract.
    labels : ndarray of int
        Region ``0..k-1`` of each atom.
    kinds, flags : list
        Per region: ``"standard"``/``"exclusive"`` and reasons lists.
    communities : GeoDataFrame, optional
        ``code``, ``name`` and optional ``rural`` of the communities.
    previous : GeoDataFrame, optional
        Previous grids with ``code`` (codes are carried, see
        :func:`geo.partition.codes.assign_codes`).
    prefix, jurisdiction_name : str
        Code prefix and name where no community is known.

    Returns
    -------
    GeoDataFrame
        Grid columns (see :class:`Plan`), metric CRS, sorted by code.
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = len(kinds)
    geoms = _dissolve(np.asarray(atoms.geometry.values), labels, k)
    people = np.bincount(labels, weights=atoms["people"].to_numpy(dtype=float), minlength=k)
    hh = np.bincount(labels, weights=atoms["households"].to_numpy(dtype=float), minlength=k)
    first = np.full(k, -1, dtype=np.int64)
    first[labels[::-1]] = np.arange(len(labels))[::-1]
    comm = [atoms["community"].iat[a] if a >= 0 else None for a in first]
    comm = [None if (c is None or (isinstance(c, float) and math.isnan(c))) else str(c) for c in comm]
    sp_name = []
    for r in range(k):
        a = first[r]
        nm = atoms["special_name"].iat[a] if a >= 0 else None
        if (nm is None or (isinstance(nm, float) and math.isnan(nm))) and a >= 0:
            nm = atoms["special"].iat[a]
        sp_name.append(None if nm is None or (isinstance(nm, float) and math.isnan(nm)) else str(nm))
    names: dict = {}
    rural: set = set()
    if communities is not None and len(communities):
        cc = communities["code"].astype(str)
        if "name" in communities.columns:
            names = dict(zip(cc, communities["name"].astype(str)))
        if "rural" in communities.columns:
            rural = set(cc[communities["rural"].fillna(False).astype(bool).to_numpy()])
    out_kinds = []
    for r in range(k):
        kd = kinds[r]
        if kd == "standard" and comm[r] in rural:
            kd = "rural"
        out_kinds.append(kd)
    grids = gpd.GeoDataFrame(
        {
            "kind": out_kinds,
            "level": np.full(k, GRID_LEVEL, dtype=np.int64),
            "people": np.rint(people).astype(np.int64),
            "households": np.rint(hh).astype(np.int64),
            "community": pd.Series(comm, dtype=object),
            "flags": ["; ".join(f) for f in flags],
        },
        geometry=geoms,
        crs=atoms.crs,
    )
    codes = assign_codes(grids, community=comm, community_names=names, special_names=[
        sp_name[r] if kinds[r] == "exclusive" else None for r in range(k)], kinds=out_kinds,
        previous=previous, prefix=prefix, jurisdiction_name=jurisdiction_name)
    grids.insert(0, "code", codes["code"].to_numpy())
    grids.insert(1, "name", codes["name"].to_numpy())
    grids["_label"] = np.arange(k)
    return grids


# --------------------------------------------------------------------------- main


def partition(
    jurisdiction: Any = None,
    population: gpd.GeoDataFrame | None = None,
    streets: Any = None,
    communities: gpd.GeoDataFrame | None = None,
    special: gpd.GeoDataFrame | None = None,
    min_pop: int = 1000,
    max_pop: int = 2000,
    by: str = "people",
    previous: Any = None,
    seed: int = 0,
    progress: Callable[[str, float], None] | None = None,
    *,
    target: float | None = None,
    gap_tol: float = 20.0,
    prefix: str = DEFAULT_PREFIX,
    jurisdiction_name: str = "",
    stable: bool = True,
    internal_roads: Any = None,
    lattice_cell: float = 100.0,
    atoms: gpd.GeoDataFrame | None = None,
) -> Plan:
    """Divide a jurisdiction into grids of ``min_pop``–``max_pop`` residents.

    Parameters
    ----------
    jurisdiction : geometry, GeoSeries or GeoDataFrame, optional
        Area to divide (default: union of the population polygons). A bare
        geometry is taken to be in the population's CRS.
    population : GeoDataFrame
        Polygons (census blocks, cells) or address points, any CRS, with a
        ``people`` column; optional ``households``; for points an optional
        ``building`` id (points sharing it are never split between grids).
    streets : GeoDataFrame or GeoSeries of lines, optional
        Street centerlines: grids are then unions of street blocks (or of
        pieces of oversized blocks).
    communities : GeoDataFrame, optional
        ``code`` (12 digits), ``name``, optional ``rural`` (bool). Grids never
        cross communities and are numbered per community.
    special : GeoDataFrame, optional
        Special units ``id``/``name``/``kind``; each becomes one exclusive
        grid (专属网格) whatever its population.
    min_pop, max_pop : int
        Allowed grid population.
    by : {"people", "households"}
        What is balanced.
    previous : Plan or GeoDataFrame, optional
        Previous plan (or its grids, with ``code``). With ``stable=True`` the
        plan is re-drawn from it (:func:`geo.partition.redraw.redraw`:
        in-range grids are kept); codes are carried over either way.
    seed : int
        Seed; the result is deterministic for a given seed.
    progress : callable(stage: str, fraction: float), optional
        Progress callback (e.g. for a CLI progress bar).
    target : float, optional
        Preferred grid population, default ``(min_pop + max_pop) / 2``.
    gap_tol : float
        Pieces of territory closer than this (m) count as adjacent.
    prefix : str
        12-digit code prefix where no community is known.
    jurisdiction_name : str
        Name prefix where no community name is known.
    stable : bool
        With *previous*: re-draw (True) or compute from scratch (False).
    internal_roads : optional
        Estate roads (lines) not among *streets*. Cuts through a street
        block (:func:`geo.partition.split.split_oversized`, the refinement of
        infeasible communities) follow the lines inside it: these and every
        street that ends inside the block (estate roads, cul-de-sacs, spurs).
        They count as streets for the grid boundary (the report's
        ``streets`` share) and grids prefer them to cuts across a block.
    lattice_cell : float
        Cell size (m) of the lattice used as blocks for points without streets.
    atoms : GeoDataFrame, optional
        Ready atoms (the atoms contract, metric CRS); skips atom building.

    Returns
    -------
    Plan
    """
    t0 = time.perf_counter()
    if min_pop > max_pop:
        raise ValueError(f"min_pop ({min_pop}) is larger than max_pop ({max_pop})")
    if by not in ("people", "households"):
        raise ValueError("by must be 'people' or 'households'")
    if population is None and atoms is None:
        raise ValueError("population is required")
    target = float(target) if target else (min_pop + max_pop) / 2.0

    def report_progress(stage: str, frac: float) -> None:
        if progress is not None:
            progress(stage, frac)

    report: dict[str, Any] = {}
    timings: dict[str, float] = {}
    out_crs = population.crs if population is not None else atoms.crs
    if out_crs is None:
        raise ValueError("population has no CRS")

    report_progress("atoms", 0.0)
    crs = metric_crs(population if atoms is None else atoms)
    # every line is a street for the grid boundary: block edges, estate roads, dead-end lanes, spurs
    # (estate roads among *streets* do not bound blocks, see blocks.NON_BLOCK_HIGHWAYS and the synthetic data)
    street_lines = _line_array(streets, internal_roads, crs=crs, assume=out_crs) \
        if (streets is not None or internal_roads is not None) else None
    # lines inside a block (estate roads, cul-de-sacs, spurs) guide cuts through it
    cut_roads = gpd.GeoSeries(street_lines, crs=crs) if street_lines is not None and len(street_lines) else None
    if atoms is None:
        atoms, jur_gs, points = _make_atoms(population, jurisdiction, streets, communities, special, crs, min_pop,
                                            max_pop, target, cut_roads, lattice_cell, report)
    else:
        atoms = _ensure_contract(atoms.to_crs(crs))
        jur_gs, points = _as_gs(jurisdiction, out_crs), None
        report["atoms"] = {"method": "given", "n_atoms": int(len(atoms))}
    timings["atoms"] = time.perf_counter() - t0
    report_progress("atoms", 1.0)
    # more grids than 15-digit codes can number under a prefix: fail now, not after the solve
    check_code_capacity(atoms[by].to_numpy(), atoms["community"].to_numpy(), atoms["special"].to_numpy(), min_pop,
                        max_pop, target, prefix)

    t1 = time.perf_counter()
    adj = build_adjacency(atoms, gap_tol=gap_tol)
    off = off_street_lengths(atoms, adj, street_lines) if street_lines is not None else None
    timings["adjacency"] = time.perf_counter() - t1
    report_progress("adjacency", 1.0)

    prev_grids = previous.grids if isinstance(previous, Plan) else previous
    t2 = time.perf_counter()

    def solve(atoms, adj, off):
        if prev_grids is not None and stable:
            from .redraw import previous_labels

            init = previous_labels(atoms, prev_grids)
            rb = RegionBuilder(atoms, adj, min_pop=min_pop, max_pop=max_pop, by=by, target=target, seed=seed,
                               initial_labels=init, progress=progress, off_street=off).solve()
            return rb, dict(getattr(rb, "repair_stats_", {}))
        return RegionBuilder(atoms, adj, min_pop=min_pop, max_pop=max_pop, by=by, target=target, seed=seed,
                             progress=progress, off_street=off).solve(), None

    rb, redraw_info = solve(atoms, adj, off)
    for level in REFINE_LEVELS:  # some community cannot be divided with whole blocks: cut them by building groups
        refined = refine_infeasible(atoms, points, rb.labels_, rb.region_flags_, min_pop, cut_roads, max_pop,
                                    level=level, adjacency=adj)
        if refined is None:  # nothing infeasible, or nothing to cut at this level: try the finer one
            continue
        atoms, info, points = refined
        report["atoms"].setdefault("refined", []).append(info)
        report["atoms"]["n_atoms"] = int(len(atoms))
        adj = build_adjacency(atoms, gap_tol=gap_tol)
        off = off_street_lengths(atoms, adj, street_lines) if street_lines is not None else None
        rb, redraw_info = solve(atoms, adj, off)
    timings["regions"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    report_progress("grids", 0.0)
    grids = build_grids(atoms, rb.labels_, rb.region_kind_, rb.region_flags_, communities, prev_grids, prefix,
                        jurisdiction_name)
    code_of = grids["code"].to_numpy()
    atoms = atoms.copy()
    atoms["grid"] = code_of[rb.labels_]
    grids = grids.drop(columns="_label").sort_values("code", kind="stable").reset_index(drop=True)
    timings["grids"] = time.perf_counter() - t3
    report_progress("grids", 1.0)

    t4 = time.perf_counter()
    jur_metric = jur_gs.to_crs(crs) if jur_gs is not None else None
    runtime = time.perf_counter() - t0
    rep = quality_report(grids, jur_metric, min_pop, max_pop, previous=prev_grids, runtime_s=runtime,
                         atoms=atoms, streets=None if street_lines is None else gpd.GeoSeries(street_lines, crs=crs),
                         by=by, gap_tol=gap_tol)
    if points is not None and "building" in points.columns:
        rep["buildings"] = buildings_across_grids(points, atoms)
    timings["report"] = time.perf_counter() - t4
    rep.update({k: v for k, v in report.items()})
    rep["engine"] = {"timings_s": {k: round(v, 4) for k, v in timings.items()},
                     "regions_timings_s": {k: round(v, 4) for k, v in rb.timings_.items()},
                     "n_atoms": int(len(atoms)), "n_edges": int(adj.n_edges), "bridged_edges": int(adj.bridged.sum())}
    if redraw_info is not None:
        rep["redraw"] = redraw_info
    rep["runtime_s"] = time.perf_counter() - t0
    grids = grids.to_crs(out_crs)
    params = {
        "min_pop": min_pop, "max_pop": max_pop, "target": target, "by": by, "seed": seed, "gap_tol": gap_tol,
        "prefix": prefix, "jurisdiction_name": jurisdiction_name, "stable": stable, "metric_crs": crs.to_string(),
        "streets": streets is not None, "communities": communities is not None, "special": special is not None,
        "previous": prev_grids is not None,
    }
    report_progress("done", 1.0)
    return Plan(grids, atoms, rep, params)
