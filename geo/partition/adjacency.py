"""Atom adjacency graph ("rook by length") with gap bridging.

Two atoms are adjacent when their boundaries share a line of length greater
than ``min_shared`` metres (default 1 m). A shared corner point, or a sliver
of contact shorter than ``min_shared``, does not count: queen contiguity
would let a grid hang together through a single street corner.

Pieces of the territory that are not connected through shared boundaries but
lie closer than ``gap_tol`` metres to each other (census gaps across roads, a
small island a few metres off the mainland) are joined by *bridging* edges
between every pair of atoms of different components that are within
``gap_tol`` of each other. Bridging edges carry a shared length of 0 (the gap
stays part of the grid's perimeter after dissolving) and ``bridged=True``.
Pieces farther apart stay separate components and are never joined in one
grid.

Shared lengths tolerate edges that are not noded alike: pieces cut out of a
street block (Voronoi cells of buildings clipped to the block, area strips)
get new vertices on the block's outline that lie on the neighbour's edge only
up to floating-point noise, and the exact intersection of the two outlines
is then a scatter of points although the atoms share a long edge. Pairs whose
exact shared length is short but that touch in more than one point are
measured again as the length of one outline within ``snap_tol`` (1 mm) of
the other.

Everything is vectorised: candidate pairs come from one
:meth:`shapely.STRtree.query` call with ``predicate="intersects"`` and the
shared lengths from one vectorised :func:`shapely.intersection` of the two
boundaries. Denver's 10,149 census blocks take about 0.8 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

__all__ = ["Adjacency", "build_adjacency", "update_adjacency", "atom_geometry_arrays"]


@dataclass
class Adjacency:
    """Undirected atom adjacency with shared boundary lengths.

    Attributes
    ----------
    n : int
        Number of atoms (graph vertices ``0..n-1``).
    i, j : ndarray of int64
        Edge end points, ``i < j``, each unordered pair at most once.
    length : ndarray of float64
        Shared boundary length of each edge in metres (0 for bridging edges).
    bridged : ndarray of bool
        True for edges that join two pieces across a gap narrower than
        ``gap_tol`` rather than along a shared boundary.
    gap : ndarray of float64
        Distance between the two atoms (0 for touching atoms).
    """

    n: int
    i: np.ndarray
    j: np.ndarray
    length: np.ndarray
    bridged: np.ndarray
    gap: np.ndarray
    _csr: sp.csr_matrix | None = field(default=None, repr=False, compare=False)

    @property
    def n_edges(self) -> int:
        """Number of undirected edges."""
        return int(self.i.size)

    def csr(self) -> sp.csr_matrix:
        """Symmetric CSR matrix whose stored values are ``length + 1e-9``.

        The tiny offset keeps bridging edges (length 0) as stored entries.
        """
        if self._csr is None:
            w = self.length + 1e-9
            m = sp.coo_matrix(
                (np.concatenate([w, w]), (np.concatenate([self.i, self.j]), np.concatenate([self.j, self.i]))),
                shape=(self.n, self.n),
            ).tocsr()
            m.sum_duplicates()
            self._csr = m
        return self._csr

    def components(self, mask: np.ndarray | None = None) -> tuple[int, np.ndarray]:
        """Connected components, optionally of the subgraph induced by *mask*.

        Parameters
        ----------
        mask : ndarray of bool, optional
            Atoms to keep. Atoms outside the mask get label -1.

        Returns
        -------
        (int, ndarray)
            Number of components and a component label per atom.
        """
        if mask is None:
            return connected_components(self.csr(), directed=False)
        idx = np.flatnonzero(mask)
        sub = self.csr()[idx][:, idx]
        nc, lab = connected_components(sub, directed=False)
        out = np.full(self.n, -1, dtype=np.int64)
        out[idx] = lab
        return nc, out

    def subset(self, keep: np.ndarray) -> "Adjacency":
        """Adjacency induced by the atoms *keep* (indices), renumbered ``0..len(keep)-1``."""
        keep = np.asarray(keep, dtype=np.int64)
        pos = np.full(self.n, -1, dtype=np.int64)
        pos[keep] = np.arange(keep.size)
        e = (pos[self.i] >= 0) & (pos[self.j] >= 0)
        a, b = pos[self.i[e]], pos[self.j[e]]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        return Adjacency(int(keep.size), lo, hi, self.length[e], self.bridged[e], self.gap[e])

    def neighbour_lists(self) -> list[list[tuple[int, float]]]:
        """Python adjacency lists ``[(neighbour, shared_length), ...]`` per atom."""
        out: list[list[tuple[int, float]]] = [[] for _ in range(self.n)]
        for a, b, w in zip(self.i.tolist(), self.j.tolist(), self.length.tolist()):
            out[a].append((b, w))
            out[b].append((a, w))
        return out


def atom_geometry_arrays(geoms) -> dict[str, np.ndarray]:
    """Area, perimeter and centroid coordinates of metric geometries.

    Parameters
    ----------
    geoms : GeoSeries, GeoDataFrame or array of shapely geometries (metres)

    Returns
    -------
    dict
        ``area``, ``perimeter``, ``x``, ``y`` as float64 arrays.
    """
    g = _geom_array(geoms)
    c = shapely.centroid(g)
    return {
        "area": shapely.area(g),
        "perimeter": shapely.length(g),
        "x": shapely.get_x(c),
        "y": shapely.get_y(c),
    }


def _geom_array(geoms) -> np.ndarray:
    if isinstance(geoms, gpd.GeoDataFrame):
        _check_metric(geoms.crs)
        return np.asarray(geoms.geometry.values)
    if isinstance(geoms, gpd.GeoSeries):
        _check_metric(geoms.crs)
        return np.asarray(geoms.values)
    return np.asarray(geoms)


def _check_metric(crs) -> None:
    if crs is not None and crs.is_geographic:
        raise ValueError("atoms must be in a metric CRS (metres); project them first (geo.crs.to_metric)")


def build_adjacency(geoms, min_shared: float = 1.0, gap_tol: float = 20.0, snap_tol: float = 1e-3) -> Adjacency:
    """Rook-by-length adjacency of polygons, with bridging of narrow gaps.

    Parameters
    ----------
    geoms : GeoDataFrame, GeoSeries or array of Polygon/MultiPolygon
        Atoms in a metric CRS. Position ``k`` becomes vertex ``k``.
    min_shared : float, default 1.0
        Minimum shared boundary length (metres) for two atoms to be adjacent.
        Corner contacts (length 0) never count.
    gap_tol : float, default 20.0
        Components of the shared-boundary graph closer than this (metres)
        are joined by bridging edges between all their atom pairs within
        ``gap_tol``. Use 0 to disable bridging.
    snap_tol : float, default 1e-3
        Outlines closer than this (metres) count as shared, for pairs whose
        exact shared length is below ``min_shared`` although they meet in
        more than one point (edges noded differently); 0 disables.

    Returns
    -------
    Adjacency
    """
    g = _geom_array(geoms)
    n = int(g.size)
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return Adjacency(0, z, z, np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0))
    tree = shapely.STRtree(g)
    a, b = tree.query(g, predicate="intersects")
    keep = a < b
    i, j, length = _shared_edges(g, a[keep].astype(np.int64), b[keep].astype(np.int64), min_shared, snap_tol)
    return _finish(g, tree, n, i, j, length, min_shared, gap_tol)


def update_adjacency(old: Adjacency, parent: np.ndarray, old_geoms, geoms, min_shared: float = 1.0,
                     gap_tol: float = 20.0, snap_tol: float = 1e-3) -> Adjacency:
    """:func:`build_adjacency` of atoms made from earlier ones, measuring only the pairs that changed.

    After a refinement cuts a few atoms into pieces, every other atom is the same polygon as before:
    their shared lengths are taken from *old*; only pairs touching a new piece are measured, and gaps
    are bridged again over the whole graph. The result equals ``build_adjacency(geoms, ...)``.

    Parameters
    ----------
    old : Adjacency
        Adjacency of *old_geoms* (built with the same *min_shared*, *gap_tol*, *snap_tol*).
    parent : array of int
        Per new atom, the position of the old atom it came from.
    old_geoms, geoms : GeoDataFrame, GeoSeries or array of polygons
        The atoms before and after (metric CRS).

    Returns
    -------
    Adjacency
    """
    g = _geom_array(geoms)
    g0 = _geom_array(old_geoms)
    n = int(g.size)
    parent = np.asarray(parent, dtype=np.int64)
    count = np.bincount(parent, minlength=old.n)
    same = (count[parent] == 1) & shapely.equals_exact(g, g0[parent], tolerance=0.0)
    new_of = np.full(old.n, -1, dtype=np.int64)  # old atom -> its unchanged new position
    new_of[parent[same]] = np.flatnonzero(same)
    ke = ~old.bridged & (new_of[old.i] >= 0) & (new_of[old.j] >= 0)
    oi, oj = new_of[old.i[ke]], new_of[old.j[ke]]
    tree = shapely.STRtree(g)
    changed = np.flatnonzero(~same)
    qa, qb = tree.query(g[changed], predicate="intersects")
    qa = changed[qa]
    a, b = np.minimum(qa, qb), np.maximum(qa, qb)
    pairs = np.unique(np.stack([a, b], axis=1)[a != b], axis=0) if a.size else np.zeros((0, 2), np.int64)
    ni, nj, nl = _shared_edges(g, pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64), min_shared, snap_tol)
    i = np.concatenate([np.minimum(oi, oj), ni])
    j = np.concatenate([np.maximum(oi, oj), nj])
    length = np.concatenate([old.length[ke], nl])
    return _finish(g, tree, n, i, j, length, min_shared, gap_tol)


def _shared_edges(g, a, b, min_shared, snap_tol):
    """Pairs (a, b) of touching atoms that share more than *min_shared* metres of outline, with the length."""
    bnd = np.empty(g.size, dtype=object)  # one outline per atom involved, not one per pair
    used = np.unique(np.concatenate([a, b]))
    bnd[used] = shapely.boundary(g[used])
    bnd_a, bnd_b = bnd[a], bnd[b]
    inter = shapely.intersection(bnd_a, bnd_b)
    shared = shapely.length(inter)
    if snap_tol > 0:
        # not noded alike: the exact intersection is a scatter of points / bits along a common edge
        redo = np.flatnonzero((shared <= min_shared) & (shapely.get_num_coordinates(inter) > 1))
        if redo.size:
            near = shapely.intersection(bnd_a[redo], shapely.buffer(bnd_b[redo], snap_tol, quad_segs=1))
            shared[redo] = np.maximum(shared[redo], shapely.length(near))
    ok = shared > min_shared
    return a[ok], b[ok], shared[ok]


def _finish(g, tree, n, i, j, length, min_shared, gap_tol) -> Adjacency:
    """Bridge narrow gaps between components of the shared-edge graph (i, j) and sort the edges."""
    bridged = np.zeros(i.size, dtype=bool)
    gap = np.zeros(i.size)

    if gap_tol > 0 and n > 1:
        # outline not shared with any neighbour: only atoms with some can be near another component
        free = shapely.length(g) - np.bincount(i, length, minlength=n) - np.bincount(j, length, minlength=n)
        bi, bj, bd = _bridges(g, tree, n, i, j, gap_tol, free > min_shared)
        if bi.size:
            i = np.concatenate([i, bi])
            j = np.concatenate([j, bj])
            length = np.concatenate([length, np.zeros(bi.size)])
            bridged = np.concatenate([bridged, np.ones(bi.size, dtype=bool)])
            gap = np.concatenate([gap, bd])
    order = np.lexsort((j, i))
    return Adjacency(n, i[order], j[order], length[order], bridged[order], gap[order])


def _bridges(g, tree, n, i, j, gap_tol, exposed=None):
    """Bridging edges between components of (i, j) that are within gap_tol.

    One query finds every cross-component pair within reach, so chains of
    small pieces (an island 15 m off an island 15 m off the mainland) join too.
    Every cross pair involves an atom outside the largest component; of
    components of more than 64 atoms only the *exposed* atoms (some outline
    not shared with a neighbour) are queried: an atom walled in by its own
    component reaches another one only across exposed neighbours, which are
    bridged themselves. (Denver tiled 4x: 30,000 queries down to a few thousand.)
    """
    z = np.zeros(0, dtype=np.int64)
    m = sp.coo_matrix((np.ones(i.size), (i, j)), shape=(n, n))
    nc, comp = connected_components(m, directed=False)
    if nc <= 1:
        return z, z, np.zeros(0)
    size = np.bincount(comp)
    big = int(np.argmax(size))
    cand = comp != big
    if exposed is not None:
        cand &= exposed | (size[comp] <= 64)
    src = np.flatnonzero(cand)
    qa, qb = tree.query(g[src], predicate="dwithin", distance=gap_tol)
    qa = src[qa]
    cross = comp[qa] != comp[qb]
    qa, qb = qa[cross], qb[cross]
    if qa.size == 0:
        return z, z, np.zeros(0)
    pairs = np.unique(np.stack([np.minimum(qa, qb), np.maximum(qa, qb)], axis=1), axis=0)
    lo, hi = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    return lo, hi, shapely.distance(g[lo], g[hi])
