"""Grids from atoms: one dissolve, codes and names (:func:`build_grids`).

The dissolve of a region's atoms is :func:`geo.partition.blocks.dissolve_groups`
(coverage union, exact overlay where the coverage is not clean), with pinholes
left by rounding filled (:func:`fill_pinholes`); codes and names come from
:mod:`geo.partition.codes`, whose noding of shared edges the published plans use.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .blocks import dissolve_groups
from .codes import DEFAULT_PREFIX, assign_codes

__all__ = ["GRID_LEVEL", "build_grids", "buildings_across_grids", "dissolve", "fill_pinholes"]


#: ``level`` of the grids made here: 1 = basic grid (基础网格). Sub-grids
#: (微网格, e.g. from village groups) would get level 2.
GRID_LEVEL = 1


def dissolve(geoms: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Union of the atoms of each region ``0..k-1``: the one dissolve of the engine.

    Parameters
    ----------
    geoms : array of polygons (a coverage)
    labels : array of int in ``0..k-1``
    k : int
        Number of regions (a region without atoms gets an empty polygon).

    Returns
    -------
    ndarray of geometries, length *k*
    """
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(k, shapely.Polygon(), dtype=object)
    if len(labels) == 0:
        return out
    uniq, merged = dissolve_groups(np.asarray(geoms, dtype=object), labels)
    counts = np.bincount(labels, minlength=k)
    out[uniq] = [fill_pinholes(g) if counts[u] > 1 else g for u, g in zip(uniq, merged)]
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
    geoms = dissolve(np.asarray(atoms.geometry.values), labels, k)
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
