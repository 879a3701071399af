"""Checks of what is given to :func:`geo.partition.partition`, and the street classes that make blocks.

Bad input never turns silently into something else: an empty or missing
geometry, a NaN, negative or fractional population, a special area without
``id`` or ``kind``, or the points of one building id lying far apart raise
:class:`PartitionInputError` naming the layer, the row (its position and index
label) and the field, and saying what was expected.

Street classes: OSM ``highway`` values from motorway to living_street /
unclassified (with their ``_link`` ramps) bound street blocks by default
(:data:`VEHICLE_CLASSES`); footways, paths, cycleways, steps, service roads,
tracks, pedestrian areas, construction and proposed ways do not, but they
still guide cuts inside an oversized block (:func:`split_streets`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["PartitionInputError", "VEHICLE_CLASSES", "NON_VEHICLE_CLASSES", "check_population", "check_special", "split_streets",
           "BUILDING_SPREAD_M"]

#: OSM ``highway`` classes that bound street blocks by default (vehicle streets).
VEHICLE_CLASSES = frozenset({
    "motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential", "living_street",
    "motorway_link", "trunk_link", "primary_link", "secondary_link", "tertiary_link", "road",
})

#: OSM ``highway`` classes that never bound blocks by default (they may guide cuts inside a block).
NON_VEHICLE_CLASSES = frozenset({
    "footway", "path", "cycleway", "steps", "bridleway", "corridor", "sidewalk", "crossing", "pedestrian",
    "service", "track", "elevator", "platform", "bus_stop", "proposed", "construction", "abandoned", "disused",
    "razed", "raceway", "escape", "emergency_bay", "rest_area", "services", "via_ferrata", "no", "bus_guideway",
    "busway", "estate_road",
})

#: Points sharing a building id farther apart than this (m) are not one building.
BUILDING_SPREAD_M = 150.0


class PartitionInputError(ValueError):
    """An input to the partition is unusable; the message names the layer, row and field."""


def _row_name(frame: pd.DataFrame, pos: int) -> str:
    label = frame.index[pos]
    return f"row {pos}" + (f" (index {label!r})" if label != pos else "")


def _check_geometry(frame: gpd.GeoDataFrame, layer: str, allowed: tuple[int, ...], expected: str) -> None:
    geoms = np.asarray(frame.geometry.values, dtype=object)
    missing = shapely.is_missing(geoms)
    bad = np.flatnonzero(missing)
    if len(bad):
        raise PartitionInputError(f"{layer} {_row_name(frame, int(bad[0]))}: field 'geometry' is missing "
                                  f"({len(bad)} rows); expected {expected}")
    empty = np.flatnonzero(shapely.is_empty(geoms))
    if len(empty):
        raise PartitionInputError(f"{layer} {_row_name(frame, int(empty[0]))}: field 'geometry' is empty "
                                  f"({len(empty)} rows); expected {expected}")
    kind = shapely.get_type_id(geoms)
    wrong = np.flatnonzero(~np.isin(kind, allowed))
    if len(wrong):
        raise PartitionInputError(f"{layer} {_row_name(frame, int(wrong[0]))}: field 'geometry' is a "
                                  f"{shapely.get_type_id(geoms[wrong[0]])!s} geometry type id; expected {expected}")
    invalid = np.flatnonzero(~np.isfinite(shapely.get_coordinates(geoms)).all(axis=1))
    if len(invalid):
        raise PartitionInputError(f"{layer}: field 'geometry' has non-finite coordinates; expected {expected}")


def _check_count(frame: pd.DataFrame, col: str, layer: str, required: bool) -> None:
    if col not in frame.columns:
        if required:
            raise PartitionInputError(f"{layer} has no {col!r} column; expected a whole number >= 0 per row")
        return
    raw = frame[col]
    v = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    nan = np.flatnonzero(~np.isfinite(v))
    if len(nan):
        k = int(nan[0])
        shown = repr(raw.iloc[k]) if isinstance(raw.iloc[k], str) else str(raw.iloc[k])
        raise PartitionInputError(f"{layer} {_row_name(frame, k)}: field {col!r} is {shown} "
                                  f"({len(nan)} rows); expected a whole number >= 0")
    neg = np.flatnonzero(v < 0)
    if len(neg):
        k = int(neg[0])
        raise PartitionInputError(f"{layer} {_row_name(frame, k)}: field {col!r} is {v[k]:g} ({len(neg)} rows "
                                  f"negative); expected a whole number >= 0")
    frac = np.flatnonzero(v != np.floor(v))
    if len(frac):
        k = int(frac[0])
        raise PartitionInputError(f"{layer} {_row_name(frame, k)}: field {col!r} is {v[k]:g} ({len(frac)} rows "
                                  f"not whole); expected a whole number >= 0 (round the source first)")


def check_population(population: gpd.GeoDataFrame, *, by: str = "people", households: str = "households",
                     building: str = "building", max_spread: float = BUILDING_SPREAD_M) -> None:
    """Refuse an unusable population layer.

    Parameters
    ----------
    population : GeoDataFrame
        Address points and/or polygon units.
    by, households, building : str
        Columns: the population (required), households and building id (optional).
    max_spread : float
        Largest distance (m) between two points of one building id.

    Raises
    ------
    PartitionInputError
        On the first problem, naming row and field.
    """
    if population.crs is None:
        raise PartitionInputError("population has no CRS; expected a GeoDataFrame with a CRS (e.g. EPSG:4326)")
    _check_geometry(population, "population", (0, 3, 6), "a Point or (Multi)Polygon")
    _check_count(population, "people", "population", required=True)
    if by != "people":
        _check_count(population, by, "population", required=True)
    _check_count(population, households, "population", required=False)
    if building in population.columns:
        _check_building_spread(population, building, max_spread)


def _check_building_spread(population: gpd.GeoDataFrame, building: str, max_spread: float) -> None:
    kind = shapely.get_type_id(np.asarray(population.geometry.values, dtype=object))
    pts = population[kind == 0]
    b = pts[building]
    pts = pts[b.notna().to_numpy()]
    if len(pts) == 0:
        return
    from .verify import metric_crs

    m = pts.to_crs(metric_crs(pts))
    xy = shapely.get_coordinates(np.asarray(m.geometry.values, dtype=object))
    df = pd.DataFrame({"b": pts[building].astype(str).to_numpy(), "x": xy[:, 0], "y": xy[:, 1],
                       "pos": np.arange(len(pts))})
    g = df.groupby("b").agg(x0=("x", "min"), x1=("x", "max"), y0=("y", "min"), y1=("y", "max"))
    spread = np.hypot(g["x1"] - g["x0"], g["y1"] - g["y0"])
    far = spread[spread > max_spread]
    if len(far):
        bid = far.index[0]
        rows = df.loc[df["b"] == bid, "pos"].to_numpy()
        names = ", ".join(_row_name(pts, int(r)) for r in rows[:4])
        raise PartitionInputError(
            f"population {names}: field {building!r} = {bid!r} is shared by address points {far.iloc[0]:.0f} m "
            f"apart ({len(far)} building ids so); expected the points of one building within {max_spread:g} m "
            f"(give the buildings distinct ids)")


def check_special(special: gpd.GeoDataFrame) -> None:
    """Refuse a special-areas layer without ``id``/``kind`` or with empty geometries.

    Raises
    ------
    PartitionInputError
    """
    if special.crs is None:
        raise PartitionInputError("special areas have no CRS")
    for col in ("id", "kind"):
        if col not in special.columns:
            raise PartitionInputError(f"special areas have no {col!r} column; expected {col!r} on every row "
                                      f"(columns: {', '.join(map(str, special.columns))})")
        v = special[col]
        bad = np.flatnonzero(v.isna().to_numpy() | (v.astype(str).str.strip() == "").to_numpy())
        if len(bad):
            raise PartitionInputError(f"special areas {_row_name(special, int(bad[0]))}: field {col!r} is empty "
                                      f"({len(bad)} rows); expected a value on every row")
    dup = special["id"].astype(str).duplicated(keep="first").to_numpy()
    if dup.any():
        k = int(np.flatnonzero(dup)[0])
        raise PartitionInputError(f"special areas {_row_name(special, k)}: field 'id' = {special['id'].iloc[k]!r} "
                                  f"is used twice; expected unique ids")
    _check_geometry(special, "special areas", (3, 6), "a (Multi)Polygon")


def split_streets(streets: Any, classes: Iterable[str] | None = None, column: str = "highway"):
    """Street lines that make blocks, and the other lines (which may guide cuts).

    Parameters
    ----------
    streets : GeoDataFrame, GeoSeries or array of lines, or None
    classes : iterable of str, optional
        Values of *column* that bound blocks. Default: the vehicle classes (:data:`VEHICLE_CLASSES`)
        and any class that is not a known OSM non-vehicle class (:data:`NON_VEHICLE_CLASSES`), so
        a dataset with its own class names (e.g. 主干道) still makes blocks. A list-valued class
        (OSMnx writes ``"['residential', 'service']"``) bounds blocks when one of its values does.
        Lines without a class column all bound blocks; lines with an empty class do not.
    column : str
        Class column (OSM ``highway``; ``klass`` is read when ``highway`` is absent).

    Returns
    -------
    (block_lines, guide_lines, used_classes)
        Two frames/series (``guide_lines`` None when there is none) and the sorted classes that
        made blocks (None when the lines have no class column).
    """
    if streets is None:
        return None, None, None
    if not isinstance(streets, gpd.GeoDataFrame):
        return streets, None, None
    col = column if column in streets.columns else ("klass" if "klass" in streets.columns else None)
    if col is None:
        return streets, None, None
    wanted = None if classes is None else {str(c).strip() for c in classes}
    cls = streets[col].astype(object)

    def makes_blocks(v) -> bool:
        if v is None or (isinstance(v, float) and v != v):
            return False
        vals = [x.strip(" '\"") for x in str(v).strip("[]").split(",")] if str(v).startswith("[") else [str(v)]
        if wanted is not None:
            return any(x in wanted for x in vals)
        return any(x in VEHICLE_CLASSES or x not in NON_VEHICLE_CLASSES for x in vals)

    keep = np.array([makes_blocks(v) for v in cls], dtype=bool)
    used = sorted(set(cls[keep].astype(str)))
    guide = streets[~keep & cls.notna().to_numpy()]
    return streets[keep], (guide if len(guide) else None), used
