"""Street blocks: polygonize street centerlines into blocks that tile a jurisdiction.

A *street block* (街坊) is a face of the planar graph formed by the street
centerlines and the jurisdiction boundary. Blocks are the smallest units the
grid division (网格化管理) works with: a grid boundary should run along
streets, so grids are unions of blocks (or of pieces of blocks, see
:mod:`geo.partition.split`).

Pipeline (:func:`street_blocks`)::

    streets ──filter/project──► lines in metric CRS
            ──close gaps──────► + short connectors for near-miss dead ends
            ──node (union)────► noded network ∪ jurisdiction boundary
            ──polygonize──────► faces inside the jurisdiction (dangles ignored)
            ──merge slivers───► blocks (dual-carriageway strips, junction
                                squares, ramp triangles folded into the
                                neighbour with the longest shared edge)

Every face of the planar graph inside the jurisdiction is kept (merged, never
dropped), so the blocks tile the jurisdiction exactly: dead-end lanes
(dangles) do not bound any face and areas without streets (water, parks,
fields) become large blocks.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from geo.crs import CRSError, local_metric_crs

__all__ = [
    "NON_BLOCK_HIGHWAYS",
    "filter_streets",
    "street_blocks",
    "polygon_blocks",
    "merge_slivers",
    "dissolve_groups",
    "polygon_adjacency",
    "MICRO_AREA",
    "boundary_on_lines_share",
    "is_sliver",
]

#: OSM ``highway`` values that do not bound street blocks: paths, footways,
#: driveways/parking aisles (``service``), farm tracks, and things that are not
#: (yet) roads. ``service`` ways inside estates are still useful as
#: ``internal_roads`` for :func:`geo.partition.split.split_oversized`.
NON_BLOCK_HIGHWAYS = frozenset(
    {
        "footway", "path", "cycleway", "steps", "bridleway", "corridor", "sidewalk",
        "crossing", "service", "estate_road", "track", "elevator", "platform", "bus_stop",
        "proposed", "construction", "abandoned", "disused", "razed", "raceway",
        "escape", "emergency_bay", "rest_area", "services", "via_ferrata", "no",
    }
)


# --------------------------------------------------------------------------- inputs


def _as_geoseries(obj: Any, crs: Any = None) -> gpd.GeoSeries:
    """GeoDataFrame / GeoSeries / shapely geometry / array → GeoSeries (keeps CRS)."""
    if isinstance(obj, gpd.GeoDataFrame):
        return obj.geometry
    if isinstance(obj, gpd.GeoSeries):
        return obj
    if isinstance(obj, shapely.Geometry):
        return gpd.GeoSeries([obj], crs=crs)
    return gpd.GeoSeries(np.asarray(obj, dtype=object), crs=crs)


def _target_crs(jurisdiction: gpd.GeoSeries, crs: Any) -> CRS:
    """The metric CRS to work in: *crs*, else the jurisdiction's if projected, else local UTM."""
    if crs is not None:
        out = CRS.from_user_input(crs)
        if out.is_geographic:
            raise CRSError(f"blocks need a metric CRS, got geographic {out.name}")
        return out
    if jurisdiction.crs is None:
        raise CRSError("the jurisdiction has no CRS")
    if not jurisdiction.crs.is_geographic:
        return jurisdiction.crs
    return local_metric_crs(jurisdiction)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of each geometry (collections from overlays)."""
    geoms = np.asarray(geoms, dtype=object)
    out = geoms.copy()
    kind = shapely.get_type_id(geoms)
    mixed = np.flatnonzero(kind == 7)  # GeometryCollection
    for i in mixed:
        parts = shapely.get_parts(geoms[i])
        parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
        out[i] = shapely.union_all(parts) if len(parts) else shapely.Polygon()
    bad = ~np.isin(shapely.get_type_id(out), (3, 6))
    out[bad] = shapely.Polygon()
    return out


def _line_parts(geoms: np.ndarray) -> np.ndarray:
    """All LineString parts (LinearRings → LineStrings) of *geoms*, non-empty."""
    parts = shapely.get_parts(np.asarray(geoms, dtype=object))
    kind = shapely.get_type_id(parts)
    rings = kind == 2
    if rings.any():
        for k in np.flatnonzero(rings):
            parts[k] = shapely.LineString(shapely.get_coordinates(parts[k]))
        kind = shapely.get_type_id(parts)
    nested = np.isin(kind, (5, 7))
    if nested.any():
        parts = np.concatenate([parts[~nested], _line_parts(parts[nested])])
        kind = shapely.get_type_id(parts)
    parts = parts[(kind == 1) & ~shapely.is_empty(parts)]
    return parts


def filter_streets(
    lines: gpd.GeoDataFrame,
    *,
    column: str = "highway",
    exclude: Iterable[str] = NON_BLOCK_HIGHWAYS,
) -> gpd.GeoDataFrame:
    """Keep the street lines that bound blocks.

    Parameters
    ----------
    lines : GeoDataFrame
        Lines with an OSM-style class column (e.g. the ``lines`` layer of an
        OSM PBF, or an OSMnx edge table).
    column : str
        Name of the class column. Rows where it is null are dropped (in an OSM
        ``lines`` layer those are waterways, railways, power lines…).
    exclude : iterable of str
        Class values to drop (default :data:`NON_BLOCK_HIGHWAYS`).

    Returns
    -------
    GeoDataFrame
        The kept rows (same CRS), LineStrings only.
    """
    cls = lines[column]
    keep = cls.notna() & ~cls.isin(list(exclude))
    keep &= np.isin(shapely.get_type_id(lines.geometry.values), (1, 5))
    return lines.loc[keep]


# --------------------------------------------------------------------------- geometry helpers


def is_sliver(area: np.ndarray, perimeter: np.ndarray, *, min_area: float, sliver_width: float,
              min_elongation: float = 1.5) -> np.ndarray:
    """Which polygons are slivers.

    A polygon is a sliver when it is small (``area < min_area``) or thin:
    its *equivalent width* ``2·area/perimeter`` (the width of a long strip,
    half the diameter of a disc) is below ``sliver_width`` **and** it is
    elongated, ``perimeter² / (16·area) > min_elongation`` (1 for a square,
    about ``(L + w)² / 4Lw`` for an L×w strip, so 1.5 means longer than about
    3.7 times its width). The elongation test keeps small square blocks.

    Parameters
    ----------
    area, perimeter : array-like
        Areas (m²) and perimeters (m).
    min_area : float
        Polygons below this area (m²) are slivers whatever their shape.
    sliver_width : float
        Equivalent width (m) below which an elongated polygon is a sliver. Dual
        carriageways with centerlines up to about this far apart are merged.
    min_elongation : float
        Elongation above which a thin polygon counts as a sliver.

    Returns
    -------
    numpy.ndarray of bool
    """
    area = np.asarray(area, dtype=float)
    perimeter = np.asarray(perimeter, dtype=float)
    return (area < min_area) | _thin(area, perimeter, sliver_width, min_elongation)


def polygon_adjacency(
    geoms: np.ndarray, *, min_shared: float = 1e-3, tol: float = 1e-4, subset: np.ndarray | None = None,
    tree: shapely.STRtree | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of polygons that share an edge, with the shared length.

    Parameters
    ----------
    geoms : array of Polygon/MultiPolygon
        Polygons forming a coverage. Neighbours sharing exact vertices (faces
        of a polygonized network) are measured exactly; neighbours whose
        common edge was computed separately (overlay output, off by ~1e-9 m)
        are measured with tolerance *tol*.
    min_shared : float
        Pairs sharing less than this length (m), e.g. touching at a corner,
        are not adjacent.
    tol : float
        Distance (m) within which two boundaries count as the same edge.
    subset : array of int, optional
        Only pairs with at least one polygon in *subset* (default: all).
    tree : shapely.STRtree, optional
        A tree over *geoms*, to reuse.

    Returns
    -------
    (i, j, length) : numpy arrays with ``i < j``, each pair once.
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) < 2:
        e = np.array([], dtype=np.intp)
        return e, e, np.array([], dtype=float)
    tree = tree if tree is not None else shapely.STRtree(geoms)
    if subset is None:
        i, j = tree.query(geoms, predicate="dwithin", distance=tol)
        keep = i < j
        i, j = i[keep], j[keep]
    else:
        subset = np.asarray(subset, dtype=np.intp)
        q, j = tree.query(geoms[subset], predicate="dwithin", distance=tol)
        i = subset[q]
        keep = i != j
        a, b = np.minimum(i[keep], j[keep]), np.maximum(i[keep], j[keep])
        if len(a):
            pairs = np.unique(np.stack([a, b], axis=1), axis=0)
            i, j = pairs[:, 0], pairs[:, 1]
        else:
            i, j = a, b
    bnd = shapely.boundary(geoms)
    length = shapely.length(shapely.intersection(bnd[i], bnd[j]))
    weak = np.flatnonzero(length <= min_shared)
    if len(weak) and tol > 0:
        # near-coincident edges: length of i's boundary within tol of j's boundary
        uj, inv = np.unique(j[weak], return_inverse=True)
        near = shapely.buffer(bnd[uj], tol, quad_segs=1, cap_style="flat")
        length[weak] = shapely.length(shapely.intersection(bnd[i[weak]], near[inv]))
    keep = length > min_shared
    return i[keep], j[keep], length[keep]


def _thin(area: np.ndarray, perimeter: np.ndarray, sliver_width: float, min_elongation: float) -> np.ndarray:
    """Thin and elongated (see :func:`is_sliver`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(perimeter > 0, 2.0 * area / perimeter, 0.0)
        elong = np.where(area > 0, perimeter * perimeter / (16.0 * area), np.inf)
    return (width < sliver_width) & (elong > min_elongation)


def merge_slivers(
    geoms: np.ndarray,
    *,
    min_area: float,
    sliver_width: float,
    min_elongation: float = 1.5,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    can_absorb: np.ndarray | None = None,
) -> np.ndarray:
    """Greedily merge slivers into the neighbour with the longest shared edge.

    Slivers (:func:`is_sliver`) are processed smallest first; after each
    merge the area and perimeter of the merged polygon are updated exactly
    (``P = P₁ + P₂ − 2·shared``) and it is re-tested. A merged group made only
    of sliver faces, at least one of them thin, stays a sliver even when its
    shape no longer is: a road corridor of four parallel carriageways (strips
    plus junction squares) keeps merging until it joins a real block instead
    of surviving as a 40 m wide "block" of road. Ties on the shared length go
    to the larger neighbour. Slivers with no neighbour (islands) stay.

    Parameters
    ----------
    geoms : array of Polygon/MultiPolygon
        A polygon coverage.
    min_area, sliver_width, min_elongation : float
        The sliver test, see :func:`is_sliver`.
    pairs : (i, j, length), optional
        Adjacency from :func:`polygon_adjacency` (computed when omitted).
        Pass a filtered adjacency to forbid some merges (e.g. across blocks).
    can_absorb : bool array, optional
        Polygons allowed to receive a sliver (default: all).

    Returns
    -------
    numpy.ndarray of int
        Group label of each polygon (the index of the polygon it ended in).
        Polygons with the same label are to be dissolved together.
    """
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    area = shapely.area(geoms).astype(float)
    perim = shapely.length(geoms).astype(float)
    absorb = np.ones(n, dtype=bool) if can_absorb is None else np.asarray(can_absorb, dtype=bool)
    thin = _thin(area, perim, sliver_width, min_elongation)
    body = ~(thin | (area < min_area))  # group contains a proper (non-sliver) face
    has_thin = thin.copy()
    nbr: list[dict[int, float]] = [dict() for _ in range(n)]
    parent = np.arange(n)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def add_pairs(p: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        for a, b, s in zip(*p):
            a, b, s = find(int(a)), find(int(b)), float(s)
            if a != b:
                nbr[a][b] = nbr[a].get(b, 0.0) + s
                nbr[b][a] = nbr[b].get(a, 0.0) + s

    # adjacency only around slivers; faces that turn into slivers later get theirs on demand
    lazy = pairs is None
    complete = np.zeros(n, dtype=bool)
    tree = shapely.STRtree(geoms) if lazy and n > 1 else None
    if lazy:
        sub = np.flatnonzero(~body)
        if len(sub) and n > 1:
            add_pairs(polygon_adjacency(geoms, subset=sub, tree=tree))
        complete[sub] = True
    else:
        add_pairs(pairs)
        complete[:] = True

    def ensure(k: int) -> None:
        """Add the pairs of face *k* with faces whose adjacency is not in yet."""
        if complete[k] or tree is None:
            return
        i, j, s = polygon_adjacency(geoms, subset=np.array([k]), tree=tree)
        other = np.where(i == k, j, i)
        keep = ~complete[other]
        add_pairs((i[keep], j[keep], s[keep]))
        complete[k] = True

    def flagged(k: int) -> bool:
        if area[k] < min_area:
            return True
        if _thin(area[k:k + 1], perim[k:k + 1], sliver_width, min_elongation)[0]:
            return True
        return bool(has_thin[k] and not body[k])

    heap = [(area[k], k) for k in range(n) if flagged(k)]
    heapq.heapify(heap)
    while heap:
        a_k, k = heapq.heappop(heap)
        if parent[k] != k or a_k != area[k] or not flagged(k):
            continue
        ensure(k)
        if not nbr[k]:
            continue
        cands = [t for t in nbr[k] if absorb[t]]
        if not cands:
            continue
        t = max(cands, key=lambda c: (round(nbr[k][c], 6), area[c], -c))
        shared = nbr[k].pop(t)
        nbr[t].pop(k)
        for c, s in nbr[k].items():
            nbr[c].pop(k)
            nbr[t][c] = nbr[t].get(c, 0.0) + s
            nbr[c][t] = nbr[c].get(t, 0.0) + s
        nbr[k] = {}
        parent[k] = t
        area[t] += area[k]
        perim[t] = max(perim[t] + perim[k] - 2.0 * shared, 0.0)
        body[t] |= body[k]
        has_thin[t] |= has_thin[k]
        if flagged(t):
            heapq.heappush(heap, (area[t], t))
    # resolve chains k → t → u
    while True:
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    return parent


#: Polygons (parts) below this area (m²) are numerical noise of overlays: needles
#: left where two boundaries almost coincide.
MICRO_AREA = 1e-6


def _drop_micro_parts(geom: Any) -> Any:
    """*geom* without polygon parts smaller than :data:`MICRO_AREA` (kept if all are)."""
    if shapely.get_type_id(geom) != 6:
        return geom
    parts = shapely.get_parts(geom)
    big = parts[shapely.area(parts) >= MICRO_AREA]
    if len(big) == 0 or len(big) == len(parts):
        return geom
    return big[0] if len(big) == 1 else shapely.multipolygons(big)


def dissolve_groups(geoms: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union polygons of a coverage by group label.

    Parameters
    ----------
    geoms : array of polygons forming a coverage
    labels : array of int, same length

    Returns
    -------
    (unique_labels, geometries) : numpy arrays, labels sorted ascending.
    """
    geoms = np.asarray(geoms, dtype=object)
    labels = np.asarray(labels)
    uniq, inv = np.unique(labels, return_inverse=True)
    out = np.empty(len(uniq), dtype=object)
    counts = np.bincount(inv, minlength=len(uniq))
    single = counts == 1
    first = np.full(len(uniq), -1)
    first[inv[::-1]] = np.arange(len(labels))[::-1]
    out[single] = geoms[first[single]]
    order = np.argsort(inv, kind="stable")
    bounds = np.cumsum(counts)
    starts = bounds - counts
    for g in np.flatnonzero(~single):
        members = geoms[order[starts[g]:bounds[g]]]
        try:
            merged = shapely.coverage_union_all(members)
            exact = shapely.is_valid(merged)
        except shapely.errors.GEOSException:
            exact = False
        if not exact:  # members are not an exactly noded coverage: full overlay union
            merged = shapely.union_all(members)
            if shapely.get_num_geometries(merged) > 1 or shapely.get_num_interior_rings(merged) > 0:
                # hairline gaps between edges computed separately: snap to a µm grid
                try:
                    snapped = shapely.union_all(members, grid_size=1e-6)
                except shapely.errors.GEOSException:  # snapping can make a side-location conflict: keep the union
                    snapped = None

                def _pieces(g):
                    return shapely.get_num_geometries(g) + int(shapely.get_num_interior_rings(
                        shapely.get_parts(g)).sum())

                if snapped is not None and _pieces(snapped) < _pieces(merged):
                    merged = snapped
                merged = _drop_micro_parts(merged)
        out[g] = merged
    return uniq, out


def boundary_on_lines_share(
    polygons: Any,
    lines: Any,
    *,
    tol: float = 1.0,
    step: float = 2.0,
    exclude: Any = None,
) -> np.ndarray:
    """Share of each polygon's boundary that runs along *lines* (e.g. streets).

    The boundary is sampled every *step* metres; a sample counts as "on a
    line" when it is within *tol* of one. Used for the quality metric
    "share of grid boundary on streets".

    Parameters
    ----------
    polygons : GeoDataFrame, GeoSeries or array of polygons (metric CRS)
    lines : GeoDataFrame, GeoSeries or array of lines (same CRS)
    tol : float
        Distance (m) within which a boundary point is on a line.
    step : float
        Sampling step along the boundary (m).
    exclude : geometry, optional
        Boundary parts within *tol* of this geometry are left out of both
        numerator and denominator (pass the jurisdiction boundary to measure
        only internal edges).

    Returns
    -------
    numpy.ndarray of float in [0, 1] (NaN when nothing is left to measure).
    """
    polys = np.asarray(_as_geoseries(polygons).values, dtype=object)
    lns = np.asarray(_as_geoseries(lines).values, dtype=object)
    bnd = shapely.boundary(polys)
    # sample points at the middle of ≤ step long pieces of the boundary, weighted by piece length
    seg, owner = _segments(shapely.segmentize(bnd, step), return_index=True)
    p = shapely.line_interpolate_point(seg, 0.5, normalized=True)
    w = shapely.length(seg)
    on = np.zeros(len(p), dtype=bool)
    if len(lns):
        hit = shapely.STRtree(_segments(lns)).query(p, predicate="dwithin", distance=tol)[0]
        on[hit] = True
    use = np.ones(len(p), dtype=bool)
    if exclude is not None:
        ex = _segments(np.atleast_1d(np.asarray(exclude, dtype=object)))
        use[shapely.STRtree(ex).query(p, predicate="dwithin", distance=tol)[0]] = False
    total = np.bincount(owner[use], weights=w[use], minlength=len(polys))
    good = np.bincount(owner[use & on], weights=w[use & on], minlength=len(polys))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, good / total, np.nan)


def _segments(geoms: Any, return_index: bool = False):
    """Every straight 2-point segment of the lines in *geoms* (for fast STRtree queries).

    Polygons contribute their rings. With ``return_index`` also returns the
    position of the input geometry of every segment.
    """
    geoms = np.atleast_1d(np.asarray(geoms, dtype=object))
    poly = np.isin(shapely.get_type_id(geoms), (3, 6))
    if poly.any():
        geoms = geoms.copy()
        geoms[poly] = shapely.boundary(geoms[poly])
    parts, owner = shapely.get_parts(geoms, return_index=True)
    kind = shapely.get_type_id(parts)
    while np.isin(kind, (4, 5, 6, 7)).any():
        multi = np.isin(kind, (4, 5, 6, 7))
        sub, sidx = shapely.get_parts(parts[multi], return_index=True)
        parts = np.concatenate([parts[~multi], sub])
        owner = np.concatenate([owner[~multi], owner[multi][sidx]])
        kind = shapely.get_type_id(parts)
    keep = np.isin(kind, (1, 2))
    parts, owner = parts[keep], owner[keep]
    coords, idx = shapely.get_coordinates(parts, return_index=True)
    same = idx[1:] == idx[:-1]
    segs = shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1)) if same.any() \
        else np.array([], dtype=object)
    if return_index:
        return segs, owner[idx[:-1][same]]
    return segs


# --------------------------------------------------------------------------- network


def _gap_connectors(lines: np.ndarray, tol: float) -> np.ndarray:
    """Short segments joining near-miss line ends to the nearest other line.

    An end point is *dangling* when no other line touches it. If another line
    lies within ``(0, tol]`` it is joined to that line's nearest point, which
    closes digitising gaps (undershoots) without extending real dead ends.
    """
    if tol <= 0 or len(lines) == 0:
        return np.array([], dtype=object)
    starts = shapely.get_point(lines, 0)
    ends = shapely.get_point(lines, -1)
    pts = np.concatenate([starts, ends])
    own = np.concatenate([np.arange(len(lines)), np.arange(len(lines))])
    tree = shapely.STRtree(lines)
    pi, li = tree.query(pts, predicate="dwithin", distance=tol)
    other = li != own[pi]
    pi, li = pi[other], li[other]
    if len(pi) == 0:
        return np.array([], dtype=object)
    d = shapely.distance(pts[pi], lines[li])
    touching = np.zeros(len(pts), dtype=bool)
    touching[pi[d == 0]] = True
    cand = (d > 0) & ~touching[pi]
    pi, li, d = pi[cand], li[cand], d[cand]
    if len(pi) == 0:
        return np.array([], dtype=object)
    order = np.lexsort((li, d, pi))
    pi, li = pi[order], li[order]
    first = np.r_[True, pi[1:] != pi[:-1]]
    pi, li = pi[first], li[first]
    return shapely.shortest_line(pts[pi], lines[li])


def _noded_network(lines: np.ndarray, boundary: Any, grid_size: float | None) -> np.ndarray:
    """Node street lines together with the boundary; returns LineString edges."""
    geoms = np.concatenate([lines, np.asarray(_line_parts([boundary]), dtype=object)])
    if grid_size:
        noded = shapely.union_all(geoms, grid_size=grid_size)
    else:
        noded = shapely.union_all(geoms)
    return _line_parts([noded])


def _edge_classes(edges: np.ndarray, lines: np.ndarray, classes: np.ndarray | None,
                  tol: float) -> np.ndarray:
    """Class of each noded edge: the class of the street it lies on, or ``"boundary"``."""
    mid = shapely.line_interpolate_point(edges, 0.5, normalized=True)
    out = np.full(len(edges), "boundary", dtype=object)
    if len(lines):
        tree = shapely.STRtree(lines)
        ei, li = tree.query(mid, predicate="dwithin", distance=tol)
        if len(ei):
            d = shapely.distance(mid[ei], lines[li])
            order = np.lexsort((li, d, ei))
            ei, li = ei[order], li[order]
            first = np.r_[True, ei[1:] != ei[:-1]]
            ei, li = ei[first], li[first]
            out[ei] = classes[li] if classes is not None else "street"
    return out


# --------------------------------------------------------------------------- main


def _blocks_from_faces(faces: np.ndarray, crs: Any, *, min_area: float, sliver_width: float,
                       min_elongation: float) -> gpd.GeoDataFrame:
    """Merge sliver faces, dissolve, order north-west first and build the blocks frame."""
    labels = merge_slivers(faces, min_area=min_area, sliver_width=sliver_width,
                           min_elongation=min_elongation)
    _, geoms_out = dissolve_groups(faces, labels)
    n_faces = np.bincount(np.unique(labels, return_inverse=True)[1])
    # deterministic order: by centroid, north-west first
    cen = shapely.centroid(geoms_out)
    order = np.lexsort((shapely.get_x(cen), -np.round(shapely.get_y(cen), 3)))
    geoms_out, n_faces = geoms_out[order], n_faces[order]
    return gpd.GeoDataFrame(
        {
            "block": np.arange(len(geoms_out), dtype=np.int64),
            "area_m2": shapely.area(geoms_out),
            "perimeter_m": shapely.length(geoms_out),
            "n_faces": n_faces.astype(np.int64),
        },
        geometry=geoms_out,
        crs=crs,
    )


def street_blocks(
    streets: Any,
    jurisdiction: Any,
    *,
    crs: Any = None,
    snap_tol: float = 0.5,
    min_area: float = 1000.0,
    sliver_width: float = 25.0,
    min_elongation: float = 1.5,
    class_column: str | None = "highway",
    grid_size: float | None = None,
    return_streets: bool = False,
) -> gpd.GeoDataFrame | tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Polygonize street centerlines into street blocks tiling *jurisdiction*.

    Parameters
    ----------
    streets : GeoDataFrame, GeoSeries or array of lines
        Street centerlines (any CRS; a bare array is taken to be in the
        jurisdiction's CRS). Filter non-block ways first
        (:func:`filter_streets`). Other barriers (rivers, railways) may be
        included: any line bounds blocks. May be empty.
    jurisdiction : GeoDataFrame, GeoSeries or (Multi)Polygon
        The area to tile; several rows / parts (islands, exclaves) and holes
        are fine. A bare geometry is taken to be in the streets' CRS.
    crs : optional
        Metric CRS to work in. Default: the jurisdiction's CRS if projected,
        else :func:`geo.crs.local_metric_crs`.
    snap_tol : float
        Street ends that stop within this distance (m) of another street
        without touching it are joined to it (digitising undershoots).
    min_area : float
        Faces smaller than this (m²) are slivers and are merged.
    sliver_width, min_elongation : float
        Thin, elongated faces (see :func:`is_sliver`) are merged: the strips
        between the two carriageways of a dual carriageway, ramp triangles.
    class_column : str or None
        Column of *streets* holding the street class (OSM ``highway``),
        carried to the noded network returned with ``return_streets``.
    grid_size : float, optional
        Snap all coordinates to this grid (m) while noding (robust, slightly
        moves the outline). Default: full precision.
    return_streets : bool
        Also return the noded network (see Returns).

    Returns
    -------
    blocks : GeoDataFrame
        One row per block, RangeIndex, in the metric CRS, with columns
        ``block`` (int, = row number), ``area_m2``, ``perimeter_m``,
        ``n_faces`` (faces merged into it, > 1 when slivers were absorbed)
        and ``geometry``. By construction every block edge that is not on the
        jurisdiction outline lies on a street; to measure how much of a
        *grid* boundary follows streets use :func:`boundary_on_lines_share`
        with the returned network.
    streets : GeoDataFrame, only with ``return_streets=True``
        The noded network clipped to the jurisdiction: ``street_class`` (the
        street's class, ``"street"`` without *class_column*, or ``"boundary"``
        for jurisdiction outline edges), ``bounds_block`` (True when the edge
        separates two blocks or a block from the outside, False for dead ends
        and edges that ended up inside a block after sliver merging) and
        ``geometry``.
    """
    jur = _as_geoseries(jurisdiction, crs=getattr(streets, "crs", None))
    target = _target_crs(jur, crs)
    jur_crs = jur.crs if jur.crs is not None else target
    jur = jur.to_crs(target) if jur.crs is not None else jur.set_crs(target)
    jur_geom = shapely.make_valid(shapely.union_all(jur.values))
    jur_geom = shapely.union_all(_polygonal([jur_geom]))
    if jur_geom.is_empty:
        raise ValueError("the jurisdiction has no area")

    # streets without a CRS are taken to be in the jurisdiction's CRS
    src = streets if isinstance(streets, (gpd.GeoDataFrame, gpd.GeoSeries)) else _as_geoseries(streets, crs=jur_crs)
    if src.crs is None:
        src = src.set_crs(jur_crs)
    src = src.to_crs(target)
    classes = None
    if isinstance(src, gpd.GeoDataFrame) and class_column and class_column in src.columns:
        classes = src[class_column].astype(object).to_numpy()
    geoms = np.asarray(_as_geoseries(src).values, dtype=object)
    # explode multi-lines, keeping each part's class
    counts = shapely.get_num_geometries(geoms)
    rep = np.repeat(np.arange(len(geoms)), np.maximum(counts, 0))
    parts = shapely.get_parts(geoms)
    ok = (shapely.get_type_id(parts) == 1) & ~shapely.is_empty(parts)
    parts, rep = parts[ok], rep[ok]
    cls = classes[rep] if classes is not None else None
    # streets that touch the jurisdiction (with snap margin)
    hit = shapely.STRtree(parts).query(jur_geom, predicate="dwithin", distance=max(snap_tol, 0.0))
    hit = np.sort(hit)
    lines = parts[hit]
    cls = cls[hit] if cls is not None else None

    connectors = _gap_connectors(lines, snap_tol)
    all_lines = np.concatenate([lines, connectors]) if len(connectors) else lines
    edges = _noded_network(all_lines, shapely.boundary(jur_geom), grid_size)

    faces = shapely.get_parts(shapely.polygonize(edges))
    faces = faces[shapely.area(faces) > 0]
    shapely.prepare(jur_geom)
    faces = faces[shapely.contains(jur_geom, shapely.point_on_surface(faces))]

    blocks = _blocks_from_faces(faces, target, min_area=min_area, sliver_width=sliver_width,
                                min_elongation=min_elongation)
    geoms_out = np.asarray(blocks.geometry.values, dtype=object)
    if not return_streets:
        return blocks

    in_jur = shapely.covered_by(shapely.line_interpolate_point(edges, 0.5, normalized=True), jur_geom)
    edges = edges[in_jur]
    ecls = _edge_classes(edges, all_lines, None if cls is None else np.concatenate(
        [cls, np.full(len(all_lines) - len(lines), "connector", dtype=object)]), tol=1e-6)
    mid = shapely.line_interpolate_point(edges, 0.5, normalized=True)
    bnd_tree = shapely.STRtree(shapely.boundary(geoms_out))
    on_bnd = np.zeros(len(edges), dtype=bool)
    on_bnd[bnd_tree.query(mid, predicate="dwithin", distance=1e-6)[0]] = True
    net = gpd.GeoDataFrame(
        {"street_class": ecls, "bounds_block": on_bnd},
        geometry=edges,
        crs=target,
    )
    return blocks, net


def polygon_blocks(
    polygons: Any,
    jurisdiction: Any = None,
    *,
    crs: Any = None,
    min_area: float = 50.0,
    sliver_width: float = 2.0,
    min_elongation: float = 1.5,
) -> gpd.GeoDataFrame:
    """Blocks from polygons when there are no streets (e.g. census blocks, H3 cells).

    The polygon outlines are used as "streets": overlapping polygons are cut
    into their overlap faces, gaps inside the jurisdiction become faces, and
    slivers from misaligned edges are merged (thresholds are smaller than for
    streets since polygon edges are meant to be real boundaries).

    Parameters
    ----------
    polygons : GeoDataFrame or GeoSeries
        Population polygons (any CRS).
    jurisdiction : optional
        Area to tile; default the union of *polygons*.
    crs, min_area, sliver_width, min_elongation
        As in :func:`street_blocks`.

    Returns
    -------
    GeoDataFrame
        As :func:`street_blocks`.
    """
    polys = _as_geoseries(polygons)
    if jurisdiction is None:
        target = _target_crs(polys, crs)
        metric = np.asarray(polys.to_crs(target).values, dtype=object)
        metric = _polygonal(metric[~shapely.is_empty(metric) & ~shapely.is_missing(metric)])
        metric = metric[~shapely.is_empty(metric)]
        if len(metric) and shapely.coverage_is_valid(metric):
            # already a clean coverage (census blocks, H3 cells): the polygons are the faces
            faces = shapely.get_parts(metric)
            return _blocks_from_faces(faces[shapely.area(faces) > 0], target, min_area=min_area,
                                      sliver_width=sliver_width, min_elongation=min_elongation)
        jurisdiction = gpd.GeoSeries([shapely.union_all(polys.values)], crs=polys.crs)
    outlines = shapely.boundary(np.asarray(polys.values, dtype=object))
    lines = gpd.GeoSeries(outlines, crs=polys.crs)
    return street_blocks(
        lines, jurisdiction, crs=crs, snap_tol=0.0, min_area=min_area,
        sliver_width=sliver_width, min_elongation=min_elongation, class_column=None,
    )
