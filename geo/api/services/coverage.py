"""Grid outlines simplified as ONE coverage, so neighbours keep sharing their edges at every zoom.

Simplifying each grid on its own (``ST_SimplifyPreserveTopology`` per row) moves a shared edge differently
on its two sides, which opens slivers and overlaps between neighbours at low zoom. ``shapely.coverage_simplify``
simplifies every shared edge once for all polygons that use it.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import shapely

log = logging.getLogger("geo.api")
_cache: dict = {}
_lock = threading.Lock()


def simplify_coverage(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    """Simplify polygons that form a coverage (no overlaps) together; each input keeps its position.

    Parameters
    ----------
    geoms : array of shapely Polygon/MultiPolygon
    tolerance : float
        In the geometries' units (degrees here); 0 returns the input.

    Returns
    -------
    array of the simplified geometries; a polygon the simplification would collapse is kept unsimplified
    (and a coverage that GEOS refuses is simplified per polygon, logged).
    """
    if tolerance <= 0 or len(geoms) == 0:
        return geoms
    try:
        out = shapely.coverage_simplify(geoms, tolerance, simplify_boundary=True)
    except shapely.errors.GEOSException as exc:  # not a valid coverage: better a per-grid outline than none
        log.warning("coverage simplification refused (%s); simplifying grids one by one", exc)
        return shapely.simplify(geoms, tolerance, preserve_topology=True)
    bad = shapely.is_empty(out) | ~shapely.is_valid(out)
    out[bad] = geoms[bad]
    return out


def simplified(key, geoms: np.ndarray, tolerance: float) -> np.ndarray:
    """:func:`simplify_coverage` memoised by *key* (plans, scope) and tolerance: published plans do not change."""
    k = (key, round(tolerance, 12))
    with _lock:
        hit = _cache.get(k)
    if hit is not None and len(hit) == len(geoms):
        return hit
    out = simplify_coverage(geoms, tolerance)
    with _lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[k] = out
    return out
