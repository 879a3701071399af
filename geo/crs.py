"""Coordinate reference systems: WGS84, CGCS2000 and GCJ-02, plus local metric CRSs.

Everything is stored in EPSG:4326 (WGS84 lon/lat). Input may come in

* any CRS pyproj knows (``"EPSG:4490"`` is CGCS2000, which differs from WGS84
  by centimetres and is treated as a datum pass-through by PROJ),
* **GCJ-02** (``"gcj02"``), the obfuscated "Mars" datum that Amap, Tencent
  and other Chinese map providers use. It has no EPSG code and PROJ cannot
  express it, so it is implemented here: the forward formula is the public
  one (Krasovsky ellipsoid constants, as used by eviltransform and
  coordtransform); the inverse is solved by fixed-point iteration to
  better than 1 mm.

Areas and distances are computed in a local metric CRS chosen by
:func:`local_metric_crs` (UTM zone of the data's centroid).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

WGS84 = CRS.from_epsg(4326)
CGCS2000 = CRS.from_epsg(4490)

#: Names accepted for GCJ-02 wherever a CRS is asked for.
GCJ02_NAMES = frozenset({"gcj02", "gcj-02", "gcj", "mars", "amap", "tencent"})
#: Friendly aliases for the two other coordinate systems users name.
CRS_ALIASES = {"wgs84": "EPSG:4326", "cgcs2000": "EPSG:4490"}

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 formula.
_A = 6378245.0
_EE = 0.00669342162296594323


class CRSError(ValueError):
    """A CRS that cannot be used: unknown, missing or not geographic where it must be."""


def is_gcj02(crs: Any) -> bool:
    """True when *crs* names GCJ-02 (case-insensitive string such as ``"gcj02"``).

    Use this, not ``crs == "gcj02"``: on a :class:`pyproj.CRS` that comparison makes PROJ try to parse "gcj02" as
    a CRS name (a database search of about 0.1–0.4 s each time, several times per load)."""
    return isinstance(crs, str) and crs.strip().lower() in GCJ02_NAMES


def parse_crs(crs: Any) -> CRS | str:
    """Normalise a user-given CRS.

    Parameters
    ----------
    crs : str, int or pyproj.CRS
        ``"gcj02"`` (and aliases), ``"wgs84"``, ``"cgcs2000"``, an EPSG code
        (``4490`` or ``"EPSG:4490"``) or anything :class:`pyproj.CRS` accepts.

    Returns
    -------
    pyproj.CRS or the string ``"gcj02"``

    Raises
    ------
    CRSError
        If the CRS is empty or unknown to PROJ.
    """
    if crs is None or (isinstance(crs, str) and not crs.strip()):
        raise CRSError("no CRS given: pass --crs (e.g. EPSG:4326, EPSG:4490, gcj02)")
    if is_gcj02(crs):
        return "gcj02"
    if isinstance(crs, str) and crs.strip().lower() in CRS_ALIASES:
        crs = CRS_ALIASES[crs.strip().lower()]
    try:
        return CRS.from_user_input(crs)
    except Exception as exc:  # pyproj raises its own CRSError subclasses
        raise CRSError(
            f"unknown CRS {crs!r}: expected an EPSG code (e.g. EPSG:4326, EPSG:4490), "
            f"a PROJ/WKT definition, or 'gcj02'"
        ) from exc


def crs_name(crs: Any) -> str:
    """A short label: ``EPSG:3857 (WGS 84 / Pseudo-Mercator)``, or ``gcj02``."""
    if is_gcj02(crs):
        return "gcj02"
    epsg = crs.to_epsg() if hasattr(crs, "to_epsg") else None
    return f"EPSG:{epsg} ({crs.name})" if epsg else getattr(crs, "name", str(crs))


def check_fits(crs: Any, geoms: np.ndarray, source: str, sample: int = 2000) -> None:
    """Refuse a declared CRS that the coordinates cannot be in.

    * a projected CRS (metres) whose coordinates all lie within ±180 / ±90 — degrees declared as metres
      (e.g. lon/lat labelled EPSG:3857 would land a few hundred metres off Africa's coast);
    * coordinates that, converted to WGS84, fall outside the CRS's area of use (more than 1° beyond it) for
      most of the data — the wrong zone, the wrong CRS, or metres declared as degrees.

    A few stray rows are left to the row checks; this is about the declaration.

    Parameters
    ----------
    crs : pyproj.CRS or "gcj02"
    geoms : array of shapely geometries
        The usable rows, in *crs*.
    source : str
        File name for the message.

    Raises
    ------
    CRSError
        Naming the CRS and a sample coordinate.
    """
    if is_gcj02(crs) or len(geoms) == 0:
        return
    xy = shapely.get_coordinates(np.asarray(geoms, dtype=object))
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) == 0:
        return
    if len(xy) > sample:
        xy = xy[np.linspace(0, len(xy) - 1, sample).astype(int)]
    x0, y0 = xy[0]
    first = f"({x0:.6g}, {y0:.6g})"
    if not crs.is_geographic and (np.abs(xy[:, 0]) <= 180).all() and (np.abs(xy[:, 1]) <= 90).all():
        raise CRSError(f"{source}: the declared CRS {crs_name(crs)} is projected (metres), but the coordinates look "
                       f"like degrees, e.g. {first}; declare the CRS they are in (EPSG:4326, EPSG:4490 or gcj02)")
    aou = crs.area_of_use
    if aou is None:
        return
    if crs.is_geographic:
        lon, lat = xy[:, 0], xy[:, 1]
    else:
        from pyproj import Transformer

        lon, lat = Transformer.from_crs(crs, WGS84, always_xy=True).transform(xy[:, 0], xy[:, 1])
        lon, lat = np.asarray(lon), np.asarray(lat)
    m = 1.0
    west, east = aou.west, aou.east
    lon_in = (lon >= west - m) & (lon <= east + m) if west <= east else (lon >= west - m) | (lon <= east + m)
    inside = np.isfinite(lon) & np.isfinite(lat) & lon_in & (lat >= aou.south - m) & (lat <= aou.north + m)
    if inside.mean() < 0.5:
        k = int(np.flatnonzero(~inside)[0])
        where = f"({lon[k]:.4f}, {lat[k]:.4f}) in WGS84" if np.isfinite(lon[k]) else "nowhere valid"
        raise CRSError(f"{source}: coordinates such as ({xy[k, 0]:.6g}, {xy[k, 1]:.6g}) are outside the area of use "
                       f"of the declared CRS {crs_name(crs)} ({aou.name}: lon {aou.west:g}..{aou.east:g}, "
                       f"lat {aou.south:g}..{aou.north:g}) — they would land at {where}; "
                       f"{int((~inside).sum())} of {len(inside)} sampled points are outside. Declare the CRS the "
                       f"coordinates are really in (--crs)")


# --------------------------------------------------------------------------- GCJ-02


def out_of_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Boolean mask of points outside the box where GCJ-02 applies (no offset there)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return ~((lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271))


def _delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 offset (dlon, dlat) in degrees at WGS84 position (lon, lat)."""
    x = lon - 105.0
    y = lat - 35.0
    pi = math.pi
    common = 20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += common * 2.0 / 3.0
    dlat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += common * 2.0 / 3.0
    dlon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * pi)
    return dlon, dlat


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 lon/lat to GCJ-02 (vectorised; points outside China unchanged).

    Parameters
    ----------
    lon, lat : float or array-like
        WGS84 degrees.

    Returns
    -------
    (lon, lat) : tuple of numpy arrays in GCJ-02 degrees.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    outside = out_of_china(lon, lat)
    return np.where(outside, lon, lon + dlon), np.where(outside, lat, lat + dlat)


def gcj02_to_wgs84(lon, lat, tol: float = 1e-10, max_iter: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Convert GCJ-02 lon/lat to WGS84 by fixed-point iteration.

    The offset varies slowly (well under 1e-5 per metre), so iterating
    ``w = g - delta(w)`` converges in a handful of steps; the result
    round-trips to the input within ``tol`` degrees (about 0.01 mm).

    Parameters
    ----------
    lon, lat : float or array-like
        GCJ-02 degrees.
    tol : float
        Stop when the largest correction falls below this (degrees).
    max_iter : int
        Upper bound on iterations.

    Returns
    -------
    (lon, lat) : tuple of numpy arrays in WGS84 degrees.
    """
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(max_iter):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = flon - glon, flat - glat
        wlon = wlon - elon
        wlat = wlat - elat
        err = np.nanmax(np.abs(np.concatenate([np.ravel(elon), np.ravel(elat)]))) if wlon.size else 0.0
        if not err > tol:  # also stops on all-NaN input
            break
    return wlon, wlat


def _transform_geoms(geoms, func):
    """Apply a lon/lat → lon/lat function to every coordinate of shapely geometries."""

    def _xy(coords: np.ndarray) -> np.ndarray:
        x, y = func(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, _xy)


def gcj02_geoms_to_wgs84(geoms):
    """GCJ-02 shapely geometries (array or single) → WGS84 geometries."""
    return _transform_geoms(geoms, gcj02_to_wgs84)


def wgs84_geoms_to_gcj02(geoms):
    """WGS84 shapely geometries (array or single) → GCJ-02 geometries."""
    return _transform_geoms(geoms, wgs84_to_gcj02)


# --------------------------------------------------------------------------- frames


def to_wgs84(gdf: gpd.GeoDataFrame, crs: Any = None) -> gpd.GeoDataFrame:
    """Return *gdf* in EPSG:4326.

    Parameters
    ----------
    gdf : GeoDataFrame
        Input frame. Its own CRS is used unless *crs* is given.
    crs : optional
        The CRS the coordinates are really in; overrides the file's label
        (needed for GCJ-02, which files label as EPSG:4326).

    Raises
    ------
    CRSError
        If neither the frame nor *crs* gives a CRS.
    """
    if crs is None:
        if gdf.crs is None:
            raise CRSError("the input has no CRS: pass --crs (e.g. EPSG:4326, EPSG:4490, gcj02)")
        target = gdf.crs
    else:
        target = parse_crs(crs)
    if is_gcj02(target):
        out = gdf.copy()
        out = out.set_geometry(gcj02_geoms_to_wgs84(np.asarray(gdf.geometry.values)), crs=WGS84)
        return out
    out = gdf.set_crs(target, allow_override=True)
    return out.to_crs(WGS84)


def from_wgs84(gdf: gpd.GeoDataFrame, crs: Any) -> gpd.GeoDataFrame:
    """Return *gdf* (any CRS) converted to *crs*, which may be ``"gcj02"``."""
    target = parse_crs(crs)
    wgs = gdf.to_crs(WGS84) if gdf.crs is not None and not gdf.crs.equals(WGS84) else gdf.set_crs(WGS84, allow_override=True)
    if is_gcj02(target):
        # GeoDataFrames cannot carry GCJ-02; the result is labelled 4326 like every GCJ-02 file.
        return wgs.set_geometry(wgs84_geoms_to_gcj02(np.asarray(wgs.geometry.values)), crs=WGS84)
    return wgs.to_crs(target)


@lru_cache(maxsize=64)
def _transformer_to_wgs84(crs_key: str):
    from pyproj import Transformer

    return Transformer.from_crs(CRS.from_user_input(crs_key), WGS84, always_xy=True)


_WGS84_KEYS = frozenset({"wgs84", "epsg:4326", "4326"})


def point_to_wgs84(lon: float, lat: float, crs: Any = "wgs84") -> tuple[float, float]:
    """Convert a single point given in *crs* (wgs84 / gcj02 / cgcs2000 / EPSG) to WGS84.

    Hot path of the API: the common names skip pyproj entirely (building a CRS costs
    milliseconds); other CRSs use a cached transformer.
    """
    key = crs.strip().lower() if isinstance(crs, str) else str(crs)
    if key in _WGS84_KEYS:
        return float(lon), float(lat)
    if key in GCJ02_NAMES:
        x, y = gcj02_to_wgs84(lon, lat)
        return float(x), float(y)
    key = CRS_ALIASES.get(key, key)
    try:
        x, y = _transformer_to_wgs84(key.upper() if key.startswith("epsg:") else key).transform(lon, lat)
    except Exception as exc:  # pyproj's errors: unknown CRS
        raise CRSError(f"unknown CRS {crs!r}") from exc
    return float(x), float(y)


def as_geoseries(obj: Any, crs: Any) -> gpd.GeoSeries:
    """A GeoDataFrame's geometry, a GeoSeries, or bare geometries as a GeoSeries; *crs* where none is set."""
    if isinstance(obj, gpd.GeoDataFrame):
        s = obj.geometry
    elif isinstance(obj, gpd.GeoSeries):
        s = obj
    else:
        s = gpd.GeoSeries(np.atleast_1d(np.asarray(obj, dtype=object)), crs=crs)
    return s.set_crs(crs) if s.crs is None else s


def local_metric_crs(obj: Any) -> CRS:
    """A metric CRS suited to *obj*: the UTM zone (WGS84 datum) of its centroid.

    Parameters
    ----------
    obj : GeoDataFrame, GeoSeries, or shapely geometry in EPSG:4326
        Data whose extent decides the zone. Frames in another CRS are
        converted to lon/lat first.

    Returns
    -------
    pyproj.CRS
        ``EPSG:326xx`` (north) or ``EPSG:327xx`` (south).
    """
    if isinstance(obj, (gpd.GeoDataFrame, gpd.GeoSeries)):
        s = obj.geometry if isinstance(obj, gpd.GeoDataFrame) else obj
        if s.crs is not None and not s.crs.is_geographic:
            s = s.to_crs(WGS84)
        minx, miny, maxx, maxy = s.total_bounds
    else:
        minx, miny, maxx, maxy = shapely.bounds(obj)
    lon = (minx + maxx) / 2.0
    lat = (miny + maxy) / 2.0
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise CRSError("cannot choose a metric CRS for empty data")
    zone = int(math.floor((lon + 180.0) / 6.0)) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def to_metric(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """*gdf* projected to its :func:`local_metric_crs` (already-projected frames pass through)."""
    if gdf.crs is None:
        raise CRSError("cannot project data without a CRS")
    if not gdf.crs.is_geographic:
        return gdf
    return gdf.to_crs(local_metric_crs(gdf))
