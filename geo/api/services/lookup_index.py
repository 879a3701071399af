"""In-memory point-in-grid index of the published plans.

Every API process keeps one :class:`GridIndex` per published generation and
swaps it atomically (a single reference assignment) when a plan is published:
PostgreSQL ``NOTIFY geo_changes`` (sent by triggers on ``grid_plans``,
``workers`` and ``worker_grids``) wakes a listener thread that rebuilds the
index off the request path. Lookups never see half an index.

**Edge rule** — the same as SQL ``ST_Covers``: a grid owns its interior and
its boundary. A point exactly on an edge (or vertex) shared by several grids
belongs to the one with the *smallest grid code*. :meth:`GridIndex.lookup_many`
and the SQL in :func:`sql_lookup` implement that rule identically.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import shapely
import shapely.ops
from pyproj import Geod
from sqlalchemy import Engine, text

from geo.db import plans as db_plans

log = logging.getLogger("geo.api.lookup")

#: point-in-polygon on one (prepared) geometry and a scalar x, y: the ufunc itself, without the argument
#: handling of the public wrapper (which costs as much as the test on the single-point path)
_intersects_xy = getattr(shapely.lib, "intersects_xy", None) or shapely.intersects_xy

_GEOD = Geod(ellps="WGS84")

#: ``own`` of a near cell not crossed by exactly one straight segment (:meth:`GridIndex._single_segments`)
NOT_SINGLE = -3


def side(ax, ay, bx, by, px, py):
    """1 if p is clearly left of the line a→b, -1 clearly right, 0 on it or too close to tell in floating point.

    The cross product is trusted only beyond 1e-12 of the sum of its terms' sizes — far above its rounding
    error (a few 1e-16 of it) — so a nonzero answer is the exact side; 0 sends the point to the exact test.
    Works on floats and on numpy arrays; ``geo/api/_fastlookup.c`` computes the same (tests compare them).
    """
    t1 = (bx - ax) * (py - ay)
    t2 = (by - ay) * (px - ax)
    c = t1 - t2
    bound = 1e-12 * (abs(t1) + abs(t2))
    return (c > bound) * 1 - (c < -bound) * 1


#: Cells per side of the cell table per √grids (the longer side of the plans' extent); what share of points
#: the table answers without the exact test is printed by ``benchmarks/lookup_cost.py``.
CELLS_PER_GRID = 80
#: Largest side of the cell table in cells (4096² int32 cells = 64 MB, reached from ~2,600 grids).
CELLS_PER_SIDE = 4096

#: SQL twin of the in-memory rule (used for ?at=DATE and in tests).
SQL_LOOKUP = """
    SELECT g.code FROM grids g
    WHERE g.plan_id = ANY(:plans) AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
    ORDER BY g.code LIMIT 1
"""


@dataclass
class GridInfo:
    """What a lookup answers besides the code (one per grid)."""

    code: str
    name: str
    kind: str
    level: int
    population: int
    plan_id: int
    plan_version: int
    jurisdiction_code: str
    community: dict | None
    street: dict | None
    district: dict | None
    path: str | None = None  # jurisdiction path of the grid's community (else its plan's): who may see its staff


@dataclass
class GridIndex:
    """STRtree over the grids of the published plans, plus per-grid details.

    ``cells`` (built by :meth:`_build_cells`, None without grids) is the cell table that answers single
    points: ``(x0, y0, 1 / cell size, nx, ny, table, table bytes, segment bytes, owner bytes)`` — the int32
    table as numpy and as the bytes under it, and per near cell its one crossing segment (4 float64) and the
    owners of its sides (2 int32). The lookup's compiled step reads the bytes as they are.
    """

    codes: np.ndarray  # str, one per grid, index-aligned with geoms
    geoms: np.ndarray
    info: list[GridInfo]
    plan_ids: tuple[int, ...]
    built_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        order = np.argsort(self.codes, kind="stable")
        self._rank = np.empty(len(order), dtype=np.int64)
        self._rank[order] = np.arange(len(order))
        self.tree = shapely.STRtree(self.geoms)
        shapely.prepare(self.geoms)
        self.by_code = {c: i for i, c in enumerate(self.codes)}
        self._build_cells()

    def __len__(self) -> int:
        return len(self.codes)

    # ------------------------------------------------------------------ cell table
    def _build_cells(self, n_side: int | None = None) -> None:
        """A uniform raster over the grids: each cell holds its owner when no grid boundary touches it.

        Cells near an edge are found in two steps: every edge is sampled at half a cell and the 3×3 cells
        around each sample are candidates; a candidate is kept "near" only if its closed box really
        intersects a grid's boundary (stored as ``-(k + 2)``, k indexing its candidate list). Every other
        cell lies wholly inside one grid (or outside all), and so does each 4-connected region of such
        cells (two neighbours share an edge no boundary touches): one exact test of one centre per
        region gives the owner of all its cells. Most points are then answered by one array read; a
        point in a near cell takes the side of the one segment crossing it, if only one does and the point
        is clearly off it (:meth:`_single_segments`), else it is tested (exact ``covers``: a point
        intersects a polygon iff the polygon covers it) against the few grids that touch its cell,
        smallest code first — no STRtree query and no Point object on the single-point path.
        """
        from scipy import ndimage

        self.cells = None
        if len(self.geoms) == 0:
            return
        n_side = n_side or int(np.clip(CELLS_PER_GRID * math.sqrt(len(self.geoms)), 64, CELLS_PER_SIDE))
        x0, y0, x1, y1 = shapely.total_bounds(self.geoms)
        size = max(x1 - x0, y1 - y0) / n_side
        if not size > 0:
            return
        nx, ny = int((x1 - x0) / size) + 2, int((y1 - y0) / size) + 2
        rings = shapely.boundary(self.geoms)
        cand = np.zeros((ny, nx), dtype=bool)
        xy = shapely.get_coordinates(shapely.segmentize(rings, size / 2))
        ix = np.floor((xy[:, 0] - x0) / size).astype(np.int64)
        iy = np.floor((xy[:, 1] - y0) / size).astype(np.int64)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                cand[np.clip(iy + dy, 0, ny - 1), np.clip(ix + dx, 0, nx - 1)] = True
        jj, ii = np.nonzero(cand)
        boxes = shapely.box(x0 + ii * size, y0 + jj * size, x0 + (ii + 1) * size, y0 + (jj + 1) * size)
        cell, grid = self.tree.query(boxes, predicate="intersects")
        shapely.prepare(rings)
        crossed = np.zeros(len(jj), dtype=bool)
        crossed[cell[shapely.intersects(rings[grid], boxes[cell])]] = True
        near = np.zeros((ny, nx), dtype=bool)
        near[jj[crossed], ii[crossed]] = True
        table = np.full((ny, nx), -2, dtype=np.int32)
        free = ~near
        regions, n = ndimage.label(free)  # 4-connected: each region has one owner
        if n:
            first = np.unique(regions.ravel(), return_index=True)[1][1:]  # one cell per region 1..n
            fj, fi = np.unravel_index(first, regions.shape)
            owner = self._exact(x0 + (fi + 0.5) * size, y0 + (fj + 0.5) * size)
            table[free] = owner[regions[free] - 1]
        # near cells: the grids that touch the cell, smallest code first; near cell k is stored as -(k + 2)
        keep = np.flatnonzero(crossed)
        pos = np.full(len(jj), -1, dtype=np.int64)
        pos[keep] = np.arange(len(keep))
        sel = crossed[cell]
        cell, grid = pos[cell[sel]], grid[sel]
        order = np.lexsort((self._rank[grid], cell))
        cell, grid = cell[order], grid[order]
        self._cand = grid.astype(np.int64)
        self._cand_off = np.searchsorted(cell, np.arange(len(keep) + 1)).tolist()
        table[jj[keep], ii[keep]] = -(np.arange(len(keep), dtype=np.int32) + 2)
        seg, own = self._single_segments(rings, boxes[keep])
        # the compiled lookup step reads the bytes; numpy reads the same memory
        raw, seg_b, own_b = table.tobytes(), seg.tobytes(), own.tobytes()
        self._seg = np.frombuffer(seg_b).reshape(-1, 4)
        self._own = np.frombuffer(own_b, np.int32).reshape(-1, 2)
        self.cells = (float(x0), float(y0), 1.0 / size, nx, ny, np.frombuffer(raw, np.int32).reshape(ny, nx), raw,
                      seg_b, own_b)

    def segment(self, k: int) -> tuple[float, float, float, float, int, int] | None:
        """Near cell *k*'s one crossing segment and the owners left and right of it, or None
        (see :meth:`_single_segments`)."""
        left = self._own.item(k, 0)
        if left == NOT_SINGLE:
            return None
        ax, ay, bx, by = self._seg[k].tolist()
        return ax, ay, bx, by, left, self._own.item(k, 1)

    def _single_segments(self, rings: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per near cell: the one straight boundary segment crossing it, if only one does, and the owners of
        its two sides.

        Most cells a boundary touches are crossed by one edge (shared by two grids, or a grid and the outside)
        and nothing else; then the cell minus the segment is two regions with one owner each, found by an
        exact test of a cell corner on either side. Returns ``seg`` (k × 4: ax, ay, bx, by) and ``own`` (k × 2:
        owner left of a→b, owner right; ``NOT_SINGLE`` where the cell is not such a cell). A point in such a
        cell clearly off the line (:func:`side`) takes that side's owner; one on or next to it takes the exact
        test, as every point of other near cells does.
        """
        k = len(boxes)
        seg = np.zeros((k, 4))
        own = np.full((k, 2), NOT_SINGLE, dtype=np.int32)
        if k == 0:
            return seg, own
        xy, part = shapely.get_coordinates(shapely.get_parts(rings), return_index=True)
        same = part[1:] == part[:-1]
        a, b = xy[:-1][same], xy[1:][same]
        flip = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))  # a shared edge once
        lo, hi = np.where(flip[:, None], b, a), np.where(flip[:, None], a, b)
        segs = np.unique(np.hstack([lo, hi]), axis=0)
        segs = segs[(segs[:, 0] != segs[:, 2]) | (segs[:, 1] != segs[:, 3])]
        box_i, seg_i = shapely.STRtree(shapely.linestrings(segs.reshape(-1, 2, 2))).query(boxes, predicate="intersects")
        one = np.flatnonzero(np.bincount(box_i, minlength=k) == 1)
        which = np.full(k, -1, dtype=np.int64)
        which[box_i] = seg_i
        sg = segs[which[one]]
        bb = shapely.bounds(boxes[one])

        def strictly_inside(px, py):
            return (px > bb[:, 0]) & (px < bb[:, 2]) & (py > bb[:, 1]) & (py < bb[:, 3])

        ok = ~strictly_inside(sg[:, 0], sg[:, 1]) & ~strictly_inside(sg[:, 2], sg[:, 3])  # it crosses the cell
        corners = [(bb[:, 0], bb[:, 1]), (bb[:, 2], bb[:, 1]), (bb[:, 2], bb[:, 3]), (bb[:, 0], bb[:, 3])]
        sides = np.stack([side(sg[:, 0], sg[:, 1], sg[:, 2], sg[:, 3], cx, cy) for cx, cy in corners], axis=1)
        cx = np.stack([c[0] for c in corners], axis=1)
        cy = np.stack([c[1] for c in corners], axis=1)
        has_l, has_r = (sides == 1).any(axis=1), (sides == -1).any(axis=1)
        ok &= has_l & has_r
        r = np.arange(len(one))
        li, ri = np.argmax(sides == 1, axis=1), np.argmax(sides == -1, axis=1)
        owners = self._exact(np.concatenate([cx[r, li], cx[r, ri]]), np.concatenate([cy[r, li], cy[r, ri]]))
        good = one[ok]
        seg[good] = sg[ok]
        own[good, 0] = owners[:len(one)][ok]
        own[good, 1] = owners[len(one):][ok]
        return seg, own

    def _exact(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Exact owner per point: STRtree candidates, ``covers`` on prepared polygons, smallest code wins."""
        n = len(x)
        out = np.full(n, -1, dtype=np.int64)
        if n == 0:
            return out
        pts = shapely.points(x, y)
        pairs = self.tree.query(pts, predicate=None)  # bbox candidates: [point_idx, grid_idx]
        if pairs.shape[1] == 0:
            return out
        # sort candidates by grid so each prepared polygon tests its points at once
        order = np.argsort(pairs[1], kind="stable")
        pi, gi = pairs[0][order], pairs[1][order]
        hit = np.zeros(len(pi), dtype=bool)
        bounds = np.flatnonzero(np.diff(gi)) + 1
        starts = np.concatenate([[0], bounds])
        stops = np.concatenate([bounds, [len(gi)]])
        for s, e in zip(starts, stops):
            hit[s:e] = shapely.covers(self.geoms[gi[s]], pts[pi[s:e]])
        pi, gi = pi[hit], gi[hit]
        if len(pi) == 0:
            return out
        # smallest code wins where several grids cover a point (shared edges)
        order = np.lexsort((self._rank[gi], pi))
        pi, gi = pi[order], gi[order]
        first = np.concatenate([[True], pi[1:] != pi[:-1]])
        out[pi[first]] = gi[first]
        return out

    def lookup_many(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Grid index (into ``codes``) per point, -1 where no grid covers it.

        Vectorised: one read of the cell table per point; points in cells near a grid edge get the
        exact test (:meth:`_exact`), so the answer is always the exact ``ST_Covers`` one.
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if self.cells is None:
            return self._exact(x, y)
        x0, y0, inv, nx, ny, table = self.cells[:6]
        ix = np.floor((x - x0) * inv)
        iy = np.floor((y - y0) * inv)
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        out = np.full(len(x), -1, dtype=np.int64)
        out[inside] = table[iy[inside].astype(np.int64), ix[inside].astype(np.int64)]
        near = np.flatnonzero(out <= -2)
        if len(near):
            out[near] = self._exact(x[near], y[near])
        return out

    def lookup(self, lon: float, lat: float) -> int:
        """Grid index for one point, -1 if none (same rule as :meth:`lookup_many`)."""
        if self.cells is not None:
            x0, y0, inv, nx, ny, table = self.cells[:6]
            i, j = math.floor((lon - x0) * inv), math.floor((lat - y0) * inv)
            if not (0 <= i < nx and 0 <= j < ny):
                return -1
            v = table.item(j, i)
            if v >= -1:
                return v
            k = -v - 2
            sg = self.segment(k)
            if sg is not None:  # one segment crosses the cell: its side, unless the point is (next to) on it
                s_ = side(sg[0], sg[1], sg[2], sg[3], lon, lat)
                if s_:
                    return sg[4] if s_ > 0 else sg[5]
            geoms = self.geoms
            for g in self._cand[self._cand_off[k]:self._cand_off[k + 1]].tolist():  # smallest code first
                if _intersects_xy(geoms[g], lon, lat):
                    return g
            return -1
        cand = self.tree.query(shapely.Point(lon, lat), predicate="covered_by")
        if len(cand) == 0:
            return -1
        if len(cand) == 1:
            return int(cand[0])
        return int(cand[np.argmin(self._rank[cand])])

    def nearest(self, lon: float, lat: float) -> tuple[int, float]:
        """Nearest grid and its distance in metres (geodesic to the nearest boundary point)."""
        p = shapely.Point(lon, lat)
        i = int(self.tree.query_nearest(p, all_matches=False)[0])
        q1, _ = shapely.ops.nearest_points(self.geoms[i], p)
        _, _, d = _GEOD.inv(lon, lat, q1.x, q1.y)
        return i, float(d)


#: Plans in force at a moment: a publication period covers it (the same rule as ``?at=``).
IN_FORCE_SQL = db_plans.IN_FORCE_SQL


def load_index(engine: Engine, plan_ids: list[int] | None = None) -> GridIndex:
    """Build an index from PostGIS: the plans in force now, or the given *plan_ids*."""
    with engine.connect() as conn:
        if plan_ids is None:
            plan_ids = list(conn.execute(text(IN_FORCE_SQL.format(t="now()"))).scalars())
        rows = conn.execute(text("""
            SELECT g.code, g.name, g.kind, g.level, g.population, p.id AS plan_id, p.version, pj.code AS jcode,
                   c.code AS c_code, c.name AS c_name, s.code AS s_code, s.name AS s_name,
                   d.code AS d_code, d.name AS d_name, coalesce(c.path, pj.path) AS jpath,
                   ST_AsBinary(g.geom) AS wkb
            FROM grids g
            JOIN grid_plans p ON p.id = g.plan_id
            JOIN jurisdictions pj ON pj.id = p.jurisdiction_id
            LEFT JOIN jurisdictions c ON c.code = g.community_code
            LEFT JOIN jurisdictions s ON s.id = c.parent_id
            LEFT JOIN jurisdictions d ON d.id = s.parent_id
            WHERE g.plan_id = ANY(:plans)
            ORDER BY g.code
        """), {"plans": plan_ids}).mappings().all()
    codes = np.array([r["code"] for r in rows], dtype=object)
    geoms = np.array([shapely.from_wkb(bytes(r["wkb"])) for r in rows], dtype=object)

    def _j(code, name):
        return {"code": code, "name": name} if code else None

    info = [GridInfo(r["code"], r["name"], r["kind"], r["level"], r["population"], r["plan_id"], r["version"],
                     r["jcode"], _j(r["c_code"], r["c_name"]), _j(r["s_code"], r["s_name"]),
                     _j(r["d_code"], r["d_name"]), r["jpath"]) for r in rows]
    return GridIndex(codes=codes, geoms=geoms, info=info, plan_ids=tuple(plan_ids))


@dataclass
class Staff:
    id: int
    name: str
    role: str
    on_duty: bool
    phone: str | None


def load_staff(engine: Engine) -> dict[str, list[Staff]]:
    """grid code → its workers (chief first)."""
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT wg.grid_code, w.id, w.name, w.role, w.on_duty, w.phone FROM worker_grids wg
            JOIN workers w ON w.id = wg.worker_id
            ORDER BY wg.grid_code, CASE w.role WHEN 'chief' THEN 0 WHEN 'full_time' THEN 1
                     WHEN 'auxiliary' THEN 2 ELSE 3 END, w.id
        """)).all()
    out: dict[str, list[Staff]] = {}
    for code, *rest in rows:
        out.setdefault(code, []).append(Staff(*rest))
    return out


class Snapshot(NamedTuple):
    """What a lookup reads, taken as one reference so a concurrent refresh can never mix two generations:
    the index, the staff map, and the answers serialised from exactly these two (see routes.lookup)."""

    index: GridIndex
    staff: dict[str, list[Staff]]
    bodies: dict


class IndexHolder:
    """Holds the current index and staff map; refreshes them on NOTIFY.

    Readers take ``holder.snapshot`` (or ``holder.index``) once per request (an atomic reference read),
    so a concurrent swap can never give a mixed answer. A plan published with
    a future effective time is loaded ahead (``pending``) and swapped in at
    that instant, which every API process reads from the same clock: all of
    them switch together.
    """

    def __init__(self, engine: Engine, dsn: str):
        self.engine = engine
        self.dsn = dsn
        # both read as they are by the lookup's compiled step (geo.api._fastlookup): keep their shapes
        self._snap = Snapshot(load_index(engine), load_staff(engine), {})
        self._pending: tuple[float, GridIndex] | None = None  # (epoch seconds it takes effect, its index)
        self.generation = 1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one refresh at a time (held across its database reads)
        self._swap = threading.Lock()  # replacing the snapshot: a refresh's and a due switch's never cross
        self.refresh()

    @property
    def snapshot(self) -> Snapshot:
        """The index, staff and cached answers in force now (switching to a pending plan at its instant)."""
        pending = self._pending
        if pending is not None and time.time() >= pending[0]:
            with self._swap:  # only if a refresh has not replaced it meanwhile
                if self._pending is pending:
                    self._snap, self._pending = Snapshot(pending[1], self._snap.staff, {}), None
                    self.generation += 1
        return self._snap

    @property
    def index(self) -> GridIndex:
        return self.snapshot.index

    @property
    def staff(self) -> dict[str, list[Staff]]:
        return self.snapshot.staff

    def _reuse_or_load(self, ids: list[int]) -> GridIndex:
        """The index of exactly these plans: an existing one when it already is, else a new build."""
        for idx in (self._snap.index, self._pending[1] if self._pending else None):
            if idx is not None and idx.plan_ids == tuple(ids):
                return idx
        return load_index(self.engine, ids)

    def refresh(self) -> None:
        """Re-read what is in force now and what takes effect at the next scheduled switch.

        Indexes are rebuilt only when their set of plans changed (building one takes about a second
        for 700 grids); the switch-ahead index is built first, since it has a deadline. Staff are always
        re-read, and the cached answers start afresh with them.
        """
        with self._lock:
            with self.engine.connect() as conn:
                nxt = conn.execute(text("""
                    SELECT min(t) FROM (SELECT published_at AS t FROM plan_publications UNION ALL
                                        SELECT retired_at FROM plan_publications) x
                    WHERE t > now() AND t < now() + interval '60 seconds'
                """)).scalar()
                now_ids = list(conn.execute(text(IN_FORCE_SQL.format(t="now()"))).scalars())
                next_ids = list(conn.execute(text(IN_FORCE_SQL.format(t=":t")), {"t": nxt}).scalars()) if nxt else None
            staff = load_staff(self.engine)
            pending = (nxt.timestamp(), self._reuse_or_load(next_ids)) if nxt is not None else None
            current = self._reuse_or_load(now_ids)
            with self._swap:
                self._snap, self._pending = Snapshot(current, staff, {}), pending
                self.generation += 1
            if pending is not None:  # swap at the instant even if no request comes
                threading.Timer(max(0.0, pending[0] - time.time()) + 0.05, lambda: self.index).start()
        log.info("lookup index refreshed", extra={"grids": len(current), "plans": list(current.plan_ids),
                                                  "pending_switch": pending[0] if pending else None})

    def start_listener(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="geo-notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    conn.execute("LISTEN geo_changes")
                    # a change may have happened while we were not listening
                    self.refresh()
                    while not self._stop.is_set():
                        got = list(conn.notifies(timeout=1.0, stop_after=1))
                        if got:
                            list(conn.notifies(timeout=0.05))  # drain a burst of changes into one refresh
                            self.refresh()
            except Exception as exc:  # database restarting: retry, keep serving the old index
                log.warning("notify listener reconnecting: %s", exc)
                self._stop.wait(1.0)
