"""Split oversized atoms: gated estates (小区) of thousands of residents in one street block.

In Chinese cities a single street block is often one gated estate with
3,000–20,000 residents, more than one grid may hold. :func:`split_oversized`
divides such an atom into contiguous pieces of legal population, each within
``[min_pop, max_pop]`` and as balanced as the buildings allow.

Units
    The atom is first cut into sub-blocks along the lines of
    ``internal_roads`` that reach inside it (estate roads, cul-de-sacs; the
    streets around it run along its outline and are ignored), their dead ends
    extended to the outline (:func:`~geo.partition.blocks.street_blocks` on
    them). Then

    * with address points: every sub-block is cut into slabs by straight
      lines across its long axis half-way between buildings (楼栋; points
      sharing a ``building`` id, e.g. the 2–4 entrances of a tower), so that
      pieces meet along short straight lines; when slabs cannot give legal
      pieces, or would leave an entrance outside its building's slab, every
      building gets the union of the Voronoi cells of its points inside the
      sub-blocks instead, so each address point lies in the piece it is
      counted in. A building is one indivisible unit: it is never split;
      with footprints its unit takes the whole footprint.
    * polygons only: the atom is cut into thin equal-area strips across its
      long axis (``strips_per_piece`` strips per expected piece) and the
      strips are cut by the sub-blocks; population is shared by the finer
      population units inside each strip (areal weighting of the units,
      ``fine_units``), by area only when there are none, with
      largest-remainder rounding.

Each split block's report entry gives the length of its cuts along internal
roads and between buildings, and the narrowest clearance from a cut to an
address point.

Grouping
    Units are grouped by recursive bisection: a set worth ``k`` pieces is cut
    into ``k//2`` and ``k - k//2`` pieces' worth. Units are ordered along the
    long axis, the short axis, sub-block by sub-block, and breadth-first over
    the unit adjacency graph; every cut position of every order is scored by
    its deviation from the proportional population, plus a penalty when it
    cuts through a sub-block rather than along an internal road, plus a
    large penalty when a side cannot hold its pieces within the limits. The
    best cut whose two sides are both connected (shared edges, not corners)
    wins. So pieces are contiguous and buildings whole.

Buildings above ``max_pop`` become atoms of their own with
``building_split=True`` (flagged in the report); they are not divided.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import to_metric
from geo.partition.blocks import _polygonal, dissolve_groups, polygon_adjacency, street_blocks
from geo.partition.population import largest_remainder, locate_points, one_atom_per_building

__all__ = ["SplitReport", "split_oversized", "choose_k", "piece_range", "strips", "extend_dangles", "roads_inside",
           "movable_units"]


# --------------------------------------------------------------------------- report


@dataclass
class SplitReport:
    """What :func:`split_oversized` did.

    Attributes
    ----------
    split : list of dict
        One entry per split atom: ``atom`` (input position), ``block``,
        ``people``, ``pieces`` (number of output atoms), ``piece_people``,
        ``method`` (``"buildings"`` or ``"area"``), ``roads`` (sub-blocks
        from internal roads), ``building_split`` (buildings above max made
        their own atom) and ``ok`` (every piece within the limits).
    building_split : list of dict
        Buildings above ``max_pop``: ``atom``, ``block``, ``building``,
        ``people``.
    unsplit : list of dict
        Oversized atoms left whole and why (special units are exclusive
        grids; existing building atoms).
    violations : list of dict
        Output pieces outside ``[min_pop, max_pop]`` that came from a split
        (apart from building atoms): ``atom`` (output position), ``block``,
        ``people``.
    points : GeoDataFrame or None
        The points with their output ``atom`` (-1 outside every atom).
    """

    split: list = field(default_factory=list)
    building_split: list = field(default_factory=list)
    unsplit: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    points: gpd.GeoDataFrame | None = None

    def to_dict(self) -> dict:
        """JSON-ready summary (without the points frame)."""
        return {
            "split": self.split,
            "building_split": self.building_split,
            "unsplit": self.unsplit,
            "violations": self.violations,
            "n_split": len(self.split),
            "n_pieces": int(sum(s["pieces"] for s in self.split)),
        }


# --------------------------------------------------------------------------- helpers


def choose_k(people: float, min_pop: float, max_pop: float, target: float) -> int:
    """Number of pieces for *people*: nearest to ``people / target`` within the feasible range.

    Parameters
    ----------
    people : float
    min_pop, max_pop, target : float

    Returns
    -------
    int
        ``k`` with ``k·min_pop <= people <= k·max_pop`` when such a ``k``
        exists (else the smallest ``k`` with ``people <= k·max_pop``), at
        least 1.
    """
    if people <= 0:
        return 1
    lo = max(1, math.ceil(people / max_pop))
    hi = math.floor(people / min_pop) if min_pop > 0 else lo + 10**6
    k = max(1, round(people / target))
    if lo <= hi:
        return int(min(max(k, lo), hi))
    return int(lo)


def piece_range(people: float, min_pop: float, max_pop: float, target: float,
                max_pieces: int = 12) -> tuple[float, float, float]:
    """Population range ``(lo, hi, target)`` of the pieces of an atom of *people* above *max_pop*.

    When some number of pieces ``k`` has ``k·min_pop <= people <= k·max_pop``, the pieces are grids
    of their own: ``(min_pop, max_pop, target)``. Otherwise (a tight range: 1,526 people at
    1,000–1,200 make two pieces of 763 that no neighbour can complete when the blocks around hold
    600–900) the pieces are sized for combining: at most ``max_pop - min_pop`` people each (a region
    short of ``min_pop`` by less than ``max_pop`` - ``min_pop`` can always take one more), but no
    smaller than ``people / max_pieces``.

    Parameters
    ----------
    people, min_pop, max_pop, target : float
    max_pieces : int
        Upper bound on the number of pieces of such an atom.

    Returns
    -------
    (lo, hi, target) : tuple of float
    """
    if people <= max_pop or math.ceil(people / max_pop) <= math.floor(people / max(min_pop, 1e-9)):
        return float(min_pop), float(max_pop), float(target)
    hi = max(float(max_pop - min_pop), people / max_pieces, 1.0)
    return hi / 3.0, hi, 0.7 * hi


def _axes(geom: Any) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors of the long and the short axis of *geom* (oriented envelope)."""
    env = shapely.oriented_envelope(geom)
    c = shapely.get_coordinates(env)
    if len(c) < 4:
        return np.array([1.0, 0.0]), np.array([0.0, 1.0])
    e1, e2 = c[1] - c[0], c[2] - c[1]
    long_ = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    n = np.hypot(*long_)
    if n == 0:
        return np.array([1.0, 0.0]), np.array([0.0, 1.0])
    u = long_ / n
    if u[0] < 0 or (u[0] == 0 and u[1] < 0):  # canonical direction: deterministic
        u = -u
    return u, np.array([-u[1], u[0]])


def _bands(geom: Any, u: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rectangles covering *geom* between positions ``a[i]`` and ``b[i]`` along direction *u*."""
    v = np.array([-u[1], u[0]])
    q = shapely.get_coordinates(geom) @ v
    q0, q1 = q.min() - 1.0, q.max() + 1.0
    a = np.asarray(a, dtype=float)[:, None]
    b = np.asarray(b, dtype=float)[:, None]
    corners = np.stack([a * u + q0 * v, b * u + q0 * v, b * u + q1 * v, a * u + q1 * v], axis=1)
    return shapely.polygons(corners)


def _cut_positions(geom: Any, n: int, u: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Positions along *u* cutting *geom* into *n* equal areas (plus the outer limits)."""
    p = shapely.get_coordinates(geom) @ u
    pmin, pmax = p.min() - 1.0, p.max() + 1.0
    goal = shapely.area(geom) * np.arange(1, n) / n
    lo = np.full(n - 1, pmin)
    hi = np.full(n - 1, pmax)
    for _ in range(60):  # bisection on every cut position at once
        mid = (lo + hi) / 2
        area = shapely.area(shapely.intersection(geom, _bands(geom, u, np.full(n - 1, pmin), mid)))
        below = area < goal
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
        if np.max(hi - lo) < 1e-3:
            break
    return (lo + hi) / 2, pmin, pmax


def _cut_lines(geom: Any, u: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Straight lines across *geom*, perpendicular to *u*, at *positions*."""
    v = np.array([-u[1], u[0]])
    q = shapely.get_coordinates(geom) @ v
    q0, q1 = q.min() - 1.0, q.max() + 1.0
    t = np.asarray(positions, dtype=float)[:, None]
    return shapely.linestrings(np.stack([t * u + q0 * v, t * u + q1 * v], axis=1))


def _faces(geom: Any, lines: np.ndarray) -> np.ndarray:
    """Faces of *geom* cut by *lines*, by noding and polygonizing (an exact coverage)."""
    edges = shapely.union_all(np.concatenate([[shapely.boundary(geom)], np.asarray(lines, dtype=object)]))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(edges)))
    faces = faces[shapely.area(faces) > 0]
    shapely.prepare(geom)
    return faces[shapely.contains(geom, shapely.point_on_surface(faces))]


def strips(geom: Any, n: int, u: np.ndarray | None = None) -> np.ndarray:
    """Cut *geom* into *n* strips of equal area across direction *u*.

    Parameters
    ----------
    geom : Polygon or MultiPolygon (metric CRS)
    n : int
        Number of strips.
    u : array of 2 floats, optional
        Unit vector along which positions are measured (default: the long
        axis, so strips are cut across the long axis).

    Returns
    -------
    numpy.ndarray of geometries, length n (a strip may be a MultiPolygon when
    *geom* is not convex). Neighbouring strips share exact edges.
    """
    if n <= 1:
        return np.array([geom], dtype=object)
    if u is None:
        u, _ = _axes(geom)
    cuts, _, _ = _cut_positions(geom, n, u)
    faces = _faces(geom, _cut_lines(geom, u, cuts))
    pos = shapely.get_coordinates(shapely.point_on_surface(faces)) @ u
    label = np.searchsorted(cuts, pos)
    _, merged = dissolve_groups(faces, label)
    out = np.full(n, shapely.Polygon(), dtype=object)
    out[np.unique(label)] = merged
    return out


def _connected(members: np.ndarray, adj: list[list[int]]) -> bool:
    """Whether *members* (unit positions) form one connected set in *adj*."""
    if len(members) <= 1:
        return True
    inside = set(int(m) for m in members)
    start = int(members[0])
    seen = {start}
    dq = deque([start])
    while dq:
        a = dq.popleft()
        for b in adj[a]:
            if b in inside and b not in seen:
                seen.add(b)
                dq.append(b)
    return len(seen) == len(inside)


def _components(members: np.ndarray, adj: list[list[int]]) -> list[np.ndarray]:
    """Connected components of *members* in *adj* (each sorted)."""
    inside = set(int(m) for m in members)
    out = []
    seen: set[int] = set()
    for s in sorted(inside):
        if s in seen:
            continue
        comp = [s]
        seen.add(s)
        dq = deque([s])
        while dq:
            a = dq.popleft()
            for b in adj[a]:
                if b in inside and b not in seen:
                    seen.add(b)
                    comp.append(b)
                    dq.append(b)
        out.append(np.array(sorted(comp), dtype=np.int64))
    return out


def _bfs_order(members: np.ndarray, adj: list[list[int]], start: int) -> np.ndarray:
    """Breadth-first order of *members* from *start* (unreached members appended)."""
    inside = set(int(m) for m in members)
    order = [start]
    seen = {start}
    dq = deque([start])
    while dq:
        a = dq.popleft()
        for b in sorted(adj[a]):
            if b in inside and b not in seen:
                seen.add(b)
                order.append(b)
                dq.append(b)
    order += [m for m in sorted(inside) if m not in seen]
    return np.array(order, dtype=np.int64)


class _Grouper:
    """Recursive bisection of units into contiguous pieces of legal population."""

    def __init__(self, xy, area, pop, sub, adj, *, min_pop, max_pop, target, road_penalty,
                 max_checks=400, max_tries=6, budget=3000):
        self.xy, self.area, self.pop, self.sub, self.adj = xy, area, pop, sub, adj
        self.min, self.max, self.target = min_pop, max_pop, target
        self.road_penalty = road_penalty
        self.max_checks = max_checks
        self.max_tries = max_tries
        self.budget = budget
        self.calls = 0

    def _orders(self, idx: np.ndarray) -> list[np.ndarray]:
        xy = self.xy[idx]
        w = np.maximum(self.area[idx], 1e-9)
        c = np.average(xy, axis=0, weights=w)
        d = xy - c
        cov = (d * w[:, None]).T @ d
        vals, vecs = np.linalg.eigh(cov) if len(idx) > 1 else (np.array([0, 0]), np.eye(2))
        u = vecs[:, int(np.argmax(vals))]
        if u[0] < 0 or (u[0] == 0 and u[1] < 0):
            u = -u
        v = np.array([-u[1], u[0]])
        pu, pv = d @ u, d @ v
        orders = [idx[np.lexsort((idx, pu))], idx[np.lexsort((idx, pv))]]
        subs = self.sub[idx]
        if len(np.unique(subs)) > 1:
            # sub-block by sub-block along the long axis (cuts fall on internal roads)
            sc = pd.Series(pu).groupby(subs).transform("mean").to_numpy()
            orders.append(idx[np.lexsort((idx, pu, subs, sc))])
            sc2 = pd.Series(pv).groupby(subs).transform("mean").to_numpy()
            orders.append(idx[np.lexsort((idx, pv, subs, sc2))])
        orders.append(_bfs_order(idx, self.adj, int(idx[np.lexsort((idx, pu))][0])))
        return orders

    def _badness(self, idx: np.ndarray) -> float:
        p = float(self.pop[idx].sum())
        return max(self.min - p, 0.0) + max(p - self.max, 0.0)

    def split(self, idx: np.ndarray, k: int) -> tuple[list[np.ndarray], float]:
        """Pieces (arrays of unit positions) for *idx* worth *k* pieces.

        Returns the pieces and their *badness*: total population outside the
        limits (0 when every piece is legal). Cut candidates are tried best
        first; when a cut leads to an illegal piece further down, the next
        candidates are tried (backtracking, bounded by a call budget).
        """
        self.calls += 1
        if k <= 1 or len(idx) <= 1:
            return [idx], self._badness(idx)
        total = self.pop[idx].sum()
        cands = []  # (score, order_no, cut, k1)
        orders = self._orders(idx)
        has_subs = len(np.unique(self.sub[idx])) > 1
        unit = max(total / k, 1.0)
        for o, order in enumerate(orders):
            m = len(order)
            left = np.cumsum(self.pop[order])[:-1].astype(float)
            right = total - left
            cuts = np.arange(1, m)
            # best number of pieces for the left side of every cut
            score = np.full(m - 1, np.inf)
            best_k1 = np.full(m - 1, k // 2)
            for k1 in range(1, k):
                k2 = k - k1
                dev = np.abs(left - total * k1 / k) / unit
                infeas = (np.maximum(k1 * self.min - left, 0) + np.maximum(left - k1 * self.max, 0)
                          + np.maximum(k2 * self.min - right, 0) + np.maximum(right - k2 * self.max, 0))
                sc = dev + 0.02 * abs(k1 - k / 2) + np.where(infeas > 0, 10.0 + infeas / max(self.target, 1.0), 0.0)
                better = sc < score
                score = np.where(better, sc, score)
                best_k1 = np.where(better, k1, best_k1)
            if has_subs:
                s = self.sub[order]
                codes, inv = np.unique(s, return_inverse=True)
                first = np.full(len(codes), m)
                last = np.full(len(codes), -1)
                np.minimum.at(first, inv, np.arange(m))
                np.maximum.at(last, inv, np.arange(m))
                diff = np.zeros(m + 1)
                np.add.at(diff, first, 1)
                np.add.at(diff, last, -1)
                crossing = np.cumsum(diff)[:-1][cuts - 1] > 0
                score = score + np.where(crossing, self.road_penalty, 0.0)
            for sc, c, k1 in zip(score.tolist(), cuts.tolist(), best_k1.tolist()):
                cands.append((sc, o, c, k1))
        cands.sort()
        seen = set()
        checks = 0
        tried = 0
        best: tuple[list[np.ndarray], float] | None = None
        for sc, o, c, k1 in cands:
            order = orders[o]
            a, b = order[:c], order[c:]
            key = (tuple(sorted(a.tolist())), k1)
            if key in seen:
                continue
            seen.add(key)
            checks += 1
            if checks > self.max_checks:
                break
            if not (_connected(a, self.adj) and _connected(b, self.adj)):
                continue
            tried += 1
            pa, ba = self.split(np.sort(a), k1)
            pb, bb = self.split(np.sort(b), k - k1)
            bad = ba + bb
            if best is None or bad < best[1]:
                best = (pa + pb, bad)
            if bad == 0 or tried >= self.max_tries or self.calls > self.budget:
                break
        if best is None:  # no connected cut at all: leave whole
            return [idx], self._badness(idx)
        return best


def _group_units(ug, upeople, usub, indivisible, *, min_pop, max_pop, target, road_penalty):
    """Group units into contiguous pieces of legal population.

    Indivisible units above *max_pop* (buildings) are pieces of their own
    (``is_building`` True); every connected set of the others is cut by
    :class:`_Grouper`.

    Returns
    -------
    (groups, badness)
        ``groups``: list of (unit positions, is_building); ``badness``: total
        population outside the limits (0 when every piece is legal).
    """
    nu = len(ug)
    i, j, _ = polygon_adjacency(ug, min_shared=1e-3)
    adj: list[list[int]] = [[] for _ in range(nu)]
    for x, y in zip(i.tolist(), j.tolist()):
        adj[x].append(y)
        adj[y].append(x)
    big = np.flatnonzero(indivisible & (upeople > max_pop))
    groups: list[tuple[np.ndarray, bool]] = [(np.array([u]), True) for u in big]
    rest = np.setdiff1d(np.arange(nu), big)
    cen = shapely.get_coordinates(shapely.point_on_surface(ug)) if nu else np.zeros((0, 2))
    grouper = _Grouper(cen, shapely.area(ug), upeople.astype(float), usub, adj,
                       min_pop=min_pop, max_pop=max_pop, target=target, road_penalty=road_penalty)
    badness = 0.0
    for comp in _components(rest, adj) if len(rest) else []:
        pieces, bad = _split_component(grouper, comp, float(upeople[comp].sum()), min_pop, max_pop, target)
        badness += bad
        groups.extend((piece, False) for piece in pieces)
    return groups, badness


def _split_component(grouper: _Grouper, comp: np.ndarray, people: float, min_pop: float, max_pop: float,
                     target: float) -> tuple[list[np.ndarray], float]:
    """Best grouping of one connected set of units, trying piece counts nearest ``people/target`` first."""
    k0 = choose_k(people, min_pop, max_pop, target)
    lo = max(1, math.ceil(people / max_pop))
    hi = max(lo, math.floor(people / min_pop)) if min_pop > 0 else lo
    ks = sorted(set(range(lo, hi + 1)) | {k0}, key=lambda k: (abs(k - people / target), k))
    best: tuple[list[np.ndarray], float] | None = None
    for k in ks[:6]:
        grouper.calls = 0
        pieces, bad = grouper.split(comp, k)
        if best is None or bad < best[1]:
            best = (pieces, bad)
        if bad == 0:
            break
    return best


# --------------------------------------------------------------------------- units


def extend_dangles(lines: np.ndarray, boundary: Any, max_ext: float) -> np.ndarray:
    """Extensions of dead-end line ends to the nearest line or *boundary* straight ahead.

    Estate roads often stop short of the estate wall or of each other (a
    gate, a car park). Each dangling end is extended along its last segment
    by at most *max_ext* metres; when the extension meets another line or
    the boundary it is kept.

    Parameters
    ----------
    lines : array of LineString (metric CRS)
    boundary : geometry
        Lines the extensions may also end on (e.g. the block outline).
    max_ext : float
        Longest extension (m).

    Returns
    -------
    numpy.ndarray of LineString
        The extension segments (may be empty).
    """
    lines = np.asarray(lines, dtype=object)
    if max_ext <= 0 or len(lines) == 0:
        return np.array([], dtype=object)
    edges = shapely.get_parts(shapely.union_all(lines))
    edges = edges[shapely.get_type_id(edges) == 1]
    if len(edges) == 0:
        return np.array([], dtype=object)
    coords, idx = shapely.get_coordinates(edges, return_index=True)
    first = np.r_[0, np.flatnonzero(idx[1:] != idx[:-1]) + 1]
    last = np.r_[first[1:] - 1, len(idx) - 1]
    ends = np.concatenate([coords[first], coords[last]])
    prev = np.concatenate([coords[np.minimum(first + 1, last)], coords[np.maximum(last - 1, first)]])
    owner = np.concatenate([idx[first], idx[last]])
    key = np.round(ends, 6)
    _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    dangling = counts[np.asarray(inv).ravel()] == 1
    outline = shapely.boundary(boundary) if shapely.get_type_id(boundary) in (3, 6) else boundary
    targets = np.concatenate([edges, shapely.get_parts(outline)])
    tree = shapely.STRtree(targets)
    out = []
    for e in np.flatnonzero(dangling):
        p = ends[e]
        if shapely.distance(shapely.Point(p), outline) < 1e-6:  # already on the outline
            continue
        d = p - prev[e]
        n = np.hypot(*d)
        if n == 0:
            continue
        ray = shapely.LineString([p + d / n * 1e-6, p + d / n * max_ext])
        hits = tree.query(ray, predicate="intersects")
        hits = hits[hits != owner[e]]
        if len(hits) == 0:
            continue
        x = shapely.intersection(ray, targets[hits])
        pts = shapely.get_coordinates(x)
        if len(pts) == 0:
            continue
        q = pts[np.argmin(np.hypot(*(pts - p).T))]
        # a hair beyond the hit, so that the extension crosses the line it ends on and is noded
        # with it (an end computed *on* a line lies on either side of it by rounding)
        out.append(shapely.LineString([p, q + d / n * 0.05]))
    return np.array(out, dtype=object)


def _sub_blocks(geom: Any, roads: np.ndarray, crs: Any, road_extend: float = 40.0, avoid: np.ndarray | None = None,
                clearance: float = 5.0) -> np.ndarray:
    """Sub-blocks of *geom* cut by internal roads (dead ends extended), or the parts of *geom*.

    An extension of a dead end that would pass within *clearance* (m) of an address point in
    *avoid* (coordinates) is dropped: it would run through a building.
    """
    if len(roads):
        ext = extend_dangles(shapely.get_parts(roads), geom, road_extend)
        if len(ext) and avoid is not None and len(avoid):
            ext = ext[shapely.distance(ext, shapely.multipoints(avoid)) >= clearance]
        lines = np.concatenate([shapely.get_parts(roads), ext]) if len(ext) else roads
        sb = street_blocks(gpd.GeoSeries(lines, crs=crs), gpd.GeoSeries([geom], crs=crs), crs=crs,
                           snap_tol=0.5, min_area=300.0, sliver_width=8.0, class_column=None)
        subs = np.asarray(sb.geometry.values, dtype=object)
    else:
        subs = np.array([geom], dtype=object)
    return shapely.get_parts(subs)


def roads_inside(geom: Any, road_geoms: np.ndarray, road_tree: shapely.STRtree | None = None) -> np.ndarray:
    """The lines reaching inside *geom* (metric), not the streets around it, which run along its outline."""
    if not len(road_geoms):
        return np.array([], dtype=object)
    tree = road_tree if road_tree is not None else shapely.STRtree(road_geoms)
    inner = shapely.buffer(geom, -1.0)
    probe = inner if not shapely.is_empty(inner) else geom
    return road_geoms[np.sort(tree.query(probe, predicate="intersects"))]


def movable_units(geom: Any, roads: np.ndarray, crs: Any, point_xy: np.ndarray, point_building: np.ndarray,
                  point_people: np.ndarray, point_households: np.ndarray, road_extend: float = 150.0) -> dict:
    """The pieces of one polygon (a grid) that can be moved whole: the units :func:`split_oversized` groups.

    *geom* is cut into sub-blocks along the *roads* reaching inside it (dead ends extended, see
    :func:`_sub_blocks`), and every sub-block into units of whole buildings: slabs straight across its long
    axis between buildings, or the buildings' Voronoi cells when a slab would leave an entrance outside
    its building's slab. A building (address points sharing a ``building`` id, its 2–4 entrances) is never
    cut; a gated estate that is one street block falls into groups of its buildings.

    Parameters
    ----------
    geom : Polygon (metric CRS)
    roads : array of lines (metric), e.g. every street near the polygon
    point_xy : (n, 2) array
        Address points (metric coordinates) inside *geom*.
    point_building : array of objects
        Building id of each point (None or NaN: the point is a building of its own).
    point_people, point_households : arrays
        Residents and households of each point.

    Returns
    -------
    dict
        ``blocks`` (sub-block polygons), ``units`` (unit polygons, an exact coverage of each sub-block),
        ``unit_block`` (the sub-block of each unit), ``unit_people``, ``unit_households`` (sums of the
        points of the buildings each unit holds).
    """
    roads = np.asarray(roads, dtype=object)
    point_xy = np.asarray(point_xy, dtype=float).reshape(-1, 2)
    here = roads_inside(geom, roads)
    subs = _sub_blocks(geom, here, crs, road_extend, avoid=point_xy if len(point_xy) else None)
    if not len(point_xy):
        return {"blocks": subs, "units": subs, "unit_block": np.arange(len(subs)),
                "unit_people": np.zeros(len(subs), np.int64), "unit_households": np.zeros(len(subs), np.int64)}
    key = np.array([f"b:{v}" if v is not None and v == v else f"p:{k}" for k, v in enumerate(point_building)],
                   dtype=object)
    _, binv = np.unique(key, return_inverse=True)
    nb = int(binv.max()) + 1
    bxy = np.column_stack([np.bincount(binv, weights=point_xy[:, 0], minlength=nb),
                           np.bincount(binv, weights=point_xy[:, 1], minlength=nb)]) / \
        np.bincount(binv, minlength=nb)[:, None]
    bpeople = np.bincount(binv, weights=np.asarray(point_people, dtype=float), minlength=nb).round().astype(np.int64)
    bhh = np.bincount(binv, weights=np.asarray(point_households, dtype=float), minlength=nb).round().astype(np.int64)
    for make_units in (_slab_units, _building_units):
        ug, upeople, uhh, usub, umembers = make_units(subs, bxy, bpeople, bhh, point_xy, binv)
        if make_units is _building_units or _points_in_own_unit(ug, umembers, point_xy, binv):
            break
    return {"blocks": subs, "units": ug, "unit_block": usub, "unit_people": upeople, "unit_households": uhh}


def _slab_units(subs, bxy, bpeople, bhh, point_xy=None, point_building=None, margin=3.0):
    """Slabs of each sub-block, cut straight across its long axis in the gaps between buildings.

    A building is a set of address points, so any line that passes between
    them keeps it whole; straight lines across the short dimension are the
    shortest cuts through a block (Voronoi cells of the buildings give
    zig-zag edges about 1.5 times as long). Along the long axis every
    building spans the interval of its points (plus *margin*); overlapping
    spans are one slab, and slabs are cut half-way across the gaps, so no
    line ever separates the points of a building. A group of consecutive
    slabs is cut off by one straight line. A slab of a non-convex sub-block
    may fall into several faces: each face holds the buildings whose
    location lies inside it (empty ones are fillers).

    Parameters
    ----------
    point_xy, point_building : arrays, optional
        Coordinates of the address points and the building (position in
        *bxy*) of each; default: one point per building at *bxy*.

    Returns unit geometries, people, households, sub-block, and for every unit
    the building positions it holds (list of arrays; empty for filler units).
    """
    if point_xy is None:
        point_xy, point_building = bxy, np.arange(len(bxy))
    point_building = np.asarray(point_building, dtype=np.int64)
    bpts = shapely.points(bxy)
    loc, _, _ = locate_points(bpts, subs, snap_distance=np.inf)
    geoms, people, hh, sub, members = [], [], [], [], []
    nb = len(bxy)
    for s, sg in enumerate(subs):
        bs = np.flatnonzero(loc == s)
        if len(bs) == 0:
            geoms.append(sg); people.append(0); hh.append(0); sub.append(s); members.append(np.zeros(0, np.int64))
            continue
        u, _ = _axes(sg)
        lo = np.full(nb, np.inf)
        hi = np.full(nb, -np.inf)
        t = point_xy @ u
        np.minimum.at(lo, point_building, t)
        np.maximum.at(hi, point_building, t)
        lo, hi = np.minimum(lo[bs], bxy[bs] @ u) - margin, np.maximum(hi[bs], bxy[bs] @ u) + margin
        order = np.argsort(lo, kind="stable")
        reach = np.maximum.accumulate(hi[order])
        gaps = np.flatnonzero(lo[order][1:] > reach[:-1])  # a gap after the k-th span (sorted)
        cuts = (reach[gaps] + lo[order][gaps + 1]) / 2.0
        if len(cuts) == 0:
            faces = np.array([sg], dtype=object)
        else:
            faces = _faces(sg, _cut_lines(sg, u, cuts))
        where, _, _ = locate_points(bpts[bs], faces, snap_distance=np.inf)
        for f, face in enumerate(faces):
            held = bs[where == f]
            geoms.append(face); sub.append(s); members.append(held)
            people.append(int(bpeople[held].sum())); hh.append(int(bhh[held].sum()))
    return (np.array(geoms, dtype=object), np.array(people, dtype=np.int64), np.array(hh, dtype=np.int64),
            np.array(sub, dtype=np.int64), members)


def _building_units(subs, bxy, bpeople, bhh, point_xy=None, point_building=None):
    """Cells of the buildings inside each sub-block: the union of the Voronoi cells of a building's points.

    Every address point gets the Voronoi cell of its location inside the sub-block it lies in, and
    a building's unit is the union of the cells of all its points (its entrances), so every point
    lies inside the unit of its own building whatever the shape of the building's row of entrances.

    Parameters
    ----------
    point_xy, point_building : arrays, optional
        Coordinates of the address points and the building (position in *bxy*) of each; default one
        point per building at *bxy*.

    Returns unit geometries, people, households, sub-block, and for every unit the building
    positions it holds (list of arrays; empty for filler units).
    """
    if point_xy is None:
        point_xy, point_building = bxy, np.arange(len(bxy))
    point_building = np.asarray(point_building, dtype=np.int64)
    nb = len(bxy)
    ploc, _, _ = locate_points(shapely.points(point_xy), subs, snap_distance=np.inf)
    cells_of: list[list] = [[] for _ in range(nb)]
    sub_of = np.full(nb, -1, dtype=np.int64)
    fillers = []
    for s, sg in enumerate(subs):
        ps = np.flatnonzero(ploc == s)
        if len(ps) == 0:
            fillers.append(s)
            continue
        key = np.round(point_xy[ps], 3)
        uniq, first = np.unique(key, axis=0, return_index=True)
        owner = point_building[ps[first]]  # points at one location: the first point's building
        if len(uniq) == 1:
            cells = np.array([sg], dtype=object)
        else:
            vor = shapely.voronoi_polygons(shapely.multipoints(uniq), extend_to=sg, ordered=True)
            cells = _polygonal(shapely.intersection(shapely.get_parts(vor), sg))
        for c, b in zip(cells, owner):
            if not shapely.is_empty(c):
                cells_of[b].append(c)
                if sub_of[b] < 0:
                    sub_of[b] = s
    geoms, people, hh, sub, members = [], [], [], [], []
    for b in range(nb):
        if not cells_of[b]:
            continue
        geoms.append(shapely.union_all(cells_of[b]) if len(cells_of[b]) > 1 else cells_of[b][0])
        people.append(int(bpeople[b])); hh.append(int(bhh[b])); sub.append(int(sub_of[b]))
        members.append(np.array([b], dtype=np.int64))
    # buildings left without a cell (all their points share a location with another building's)
    lost = [b for b in range(nb) if not cells_of[b]]
    for s in fillers:
        geoms.append(subs[s]); people.append(0); hh.append(0); sub.append(s); members.append(np.zeros(0, np.int64))
    geoms = np.array(geoms, dtype=object)
    people = np.array(people, dtype=np.int64)
    hh = np.array(hh, dtype=np.int64)
    sub = np.array(sub, dtype=np.int64)
    if lost and len(geoms):
        tree = shapely.STRtree(geoms)
        for b in lost:
            t = int(tree.query_nearest(shapely.points(bxy[b]))[0])
            people[t] += bpeople[b]; hh[t] += bhh[b]
            members[t] = np.concatenate([members[t], [b]])
    return geoms, people, hh, sub, members


def _points_in_own_unit(ug: np.ndarray, umembers: list, point_xy: np.ndarray, point_building: np.ndarray) -> bool:
    """Whether every address point lies inside the unit that holds (counts) its building."""
    holder = np.full(int(point_building.max()) + 1 if len(point_building) else 0, -1, dtype=np.int64)
    for u, m in enumerate(umembers):
        holder[np.asarray(m, dtype=np.int64)] = u
    h = holder[point_building]
    if (h < 0).any():
        return False
    return bool(shapely.intersects(ug[h], shapely.points(point_xy)).all())


def _fine_weights(faces: np.ndarray, fine: tuple[np.ndarray, np.ndarray, Any] | None) -> np.ndarray:
    """People of the finer polygon units inside each face (areal weighting); face area without them.

    *fine* is ``(polygons, people, tree)`` of the population units (metric CRS). A face gets, of every
    unit it overlaps, the unit's people times the share of the unit's area inside the face; faces
    overlapping no unit with people fall back to their area (scaled so that area alone never
    outweighs the units).
    """
    area = shapely.area(faces)
    if fine is None or len(fine[0]) == 0:
        return area
    polys, people, tree = fine
    fi, ui = tree.query(faces, predicate="intersects")
    if len(fi) == 0:
        return area
    a = shapely.area(shapely.intersection(faces[fi], polys[ui]))
    w = np.bincount(fi, weights=people[ui] * a / np.maximum(shapely.area(polys[ui]), 1e-9), minlength=len(faces))
    if w.sum() <= 0:
        return area
    return w


def _area_units(geom, subs, people, hh, n_strips, convexity_min=0.75, fine=None):
    """Area units of an atom without points; population shared by the finer units inside, else by area.

    Strips across the atom's long axis (``n_strips`` of equal area), cut by
    the sub-blocks. An irregular atom (area below ``convexity_min`` of its
    convex hull) is cut into a lattice of about ``2·n_strips`` cells instead,
    since strips across a ragged shape fall apart into disconnected bits.
    """
    u, v = _axes(geom)
    lines = []
    irregular = shapely.area(geom) < convexity_min * shapely.area(shapely.convex_hull(geom))
    if n_strips > 1 and not irregular:
        cuts, _, _ = _cut_positions(geom, n_strips, u)
        lines.append(_cut_lines(geom, u, cuts))
    elif n_strips > 1:
        pu = shapely.get_coordinates(geom) @ u
        pv = shapely.get_coordinates(geom) @ v
        ratio = max(np.ptp(pu), 1.0) / max(np.ptp(pv), 1.0)
        n_cells = 2 * n_strips
        nu = max(1, int(round(math.sqrt(n_cells * ratio))))
        nv = max(1, int(math.ceil(n_cells / nu)))
        for direction, m in ((u, nu), (v, nv)):
            if m > 1:
                cuts, _, _ = _cut_positions(geom, m, direction)
                lines.append(_cut_lines(geom, direction, cuts))
    if len(subs) > 1:
        lines.append(shapely.boundary(subs))
    faces = _faces(geom, np.concatenate(lines)) if lines else shapely.get_parts(np.array([geom], dtype=object))
    sub, _, _ = locate_points(shapely.point_on_surface(faces), subs, snap_distance=np.inf)
    a = _fine_weights(faces, fine)
    return faces, largest_remainder(a, people), largest_remainder(a, hh), sub, a / max(float(a.sum()), 1e-12)


def _carve_footprints(ug: np.ndarray, umembers: list, codes: np.ndarray, feet: tuple, geom) -> np.ndarray:
    """Give every footprint inside *geom* wholly to the unit holding its building (cut out of the others)."""
    fgeo, fkey, ftree = feet
    holder = {str(codes[b]): u for u, m in enumerate(umembers) for b in np.asarray(m, dtype=np.int64)}
    ug = np.asarray(ug, dtype=object).copy()
    utree = shapely.STRtree(ug)
    for f in np.sort(ftree.query(geom, predicate="intersects")):
        u = holder.get(str(fkey[f]))
        if u is None:
            continue
        part = _polygonal([shapely.intersection(fgeo[f], geom)])[0]
        if shapely.is_empty(part):
            continue
        for v in utree.query(part, predicate="intersects"):
            if v != u:
                ug[v] = _polygonal([shapely.difference(ug[v], part)])[0]
        ug[u] = _polygonal([shapely.union(ug[u], part)])[0]
    return ug


def _cut_summary(geom, pieces: np.ndarray, roads: np.ndarray, point_xy: np.ndarray | None,
                 road_tol: float = 2.0) -> dict:
    """How a block was cut: length of cuts along internal roads and between buildings, clearance to points.

    Returns ``cut_m``, ``cut_on_roads_m``, ``cut_between_buildings_m`` and ``min_clearance_m`` (the
    narrowest distance from a cut to an address point of the block; None without points or cuts).
    """
    if len(pieces) <= 1:
        return {"cut_m": 0.0, "cut_on_roads_m": 0.0, "cut_between_buildings_m": 0.0, "min_clearance_m": None}
    inner = shapely.union_all(shapely.boundary(pieces))
    cut = shapely.difference(inner, shapely.buffer(shapely.boundary(geom), 0.01, quad_segs=1))
    total = float(shapely.length(cut))
    on = 0.0
    if len(roads):
        on = float(shapely.length(shapely.intersection(cut, shapely.buffer(shapely.union_all(roads), road_tol))))
    clear = None
    if point_xy is not None and len(point_xy) and total > 0:
        clear = round(float(shapely.distance(cut, shapely.multipoints(point_xy))), 2)
    return {"cut_m": round(total, 1), "cut_on_roads_m": round(on, 1), "cut_between_buildings_m": round(total - on, 1),
            "min_clearance_m": clear}


# --------------------------------------------------------------------------- main


def split_oversized(
    atoms: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame | None = None,
    *,
    min_pop: int = 1000,
    max_pop: int = 2000,
    target: float | None = None,
    internal_roads: Any = None,
    by: str | None = "people",
    households: str | None = "households",
    building: str = "building",
    strips_per_piece: int = 4,
    road_penalty: float = 2.0,
    road_extend: float = 150.0,
    units: str = "slabs",
    fine_units: gpd.GeoDataFrame | None = None,
    footprints: gpd.GeoDataFrame | None = None,
) -> tuple[gpd.GeoDataFrame, SplitReport]:
    """Split atoms above *max_pop* into contiguous pieces of legal population.

    Parameters
    ----------
    atoms : GeoDataFrame
        Atoms (:func:`~geo.partition.population.assign_population`), metric CRS.
        Atoms with a ``special`` unit or ``building_split`` set are never split.
    points : GeoDataFrame, optional
        Address points with *by* (people; every point counts 1 when absent),
        optionally *households* and *building* columns, and optionally the
        ``atom`` each point lies in (as in ``PopulationReport.points``; located
        with the same rule when absent). Points sharing a *building* id are
        one building, never split; points without one are buildings of their
        own. The atom's ``people``/``households`` are shared over its
        buildings in proportion to the points' values (largest remainder), so
        totals are kept even when points and atoms disagree.
    min_pop, max_pop : int
        Legal piece population (inclusive).
    target : float, optional
        Preferred piece population; default ``(min_pop + max_pop) / 2``. The
        number of pieces is ``people / target`` rounded into the feasible range
        (:func:`choose_k`).
    internal_roads : GeoDataFrame, GeoSeries or array of lines, optional
        Estate roads (e.g. OSM ``service`` ways) along which cuts are preferred.
    by, households, building : str
        Column names in *points*.
    strips_per_piece : int
        Without points: strips cut per expected piece (finer strips balance
        better against sub-blocks).
    road_penalty : float
        Score penalty (in units of relative population deviation) for a cut
        that does not follow internal roads. The default 2.0 takes any legal
        cut along roads before a better balanced one through a sub-block:
        pieces become grids, and a grid edge off the streets costs more than
        an unbalanced (but legal) grid.
    road_extend : float
        Dead ends of internal roads are extended straight ahead by up to this
        many metres to the next road or the block outline
        (:func:`extend_dangles`): estate roads stop short of the wall, a
        cul-de-sac ends mid-block, and a cut along it and then straight on is
        still the shortest way off the streets; 0 disables.
    units : {"slabs", "voronoi"}
        Units made of the buildings of a sub-block: ``"slabs"`` cut straight
        across its long axis half-way between buildings (short, straight grid
        edges), with Voronoi cells of the buildings as the fallback when
        slabs cannot give legal pieces (buildings standing in rows);
        ``"voronoi"``: Voronoi cells only.
    fine_units : GeoDataFrame, optional
        Population polygons (census blocks, H3 cells) with *by*: the pieces of an atom without
        address points get its people in proportion to the people of the units inside each piece
        (areal weighting of the units), never by area alone when such units exist.
    footprints : GeoDataFrame, optional
        Building footprints with the *building* id of each: a building's unit takes its whole
        footprint (cut out of the neighbouring units), so no cut crosses a footprint.

    Returns
    -------
    atoms : GeoDataFrame
        Same columns, RangeIndex; split atoms replaced by their pieces (same
        ``block``, ``community``); totals of ``people`` and ``households``
        unchanged.
    report : SplitReport
    """
    if atoms.crs is None:
        raise ValueError("atoms have no CRS")
    atoms = to_metric(atoms).reset_index(drop=True)
    crs = atoms.crs
    target = float(target) if target else (min_pop + max_pop) / 2.0
    report = SplitReport()
    n = len(atoms)
    geoms = np.asarray(atoms.geometry.values, dtype=object)
    people = atoms["people"].to_numpy(dtype=np.int64)
    hh = atoms["households"].to_numpy(dtype=np.int64) if "households" in atoms.columns else np.zeros(n, np.int64)
    special = atoms["special"].to_numpy(dtype=object) if "special" in atoms.columns else np.full(n, None, object)
    bsplit = atoms["building_split"].to_numpy(dtype=bool) if "building_split" in atoms.columns else np.zeros(n, bool)
    block = atoms["block"].to_numpy() if "block" in atoms.columns else np.arange(n)
    exact = atoms["people_exact"].to_numpy(dtype=float) if "people_exact" in atoms.columns \
        else people.astype(float)

    # points → atoms
    pts = None
    if points is not None and len(points):
        pts = points.to_crs(crs) if points.crs is not None else points.set_crs(crs)
        pgeom = np.asarray(pts.geometry.values, dtype=object)
        if "atom" in pts.columns:
            p_atom = pts["atom"].to_numpy(dtype=np.int64)
        else:
            p_atom = locate_points(pgeom, geoms)[0]
        pxy = shapely.get_coordinates(pgeom) if len(pgeom) else np.zeros((0, 2))
        p_w = pd.to_numeric(pts[by], errors="coerce").fillna(0).to_numpy(dtype=float) if by and by in pts.columns \
            else np.ones(len(pts))
        p_hw = pd.to_numeric(pts[households], errors="coerce").fillna(0).to_numpy(dtype=float) \
            if households and households in pts.columns else None
        if building in pts.columns:
            bcol = pts[building].to_numpy(dtype=object)
            bkey = np.array([f"b:{v}" if v is not None and v == v else f"p:{k}" for k, v in enumerate(bcol)],
                            dtype=object)
            p_atom, _ = one_atom_per_building(p_atom, bkey, p_w)  # a building's points in one atom
        else:
            bkey = np.array([f"p:{k}" for k in range(len(pts))], dtype=object)
        p_new_atom = np.full(len(pts), -1, dtype=np.int64)

    road_geoms = np.array([], dtype=object)
    if internal_roads is not None:
        rr = internal_roads
        if isinstance(rr, (gpd.GeoDataFrame, gpd.GeoSeries)):
            rr = rr.to_crs(crs) if rr.crs is not None else rr.set_crs(crs)
            road_geoms = np.asarray(rr.geometry.values, dtype=object)
        else:
            road_geoms = np.asarray(rr, dtype=object)
    road_tree = shapely.STRtree(road_geoms) if len(road_geoms) else None
    fine = None
    if fine_units is not None and len(fine_units):
        fu = fine_units.to_crs(crs) if fine_units.crs is not None else fine_units.set_crs(crs)
        fg = np.asarray(fu.geometry.values, dtype=object)
        ok = np.isin(shapely.get_type_id(fg), (3, 6))
        fg = shapely.make_valid(fg[ok])
        fp = pd.to_numeric(fu[by], errors="coerce").fillna(0).to_numpy(dtype=float)[ok] if by in fu.columns \
            else np.ones(int(ok.sum()))
        fine = (fg, fp, shapely.STRtree(fg))
    feet = None
    if footprints is not None and len(footprints) and building in footprints.columns:
        ff = footprints.to_crs(crs) if footprints.crs is not None else footprints.set_crs(crs)
        fgeo = np.asarray(ff.geometry.values, dtype=object)
        feet = (fgeo, np.array([f"b:{v}" for v in ff[building].to_numpy(dtype=object)], dtype=object),
                shapely.STRtree(fgeo))

    out_src: list[int] = []
    out_geom: list[Any] = []
    out_people: list[int] = []
    out_hh: list[int] = []
    out_bsplit: list[bool] = []
    out_exact: list[float] = []
    from_split: list[bool] = []
    point_targets: list[tuple[np.ndarray, int]] = []  # (point positions, output position)
    piece_of: dict[int, tuple[float, float]] = {}  # output position of a piece -> the range it was cut for

    if pts is not None:
        order_p = np.argsort(p_atom, kind="stable")
        sorted_atoms = p_atom[order_p]
        starts = np.searchsorted(sorted_atoms, np.arange(n), side="left")
        ends = np.searchsorted(sorted_atoms, np.arange(n), side="right")

    for a in range(n):
        pa = order_p[starts[a]:ends[a]] if pts is not None else np.zeros(0, np.int64)
        oversized = people[a] > max_pop
        if oversized and (special[a] is not None or bsplit[a]):
            report.unsplit.append({"atom": a, "block": int(block[a]), "people": int(people[a]),
                                   "reason": "special unit" if special[a] is not None else "building"})
        if not oversized or special[a] is not None or bsplit[a]:
            point_targets.append((pa, len(out_src)))
            out_src.append(a); out_geom.append(geoms[a]); out_people.append(int(people[a]))
            out_hh.append(int(hh[a])); out_bsplit.append(bool(bsplit[a])); from_split.append(False)
            out_exact.append(float(exact[a]))
            continue

        g = geoms[a]
        roads_here = roads_inside(g, road_geoms, road_tree)
        subs = _sub_blocks(g, roads_here, crs, road_extend, avoid=pxy[pa] if len(pa) else None)
        # pieces that are grids of their own, or (tight range, no whole number of grids) pieces to combine
        amin, amax, atarget = piece_range(float(people[a]), min_pop, max_pop, target)
        k_total = choose_k(people[a], amin, amax, atarget)
        if len(pa):
            # buildings
            codes, binv = np.unique(bkey[pa], return_inverse=True)
            nb = len(codes)
            bw = np.bincount(binv, weights=p_w[pa], minlength=nb)
            bxy = np.column_stack([np.bincount(binv, weights=pxy[pa, 0], minlength=nb),
                                   np.bincount(binv, weights=pxy[pa, 1], minlength=nb)]) / \
                np.bincount(binv, minlength=nb)[:, None]
            bpeople = largest_remainder(bw, int(people[a]))
            bhh = largest_remainder(np.bincount(binv, weights=p_hw[pa], minlength=nb) if p_hw is not None
                                    else bpeople, int(hh[a]))
            makers = [_slab_units, _building_units] if units == "slabs" else [_building_units]
            method = "buildings"
        else:
            makers = [None]
            method = "area"
            binv = None
        for make_units in makers:
            if make_units is not None:
                ug, upeople, uhh, usub, umembers = make_units(subs, bxy, bpeople, bhh, pxy[pa], binv)
                if feet is not None:
                    ug = _carve_footprints(ug, umembers, codes, feet, g)
                if make_units is _slab_units and not _points_in_own_unit(ug, umembers, pxy[pa], binv):
                    continue  # a slab would leave an entrance outside its building's unit
                indivisible = np.array([len(m) > 0 for m in umembers])
                if make_units is _slab_units and any(len(m) > 1 and upeople[k] > max_pop
                                                     for k, m in enumerate(umembers)):
                    continue  # a tower shares its slab with other buildings: only Voronoi cells part them
            else:
                ug, upeople, uhh, usub, ushare = _area_units(g, subs, int(people[a]), int(hh[a]),
                                                             max(1, strips_per_piece * k_total), fine=fine)
                umembers = [np.zeros(0, np.int64)] * len(ug)
                indivisible = np.zeros(len(ug), dtype=bool)
            groups, badness = _group_units(ug, upeople, usub, indivisible, min_pop=amin, max_pop=amax,
                                           target=atarget, road_penalty=road_penalty)
            if badness == 0:  # straight slabs are too coarse only when buildings stand in rows
                break
        failed = badness > 0
        nu = len(ug)
        labels = np.empty(nu, dtype=np.int64)
        for gi, (members, _) in enumerate(groups):
            labels[members] = gi
        _, merged = dissolve_groups(ug, labels)
        piece_people = []
        first_out = len(out_src)
        for gi, (members, is_b) in enumerate(groups):
            pp = int(upeople[members].sum())
            piece_people.append(pp)
            out_src.append(a); out_geom.append(merged[gi]); out_people.append(pp)
            out_hh.append(int(uhh[members].sum())); out_bsplit.append(bool(is_b)); from_split.append(not is_b)
            out_exact.append(float(exact[a] * ushare[members].sum()) if binv is None else float(pp))
            if is_b:
                bpos = umembers[members[0]]
                report.building_split.append({"atom": a, "block": int(block[a]),
                                              "building": [str(codes[b])[2:] for b in bpos],
                                              "people": pp})
            if binv is not None:
                held = np.concatenate([umembers[m] for m in members]) if len(members) else np.zeros(0, np.int64)
                point_targets.append((pa[np.isin(binv, held)], len(out_src) - 1))
        piece_of.update({k: (amin, amax) for k in range(first_out, len(out_src))})
        ok = all(amin <= p <= amax for p, (_, is_b) in zip(piece_people, groups) if not is_b)
        cuts = _cut_summary(g, np.asarray(merged, dtype=object), roads_here, pxy[pa] if len(pa) else None)
        report.split.append({**cuts, 
            "atom": a, "block": int(block[a]), "people": int(people[a]), "pieces": len(groups),
            "piece_people": piece_people, "method": method, "roads": int(len(subs)) if len(roads_here) else 0,
            "building_split": int(sum(1 for _, is_b in groups if is_b)), "ok": bool(ok and not failed),
            "first_output": first_out, "piece_range": [float(amin), float(amax)],
        })

    out = atoms.iloc[out_src].reset_index(drop=True)
    out = out.set_geometry(np.array(out_geom, dtype=object), crs=crs)
    out["people"] = np.array(out_people, dtype=np.int64)
    out["households"] = np.array(out_hh, dtype=np.int64)
    out["building_split"] = np.array(out_bsplit, dtype=bool)
    out["people_exact"] = np.array(out_exact, dtype=float)
    if "area_m2" in out.columns:
        out["area_m2"] = shapely.area(np.asarray(out.geometry.values, dtype=object))
    for k in np.flatnonzero(np.array(from_split)):
        p = int(out_people[k])
        lo_k, hi_k = piece_of.get(int(k), (min_pop, max_pop))
        if not (lo_k <= p <= hi_k):
            report.violations.append({"atom": int(k), "block": int(block[out_src[k]]), "people": p})
    if pts is not None:
        for pos, t in point_targets:
            p_new_atom[pos] = t
        report.points = pts.assign(atom=p_new_atom)
    return out, report
