"""Quality report of a grid plan.

:func:`quality_report` measures a set of grids against the rules of the grid
division: population range, balance, exact coverage of the jurisdiction,
contiguity, compactness, boundaries on streets and stability against a
previous plan. The result is a plain, JSON-serialisable dict.

:func:`residents_moved` is the stability measure shared with
:mod:`geo.partition.redraw`: old and new grids are matched one-to-one so that
as many residents as possible stay in their matched grid; everyone else has
"moved". It does not depend on grid codes, so a from-scratch plan and a
re-draw are measured the same way.
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.optimize import linear_sum_assignment

from geo.crs import as_geoseries, local_metric_crs

__all__ = ["quality_report", "residents_moved", "polsby_popper", "format_report", "REASON_UNEXPLAINED"]

#: Reason given for a grid outside the range that carries no flag.
REASON_UNEXPLAINED = "infeasible"


def polsby_popper(geoms) -> np.ndarray:
    """Polsby-Popper compactness ``4 pi A / P**2`` of metric geometries (0 for empty)."""
    g = np.asarray(geoms)
    a = shapely.area(g)
    p = shapely.length(g)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, 4.0 * math.pi * a / (p * p), 0.0)


def residents_moved(people, old_labels, new_labels, return_matching: bool = False):
    """Residents whose grid changes between two plans of the same atoms.

    Grids are matched one-to-one (old ↔ new) maximising the residents that
    stay in the matched grid (Hungarian algorithm; greedy by overlap above
    2,000 × 2,000 grids). Residents of an atom whose new grid is not the
    match of its old grid have moved.

    Parameters
    ----------
    people : array-like of float
        Residents per atom.
    old_labels, new_labels : array-like
        Grid of each atom in the old and new plan (any hashable labels;
        None/NaN = no grid, counted as moved when people > 0).
    return_matching : bool
        Also return the ``{old_label: new_label}`` matching.

    Returns
    -------
    dict
        ``moved`` (residents), ``total``, ``share``, ``grids_changed``
        (new grids whose atom set differs from their match's), and
        optionally ``matching``.
    """
    people = np.asarray(people, dtype=float)
    old = pd.Series(np.asarray(old_labels, dtype=object))
    new = pd.Series(np.asarray(new_labels, dtype=object))
    oc, ou = pd.factorize(old, use_na_sentinel=True)
    nc, nu = pd.factorize(new, use_na_sentinel=True)
    ok = (oc >= 0) & (nc >= 0)
    total = float(people.sum())
    df = pd.DataFrame({"o": oc[ok], "n": nc[ok], "p": people[ok], "one": 1})
    tab = df.groupby(["o", "n"], sort=True).agg(p=("p", "sum"), m=("one", "sum")).reset_index()
    no, nn = len(ou), len(nu)
    matched: dict[int, int] = {}
    if len(tab):
        if no * nn <= 4_000_000:
            w = np.zeros((no, nn))
            # atoms count a little so that empty-but-identical grids still match
            w[tab["o"].to_numpy(), tab["n"].to_numpy()] = tab["p"].to_numpy() + 1e-6 * tab["m"].to_numpy()
            ri, ci = linear_sum_assignment(w, maximize=True)
            matched = {int(r): int(c) for r, c in zip(ri, ci) if w[r, c] > 0}
        else:
            srt = tab.assign(w=tab["p"] + 1e-6 * tab["m"]).sort_values(["w", "o", "n"], ascending=[False, True, True])
            used_n: set[int] = set()
            for o, n_ in zip(srt["o"].to_numpy(), srt["n"].to_numpy()):
                if o not in matched and n_ not in used_n:
                    matched[int(o)] = int(n_)
                    used_n.add(int(n_))
    match_arr = np.full(max(no, 1), -1, dtype=np.int64)
    for o, n_ in matched.items():
        match_arr[o] = n_
    stay = ok & (match_arr[np.where(oc >= 0, oc, 0)] == nc)
    moved = float(people[~stay].sum())
    # grids changed: new grids without a match or whose atoms differ from their match's
    changed = 0
    moved_atom = ~stay
    new_has_moved = np.zeros(nn, dtype=bool)
    if moved_atom.any():
        nn_idx = nc[moved_atom]
        new_has_moved[nn_idx[nn_idx >= 0]] = True
    # a new grid also changed if its matched old grid lost atoms elsewhere
    inv_match = {n_: o for o, n_ in matched.items()}
    old_lost = np.zeros(no, dtype=bool)
    lost = moved_atom & (oc >= 0)
    old_lost[oc[lost]] = True
    for k in range(nn):
        o = inv_match.get(k)
        if o is None or new_has_moved[k] or old_lost[o]:
            changed += 1
    out = {
        "moved": moved,
        "total": total,
        "share": moved / total if total > 0 else 0.0,
        "grids_changed": int(changed),
    }
    if return_matching:
        out["matching"] = {ou[o]: nu[n_] for o, n_ in matched.items()}
    return out


def _as_metric(obj: Any, crs) -> gpd.GeoSeries:
    return as_geoseries(obj, crs).to_crs(crs)


def _flag_list(v) -> list[str]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return []
    if isinstance(v, str):
        return [x.strip() for x in v.split(";") if x.strip()]
    return [str(x) for x in v]


def quality_report(
    grids: gpd.GeoDataFrame,
    jurisdiction: Any = None,
    min_pop: float = 1000,
    max_pop: float = 2000,
    previous: gpd.GeoDataFrame | None = None,
    runtime_s: float | None = None,
    *,
    atoms: gpd.GeoDataFrame | None = None,
    streets: Any = None,
    by: str = "people",
    gap_tol: float = 20.0,
    street_tol: float = 2.0,
    max_listed: int = 200,
) -> dict:
    """Measure a grid plan.

    Parameters
    ----------
    grids : GeoDataFrame
        One row per grid with *by* and optionally ``code``, ``kind`` and
        ``flags`` (``"; "``-joined reasons or a list) columns. Any CRS.
    jurisdiction : geometry, GeoSeries or GeoDataFrame, optional
        Area the grids must tile (default: the union of the grids). A bare
        geometry is taken to be in the grids' CRS.
    min_pop, max_pop : float
        Allowed grid population.
    previous : GeoDataFrame, optional
        Previous plan's grids. With *atoms* (which must carry a ``grid``
        column naming the new grid of each atom, as ``Plan.atoms`` does), each
        atom's representative point is located in the previous grids and the
        residents whose grid changes are counted (:func:`residents_moved`).
    runtime_s : float, optional
        Wall time to report.
    atoms : GeoDataFrame, optional
        Atoms of the plan with *by* and ``grid`` (needed for *previous*).
    streets : GeoDataFrame, GeoSeries or array of lines, optional
        Streets; enables the share of grid boundary running along streets.
    by : str
        Population column.
    gap_tol : float
        Parts of one grid closer than this (m) count as joined.
    street_tol : float
        A boundary point within this distance (m) of a street (or of the
        jurisdiction outline) is "on a street".
    max_listed : int
        Longest list of out-of-range grids included.

    Returns
    -------
    dict
        JSON-serialisable (plain ints, floats, strings, lists, dicts).
    """
    if grids.crs is None:
        raise ValueError("grids have no CRS")
    crs = grids.crs if not grids.crs.is_geographic else local_metric_crs(grids)
    g = grids.to_crs(crs)
    geoms = np.asarray(g.geometry.values)
    n = len(g)
    pop = g[by].to_numpy(dtype=float) if n else np.zeros(0)
    codes = g["code"].astype(str).tolist() if "code" in g.columns else [str(i) for i in range(n)]
    kinds = g["kind"].astype(str).tolist() if "kind" in g.columns else ["standard"] * n
    flags = [_flag_list(v) for v in g["flags"]] if "flags" in g.columns else [[] for _ in range(n)]

    rep: dict[str, Any] = {"n_grids": int(n), "min_pop": float(min_pop), "max_pop": float(max_pop), "by": by}

    # population and range
    rep["population"], rep["range"] = population_and_range(pop, codes, kinds, flags, by, min_pop, max_pop, max_listed)

    # coverage
    area = shapely.area(geoms)
    union = coverage_union(geoms)
    if jurisdiction is None:
        jur = union
    else:
        jur = shapely.union_all(np.asarray(_as_metric(jurisdiction, crs).values))
    jur_area = float(shapely.area(jur))
    gap = float(shapely.area(shapely.difference(jur, union))) if n else jur_area
    outside = float(shapely.area(shapely.difference(union, jur))) if n else 0.0
    overlap = max(0.0, float(area.sum() - shapely.area(union)))
    rep["coverage"] = {
        "jurisdiction_m2": jur_area,
        "grids_m2": float(area.sum()),
        "covered_share": 1.0 - gap / jur_area if jur_area > 0 else 0.0,
        "gap_m2": gap,
        "overlap_m2": overlap,
        "outside_m2": outside,
    }

    # contiguity and enclosure
    parts = shapely.get_num_geometries(geoms)
    multi = np.flatnonzero(parts > 1)
    noncontig = []
    if multi.size:
        joined = shapely.get_num_geometries(shapely.buffer(geoms[multi], gap_tol / 2.0, quad_segs=2))
        noncontig = [codes[k] for k, c in zip(multi, joined) if c > 1]
    rep["contiguity"] = {
        "multipart_grids": int(multi.size),
        "noncontiguous_grids": len(noncontig),
        "noncontiguous": noncontig[:max_listed],
        "gap_tol_m": float(gap_tol),
        "enclosed_grids": _enclosed(geoms, codes, flags)[:max_listed],
    }
    rep["contiguity"]["n_enclosed"] = len(rep["contiguity"]["enclosed_grids"])

    # compactness
    pp = polsby_popper(geoms)
    rep["compactness"] = {
        "polsby_popper_mean": float(pp.mean()) if n else None,
        "polsby_popper_median": float(np.median(pp)) if n else None,
        "polsby_popper_min": float(pp.min()) if n else None,
    }

    # boundaries on streets
    if streets is not None:
        rep["streets"] = _street_share(geoms, jur, streets, crs, street_tol, atoms=atoms)

    # stability against a previous plan
    if previous is not None:
        if atoms is None or "grid" not in atoms.columns:
            rep["stability"] = {"error": "atoms with a 'grid' column are needed to compare with a previous plan"}
        else:
            rep["stability"] = _stability(atoms, previous, crs, by)

    if runtime_s is not None:
        rep["runtime_s"] = float(runtime_s)
    return rep


def coverage_union(geoms):
    """Union of polygons that tile without overlap; an empty input gives an empty polygon.

    The engine's one dissolve (:func:`geo.partition.blocks.dissolve_groups`) with every polygon in
    one group.
    """
    if len(geoms) == 0:
        return shapely.Polygon()
    from .blocks import dissolve_groups

    return dissolve_groups(np.asarray(geoms, dtype=object), np.zeros(len(geoms), dtype=np.int64))[1][0]


def _enclosed(geoms, codes, flags=None) -> list[dict]:
    """Grids lying inside a hole of another grid (a grid surrounding another), with their flags."""
    holes, owner = [], []
    for k, geom in enumerate(geoms):
        for poly in shapely.get_parts(geom):
            for ring in poly.interiors:
                holes.append(shapely.Polygon(ring))
                owner.append(k)
    if not holes:
        return []
    holes = np.asarray(holes)
    pts = shapely.point_on_surface(geoms)
    hi, gi = shapely.STRtree(pts).query(holes, predicate="contains")
    out = []
    for h, k in zip(hi, gi):
        if owner[h] != k:
            item = {"code": codes[k], "inside": codes[owner[h]]}
            if flags is not None and flags[k]:
                item["flags"] = flags[k]
            out.append(item)
    return out


#: Why a piece of grid boundary is off the streets (``streets.off_street_m_by_cause``).
OFF_STREET_CAUSES = ("inside a street block", "special unit edge", "community boundary", "other")


def _street_share(geoms, jur, streets, crs, tol, atoms=None) -> dict:
    """Share of grid boundary length within *tol* of a street or the jurisdiction outline.

    With *atoms* (``block``, ``special``, ``community`` columns) the boundary
    off the streets is broken down by cause (:data:`OFF_STREET_CAUSES`), from
    the atoms on either side of each piece: a cut through a street block
    (both sides pieces of one block), the edge of a special unit, a community
    boundary that is not on a street, or anything else (e.g. a block edge
    along a line that was not given as a street).
    """
    lines = _as_metric(streets, crs)
    ln = np.asarray(lines.values)
    # every grid boundary once: union of boundaries, split into short pieces
    bnd = shapely.union_all(shapely.boundary(geoms))
    pieces = shapely.get_parts(shapely.segmentize(bnd, 5.0))
    segs = _explode_segments(pieces)
    mid = shapely.line_interpolate_point(segs, 0.5, normalized=True)
    w = shapely.length(segs)
    on_street = np.zeros(segs.size, dtype=bool)
    if ln.size:
        hit = shapely.STRtree(_explode_segments(ln)).query(mid, predicate="dwithin", distance=tol)[0]
        on_street[hit] = True
    outline = _explode_segments(np.asarray([shapely.boundary(jur)]))
    on_outline = np.zeros(segs.size, dtype=bool)
    if outline.size:
        on_outline[shapely.STRtree(outline).query(mid, predicate="dwithin", distance=tol)[0]] = True
    total = float(w.sum())
    internal = ~on_outline
    out = {
        "boundary_m": total,
        "boundary_on_streets_share": float(w[on_street | on_outline].sum() / total) if total else None,
        "internal_boundary_m": float(w[internal].sum()),
        "internal_boundary_on_streets_share": float(w[internal & on_street].sum() / w[internal].sum())
        if w[internal].sum() > 0 else None,
        "tolerance_m": float(tol),
    }
    off = np.flatnonzero(~(on_street | on_outline))
    out["off_street_m"] = float(w[off].sum())
    if atoms is not None and len(atoms) and {"block"} <= set(atoms.columns):
        a = atoms.to_crs(crs) if atoms.crs is not None and not atoms.crs.equals(crs) else atoms
        si, ai = shapely.STRtree(np.asarray(a.geometry.values)).query(mid[off], predicate="dwithin", distance=0.5)
        df = pd.DataFrame({
            "s": si,
            "block": a["block"].to_numpy()[ai],
            "special": a["special"].notna().to_numpy()[ai] if "special" in a.columns else False,
            "community": a["community"].astype(object).where(a["community"].notna(), "").to_numpy()[ai]
            if "community" in a.columns else "",
        })
        g = df.groupby("s").agg(nb=("block", "nunique"), sp=("special", "any"), nc=("community", "nunique"))
        cause = np.full(off.size, len(OFF_STREET_CAUSES) - 1)
        k = g.index.to_numpy()
        c = np.where(g["sp"].to_numpy(), 1, np.where(g["nc"].to_numpy() > 1, 2,
                                                      np.where(g["nb"].to_numpy() == 1, 0, 3)))
        cause[k] = c
        out["off_street_m_by_cause"] = {name: float(w[off][cause == j].sum())
                                        for j, name in enumerate(OFF_STREET_CAUSES)}
    return out


def _explode_segments(lines) -> np.ndarray:
    """Two-point segments of (multi)lines."""
    parts = shapely.get_parts(np.asarray(lines))
    parts = parts[~shapely.is_empty(parts)]
    if parts.size == 0:
        return np.zeros(0, dtype=object)
    coords, idx = shapely.get_coordinates(parts, return_index=True)
    same = idx[1:] == idx[:-1]
    a = coords[:-1][same]
    b = coords[1:][same]
    return shapely.linestrings(np.stack([a, b], axis=1))


def _stability(atoms: gpd.GeoDataFrame, previous: gpd.GeoDataFrame, crs, by: str) -> dict:
    """Residents whose grid changed, locating atoms in the previous grids."""
    a = atoms.to_crs(crs)
    prev = previous.to_crs(crs).reset_index(drop=True)
    pts = shapely.point_on_surface(np.asarray(a.geometry.values))
    tree = shapely.STRtree(np.asarray(prev.geometry.values))
    ai, gi = tree.query(pts, predicate="within")
    old = np.full(len(a), None, dtype=object)
    old[ai] = gi  # a point on a shared edge: last hit wins, deterministic by order
    res = residents_moved(a[by].to_numpy(dtype=float), old, a["grid"].to_numpy(dtype=object))
    res["previous_grids"] = int(len(prev))
    res["atoms_outside_previous"] = int(sum(1 for v in old if v is None))
    return res


def format_report(rep: dict) -> str:
    """Short human-readable summary of :func:`quality_report` output."""
    p = rep["population"]
    r = rep["range"]
    c = rep["coverage"]
    k = rep["contiguity"]
    m = rep["compactness"]
    lines = [
        f"grids: {rep['n_grids']}  in range: {r['in_range_share']:.1%} "
        f"({r['out_of_range']} outside, {r['out_of_range_unexplained']} unexplained)",
        f"population: min {p['min']:.0f}  median {p['median']:.0f}  max {p['max']:.0f}  "
        f"mean {p['mean']:.0f}  CV {p['cv']:.3f}  empty {p['empty_grids']}",
        f"coverage: {c['covered_share']:.4%}  gap {c['gap_m2']:.1f} m²  overlap {c['overlap_m2']:.1f} m²",
        f"contiguity: {k['noncontiguous_grids']} non-contiguous, {k['n_enclosed']} enclosed",
        f"compactness: Polsby-Popper mean {m['polsby_popper_mean']:.3f}  min {m['polsby_popper_min']:.3f}",
    ]
    if r["reasons"]:
        lines.append("outside range: " + ", ".join(f"{k_}: {v}" for k_, v in sorted(r["reasons"].items())))
    if "streets" in rep:
        s = rep["streets"]
        lines.append(f"boundary on streets: {s['boundary_on_streets_share']:.1%} "
                     f"(internal {s['internal_boundary_on_streets_share'] or 0:.1%})")
    if "stability" in rep and "moved" in rep["stability"]:
        s = rep["stability"]
        lines.append(f"residents moved: {s['moved']:.0f} ({s['share']:.1%}), grids changed: {s['grids_changed']}")
    if "runtime_s" in rep:
        lines.append(f"runtime: {rep['runtime_s']:.2f} s")
    return "\n".join(lines)


def population_and_range(pop: np.ndarray, codes, kinds, flags, by: str, min_pop: float, max_pop: float,
                         max_listed: int) -> tuple[dict, dict]:
    """The ``population`` and ``range`` sections of a report from per-grid counts.

    Parameters
    ----------
    pop : ndarray
        Residents (or households) per grid.
    codes, kinds, flags : sequences
        Per grid: code, kind (``exclusive`` grids are out of range by design) and the list of flags that
        explain an out-of-range grid.
    by, min_pop, max_pop, max_listed
        The size rule's column and bounds; how many out-of-range grids to list.

    Returns
    -------
    (population, range) : two dicts
    """
    n = len(pop)
    inr = (pop >= min_pop) & (pop <= max_pop)
    out_list = []
    reasons: dict[str, int] = {}
    for k in np.flatnonzero(~inr):
        why = flags[k] or (["exclusive unit"] if kinds[k] == "exclusive" else [REASON_UNEXPLAINED])
        for w in why:
            reasons[w] = reasons.get(w, 0) + 1
        out_list.append({"code": codes[k], by: float(pop[k]), "reasons": why})
    unexplained = sum(1 for o in out_list if o["reasons"] == [REASON_UNEXPLAINED])
    population = {
        "total": float(pop.sum()),
        "min": float(pop.min()) if n else None,
        "median": float(np.median(pop)) if n else None,
        "max": float(pop.max()) if n else None,
        "mean": float(pop.mean()) if n else None,
        "std": float(pop.std()) if n else None,
        "cv": float(pop.std() / pop.mean()) if n and pop.mean() > 0 else None,
        "empty_grids": int((pop <= 0).sum()),
    }
    rng = {
        "in_range": int(inr.sum()),
        "in_range_share": float(inr.mean()) if n else 1.0,
        "out_of_range": int((~inr).sum()),
        "out_of_range_unexplained": int(unexplained),
        "reasons": reasons,
        "grids": out_list[:max_listed],
    }
    return population, rng
