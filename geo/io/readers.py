"""Read spatial files of every supported format into GeoDataFrames.

Supported: GeoJSON, GeoPackage, Shapefile (plain or zipped), GeoParquet,
CSV with lon/lat or x/y columns, and OSM PBF (the ``lines`` layer by
default). The CRS is never guessed: it comes from the file or from the
caller's ``crs`` (which wins, because files such as GCJ-02 GeoJSON carry a
wrong EPSG:4326 label).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import CRSError, parse_crs

_GEOJSON_CRS = re.compile(rb'"crs"\s*:\s*\{.*?"name"\s*:\s*"([^"]+)"', re.S)


def declared_geojson_crs(path: Path) -> str | None:
    """The CRS a GeoJSON file names in its (pre-RFC 7946) ``crs`` member, or None.

    GDAL silently reads a GeoJSON whose ``crs`` it does not know as WGS84; reading the member ourselves lets
    an unknown code be an error instead.
    """
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    m = _GEOJSON_CRS.search(head)
    return m.group(1).decode("utf-8", "replace") if m else None


def _geojson_crs(name: str):
    """The CRS of a GeoJSON ``crs`` name such as ``urn:ogc:def:crs:EPSG::3857`` (CRSError when unknown)."""
    m = re.search(r"EPSG:+(\d+)$", name)
    return parse_crs(f"EPSG:{m.group(1)}" if m else name)

VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp", ".zip", ".fgb", ".kml", ".gml"}
PARQUET_SUFFIXES = {".parquet", ".geoparquet"}
CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
PBF_SUFFIXES = {".pbf"}

LON_NAMES = ("lon", "lng", "longitude", "x", "经度")
LAT_NAMES = ("lat", "latitude", "y", "纬度")


class InputError(ValueError):
    """The file cannot be read as asked (missing file or column, unknown format or CRS)."""


@dataclass
class RawTable:
    """What a reader returns before validation.

    Attributes
    ----------
    frame : GeoDataFrame
        Rows in file order; its CRS label is whatever the file says.
    crs : pyproj.CRS or "gcj02"
        The CRS the coordinates are really in (caller's ``crs`` or the file's).
    source : str
        The path read (and layer), for messages.
    xy_columns : tuple or None
        For CSV input, the names of the x/y columns used.
    """

    frame: gpd.GeoDataFrame
    crs: Any
    source: str
    xy_columns: tuple[str, str] | None = None


def _pick_column(columns, wanted: str | None, candidates: tuple[str, ...], what: str, path: Path) -> str:
    if wanted:
        if wanted not in columns:
            raise InputError(f"{path}: column {wanted!r} for {what} not found; columns are {list(columns)}")
        return wanted
    lower = {str(c).lower(): c for c in columns}
    for c in candidates:
        if c in lower:
            return lower[c]
    raise InputError(
        f"{path}: no {what} column found (looked for {', '.join(candidates)}); "
        f"name it with --x-col/--y-col. Columns are {list(columns)}"
    )


def read_csv_points(path: Path, x_col: str | None = None, y_col: str | None = None) -> tuple[gpd.GeoDataFrame, tuple[str, str]]:
    """Read a CSV with coordinate columns into a point GeoDataFrame (no CRS label).

    Non-numeric coordinates become empty geometries (reported later), never dropped.
    """
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read as CSV: {exc}") from exc
    xc = _pick_column(df.columns, x_col, LON_NAMES, "longitude/x", path)
    yc = _pick_column(df.columns, y_col, LAT_NAMES, "latitude/y", path)
    x = pd.to_numeric(df[xc], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(df[yc], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    geom = np.full(len(df), None, dtype=object)
    geom[ok] = gpd.points_from_xy(x[ok], y[ok])
    # keep the other columns with pandas' own type inference (ids stay strings)
    for c in df.columns:
        if c in (xc, yc):
            continue
        conv = pd.to_numeric(df[c], errors="coerce")
        if conv.notna().sum() == df[c].notna().sum() and df[c].notna().any() and not _looks_like_id(c):
            df[c] = conv
    gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geom), crs=None)
    return gdf, (xc, yc)


def _looks_like_id(col: str) -> bool:
    c = str(col).lower()
    return c in ("id", "code", "building", "geoid", "geoid20") or c.endswith("_id") or c.endswith("code")


def read_table(
    path: str | Path,
    *,
    layer: str | None = None,
    crs: Any = None,
    x_col: str | None = None,
    y_col: str | None = None,
) -> RawTable:
    """Read *path* into a :class:`RawTable`.

    Parameters
    ----------
    path : str or Path
        A file of a supported format. ``.zip`` is read as a zipped Shapefile
        (or any single-layer vector file inside it).
    layer : str, optional
        Layer name for multi-layer sources (GeoPackage, OSM PBF; PBF defaults to ``lines``).
    crs : optional
        The CRS of the coordinates; overrides the file's label. Required for CSV.
    x_col, y_col : str, optional
        Coordinate columns of a CSV (default: lon/lng/longitude/x and lat/latitude/y).

    Raises
    ------
    InputError
        File missing or unreadable, unknown format, CSV without coordinates.
    geo.crs.CRSError
        No CRS known, or an unknown one.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    suffix = p.suffix.lower()
    source = str(p) + (f" (layer {layer})" if layer else "")
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(f"{source}: the file is empty (0 bytes); nothing to load")
    xy = None
    try:
        if suffix in CSV_SUFFIXES:
            frame, xy = read_csv_points(p, x_col, y_col)
        elif suffix in PARQUET_SUFFIXES:
            frame = gpd.read_parquet(p)
        elif suffix in PBF_SUFFIXES:
            frame = gpd.read_file(p, layer=layer or "lines", engine="pyogrio")
            source = f"{p} (layer {layer or 'lines'})"
        elif suffix in VECTOR_SUFFIXES or p.is_dir():
            target = f"zip://{p.resolve()}" if suffix == ".zip" else p
            frame = gpd.read_file(target, layer=layer, engine="pyogrio")
        else:
            raise InputError(
                f"{p}: unsupported format {suffix!r}; expected GeoJSON, GeoPackage, Shapefile (.shp/.zip), "
                f"GeoParquet, CSV with lon/lat or x/y columns, or OSM .pbf"
            )
    except InputError:
        raise
    except Exception as exc:  # pyogrio/arrow errors carry the useful detail
        raise InputError(f"{source}: cannot read: {exc}") from exc

    if len(frame) == 0:
        raise InputError(f"{source}: the file has no rows (features); nothing to load")
    declared = declared_geojson_crs(p) if suffix in (".geojson", ".json") else None
    if crs is not None:
        real = parse_crs(crs)
    elif declared is not None:
        try:
            real = _geojson_crs(declared)
        except CRSError:
            raise CRSError(f"{source}: the file declares the CRS {declared!r}, which is unknown; it is not read "
                           f"as WGS84 — fix the file's \"crs\" member or pass --crs") from None
    elif frame.crs is not None:
        real = frame.crs
    else:
        hint = " (a CSV carries no CRS)" if suffix in CSV_SUFFIXES else ""
        raise CRSError(
            f"{source}: the coordinate reference system is unknown{hint}; pass --crs, "
            f"e.g. --crs EPSG:4326 (WGS84), --crs EPSG:4490 (CGCS2000) or --crs gcj02 (Amap/Tencent)"
        )
    frame = frame.reset_index(drop=True)
    return RawTable(frame=frame, crs=real, source=source, xy_columns=xy)
