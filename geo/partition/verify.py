"""Independent check of a grid plan from the published polygons and the raw input (:func:`verify`).

Nothing here reads the engine's internal labels: every figure is recomputed
from the final grid polygons and the input layers, so a plan can be checked
whoever made it (this engine, a planner's hand edits, another tool).

* **Counts.** Every address point goes to the grid whose polygon covers it;
  on an edge or vertex shared by several grids the one with the *smallest
  grid code* wins (the rule of :mod:`geo.api.services.lookup_index`, so a
  dispatcher's lookup and the plan's counts agree). Polygon units (census
  blocks, H3 cells) are spread over the grids by areal weighting (share of
  the unit's area inside each grid, normalised by its area inside all grids)
  summed per grid and rounded once per grid by largest remainder, so totals
  are kept exactly. The plan's claim per grid (its ``people`` column, or the
  unrounded sums the engine passes) is compared with the measured count before
  rounding: residents counted elsewhere are half the sum of absolute
  differences beyond a rounding allowance of 1 person per grid when polygon
  units are areally weighted (0 for address points).
* **Range** on the measured counts; out-of-range grids keep their flags as
  reasons (``exclusive unit``, ``building above max``, islands …).
* **Buildings.** Points sharing a building id must all lie in one grid;
  footprints (``buildings`` polygons) must not be crossed by a grid edge.
* **Pieces.** A grid whose parts are more than ``gap_tol`` apart is in pieces
  unless each part lies in a separate part of the territory (an island, flagged).
* **Coverage** (gaps, overlaps, area outside the jurisdiction), **enclosed**
  grids, **Polsby-Popper** compactness and the **street share** of the grid
  boundary (against the lines given as *streets*: pass the classes that made
  the blocks).

All areas and lengths are measured in one local metric CRS chosen once
(:func:`metric_crs`): the grids' CRS when it is projected in metres,
otherwise the UTM zone of their centre (a US-feet CRS is not metres).
"""

from __future__ import annotations

import math
import time
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from geo.crs import as_geoseries, local_metric_crs

from .population import largest_remainder
from .quality import (_enclosed, _flag_list, population_and_range, _street_share, coverage_union,
                      polsby_popper)

__all__ = ["verify", "measure_counts", "metric_crs", "INVARIANTS", "FLAG_ISLAND"]

#: Flag of a grid whose parts lie on separate parts of the territory (islands): allowed in pieces.
FLAG_ISLAND = "island"

#: Invariants a plan must meet to be stored (``report["invariants"]["failed"]`` names the broken ones).
INVARIANTS = ("residents counted in their grid", "buildings whole", "grids in one piece", "no overlaps")


def metric_crs(obj: gpd.GeoDataFrame | gpd.GeoSeries) -> CRS:
    """The one CRS to measure in: the input's when projected in metres, else its local UTM zone.

    Parameters
    ----------
    obj : GeoDataFrame or GeoSeries with a CRS

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    ValueError
        When *obj* has no CRS.
    """
    crs = obj.crs
    if crs is None:
        raise ValueError("the input has no CRS")
    if crs.is_projected:
        units = {a.unit_name for a in crs.axis_info}
        if units <= {"metre", "meter"}:
            return crs
    return local_metric_crs(obj)


def _sorted_codes(codes: np.ndarray) -> np.ndarray:
    """Rank of every grid code (0 = smallest), the lookup's tie order."""
    order = np.argsort(codes.astype(str), kind="stable")
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes))
    return rank


def locate_in_grids(points: np.ndarray, geoms: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Grid position covering each point; shared edges go to the smallest code; -1 outside every grid.

    Parameters
    ----------
    points : array of Point
    geoms : array of grid polygons (same CRS)
    rank : array of int
        Rank of each grid's code (:func:`_sorted_codes`).

    Returns
    -------
    ndarray of int64
    """
    out = np.full(len(points), -1, dtype=np.int64)
    if len(points) == 0 or len(geoms) == 0:
        return out
    pi, gi = shapely.STRtree(geoms).query(points, predicate="intersects")  # intersects a polygon == covered by it
    if len(pi):
        order = np.lexsort((rank[gi], pi))
        pi, gi = pi[order], gi[order]
        first = np.r_[True, pi[1:] != pi[:-1]]
        out[pi[first]] = gi[first]
    return out


def measure_counts(grids: gpd.GeoDataFrame, population: gpd.GeoDataFrame, *, by: str = "people",
                   households: str | None = "households", crs: Any = None) -> dict:
    """People (and households) per grid measured from the grid polygons alone.

    Parameters
    ----------
    grids : GeoDataFrame
        Grid polygons with ``code`` (any CRS).
    population : GeoDataFrame
        Address points and/or population polygons with *by* (and optionally *households*).
    by, households : str
        Columns of *population*.
    crs : optional
        Metric CRS (default :func:`metric_crs` of *grids*).

    Returns
    -------
    dict
        ``people``/``households`` (int arrays per grid row; areal shares rounded once per grid by
        largest remainder), ``people_exact`` (float, before rounding), ``point_grid`` (grid position of every
        point row, -1 outside), ``point_rows`` (their positions in *population*), ``points_outside``,
        ``people_outside``, ``polygon_units`` (count), ``people_weighted`` (people of polygon units
        shared by more than one grid).
    """
    crs = crs or metric_crs(grids)
    g = grids.to_crs(crs)
    geoms = np.asarray(g.geometry.values, dtype=object)
    n = len(g)
    codes = g["code"].astype(str).to_numpy() if "code" in g.columns else np.arange(n).astype(str)
    rank = _sorted_codes(codes)
    pop = population.to_crs(crs) if population.crs is not None else population.set_crs(crs)
    pgeom = np.asarray(pop.geometry.values, dtype=object)
    kind = shapely.get_type_id(pgeom)
    w = pd.to_numeric(pop[by], errors="coerce").fillna(0).to_numpy(dtype=float) if by in pop.columns \
        else np.ones(len(pop))
    hw = pd.to_numeric(pop[households], errors="coerce").fillna(0).to_numpy(dtype=float) \
        if households and households in pop.columns else np.zeros(len(pop))
    people = np.zeros(n)
    hh = np.zeros(n)
    exact = np.zeros(n)
    out: dict[str, Any] = {}
    is_pt = kind == 0
    prow = np.flatnonzero(is_pt)
    where = locate_in_grids(pgeom[prow], geoms, rank)
    ok = where >= 0
    people += np.bincount(where[ok], weights=w[prow][ok], minlength=n)
    exact += np.bincount(where[ok], weights=w[prow][ok], minlength=n)
    hh += np.bincount(where[ok], weights=hw[prow][ok], minlength=n)
    out.update(point_grid=where, point_rows=prow, points_outside=int((~ok).sum()),
               people_outside=float(w[prow][~ok].sum()))
    polyrow = np.flatnonzero(np.isin(kind, (3, 6)))
    weighted = 0.0
    if len(polyrow) and n:
        qi, gi = shapely.STRtree(geoms).query(pgeom[polyrow], predicate="intersects")
        shapely.prepare(geoms)
        inside = shapely.covers(geoms[gi], pgeom[polyrow][qi])
        area = np.where(inside, shapely.area(pgeom[polyrow][qi]), 0.0)
        rest = np.flatnonzero(~inside)
        if len(rest):
            area[rest] = shapely.area(shapely.intersection(pgeom[polyrow][qi[rest]], geoms[gi[rest]]))
        # a unit covered by one grid counts there whole (it may touch others along an edge)
        whole = np.zeros(len(polyrow), dtype=bool)
        whole[qi[inside]] = True
        keep = (area > 0) & (inside | ~whole[qi])
        qi, gi, area = qi[keep], gi[keep], area[keep]
        if len(qi):
            uq, grp = np.unique(qi, return_inverse=True)
            share = area / np.bincount(grp, weights=area)[grp]
            ex = np.bincount(gi, weights=w[polyrow][qi] * share, minlength=n)
            exh = np.bincount(gi, weights=hw[polyrow][qi] * share, minlength=n)
            exact += ex
            # areal shares summed per grid, then rounded once per grid (largest remainder, total kept)
            people += largest_remainder(ex, int(round(w[polyrow][uq].sum())))
            hh += largest_remainder(exh, int(round(hw[polyrow][uq].sum())))
            multi = np.bincount(grp, minlength=len(uq)) > 1
            weighted = float(w[polyrow][uq][multi].sum())
        missing = np.setdiff1d(np.arange(len(polyrow)), qi)
        out["people_outside"] += float(w[polyrow][missing].sum())
        out["polygons_outside"] = int(len(missing))
    out.update(people=np.rint(people).astype(np.int64), households=np.rint(hh).astype(np.int64),
               people_exact=exact, polygon_units=int(len(polyrow)), people_weighted=weighted)
    return out


def _components(geoms: np.ndarray, gap_tol: float) -> list[np.ndarray]:
    """Groups of parts (positions) of a geometry that lie within *gap_tol* of each other."""
    parts = shapely.get_parts(geoms)
    if len(parts) <= 1:
        return [np.arange(len(parts))]
    i, j = shapely.STRtree(parts).query(parts, predicate="dwithin", distance=gap_tol)
    parent = np.arange(len(parts))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(i.tolist(), j.tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(k) for k in range(len(parts))])
    return [np.flatnonzero(roots == r) for r in np.unique(roots)]


def _pieces(geoms: np.ndarray, codes: list[str], territory: Any, gap_tol: float, max_listed: int) -> dict:
    """Grids in pieces, telling islands (parts on separate parts of the territory) apart."""
    terr_parts = shapely.get_parts(territory)
    terr_groups = _components(np.asarray([territory], dtype=object), gap_tol) if len(terr_parts) > 1 else \
        [np.arange(len(terr_parts))]
    terr_label = np.zeros(len(terr_parts), dtype=np.int64)
    for k, grp in enumerate(terr_groups):
        terr_label[grp] = k
    tree = shapely.STRtree(terr_parts) if len(terr_parts) else None
    bad, islands, detail = [], [], []
    for k in np.flatnonzero(shapely.get_num_geometries(geoms) > 1):
        comps = _components(np.asarray([geoms[k]], dtype=object), gap_tol)
        if len(comps) <= 1:
            continue
        parts = shapely.get_parts(geoms[k])
        where = []
        for comp in comps:
            rp = shapely.point_on_surface(shapely.union_all(parts[comp]))
            hit = tree.query(rp, predicate="intersects") if tree is not None else []
            where.append(int(terr_label[hit[0]]) if len(hit) else -1)
        areas = [float(shapely.area(parts[c]).sum()) for c in comps]
        item = {"code": codes[k], "parts": len(comps), "part_areas_m2": [round(a, 1) for a in sorted(areas)]}
        if len(set(where)) == len(where) and -1 not in where:
            islands.append(codes[k])
            item["island"] = True
        else:
            bad.append(codes[k])
        detail.append(item)
    return {"grids_in_pieces": len(bad), "in_pieces": bad[:max_listed], "islands": islands[:max_listed],
            "n_islands": len(islands), "detail": detail[:max_listed], "gap_tol_m": float(gap_tol)}


def _buildings(pop: gpd.GeoDataFrame, measured: dict, codes: list[str], building: str,
               footprints: Any, geoms: np.ndarray, crs, max_listed: int) -> dict:
    """Buildings whose address points lie in more than one grid, footprints crossed by a grid edge."""
    out: dict[str, Any] = {"n_buildings": 0, "split_between_grids": 0, "examples": []}
    if building in pop.columns and len(measured["point_rows"]):
        b = pop[building].to_numpy(dtype=object)[measured["point_rows"]]
        df = pd.DataFrame({"b": b, "g": measured["point_grid"]})
        df = df[df["b"].notna()]
        df["b"] = df["b"].astype(str)
        nun = df.groupby("b")["g"].nunique()
        bad = nun[nun > 1]
        out.update(n_buildings=int(nun.size), split_between_grids=int(bad.size),
                   examples=[str(x) for x in bad.index[:max_listed]])
    if footprints is not None:
        fp = np.asarray(as_geoseries(footprints, crs).to_crs(crs).values, dtype=object)
        fp = fp[~shapely.is_missing(fp) & ~shapely.is_empty(fp)]
        crossed = 0
        if len(fp) and len(geoms):
            fi, gi = shapely.STRtree(geoms).query(fp, predicate="intersects")
            a = shapely.area(shapely.intersection(fp[fi], geoms[gi]))
            share = a / np.maximum(shapely.area(fp[fi]), 1e-9)
            real = (a > 0.5) & (share > 0.01)  # a footprint touching a grid edge is not crossed
            crossed = int((np.bincount(fi[real], minlength=len(fp)) > 1).sum())
        out.update(n_footprints=int(len(fp)), footprints_crossed=crossed)
    return out


def verify(
    grids: gpd.GeoDataFrame,
    population: gpd.GeoDataFrame,
    *,
    streets: Any = None,
    buildings: Any = None,
    jurisdiction: Any = None,
    min_pop: float = 1000,
    max_pop: float = 2000,
    by: str = "people",
    gap_tol: float = 20.0,
    street_tol: float = 2.0,
    street_classes: Any = None,
    building: str = "building",
    crs: Any = None,
    max_listed: int = 200,
    claimed: Any = None,
    internal_roads: Any = None,
) -> dict:
    """Check a grid plan against its input using only the published grid polygons.

    Parameters
    ----------
    grids : GeoDataFrame
        The plan's grids: ``code``, *by* (the counts the plan claims), optional ``households``,
        ``kind`` and ``flags``; any CRS.
    population : GeoDataFrame
        The raw population input: address points (optionally with a *building* id) and/or polygon
        units, with *by* (and optionally ``households``).
    streets : GeoDataFrame, GeoSeries or array of lines, optional
        The street lines the blocks were made of; enables the street share.
    buildings : GeoDataFrame or GeoSeries of polygons, optional
        Building footprints: none may be crossed by a grid edge.
    jurisdiction : geometry / GeoSeries / GeoDataFrame, optional
        The territory the grids must tile (default their union). A bare geometry is in the grids' CRS.
    min_pop, max_pop : float
        Allowed grid population.
    by : str
        Population column.
    gap_tol : float
        Parts of a grid closer than this (m) are one piece.
    street_tol : float
        A boundary piece within this distance (m) of a street counts as on it.
    street_classes : iterable of str, optional
        The classes that made blocks, recorded in the report next to the street share.
    building : str
        Building id column of the points.
    crs : optional
        Metric CRS to measure in (default :func:`metric_crs` of *grids*).
    max_listed : int
        Longest list of grids per finding.
    internal_roads : lines, optional
        Lines that do not make blocks but may carry grid edges (estate roads, footways): the street
        share is also given with them (``boundary_on_streets_or_internal_roads_share``).
    claimed : array of float, optional
        The counts the plan claims per grid row, unrounded (default the grids' *by* column). The
        engine passes its sums of unrounded areal shares so rounding is not mistaken for miscounting.

    Returns
    -------
    dict
        JSON-ready: ``n_grids``, ``crs``, ``population``, ``counts`` (claimed vs measured,
        ``residents_counted_elsewhere``), ``range`` (on the measured counts), ``buildings``,
        ``pieces``, ``coverage``, ``contiguity``, ``compactness``, ``streets`` (with *streets*),
        ``invariants`` (``ok`` and the ``failed`` ones with a reason), ``verify_s``; plus
        ``measured`` (per-grid ``code``/``people``/``households`` lists) for whoever publishes them.
    """
    t0 = time.perf_counter()
    if grids.crs is None:
        raise ValueError("grids have no CRS")
    if population is None or population.crs is None:
        raise ValueError("the population input (with a CRS) is needed to verify a plan")
    crs = crs or metric_crs(grids)
    g = grids.to_crs(crs).reset_index(drop=True)
    geoms = np.asarray(g.geometry.values, dtype=object)
    n = len(g)
    codes = g["code"].astype(str).tolist() if "code" in g.columns else [str(i) for i in range(n)]
    kinds = g["kind"].astype(str).tolist() if "kind" in g.columns else ["standard"] * n
    flags = [_flag_list(v) for v in g["flags"]] if "flags" in g.columns else [[] for _ in range(n)]
    meas = measure_counts(g, population, by=by, crs=crs)
    pop = meas["people"].astype(float) if by == "people" else meas["households"].astype(float)
    if claimed is not None:
        claimed = np.asarray(claimed, dtype=float)
    else:
        claimed = g[by].to_numpy(dtype=float) if by in g.columns else np.full(n, np.nan)
    exact = meas["people_exact"] if by == "people" else pop
    rep: dict[str, Any] = {"n_grids": int(n), "min_pop": float(min_pop), "max_pop": float(max_pop), "by": by,
                           "crs": crs.to_string()}

    # counts: the plan's claim against the polygons
    tol = 1.0 if meas["people_weighted"] > 0 else 1e-6
    diff = claimed - exact
    beyond = np.maximum(np.abs(diff) - tol, 0.0)
    off = np.flatnonzero(np.abs(diff) > tol)
    rep["counts"] = {
        "claimed_total": float(np.nansum(claimed)),
        "measured_total": float(pop.sum()),
        "measured_unrounded_total": float(exact.sum()),
        "residents_counted_elsewhere": float(math.ceil(np.nansum(beyond) / 2.0 - 1e-9)),
        "abs_difference_sum": float(np.nansum(np.abs(diff))),
        "max_abs_difference": float(np.nanmax(np.abs(diff))) if n else 0.0,
        "grids_miscounted": int(len(off)),
        "miscounted": [{"code": codes[k], "claimed": float(claimed[k]), "measured": float(pop[k])}
                       for k in off[:max_listed]],
        "rounding_allowance_per_grid": tol,
        "points": int(len(meas["point_rows"])),
        "points_outside": meas["points_outside"],
        "people_outside": meas["people_outside"],
        "polygon_units": meas["polygon_units"],
        "people_areally_weighted": meas["people_weighted"],
        "rule": "point: grid covering it, smallest code on a shared edge; polygon: areal weighting, "
                "rounded once per grid (largest remainder)",
    }

    # population and range, on the measured counts
    rep["population"], rep["range"] = population_and_range(pop, codes, kinds, flags, by, min_pop, max_pop,
                                                           max_listed)

    # coverage
    area = shapely.area(geoms)
    union = coverage_union(geoms)
    jur = union if jurisdiction is None else shapely.union_all(
        np.asarray(as_geoseries(jurisdiction, grids.crs).to_crs(crs).values))
    jur_area = float(shapely.area(jur))
    gap = float(shapely.area(shapely.difference(jur, union))) if n else jur_area
    rep["coverage"] = {
        "jurisdiction_m2": jur_area,
        "grids_m2": float(area.sum()),
        "covered_share": 1.0 - gap / jur_area if jur_area > 0 else 0.0,
        "gap_m2": gap,
        "overlap_m2": max(0.0, float(area.sum() - shapely.area(union))),
        "outside_m2": float(shapely.area(shapely.difference(union, jur))) if n else 0.0,
    }

    # buildings, pieces, contiguity
    rep["buildings"] = _buildings(population.to_crs(crs), meas, codes, building, buildings, geoms, crs, max_listed)
    rep["pieces"] = _pieces(geoms, codes, jur, gap_tol, max_listed)
    parts = shapely.get_num_geometries(geoms)
    enclosed = _enclosed(geoms, codes, flags)
    rep["contiguity"] = {
        "multipart_grids": int((parts > 1).sum()),
        "noncontiguous_grids": rep["pieces"]["grids_in_pieces"],
        "noncontiguous": rep["pieces"]["in_pieces"],
        "islands": rep["pieces"]["islands"],
        "gap_tol_m": float(gap_tol),
        "enclosed_grids": enclosed[:max_listed],
        "n_enclosed": len(enclosed),
    }
    pp = polsby_popper(geoms)
    rep["compactness"] = {
        "polsby_popper_mean": float(pp.mean()) if n else None,
        "polsby_popper_median": float(np.median(pp)) if n else None,
        "polsby_popper_min": float(pp.min()) if n else None,
    }
    if streets is not None:
        rep["streets"] = _street_share(geoms, jur, streets, crs, street_tol)
        if street_classes is not None:
            rep["streets"]["classes"] = sorted(str(c) for c in street_classes)
        if internal_roads is not None:
            both = np.concatenate([np.asarray(as_geoseries(x, grids.crs).to_crs(crs).values, dtype=object)
                                   for x in (streets, internal_roads)])
            rep["streets"]["boundary_on_streets_or_internal_roads_share"] = _street_share(
                geoms, jur, gpd.GeoSeries(both, crs=crs), crs, street_tol)["boundary_on_streets_share"]

    failed = []
    if rep["counts"]["residents_counted_elsewhere"] > 0:
        failed.append({"invariant": INVARIANTS[0], "reason": (
            f"{rep['counts']['residents_counted_elsewhere']:.0f} residents are counted in a grid other than "
            f"the one whose polygon holds them ({rep['counts']['grids_miscounted']} grids off by more than "
            f"{tol:.0f})")})
    if rep["buildings"]["split_between_grids"] or rep["buildings"].get("footprints_crossed", 0):
        failed.append({"invariant": INVARIANTS[1], "reason": (
            f"{rep['buildings']['split_between_grids']} buildings have address points in more than one grid, "
            f"{rep['buildings'].get('footprints_crossed', 0)} footprints are crossed by a grid edge")})
    if rep["pieces"]["grids_in_pieces"]:
        failed.append({"invariant": INVARIANTS[2], "reason": (
            f"{rep['pieces']['grids_in_pieces']} grids have parts more than {gap_tol:g} m apart on one "
            f"territory: {', '.join(rep['pieces']['in_pieces'][:5])}")})
    if rep["coverage"]["overlap_m2"] > max(1.0, 1e-6 * jur_area):
        failed.append({"invariant": INVARIANTS[3], "reason": f"grids overlap by {rep['coverage']['overlap_m2']:.1f} m²"})
    rep["invariants"] = {"ok": not failed, "failed": failed, "checked": list(INVARIANTS)}
    rep["measured"] = {"code": codes, "people": meas["people"].tolist(), "households": meas["households"].tolist()}
    rep["verify_s"] = time.perf_counter() - t0
    return rep
