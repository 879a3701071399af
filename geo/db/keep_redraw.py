"""Stable re-draw that keeps some grids exactly: locked grids, and every in-range grid of a plan that was
not made by the engine (imported from a file, or edited by hand).

The engine's stable re-draw (:func:`geo.partition.redraw.redraw`) keeps in-range grids as unions of its
atoms; a hand-drawn grid is not a union of atoms, so its shape would change. Here the kept grids are taken
out of the jurisdiction, the engine divides only the rest (stable, from the rest of the previous plan), and
the kept grids are put back with their shape and code. A piece of the rest that the engine leaves below the
range and that touches no other new grid (a gap closed in by kept grids) joins the kept neighbour it shares
most boundary with (same community), if that stays in range; the report lists it (``absorbed``).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import local_metric_crs

LOCKED = "locked"


def kept_mask(prev: gpd.GeoDataFrame, kind: str, people: np.ndarray, min_pop: float, max_pop: float) -> np.ndarray:
    """Which previous grids to keep: locked ones always; in-range (or exclusive) ones of non-engine plans."""
    locked = np.array([LOCKED in (f if isinstance(f, list) else str(f or "").split("; ")) for f in prev["flags"]])
    if kind == "engine":
        return locked
    inr = (people >= min_pop) & (people <= max_pop) | (prev["kind"].to_numpy() == "exclusive")
    return locked | inr


def _clip_population(pop: gpd.GeoDataFrame, rest) -> gpd.GeoDataFrame:
    """Population inside *rest*: points inside it; polygons clipped with people scaled by area share."""
    is_pt = pop.geometry.geom_type.isin(["Point", "MultiPoint"]).to_numpy()
    geoms = np.asarray(pop.geometry.values, dtype=object)
    keep = np.zeros(len(pop), dtype=bool)
    keep[is_pt] = shapely.covers(rest, geoms[is_pt]) if is_pt.any() else keep[is_pt]
    out = pop.copy()
    if (~is_pt).any():
        clipped = shapely.intersection(geoms[~is_pt], rest)
        share = np.where(shapely.area(geoms[~is_pt]) > 0, shapely.area(clipped) / shapely.area(geoms[~is_pt]), 0)
        idx = np.flatnonzero(~is_pt)
        geo_arr = geoms.copy()
        geo_arr[idx] = clipped
        out = out.set_geometry(gpd.GeoSeries(geo_arr, crs=pop.crs))
        for c in ("people", "households"):
            if c in out.columns:
                vals = out[c].to_numpy(dtype=float)
                vals[idx] = np.round(vals[idx] * share)
                out[c] = vals.astype(np.int64)
        keep[idx] = share > 1e-6
    return out[keep].reset_index(drop=True)


def redraw_keeping(inputs, kept: np.ndarray, *, min_pop: int, max_pop: int, by: str, seed: int, progress=None):
    """Re-draw the part of the jurisdiction outside the kept grids; returns (grids in EPSG:4326, report).

    Parameters
    ----------
    inputs : geo.db.partitioning.Inputs
        What the engine needs (``previous`` is the published plan's grids).
    kept : ndarray of bool
        Per previous grid: keep it exactly.
    """
    from geo.partition import partition, quality_report

    prev = inputs.previous.reset_index(drop=True)
    crs = local_metric_crs(inputs.jurisdiction)
    jur = shapely.union_all(np.asarray(inputs.jurisdiction.to_crs(crs).geometry.values))
    pm = prev.to_crs(crs)
    kg = list(np.asarray(pm.geometry.values, dtype=object)[kept])
    modified: set[str] = set()
    kcodes = [str(c) for c in pm["code"][kept]]
    for i in range(1, len(kg)):  # kept grids never overlap one another (earlier code wins)
        other = shapely.union_all(kg[:i])
        if shapely.intersection(kg[i], other).area > 0.01:
            kg[i] = shapely.difference(kg[i], other)
            modified.add(kcodes[i])
    kept_union = shapely.union_all(kg) if kg else shapely.Polygon()
    rest = shapely.difference(jur, kept_union)
    # pieces thinner than 5 cm are projection noise along the kept grids' edges, not territory
    rest = shapely.union_all([p for p in getattr(rest, "geoms", [rest])
                              if p.area > 1.0 and 2 * p.area / p.length > 0.05]) if not rest.is_empty else rest
    kept_frame = pm[kept].copy()
    kept_frame = kept_frame.set_geometry(gpd.GeoSeries(kg, crs=crs, index=kept_frame.index))
    report = {"kept": kcodes, "rest_m2": round(float(rest.area), 1)}
    parts = [kept_frame]
    if rest.area > 1.0:
        rest_gs = gpd.GeoSeries([rest], crs=crs)
        from geo.db.grid_import import valid_polygons

        rest_w = valid_polygons([rest_gs.to_crs(4326).iloc[0]])[0]
        pop = _clip_population(inputs.population.to_crs(4326), rest_w)
        comm = inputs.communities
        if comm is not None:
            comm = comm.copy()
            comm = comm.set_geometry(shapely.intersection(np.asarray(comm.geometry.values), rest_w))
            comm = comm[~comm.geometry.is_empty & (shapely.area(np.asarray(comm.geometry.values)) > 0)
                        ].reset_index(drop=True)
        special = inputs.special
        if special is not None:
            special = special[special.intersects(rest_w)].reset_index(drop=True)
            special = special if len(special) else None
        streets = inputs.streets
        if streets is not None:
            streets = streets[streets.intersects(rest_w.buffer(1e-4))].reset_index(drop=True)
            streets = streets if len(streets) else None
        plan = partition(jurisdiction=gpd.GeoDataFrame(geometry=[rest_w], crs=4326), population=pop,
                         streets=streets, communities=comm if comm is not None and len(comm) else None,
                         special=special, min_pop=min_pop, max_pop=max_pop, by=by,
                         previous=prev[~kept].reset_index(drop=True) if (~kept).any() else None, seed=seed,
                         progress=progress)
        new = plan.grids.to_crs(crs)
        new = _absorb_enclosed(new, kept_frame, min_pop, max_pop, report)
        parts.append(new)
    cols = ["code", "name", "kind", "level", "parent_code", "people", "households", "community", "flags", "geometry"]
    frames = []
    for f in parts:
        f = f.copy()
        for c in cols:
            if c not in f.columns:
                f[c] = None
        frames.append(f[cols])
    out = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs)
    out["flags"] = [f if isinstance(f, list) else [x for x in str(f or "").split("; ") if x] for f in out["flags"]]
    out = _give_specks_away(out, len(kept_frame), report)
    _unique_codes(out, set(kept_frame["code"].astype(str)), report)
    out = out.sort_values("code", kind="stable").reset_index(drop=True)
    from geo.db.grid_import import valid_polygons

    out = out.to_crs(4326)
    geoms = np.asarray(out.geometry.values, dtype=object)
    # kept grids: their stored geometry exactly (not a projection round trip) unless something was changed
    same = set(report["kept"]) - modified - {a["into"] for a in report.get("absorbed", [])}
    exact = dict(zip(prev["code"].astype(str), prev.geometry.values))
    geoms = [exact[c] if c in same else geoms[i] for i, c in enumerate(out["code"])]
    geoms = _fit_new_grids(geoms, [c not in same for c in out["code"]],
                           shapely.union_all(np.asarray(inputs.jurisdiction.to_crs(4326).geometry.values)))
    out = out.set_geometry(gpd.GeoSeries(valid_polygons(geoms), crs=4326, index=out.index))
    q = quality_report(out.assign(flags=["; ".join(f) for f in out["flags"]]), inputs.jurisdiction,
                       min_pop, max_pop, previous=prev, by=by)
    q["keep_redraw"] = report
    return out, q



def _fit_new_grids(geoms: list, is_new: list[bool], jur) -> list:
    """Fit the new grids (EPSG:4326) exactly into the jurisdiction minus the exact kept grids.

    The engine worked in metres: its edges along the kept grids and the jurisdiction come back centimetres
    off. New grids are clipped to the rest, and each leftover sliver of the rest joins the new grid it shares
    most boundary with, so the plan covers the jurisdiction exactly.
    """
    from geo.db.grid_import import valid_polygons

    kept_union = shapely.union_all([g for g, n in zip(geoms, is_new) if not n])
    rest = valid_polygons([shapely.difference(jur, kept_union)])[0]
    idx = [i for i, n in enumerate(is_new) if n]
    if not idx:
        return geoms
    out = list(geoms)
    for i in idx:
        out[i] = valid_polygons([shapely.intersection(out[i], rest)])[0]
    left = shapely.difference(rest, shapely.union_all([out[i] for i in idx]))
    for piece in getattr(left, "geoms", [left]):
        if piece.is_empty or piece.geom_type != "Polygon":
            continue
        best, best_len = -1, -1.0
        for i in idx:
            ln = shapely.intersection(piece.boundary, out[i].buffer(1e-7)).length
            if ln > best_len:
                best, best_len = i, ln
        out[best] = shapely.union_all([out[best], piece])
    return out


def _absorb_enclosed(new: gpd.GeoDataFrame, kept: gpd.GeoDataFrame, min_pop, max_pop, report) -> gpd.GeoDataFrame:
    """Join below-range new grids that touch no other new grid to their best kept neighbour (if it stays in range)."""
    new = new.reset_index(drop=True)
    ng = np.asarray(new.geometry.values, dtype=object)
    kg = np.asarray(kept.geometry.values, dtype=object)
    drop = []
    absorbed = []
    for i in range(len(new)):
        if new["kind"].iat[i] == "exclusive" or new["people"].iat[i] >= min_pop:
            continue
        others = [j for j in range(len(new)) if j != i and j not in drop
                  and new["community"].iat[j] == new["community"].iat[i]
                  and ng[i].buffer(0.5).intersection(ng[j]).area > 1.0]
        if others:
            continue
        best, best_len = -1, 0.0
        for k in range(len(kg)):
            ln = ng[i].boundary.buffer(0.5).intersection(kg[k].boundary).length
            if (ln > best_len and kept["people"].iat[k] + new["people"].iat[i] <= max_pop
                    and kept["community"].iat[k] == new["community"].iat[i]):
                best, best_len = k, ln
        if best < 0:
            continue
        kg[best] = shapely.union_all([kg[best], ng[i]])
        idx = kept.index[best]
        kept.loc[idx, "people"] = int(kept["people"].iat[best] + new["people"].iat[i])
        kept.loc[idx, "households"] = int((kept["households"].iat[best] or 0) + (new["households"].iat[i] or 0))
        absorbed.append({"piece_m2": round(float(ng[i].area), 1), "people": int(new["people"].iat[i]),
                         "into": str(kept["code"].iat[best])})
        drop.append(i)
    if absorbed:
        kept.set_geometry(gpd.GeoSeries(kg, crs=kept.crs, index=kept.index), inplace=True)
        report["absorbed"] = absorbed
    return new.drop(index=drop).reset_index(drop=True)


def _give_specks_away(out: gpd.GeoDataFrame, n_kept: int, report: dict, max_m2: float = 1.0) -> gpd.GeoDataFrame:
    """Parts of new grids under *max_m2* (projection noise where the engine's edges meet the kept grids')
    join the new grid they touch most, or are dropped when they touch only kept grids; a new grid left with
    nothing is dropped."""
    geoms = list(out.geometry.values)
    moved = 0
    for i in range(n_kept, len(geoms)):
        parts = list(getattr(geoms[i], "geoms", [geoms[i]]))
        small = [p for p in parts if p.area < max_m2]
        if not small:
            continue
        for sp in small:
            best, best_a = -1, 0.0
            for j in range(n_kept, len(geoms)):  # kept grids stay exactly as they were
                if j == i or geoms[j].is_empty:
                    continue
                a = sp.buffer(0.05).intersection(geoms[j]).area
                if a > best_a:
                    best, best_a = j, a
            if best >= 0:
                geoms[best] = shapely.union_all([geoms[best], sp])
                moved += 1
        geoms[i] = shapely.union_all([p for p in parts if p.area >= max_m2]) if len(small) < len(parts) \
            else shapely.Polygon()
    out = out.set_geometry(gpd.GeoSeries(geoms, crs=out.crs, index=out.index))
    empty = out.geometry.is_empty.to_numpy()
    if moved or empty.any():
        report["specks_moved"] = moved
        report["dropped_empty"] = [str(c) for c in out["code"][empty]]
    return out[~empty].reset_index(drop=True)


def _unique_codes(out: gpd.GeoDataFrame, kept_codes: set[str], report: dict) -> None:
    """New grids whose code a kept grid already has get the next free serial of their community."""
    seen: set[str] = set(kept_codes)
    renumbered = []
    codes = out["code"].astype(str).tolist()
    for i, c in enumerate(codes):
        if i < len(kept_codes):  # the kept grids come first
            continue
        if c not in seen:
            seen.add(c)
            continue
        prefix = c[:12]
        serial = max([int(x[12:]) for x in seen if x[:12] == prefix] or [0]) + 1
        codes[i] = f"{prefix}{serial:03d}"
        renumbered.append({"from": c, "to": codes[i]})
        seen.add(codes[i])
    out["code"] = codes
    if renumbered:
        report["renumbered"] = renumbered
