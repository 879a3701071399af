"""The pipeline: :func:`partition` a jurisdiction into grids -> :class:`Plan`.

Pipeline::

    population (+ streets, communities, special units)
      -- inputs ------- checked, bad rows refused by name          (geo.partition.inputs);
      |                 vehicle streets make blocks, other lines guide cuts
      -- atoms -------- blocks + population, joined where a building spans two,
      |                 oversized ones split along internal roads / between buildings
      |                                                            (geo.partition.atoms)
      -- adjacency ---- rook-by-length graph, narrow gaps bridged   (geo.partition.adjacency)
      |                 + the part of each shared edge off the streets (off_street_lengths)
      -- regions ------ contiguous, compact, balanced regions       (geo.partition.regions)
      |                 or a stable re-draw of a previous plan (initial labels, geo.partition.redraw)
      -- refine ------- communities left infeasible: their blocks cut into building groups
      |                 and re-solved warm from the previous regions (atoms.refine_infeasible;
      |                 adjacency updated at the new pieces only, then a wide-ring repair if needed)
      -- grids -------- one dissolve, codes and names              (geo.partition.grids)
      -- verify ------- the report: every count, range, building, piece recomputed from the
                        final polygons and the raw input           (geo.partition.verify)

Atoms are worked on in one metric CRS (the input's when it is projected in
metres, else the local UTM zone); grids are returned in the CRS of the
population input.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import geopandas as gpd
import numpy as np
import shapely

from .adjacency import build_adjacency, update_adjacency
from .atoms import (ATOM_CONTRACT, REFINE_LEVELS, _as_gs, _ensure_contract, _line_array, _make_atoms, _split,  # noqa: F401
                    atoms_from_polygons, footprint_buildings, join_building_atoms, refine_infeasible,
                    split_atoms_by_area,
                    split_polygon_by_area)
from .codes import DEFAULT_PREFIX, check_code_capacity
from .grids import GRID_LEVEL, build_grids, buildings_across_grids, dissolve, fill_pinholes
from .inputs import PartitionInputError, check_population, check_special, split_streets
from .quality import _stability
from .regions import FLAG_INFEASIBLE, RegionBuilder
from .verify import metric_crs, verify

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
    "join_building_atoms",
    "dissolve",
    "fill_pinholes",
    "PartitionInputError",
    "ATOM_CONTRACT",
    "GRID_LEVEL",
    "REFINE_LEVELS",
]


class Plan:
    """A grid plan: grids, atoms and the quality report.

    Attributes
    ----------
    grids : GeoDataFrame
        One row per grid, in the population input's CRS: ``code`` (15
        digits), ``name``, ``kind`` (``standard``/``exclusive``/``rural``),
        ``level``, ``people``, ``households`` (measured from the polygons,
        :func:`~geo.partition.verify.verify`), ``community``, ``flags``
        (``"; "``-joined reasons a grid may be out of range, ``""`` for none)
        and ``geometry`` (the dissolve of its atoms).
    atoms : GeoDataFrame
        The atoms (metric CRS) with the ``grid`` code of each.
    report : dict
        :func:`geo.partition.verify.verify` of the grids against the input,
        plus ``engine`` (stage timings, the engine's own in-range share),
        ``atoms`` (how atoms were made, split blocks with their cuts) and
        ``stability``/``redraw`` when a previous plan was given.
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


# --------------------------------------------------------------------------- atoms


def off_street_lengths(atoms: gpd.GeoDataFrame, adj, lines: np.ndarray, tol: float = 2.0,
                       step: float = 5.0) -> np.ndarray:
    """Per adjacency edge, the length of the shared boundary that does not run along *lines*.

    Only edges between pieces of one street block (same ``block``) can be
    off the streets: blocks meet along street centerlines by construction.
    The shared boundary is cut into pieces of at most *step* metres and a
    piece whose midpoint lies within *tol* of a line counts as on a street,
    as in :func:`geo.partition.verify.verify`.

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


# --------------------------------------------------------------------------- grids


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
    street_classes: Any = None,
    buildings: Any = None,
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
    street_classes : iterable of str, optional
        Values of the streets' ``highway`` (or ``klass``) column that bound street blocks; default
        :data:`geo.partition.inputs.VEHICLE_CLASSES` (motorway .. living_street/unclassified and
        ``_link`` ramps). The other lines (footways, paths, service roads, tracks...) do not make
        block edges but guide cuts inside oversized blocks. Streets without a class column all
        bound blocks.
    buildings : GeoDataFrame or GeoSeries of polygons, optional
        Building footprints: :func:`~geo.partition.verify.verify` checks no grid edge crosses one.

    Returns
    -------
    Plan
        ``plan.report`` is :func:`geo.partition.verify.verify` of the final grids against the input
        (plus ``atoms``, ``engine``, ``stability``/``redraw``); grid ``people``/``households`` are
        the counts measured from the polygons.

    Raises
    ------
    PartitionInputError
        Unusable input (empty/missing geometry, NaN/negative/fractional population, special areas
        without ``id``/``kind``, one building id on points far apart), naming row and field.
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
        raise PartitionInputError("population has no CRS; expected a GeoDataFrame with a CRS (e.g. EPSG:4326)")

    report_progress("atoms", 0.0)
    if population is not None:
        check_population(population, by=by)
    if special is not None and len(special):
        check_special(special)
    crs = metric_crs(population if atoms is None else atoms)
    # vehicle streets make blocks; footways, service roads, tracks... only guide cuts inside them
    block_streets, guide_streets, used_classes = split_streets(streets, street_classes)
    # every line is a street for the grid boundary cost: block edges, estate roads, dead-end lanes, spurs
    street_lines = _line_array(block_streets, guide_streets, internal_roads, crs=crs, assume=out_crs) \
        if (streets is not None or internal_roads is not None) else None
    # lines inside a block (estate roads, cul-de-sacs, spurs) guide cuts through it
    cut_roads = gpd.GeoSeries(street_lines, crs=crs) if street_lines is not None and len(street_lines) else None
    if atoms is None:
        footprints = None
        if buildings is not None and population is not None:
            population, footprints = footprint_buildings(population, buildings)
        atoms, jur_gs, points = _make_atoms(population, jurisdiction, block_streets, communities, special, crs,
                                            min_pop, max_pop, target, cut_roads, lattice_cell, report,
                                            footprints=footprints)
        if block_streets is not None:
            report["atoms"]["street_classes"] = used_classes
    else:
        atoms = _ensure_contract(atoms.to_crs(crs))
        jur_gs, points = _as_gs(jurisdiction, out_crs), None
        report["atoms"] = {"method": "given", "n_atoms": int(len(atoms))}
    fine_units = None
    if population is not None and not set(population.geometry.geom_type.dropna().unique()) <= {"Point", "MultiPoint"}:
        fine_units = population
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

    # balance what verify will measure: the unrounded areal shares (pieces of a block rounded one by one
    # drift by a person or two each, and a grid of many pieces would be published outside the range)
    bal = "people_exact" if by == "people" and "people_exact" in atoms.columns else by

    def solve(atoms, adj, off):
        if prev_grids is not None and stable:
            from .redraw import previous_labels

            init = previous_labels(atoms, prev_grids)
            rb = RegionBuilder(atoms, adj, min_pop=min_pop, max_pop=max_pop, by=bal, target=target, seed=seed,
                               initial_labels=init, progress=progress, off_street=off).solve()
            return rb, dict(getattr(rb, "repair_stats_", {}))
        return RegionBuilder(atoms, adj, min_pop=min_pop, max_pop=max_pop, by=bal, target=target, seed=seed,
                             progress=progress, off_street=off).solve(), None

    rb, redraw_info = solve(atoms, adj, off)
    for level in REFINE_LEVELS:  # some community cannot be divided with whole blocks: cut them by building groups
        refined = refine_infeasible(atoms, points, rb.labels_, rb.region_flags_, min_pop, cut_roads, max_pop,
                                    level=level, adjacency=adj, fine_units=fine_units, parents=True)
        if refined is None:  # nothing infeasible, or nothing to cut at this level: try the finer one
            continue
        before = atoms
        atoms, info, points, parent = refined
        report["atoms"].setdefault("refined", []).append(info)
        report["atoms"]["n_atoms"] = int(len(atoms))
        adj = update_adjacency(adj, parent, before, atoms, gap_tol=gap_tol)  # only pairs at new pieces measured
        off = off_street_lengths(atoms, adj, street_lines) if street_lines is not None else None
        # warm start: the pieces keep their atom's region, so regions in range stay as they are and only
        # the infeasible ones (now made of finer pieces) are re-solved with their neighbours
        rb = RegionBuilder(atoms, adj, min_pop=min_pop, max_pop=max_pop, by=bal, target=target, seed=seed,
                           initial_labels=rb.labels_[parent], move_cost=0.0, progress=progress,
                           off_street=off).solve()
    if any(FLAG_INFEASIBLE in f for f in rb.region_flags_):
        # still infeasible with fine atoms: a peninsula of coarse blocks whose people fit no whole number of
        # grids until several regions out; one more warm re-solve, its range repair reaching six rings out
        rb = RegionBuilder(atoms, adj, min_pop=min_pop, max_pop=max_pop, by=bal, target=target, seed=seed,
                           initial_labels=rb.labels_, move_cost=0.0, progress=progress, off_street=off,
                           repair_rings=6).solve()
    timings["regions"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    report_progress("grids", 0.0)
    grids = build_grids(atoms, rb.labels_, rb.region_kind_, rb.region_flags_, communities, prev_grids, prefix,
                        jurisdiction_name)
    code_of = grids["code"].to_numpy()
    atoms = atoms.copy()
    atoms["grid"] = code_of[rb.labels_]
    grids = grids.sort_values("code", kind="stable").reset_index(drop=True)
    # the engine's claim per grid: its atoms' people before rounding (areal shares unrounded)
    ccol = "people_exact" if by == "people" and "people_exact" in atoms.columns else by
    claimed = np.bincount(rb.labels_, weights=atoms[ccol].to_numpy(dtype=float),
                          minlength=len(grids))[grids["_label"].to_numpy()]
    grids = grids.drop(columns="_label")
    timings["grids"] = time.perf_counter() - t3
    report_progress("grids", 1.0)

    t4 = time.perf_counter()
    jur_metric = jur_gs.to_crs(crs) if jur_gs is not None else None
    # the quality report IS the independent check: counts, range, buildings, pieces from the polygons
    raw = population if population is not None else atoms[["people", "households", "geometry"]]
    rep = verify(grids, raw, streets=None if block_streets is None
                 else gpd.GeoSeries(_line_array(block_streets, crs=crs, assume=out_crs), crs=crs),
                 buildings=buildings, jurisdiction=jur_metric, min_pop=min_pop, max_pop=max_pop, by=by,
                 gap_tol=gap_tol, street_classes=used_classes, crs=crs, claimed=claimed,
                 internal_roads=None if block_streets is None or street_lines is None
                 else gpd.GeoSeries(street_lines, crs=crs))
    measured = rep.pop("measured")
    # published counts are the measured ones (one truth for counts)
    grids["people"] = np.asarray(measured["people"], dtype=np.int64)
    grids["households"] = np.asarray(measured["households"], dtype=np.int64)
    if prev_grids is not None:
        rep["stability"] = _stability(atoms, prev_grids, crs, by)
    timings["verify"] = time.perf_counter() - t4
    rep.update({k: v for k, v in report.items()})
    rep["engine"] = {"timings_s": {k: round(v, 4) for k, v in timings.items()},
                     "regions_timings_s": {k: round(v, 4) for k, v in rb.timings_.items()},
                     "n_atoms": int(len(atoms)), "n_edges": int(adj.n_edges), "bridged_edges": int(adj.bridged.sum()),
                     "claimed_in_range_share": float(((claimed >= min_pop) & (claimed <= max_pop)).mean())
                     if len(claimed) else 1.0}
    if redraw_info is not None:
        rep["redraw"] = redraw_info
    rep["runtime_s"] = time.perf_counter() - t0
    grids = grids.to_crs(out_crs)
    params = {
        "min_pop": min_pop, "max_pop": max_pop, "target": target, "by": by, "seed": seed, "gap_tol": gap_tol,
        "prefix": prefix, "jurisdiction_name": jurisdiction_name, "stable": stable, "metric_crs": crs.to_string(),
        "streets": streets is not None, "communities": communities is not None, "special": special is not None,
        "previous": prev_grids is not None, "street_classes": used_classes, "buildings": buildings is not None,
    }
    report_progress("done", 1.0)
    return Plan(grids, atoms, rep, params)
