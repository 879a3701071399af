"""Atoms: street blocks (or population polygons) with their population, oversized ones cut into pieces.

The first stage of :func:`geo.partition.partition`::

    population (+ streets, communities, special units)
      -> blocks            street blocks (geo.partition.blocks), the population polygons
                           themselves, or lattice cells for points without streets
      -> population        address points by location, polygons by areal weighting
                           (geo.partition.population)
      -> joined            blocks sharing one building's address points joined (join_building_atoms)
      -> split             atoms above max_pop cut into pieces of whole buildings along internal
                           roads, or by the finer population units inside (geo.partition.split)
      -> refined           blocks of communities with no legal division cut into building groups
                           (refine_infeasible)

Atoms are in a metric CRS (:func:`geo.partition.verify.metric_crs`) and carry
:data:`ATOM_CONTRACT`.
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import as_geoseries

from .population import largest_remainder
from .split import split_oversized
from .grids import dissolve
from .verify import metric_crs

__all__ = [
    "ATOM_CONTRACT",
    "REFINE_LEVELS",
    "atoms_from_polygons",
    "join_building_atoms",
    "refine_infeasible",
    "split_atoms_by_area",
    "split_polygon_by_area",
]


#: Columns every atoms frame carries (plus ``geometry``).
ATOM_CONTRACT = ["people", "households", "community", "special", "special_name", "block", "building_split"]


def _as_gs(obj: Any, crs) -> gpd.GeoSeries | None:
    return None if obj is None else as_geoseries(obj, crs)


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
    if "people_exact" not in atoms.columns:
        atoms["people_exact"] = atoms["people"].to_numpy(dtype=float)
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


def _split(atoms, points, min_pop, max_pop, target, internal_roads, fine_units=None, footprints=None):
    """Split oversized atoms (:func:`geo.partition.split.split_oversized`); returns (atoms, info, points)."""
    out, rep = split_oversized(atoms, points, min_pop=int(min_pop), max_pop=int(max_pop), target=target,
                               internal_roads=internal_roads, fine_units=fine_units, footprints=footprints)
    info = rep.to_dict() if hasattr(rep, "to_dict") else {}
    info["method"] = "geo.partition.split.split_oversized"
    return out, info, (rep.points if points is not None else None)


def _make_atoms(population, jurisdiction, streets, communities, special, crs, min_pop, max_pop, target,
                internal_roads, lattice_cell, report, footprints=None):
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
    if points is not None and "building" in points.columns:
        atoms, points, joined = join_building_atoms(atoms, points)
        report["atoms"]["atoms_joined_by_buildings"] = joined
    fine = None if is_points else population  # polygon units share a cut block's people, not its area
    atoms, split_info, points = _split(atoms, points, min_pop, max_pop, target, internal_roads, fine, footprints)
    report["atoms"]["split"] = split_info
    atoms = _ensure_contract(atoms)
    if atoms.crs is None or not atoms.crs.equals(crs):
        atoms = atoms.to_crs(crs)
    report["atoms"]["n_atoms"] = int(len(atoms))
    return atoms, jur_gs, points


def join_building_atoms(atoms: gpd.GeoDataFrame, points: gpd.GeoDataFrame, building: str = "building",
                        max_gap: float = 1.0):
    """Join atoms that hold the address points of one building (a building across a street line).

    A building's entrances can be geocoded on both sides of a street centerline, so its points lie
    in two street blocks. Counting them all in one block would count people outside the polygon
    that holds them; so the blocks (of one community, neither a special unit, at most *max_gap* m
    apart) are joined into one atom, and a later split keeps the building whole. Points are
    re-located by geometry. Blocks that cannot be joined keep the building's count where the
    population stage put it, and verify reports the building as split.

    Returns
    -------
    (atoms, points, joined)
        New atoms (contract kept), the points with their ``atom`` (by location), and the number of
        atoms merged into others.
    """
    from .population import locate_points

    geoms = np.asarray(atoms.geometry.values, dtype=object)
    pts = points.to_crs(atoms.crs) if points.crs is not None else points
    where, _, _ = locate_points(np.asarray(pts.geometry.values, dtype=object), geoms)
    b = pts[building].to_numpy(dtype=object)
    ok = (where >= 0) & pd.notna(b)
    df = pd.DataFrame({"b": b[ok].astype(str), "a": where[ok]}).drop_duplicates()
    multi = df[df.groupby("b")["a"].transform("nunique") > 1]
    if multi.empty:
        return atoms, points, 0
    comm = atoms["community"].to_numpy(dtype=object)
    special = atoms["special"].to_numpy(dtype=object)
    parent = np.arange(len(atoms))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for _, grp in multi.groupby("b")["a"]:
        a = grp.to_numpy()
        for x in a[1:]:
            # only neighbouring blocks (across a street line): joining distant ones would make a grid in pieces
            if comm[x] == comm[a[0]] and special[x] is None and special[a[0]] is None and \
                    shapely.distance(geoms[int(x)], geoms[int(a[0])]) <= max_gap:
                rx, r0 = find(int(x)), find(int(a[0]))
                if rx != r0:
                    parent[max(rx, r0)] = min(rx, r0)
    roots = np.array([find(k) for k in range(len(atoms))])
    if (roots == np.arange(len(atoms))).all():
        return atoms, points, 0
    uniq, inv = np.unique(roots, return_inverse=True)
    merged = dissolve(geoms, inv, len(uniq))
    out = atoms.iloc[uniq].reset_index(drop=True)
    out = out.set_geometry(merged, crs=atoms.crs)
    for c in ("people", "households"):
        out[c] = np.bincount(inv, weights=atoms[c].to_numpy(dtype=float), minlength=len(uniq)).astype(np.int64)
    if "people_exact" in atoms.columns:
        out["people_exact"] = np.bincount(inv, weights=atoms["people_exact"].to_numpy(dtype=float), minlength=len(uniq))
    if "area_m2" in out.columns:
        out["area_m2"] = shapely.area(merged)
    new_where = np.where(where >= 0, inv[where.clip(0)], -1)
    return _ensure_contract(out), pts.assign(atom=new_where), int(len(atoms) - len(uniq))


def footprint_buildings(population: gpd.GeoDataFrame, footprints, building: str = "building"):
    """Building ids from footprints: points inside a footprint are one building.

    A point without a building id inside a footprint takes the footprint's id (``fp<k>``); a footprint
    takes the most common building id of the points inside it (its own id when they have none).

    Returns
    -------
    (population, footprints)
        A copy of the population with *building* filled, and the footprints (population CRS) with
        the *building* id of each.
    """
    fp = as_geoseries(footprints, population.crs).to_crs(population.crs)
    fp = gpd.GeoDataFrame(geometry=fp.reset_index(drop=True), crs=population.crs)
    pop = population.copy()
    if building not in pop.columns:
        pop[building] = pd.Series([None] * len(pop), dtype=object, index=pop.index)
    pop[building] = pop[building].astype(object)
    pg = np.asarray(pop.geometry.values, dtype=object)
    is_pt = shapely.get_type_id(pg) == 0
    pi, fi = shapely.STRtree(np.asarray(fp.geometry.values, dtype=object)).query(pg[is_pt], predicate="intersects")
    rows = np.flatnonzero(is_pt)[pi]
    own = pop[building].to_numpy(dtype=object)
    key = np.array([f"fp{k}" for k in range(len(fp))], dtype=object)
    df = pd.DataFrame({"f": fi, "b": [own[r] if pd.notna(own[r]) else None for r in rows]}).dropna()
    if len(df):
        top = df.groupby("f")["b"].agg(lambda s: s.value_counts().index[0])
        key[top.index.to_numpy()] = top.to_numpy(dtype=object)
    fill = np.array([pd.isna(own[r]) for r in rows], dtype=bool)
    own = own.copy()
    own[rows[fill]] = key[fi[fill]]
    pop[building] = own
    fp[building] = key
    return pop, fp


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


#: Group sizes (shares of ``min_pop``: smallest, largest, preferred) of the successive refinements of
#: communities that cannot be divided legally: first street blocks cut into groups of 250–600 people
#: (1,000–2,000 grids), then, where that is still not enough (every block already small, e.g. the
#: natural villages of a village, or a tight total), groups of 100–300 and 50–150.
REFINE_LEVELS = ((0.25, 0.6, 0.4), (0.1, 0.3, 0.2), (0.05, 0.15, 0.1))


def refine_infeasible(atoms: gpd.GeoDataFrame, points: gpd.GeoDataFrame | None, labels: np.ndarray,
                      flags: list[list[str]], min_pop: float, internal_roads: Any = None,
                      max_pop: float | None = None, level: tuple[float, float, float] = REFINE_LEVELS[0],
                      adjacency=None, fine_units=None, parents: bool = False, rings: int = 2):
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
    communities the infeasible regions and *rings* rings of regions around them (*adjacency*)
    are cut.

    Parameters
    ----------
    rings : int
        Without communities: how many rings of regions around the infeasible ones are cut too.
    parents : bool
        Also return, per new atom, the position of the atom it came from (a warm start of the
        re-solve: :class:`~geo.partition.regions.RegionBuilder` ``initial_labels=labels[parent]``).

    Returns
    -------
    (atoms, info, points) — or (atoms, info, points, parent) with *parents* — or None when
    nothing was infeasible or nothing could be cut finer. *points* carry the ``atom`` (position in
    the new atoms) of each point when they came with one.
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
        if adjacency is not None:
            # the regions up to two rings out too: a region short of min_pop whose neighbours are near min
            # themselves is fixed only by shifting people along a chain of regions, which needs their atoms fine
            for _ring in range(rings):
                near = np.unique(np.concatenate([labels[adjacency.j[mask[adjacency.i]]],
                                                 labels[adjacency.i[mask[adjacency.j]]]]))
                mask |= np.isin(labels, near)
    lo, hi_g, tg = level
    mask &= atoms["special"].isna().to_numpy() & ~atoms["building_split"].to_numpy(dtype=bool)
    mask &= atoms["people"].to_numpy() > int(min_pop * hi_g)  # only what can be cut finer
    if not mask.any():
        return None
    sub = atoms[mask].reset_index(drop=True)
    sub["_parent"] = np.flatnonzero(mask)  # carried onto the pieces by split_oversized
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
                                target=min_pop * tg, internal_roads=internal_roads, fine_units=fine_units)
    # a building above the group size is indivisible but not a grid of its own: only one above the
    # grid maximum is (split_oversized marks every building above *its* max_pop as building_split)
    hi = float(max_pop) if max_pop is not None else 2.0 * float(min_pop)
    fine["building_split"] = fine["building_split"].to_numpy(dtype=bool) & (fine["people"].to_numpy() > hi)
    parent = np.concatenate([np.flatnonzero(~mask), fine["_parent"].to_numpy(dtype=np.int64)])
    fine = fine.drop(columns="_parent")
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
    if parents:
        return _ensure_contract(out), info, new_points, parent
    return _ensure_contract(out), info, new_points
