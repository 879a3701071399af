"""Population onto street blocks: the *atoms* the regionalization groups into grids.

:func:`assign_population` takes street blocks (from
:mod:`geo.partition.blocks`) and

1. cuts them along community (社区) boundaries, so no atom straddles two
   communities;
2. cuts special units (schools, hospitals, markets, industrial parks…) out of
   them as atoms of their own;
3. puts population on the pieces: address points by point-in-polygon,
   census/grid polygons by areal weighting with largest-remainder rounding,
   so integer totals are preserved exactly.

Atoms contract (consumed by the regionalization)::

    people:int>=0  households:int>=0  community:str|None  special:str|None
    special_name:str|None  block:int  building_split:bool  geometry
    (metric CRS, RangeIndex 0..n-1, tiling the jurisdiction)

plus informative columns ``special_kind`` (str|None), ``area_m2`` and
``people_exact`` (float: the people before rounding, areal shares of polygon
units unrounded, so grid sums can be compared with an areal weighting of the
final grids without the rounding of every piece).
Missing values are ``None`` in object columns (not NaN).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import to_metric
from geo.partition.blocks import MICRO_AREA, _polygonal, dissolve_groups, merge_slivers, polygon_adjacency

__all__ = [
    "ATOM_COLUMNS",
    "PopulationReport",
    "assign_population",
    "cut_pieces",
    "largest_remainder",
    "largest_remainder_grouped",
    "locate_points",
    "one_atom_per_building",
]

#: Columns of an atoms frame, in order (``geometry`` last).
ATOM_COLUMNS = ["people", "households", "community", "special", "special_name", "special_kind",
                "block", "building_split", "area_m2", "people_exact", "geometry"]


# --------------------------------------------------------------------------- rounding


def largest_remainder(weights: Any, total: int) -> np.ndarray:
    """Split an integer *total* in proportion to *weights* (Hamilton's method).

    Parameters
    ----------
    weights : array-like of float >= 0
        Shares (need not sum to 1). All-zero weights split evenly.
    total : int
        The integer to distribute.

    Returns
    -------
    numpy.ndarray of int64
        Non-negative integers summing exactly to *total*. Ties in the
        remainders go to the earlier position.
    """
    w = np.asarray(weights, dtype=float)
    return largest_remainder_grouped(w, np.zeros(len(w), dtype=np.int64), np.array([total]))


def largest_remainder_grouped(weights: Any, group: Any, totals: Any) -> np.ndarray:
    """Vectorised :func:`largest_remainder` for many groups at once.

    Parameters
    ----------
    weights : array-like of float >= 0, length n
    group : array-like of int in ``0..g-1``, length n
        Group of each element.
    totals : array-like of int, length g
        Integer total of each group.

    Returns
    -------
    numpy.ndarray of int64, length n
        For every group the elements sum exactly to its total.
    """
    w = np.asarray(weights, dtype=float)
    g = np.asarray(group, dtype=np.int64)
    totals = np.asarray(totals, dtype=np.int64)
    n = len(w)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
    wsum = np.bincount(g, weights=w, minlength=len(totals))
    count = np.bincount(g, minlength=len(totals))
    even = wsum[g] <= 0
    share = np.where(even, 1.0 / np.maximum(count[g], 1), w / np.where(wsum[g] > 0, wsum[g], 1.0))
    exact = share * totals[g]
    base = np.floor(exact + 1e-9).astype(np.int64)
    base = np.minimum(base, totals[g])
    short = totals - np.bincount(g, weights=base, minlength=len(totals)).astype(np.int64)
    frac = exact - base
    # rank within group by remainder (desc), then position (asc)
    order = np.lexsort((np.arange(n), -frac, g))
    gs = g[order]
    start = np.r_[0, np.flatnonzero(gs[1:] != gs[:-1]) + 1]
    first = np.zeros(len(totals), dtype=np.int64)
    first[gs[start]] = start
    rank = np.arange(n) - first[gs]
    add = rank < short[gs]
    out = base.copy()
    out[order[add]] += 1
    return out


# --------------------------------------------------------------------------- points


def locate_points(points: Any, polygons: Any, *, snap_distance: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polygon of each point, deterministic on shared edges.

    Parameters
    ----------
    points : array of Point (same CRS as *polygons*)
    polygons : array of Polygon/MultiPolygon
        A coverage.
    building : str or None
        Building id column of the points: the points of one building all go
        to one atom (:func:`one_atom_per_building`), counted as
        ``points_moved_to_their_building``.
    snap_distance : float
        Points outside every polygon but within this distance (m) go to the
        nearest polygon. 0: never.

    Returns
    -------
    (index, on_edge, snapped) : numpy arrays
        ``index``: position of the polygon (lowest position when the point is
        on a shared edge or vertex), -1 when outside every polygon.
        ``on_edge``: True where the point touched more than one polygon.
        ``snapped``: True where the point was outside and snapped.
    """
    pts = np.asarray(points, dtype=object)
    polys = np.asarray(polygons, dtype=object)
    out = np.full(len(pts), -1, dtype=np.int64)
    on_edge = np.zeros(len(pts), dtype=bool)
    snapped = np.zeros(len(pts), dtype=bool)
    if len(pts) == 0 or len(polys) == 0:
        return out, on_edge, snapped
    tree = shapely.STRtree(polys)
    pi, gi = tree.query(pts, predicate="intersects")
    if len(pi):
        order = np.lexsort((gi, pi))
        pi, gi = pi[order], gi[order]
        first = np.r_[True, pi[1:] != pi[:-1]]
        out[pi[first]] = gi[first]
        hits = np.bincount(pi, minlength=len(pts))
        on_edge = hits > 1
    if snap_distance > 0:
        miss = np.flatnonzero((out < 0) & ~shapely.is_empty(pts))
        if len(miss):
            mi, mg = tree.query_nearest(pts[miss], max_distance=snap_distance, all_matches=True)
            if len(mi):
                order = np.lexsort((mg, mi))
                mi, mg = mi[order], mg[order]
                first = np.r_[True, mi[1:] != mi[:-1]]
                out[miss[mi[first]]] = mg[first]
                snapped[miss[mi[first]]] = True
    return out, on_edge, snapped


# --------------------------------------------------------------------------- cutting


def one_atom_per_building(atom: Any, building: Any, weights: Any = None) -> tuple[np.ndarray, int]:
    """Put every point of a building in one atom: the one holding most of its people.

    Address points of one building (楼栋) can fall on both sides of an atom
    edge (entrances geocoded onto the street centerline, a building across a
    community line). A building is never split, so its points all go to the
    atom holding the most of its *weights* (then the most points, then the
    lowest position). Points outside every atom (-1) stay outside.

    Parameters
    ----------
    atom : array of int
        Atom of each point (-1 outside).
    building : array
        Building id of each point (None/NaN: a building of its own).
    weights : array of float, optional
        People per point (default 1).

    Returns
    -------
    (atom, moved)
        The new atom of each point and the number of points moved.
    """
    atom = np.asarray(atom, dtype=np.int64).copy()
    n = atom.size
    if n == 0:
        return atom, 0
    b = pd.Series(np.asarray(building, dtype=object))
    ok = b.notna().to_numpy() & (atom >= 0)
    if not ok.any():
        return atom, 0
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    df = pd.DataFrame({"b": b[ok].astype(str).to_numpy(), "a": atom[ok], "w": w[ok], "one": 1})
    many = df.groupby("b")["a"].transform("nunique").to_numpy() > 1
    if not many.any():
        return atom, 0
    sub = df[many]
    tot = sub.groupby(["b", "a"], sort=True).agg(w=("w", "sum"), k=("one", "sum")).reset_index()
    tot = tot.sort_values(["b", "w", "k", "a"], ascending=[True, False, False, True]).drop_duplicates("b")
    best = dict(zip(tot["b"], tot["a"]))
    pos = np.flatnonzero(ok)[many]
    new = np.array([best[x] for x in sub["b"]], dtype=np.int64)
    moved = int((atom[pos] != new).sum())
    atom[pos] = new
    return atom, moved


def _disjoint(geoms: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Make overlapping polygons disjoint: earlier in *order* wins the overlap."""
    geoms = np.asarray(geoms, dtype=object).copy()
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    rank = np.empty(len(geoms), dtype=np.int64)
    rank[order] = np.arange(len(order))
    keep = rank[j] < rank[i]  # j wins over i
    i, j = i[keep], j[keep]
    if len(i) == 0:
        return geoms
    orig = geoms.copy()
    for a in np.unique(i):
        winners = orig[j[i == a]]
        geoms[a] = _polygonal([shapely.difference(orig[a], shapely.union_all(winners))])[0]
    return geoms


def cut_pieces(pieces: gpd.GeoDataFrame, cutter: np.ndarray, *, label: str) -> gpd.GeoDataFrame:
    """Cut *pieces* along disjoint *cutter* polygons (an "identity" overlay).

    Parameters
    ----------
    pieces : GeoDataFrame
        Polygons with attributes (kept on every output piece).
    cutter : array of polygons
        Pairwise disjoint polygons, same CRS.
    label : str
        Output column holding the position of the cutter polygon each piece
        lies in (-1 outside every cutter).

    Returns
    -------
    GeoDataFrame
        Single-part pieces (MultiPolygons are exploded), RangeIndex.
    """
    cutter = np.asarray(cutter, dtype=object)
    geoms = np.asarray(pieces.geometry.values, dtype=object)
    tree = shapely.STRtree(cutter)
    pi, ci = tree.query(geoms, predicate="intersects")
    shapely.prepare(cutter)
    whole = shapely.covers(cutter[ci], geoms[pi]) if len(pi) else np.zeros(0, dtype=bool)
    inter = geoms[pi].copy()
    part = np.flatnonzero(~whole)
    if len(part):
        inter[part] = _polygonal(shapely.intersection(geoms[pi[part]], cutter[ci[part]]))
    ok = ~shapely.is_empty(inter) & (shapely.area(inter) >= MICRO_AREA)
    pi, ci, inter, whole = pi[ok], ci[ok], inter[ok], whole[ok]
    rest = geoms.copy()
    rest[pi[whole]] = shapely.Polygon()
    # pieces cut by one or more cutters: the remainder outside all of them
    cut = ~np.isin(pi, pi[whole])
    order = np.argsort(pi[cut], kind="stable")
    cp, cg = pi[cut][order], inter[cut][order]
    if len(cp):
        starts = np.r_[0, np.flatnonzero(cp[1:] != cp[:-1]) + 1]
        ends = np.r_[starts[1:], len(cp)]
        for a, b in zip(starts, ends):
            p = cp[a]
            rest[p] = _polygonal([shapely.difference(geoms[p], shapely.union_all(cg[a:b]))])[0]
    rok = ~shapely.is_empty(rest) & (shapely.area(rest) >= MICRO_AREA)
    src = np.concatenate([pi, np.flatnonzero(rok)])
    lab = np.concatenate([ci, np.full(rok.sum(), -1)])
    out_geoms = np.concatenate([inter, rest[rok]])
    out = pieces.iloc[src].reset_index(drop=True)
    out[label] = lab
    out = out.set_geometry(out_geoms, crs=pieces.crs)
    out = out.explode(index_parts=False, ignore_index=True)
    # needles of overlay noise (pieces of a few mm² where boundaries almost coincide)
    return out[out.area >= MICRO_AREA].reset_index(drop=True)


def _merge_piece_slivers(pieces: gpd.GeoDataFrame, same: list[str], *, min_area: float,
                         sliver_width: float) -> tuple[gpd.GeoDataFrame, int, float]:
    """Merge sliver pieces into a neighbour that agrees on every column in *same*."""
    geoms = np.asarray(pieces.geometry.values, dtype=object)
    if len(geoms) < 2 or (min_area <= 0 and sliver_width <= 0):
        return pieces, 0, 0.0
    i, j, s = polygon_adjacency(geoms)
    ok = np.ones(len(i), dtype=bool)
    for col in same:
        v = pieces[col].to_numpy()
        ok &= v[i] == v[j]
    labels = merge_slivers(geoms, min_area=min_area, sliver_width=sliver_width,
                           min_elongation=1.0, pairs=(i[ok], j[ok], s[ok]))
    moved = labels != np.arange(len(labels))
    if not moved.any():
        return pieces, 0, 0.0
    uniq, merged = dissolve_groups(geoms, labels)
    out = pieces.iloc[uniq].reset_index(drop=True).set_geometry(merged, crs=pieces.crs)
    return out, int(moved.sum()), float(shapely.area(geoms[moved]).sum())


def _overlap_areas(polys: np.ndarray, atoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (polygon, atom) with positive overlap area, and that area.

    Polygons lying inside one atom (the common case when population
    polygons are finer than blocks) skip the overlay.
    """
    tree = shapely.STRtree(atoms)
    qi, ai = tree.query(polys, predicate="intersects")
    if len(qi) == 0:
        return qi, ai, np.zeros(0)
    shapely.prepare(atoms)
    inside = shapely.covers(atoms[ai], polys[qi])
    whole = np.zeros(len(polys), dtype=bool)
    whole[qi[inside]] = True
    # a polygon covered by one atom overlaps no other atom (atoms do not overlap)
    keep = inside | ~whole[qi]
    qi, ai, inside = qi[keep], ai[keep], inside[keep]
    area = np.where(inside, shapely.area(polys[qi]), 0.0)
    rest = np.flatnonzero(~inside)
    if len(rest):
        area[rest] = shapely.area(shapely.intersection(polys[qi[rest]], atoms[ai[rest]]))
    ok = area > 0
    return qi[ok], ai[ok], area[ok]


# --------------------------------------------------------------------------- report


@dataclass
class PopulationReport:
    """What :func:`assign_population` did.

    All counts are plain ints/floats (JSON-ready through :meth:`to_dict`);
    ``points`` is the address-point frame with the ``atom`` each point went to
    (-1 outside), for :func:`geo.partition.split.split_oversized`.
    """

    people_in: int = 0
    people_out: int = 0
    households_in: int = 0
    households_out: int = 0
    n_points: int = 0
    points_on_edge: int = 0
    points_snapped: int = 0
    points_moved_to_their_building: int = 0
    points_outside: int = 0
    people_outside: int = 0
    households_outside: int = 0
    outside_ids: list = field(default_factory=list)
    n_polygons: int = 0
    polygons_outside: int = 0
    polygons_partly_outside: int = 0
    people_weighted: int = 0
    people_moved_by_weighting: int = 0
    moved_share: float = 0.0
    community_slivers_merged: int = 0
    community_sliver_area_m2: float = 0.0
    special_slivers_merged: int = 0
    special_sliver_area_m2: float = 0.0
    n_atoms: int = 0
    n_special_atoms: int = 0
    points: gpd.GeoDataFrame | None = None

    def to_dict(self) -> dict:
        """The report without the points frame."""
        d = {k: v for k, v in self.__dict__.items() if k != "points"}
        d["outside_ids"] = [x.item() if hasattr(x, "item") else x for x in self.outside_ids]
        return d


# --------------------------------------------------------------------------- main


def _int_column(df: pd.DataFrame, col: str | None, n: int) -> np.ndarray:
    """Column as non-negative int64 (missing column or NaN → 0); rounds non-integers."""
    if col is None or col not in df.columns:
        return np.zeros(n, dtype=np.int64)
    v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    v = np.where(np.isfinite(v) & (v > 0), v, 0.0)
    if np.any(v != np.floor(v)):
        # fractional input: round so that the (rounded) grand total is kept
        return largest_remainder(v, int(round(v.sum())))
    return v.astype(np.int64)


def _str_or_none(values: Any) -> np.ndarray:
    """Object array of str, with None for missing values (None, NaN, pd.NA)."""
    values = np.asarray(values, dtype=object)
    out = np.empty(len(values), dtype=object)
    for k, v in enumerate(values):
        out[k] = None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
    return out


def _obj_series(values: Any) -> pd.Series:
    """Object-dtype Series of str/None (pandas 3 would infer ``str`` and turn None into NaN)."""
    return pd.Series(_str_or_none(values), dtype=object)


def assign_population(
    blocks: gpd.GeoDataFrame,
    population: gpd.GeoDataFrame | None,
    *,
    by: str | None = "people",
    households: str | None = "households",
    communities: gpd.GeoDataFrame | None = None,
    community_col: str = "code",
    special: gpd.GeoDataFrame | None = None,
    snap_distance: float = 0.0,
    sliver_area: float = 50.0,
    sliver_width: float = 2.0,
    building: str | None = "building",
) -> tuple[gpd.GeoDataFrame, PopulationReport]:
    """Cut blocks into atoms and put population on them.

    Parameters
    ----------
    blocks : GeoDataFrame
        Street blocks tiling the jurisdiction (:func:`~geo.partition.blocks.street_blocks`),
        with an optional ``block`` id column (default: row number). A
        geographic CRS is projected with :func:`geo.crs.to_metric`.
    population : GeoDataFrame or None
        Address points (Point rows) and/or census or grid polygons (Polygon
        rows), any CRS, with a population column *by* and optionally
        *households*. Points are located in atoms (a point on a shared edge
        goes to the atom with the lowest index; points outside every atom are
        reported, never silently dropped). Polygons are spread over the atoms
        they overlap in proportion to the overlap area (normalised by the
        part of the polygon inside the blocks, so people of a polygon that
        sticks out of the jurisdiction stay in it) and rounded per polygon by
        largest remainder, so every polygon's integer total, and therefore
        the grand total, is kept exactly.
    by : str or None
        Population column; ``None`` counts every point as one person.
    households : str or None
        Households column (zeros when absent).
    communities : GeoDataFrame, optional
        Community (社区) polygons with a *community_col* code. Blocks are cut
        along their boundaries; pieces outside every community get ``None``.
        Overlapping communities are made disjoint (lower code wins).
    community_col : str
        Column of *communities* with the code.
    special : GeoDataFrame, optional
        Special units with ``id``, ``name`` and ``kind`` (school, hospital,
        market, industrial park…). Their areas are cut out as atoms of their
        own carrying ``special``/``special_name``/``special_kind``. Where
        special areas overlap, the smaller one wins.
    snap_distance : float
        Points outside every atom but within this distance (m) are put in
        the nearest atom (counted as ``points_snapped``). Default 0: reported
        as outside instead.
    sliver_area, sliver_width : float
        Pieces smaller than *sliver_area* (m²) or thinner than *sliver_width*
        (m, equivalent width) created by cutting along community or special
        boundaries that do not follow the streets exactly are merged into the
        neighbouring piece of the same block (for community cuts) or of the
        same block and community (for special cuts). Atoms therefore follow
        a community boundary up to such slivers.

    Returns
    -------
    atoms : GeoDataFrame
        Columns :data:`ATOM_COLUMNS` (metric CRS, RangeIndex).
    report : PopulationReport
    """
    if blocks.crs is None:
        raise ValueError("blocks have no CRS")
    blocks = to_metric(blocks)
    crs = blocks.crs
    geoms = np.asarray(blocks.geometry.values, dtype=object)
    block_id = blocks["block"].to_numpy(dtype=np.int64) if "block" in blocks.columns else np.arange(len(blocks))
    pieces = gpd.GeoDataFrame({"block": block_id}, geometry=geoms, crs=crs).explode(index_parts=False, ignore_index=True)
    report = PopulationReport()

    # -- communities
    if communities is not None and len(communities):
        com = communities.to_crs(crs)
        codes = _str_or_none(com[community_col].to_numpy())
        cg = _polygonal(shapely.make_valid(np.asarray(com.geometry.values, dtype=object)))
        cg = _disjoint(cg, np.argsort(np.array([c or "" for c in codes]), kind="stable"))
        pieces = cut_pieces(pieces, cg, label="_com")
        pieces["community"] = _obj_series(np.where(pieces["_com"].to_numpy() >= 0, codes[pieces["_com"].to_numpy()], None))
        pieces = pieces.drop(columns="_com")
        pieces, n, a = _merge_piece_slivers(pieces, ["block"], min_area=sliver_area, sliver_width=sliver_width)
        report.community_slivers_merged, report.community_sliver_area_m2 = n, a
    else:
        pieces["community"] = None

    # -- special units
    if special is not None and len(special):
        sp = special.to_crs(crs)
        sg = _polygonal(shapely.make_valid(np.asarray(sp.geometry.values, dtype=object)))
        sg = _disjoint(sg, np.argsort(shapely.area(sg), kind="stable"))
        sid = _str_or_none(sp["id"].to_numpy())
        sname = _str_or_none(sp["name"].to_numpy()) if "name" in sp.columns else np.full(len(sp), None, dtype=object)
        skind = _str_or_none(sp["kind"].to_numpy()) if "kind" in sp.columns else np.full(len(sp), None, dtype=object)
        pieces = cut_pieces(pieces, sg, label="_sp")
        k = pieces["_sp"].to_numpy()
        has = k >= 0
        pieces["special"] = _obj_series(np.where(has, sid[np.where(has, k, 0)], None))
        pieces["special_name"] = _obj_series(np.where(has, sname[np.where(has, k, 0)], None))
        pieces["special_kind"] = _obj_series(np.where(has, skind[np.where(has, k, 0)], None))
        pieces = pieces.drop(columns="_sp")
        pieces["_com_key"] = [c if c is not None else "\0" for c in _str_or_none(pieces["community"])]
        pieces, n, a = _merge_piece_slivers(pieces, ["block", "_com_key"], min_area=sliver_area,
                                            sliver_width=sliver_width)
        pieces = pieces.drop(columns="_com_key")
        report.special_slivers_merged, report.special_sliver_area_m2 = n, a
    else:
        pieces["special"] = None
        pieces["special_name"] = None
        pieces["special_kind"] = None

    # deterministic order: block, then north-west first
    cen = shapely.centroid(np.asarray(pieces.geometry.values, dtype=object))
    order = np.lexsort((shapely.get_x(cen), -np.round(shapely.get_y(cen), 3), pieces["block"].to_numpy()))
    pieces = pieces.iloc[order].reset_index(drop=True)
    atom_geoms = np.asarray(pieces.geometry.values, dtype=object)
    n_atoms = len(pieces)
    people = np.zeros(n_atoms, dtype=np.int64)
    hh = np.zeros(n_atoms, dtype=np.int64)
    exact = np.zeros(n_atoms, dtype=float)

    # -- population
    if population is not None and len(population):
        pop = population.to_crs(crs) if population.crs is not None else population.set_crs(crs)
        pop = pop[~pop.geometry.isna() & ~pop.geometry.is_empty]
        kind = shapely.get_type_id(np.asarray(pop.geometry.values, dtype=object))
        is_pt = np.isin(kind, (0,))
        is_poly = np.isin(kind, (3, 6))
        p_people = _int_column(pop, by, len(pop)) if by is not None else np.ones(len(pop), dtype=np.int64)
        p_hh = _int_column(pop, households, len(pop))
        report.people_in = int(p_people.sum())
        report.households_in = int(p_hh.sum())
        if (~is_pt & ~is_poly).any():
            raise ValueError("population geometries must be Points or Polygons "
                             f"(got type ids {sorted(set(kind[~is_pt & ~is_poly].tolist()))})")

        # points
        if is_pt.any():
            pts = pop.loc[is_pt]
            idx, on_edge, snapped = locate_points(np.asarray(pts.geometry.values, dtype=object), atom_geoms,
                                                  snap_distance=snap_distance)
            pp, ph = p_people[is_pt], p_hh[is_pt]
            if building and building in pts.columns:  # a building is never split between atoms
                idx, report.points_moved_to_their_building = one_atom_per_building(idx, pts[building], pp)
            inside = idx >= 0
            people += np.bincount(idx[inside], weights=pp[inside], minlength=n_atoms).astype(np.int64)
            exact += np.bincount(idx[inside], weights=pp[inside], minlength=n_atoms)
            hh += np.bincount(idx[inside], weights=ph[inside], minlength=n_atoms).astype(np.int64)
            report.n_points = int(len(pts))
            report.points_on_edge = int(on_edge.sum())
            report.points_snapped = int(snapped.sum())
            report.points_outside = int((~inside).sum())
            report.people_outside += int(pp[~inside].sum())
            report.households_outside += int(ph[~inside].sum())
            report.outside_ids = list(pts.index[~inside])
            report.points = pts.assign(atom=idx)

        # polygons: areal weighting
        if is_poly.any():
            polys = pop.loc[is_poly]
            pg = np.asarray(polys.geometry.values, dtype=object)
            pp, ph = p_people[is_poly], p_hh[is_poly]
            qi, ai, inter = _overlap_areas(pg, atom_geoms)
            covered = np.bincount(qi, weights=inter, minlength=len(pg))
            outside = covered <= 0
            alloc = largest_remainder_grouped(inter, qi, pp)
            alloc_h = largest_remainder_grouped(inter, qi, ph)
            people += np.bincount(ai, weights=alloc, minlength=n_atoms).astype(np.int64)
            # the unrounded areal share: grid counts are compared with verify's before rounding
            exact += np.bincount(ai, weights=pp[qi] * inter / np.maximum(covered[qi], 1e-12), minlength=n_atoms)
            hh += np.bincount(ai, weights=alloc_h, minlength=n_atoms).astype(np.int64)
            report.n_polygons = int(len(polys))
            report.polygons_outside = int(outside.sum())
            report.people_outside += int(pp[outside].sum())
            report.households_outside += int(ph[outside].sum())
            report.outside_ids += list(polys.index[outside])
            parea = shapely.area(pg)
            report.polygons_partly_outside = int(((covered > 0) & (covered < parea * (1 - 1e-6))).sum())
            # people moved: not in the block holding most of the polygon
            blk = pieces["block"].to_numpy()[ai]
            df = pd.DataFrame({"q": qi, "blk": blk, "area": inter, "n": alloc})
            byblk = df.groupby(["q", "blk"], sort=True).agg(area=("area", "sum"), n=("n", "sum")).reset_index()
            byblk = byblk.sort_values(["q", "area", "blk"], ascending=[True, False, True])
            main = byblk.groupby("q").head(1)
            report.people_weighted = int(pp[~outside].sum())
            report.people_moved_by_weighting = int(report.people_weighted - main["n"].sum())
            report.moved_share = (report.people_moved_by_weighting / report.people_weighted
                                  if report.people_weighted else 0.0)

    atoms = gpd.GeoDataFrame(
        {
            "people": people.astype(np.int64),
            "households": hh.astype(np.int64),
            "community": _obj_series(pieces["community"]),
            "special": _obj_series(pieces["special"]),
            "special_name": _obj_series(pieces["special_name"]),
            "special_kind": _obj_series(pieces["special_kind"]),
            "block": pieces["block"].to_numpy(dtype=np.int64),
            "building_split": np.zeros(n_atoms, dtype=bool),
            "area_m2": shapely.area(atom_geoms),
            "people_exact": exact,
        },
        geometry=atom_geoms,
        crs=crs,
    )
    report.people_out = int(atoms["people"].sum())
    report.households_out = int(atoms["households"].sum())
    report.n_atoms = n_atoms
    report.n_special_atoms = int(atoms["special"].notna().sum())
    return atoms, report
