"""A deterministic, realistic **synthetic** Chinese-style district (合成数据, not real).

:func:`generate_district` draws a made-up district (区) of about 300,000
people near lon 114.30, lat 30.60 for demos, tests and benchmarks of the grid
division (网格化管理) pipeline. Nothing in it is real: names, codes,
boundaries, roads and people are invented by a seeded random generator and the
metadata says so (``"synthetic": true``).

What it contains (all layers in EPSG:4326)
------------------------------------------
* ``boundary`` / ``subdistricts`` — the district and its streets/towns
  (街道/镇) with 12-digit 统计用区划代码-style codes under the fictional
  county code ``429901``: 街道 ``001…``, 镇 ``101…``.
* ``communities`` — 社区 (urban, serial ``001…``) and 村 (rural, serial
  ``201…``) tiling their street/town exactly; boundaries run along roads.
* ``streets`` — a noded road network, one row per edge between junctions:
  slightly curved arterials 500–800 m apart, secondary roads, lanes (with
  cul-de-sacs) in old dense blocks, internal estate roads of gated estates,
  rural roads in the fringe (spurs to the hamlets, field roads between
  them). ``highway`` gives the OSM-style equivalent (``service`` for estate
  roads).
* ``population`` — address points with households and people, one per
  entrance (单元): estate high-rises and dormitories have 2–4 entrances
  5–15 m apart sharing one ``building`` id (楼栋), larger old-block
  buildings 2–3, village houses one. Dense old blocks (20–200 people per
  building), gated estates (小区, 3,000–20,000 people in one street block
  with 0–3 internal estate roads, towers of 100–400, one super-tall tower
  of more than 2,000), dormitories, village houses.
* :func:`population_cells` — polygon population units finer than street
  blocks (square cells summing the address points), for the polygon route.
* ``special_areas`` — university, hospital, middle and primary school,
  market, industrial park (exclusive grids, 专属网格).
* ``villages`` — 行政村 and their 自然村 (natural villages) which tile them.
* ``landuse`` — a lake and its park (no people), ``estates`` — the 小区.

How it is built
---------------
Everything is drawn in metres in UTM zone 50N (EPSG:32650) around the centre,
then projected. Lines that end on another line are clipped to the polygon
they live in and the network is *snapped* (each end inserted as a vertex into
the line it ends on) before noding, so junctions are exact and the
polygonized faces share vertices: communities, towns and the district are
unions of the same faces and tile without gaps or overlaps.

Examples
--------
>>> from geo.demo.synthetic import generate_district
>>> d = generate_district(seed=7, scale=0.1)          # doctest: +SKIP
>>> int(d.population["people"].sum())                 # doctest: +SKIP
30000
>>> d.write("out/demo")                               # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon

__all__ = [
    "GENERATOR_NAME",
    "GENERATOR_VERSION",
    "DISTRICT_CODE",
    "DISTRICT_NAME",
    "CENTER_LONLAT",
    "METRIC_CRS",
    "SyntheticDistrict",
    "generate_district",
    "population_cells",
    "write_demo",
]

GENERATOR_NAME = "geo.demo.synthetic"
GENERATOR_VERSION = "1.1.0"
#: Centre of the made-up district (lon, lat, WGS84).
CENTER_LONLAT = (114.30, 30.60)
#: The metric CRS everything is drawn in (UTM 50N, what :func:`geo.crs.local_metric_crs` picks there).
METRIC_CRS = "EPSG:32650"
COUNTY_CODE = "429901"  # fictional: Hubei (42) has no prefecture 99
DISTRICT_CODE = COUNTY_CODE + "000000"
DISTRICT_NAME = "示范区（合成）"
BASE_PEOPLE = 300_000
MIN_SCALE, MAX_SCALE = 0.05, 5.0
NOTE = ("SYNTHETIC DATA — NOT REAL. 合成数据，并非真实数据。Every boundary, code, name, road, building and "
        "person in this dataset was invented by a seeded random generator for demos and tests; the codes "
        "use the fictional county code 429901 and any resemblance to real places is coincidental.")

#: OSM ``highway`` value for each road class (lets OSM-minded code read the layer).
HIGHWAY_OF = {"arterial": "primary", "secondary": "tertiary", "lane": "residential",
              "estate_road": "service", "rural_road": "unclassified"}

_SNAP_TOL = 1e-6  # metres: a road end this close to a line is inserted into it as a vertex

# --------------------------------------------------------------------------- name pools

_SURNAMES = "李王张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢"
_HAMLET_SUFFIX = ("湾", "岭", "垸", "畈", "咀", "冲", "台", "店", "庄", "坡", "大屋", "塆", "港", "墩", "岗")
_SYL1 = "桂翠新民和兴安福康华明丽锦春秋青紫金银云景望江汉长永宝瑞祥泰德仁义育文振友"
_SYL2 = "园苑湖林山桥港城湾坊庭都阳泉岸花光源丰盛平宁乐昌荣隆"
_ARTERIAL_V = ("中山大道", "解放大道", "建设大道", "和平大道", "友谊大道", "发展大道", "民族大道",
               "光明大道", "振兴大道", "青年大道", "复兴大道", "团结大道")
_ARTERIAL_H = ("人民路", "新华路", "胜利路", "长江路", "黄河路", "建设路", "民主路", "文化路",
               "育才路", "工农路", "交通路", "前进路")
_ESTATE_A = ("锦绣", "翡翠", "御景", "阳光", "和谐", "世纪", "东方", "丽水", "春天", "美好", "金色", "幸福",
             "书香", "水岸", "滨江", "云山", "星河", "紫荆", "银湖", "枫林", "翠湖", "龙湾", "嘉禾", "盛世")
_ESTATE_B = ("华府", "花园", "家园", "名苑", "新城", "公馆", "雅居", "嘉园", "豪庭", "小区", "府", "里")
_CN_NUM = "一二三四五六七八九十"


def _combos(a: str | tuple, b: str | tuple, suffix: str) -> list[str]:
    """Every ``x + y + suffix`` for x in *a*, y in *b* with x ≠ y."""
    return [x + y + suffix for x in a for y in b if x != y]


class _Namer:
    """Draws unique names from shuffled pools (one ``used`` set for all kinds)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.used: set[str] = set()
        self._pools: dict[str, list[str]] = {}

    def _pool(self, key: str) -> list[str]:
        if key not in self._pools:
            fixed, extra = {
                "arterial_v": (_ARTERIAL_V, _combos(_SYL1, _SYL2, "大道")),
                "arterial_h": (_ARTERIAL_H, _combos(_SYL1, _SYL2, "路")),
                "secondary": ((), _combos(_SYL1, _SYL2, "路") + _combos(_SYL1, _SYL2, "街")),
                "lane": ((), _combos(_SYL1, _SYL2, "巷") + _combos(_SYL1, _SYL2, "里")),
                "rural": ((), _combos(_SYL1, _SYL1, "线")),
                "community": ((), _combos(_SYL1, _SYL2, "社区")),
                "jiedao": ((), _combos(_SYL1, _SYL2, "街道")),
                "zhen": ((), _combos(_SYL1, _SYL2, "镇")),
                "village": ((), [s + "家" + t + "村" for s in _SURNAMES for t in ("湾", "岭", "畈", "台", "庄", "冲")]),
                "hamlet": ((), [s + j + t for s in _SURNAMES for t in _HAMLET_SUFFIX for j in ("", "家")
                                if not (j and t == "大屋")]),
                "estate": ((), _combos(_ESTATE_A, _ESTATE_B, "")),
            }[key]
            extra = [extra[i] for i in self.rng.permutation(len(extra))]
            fixed = [fixed[i] for i in self.rng.permutation(len(fixed))]
            self._pools[key] = extra + fixed  # pop() takes from the end: fixed names first
        return self._pools[key]

    def take(self, key: str) -> str:
        """A fresh name of kind *key* never handed out before."""
        pool = self._pool(key)
        while pool:
            name = pool.pop()
            if name not in self.used:
                self.used.add(name)
                return name
        raise RuntimeError(f"name pool {key!r} exhausted")

    def reserve(self, name: str) -> str:
        """Mark a fixed name as used and return it."""
        if name in self.used:
            raise RuntimeError(f"name {name!r} used twice")
        self.used.add(name)
        return name


# --------------------------------------------------------------------------- small numeric helpers


def _apportion(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to *weights* summing exactly to *total* (largest remainder)."""
    w = np.asarray(weights, dtype=float)
    if total <= 0 or len(w) == 0:
        return np.zeros(len(w), dtype=np.int64)
    q = total * w / w.sum()
    base = np.floor(q).astype(np.int64)
    extra = int(total - base.sum())
    order = np.argsort(-(q - base), kind="stable")[:extra]
    base[order] += 1
    return base


def _split_total(rng: np.random.Generator, total: int, n: int, lo: int, hi: int,
                 shape: float = 4.0) -> np.ndarray:
    """*n* random integers in [lo, hi] that sum to *total*.

    The bounds are relaxed when they cannot hold (``n·lo > total`` or
    ``n·hi < total``).

    Parameters
    ----------
    rng : numpy.random.Generator
    total, n : int
        Sum and count (``n ≥ 1``).
    lo, hi : int
        Bounds of each value.
    shape : float
        Gamma shape of the random weights; larger is more even.

    Returns
    -------
    numpy.ndarray of int64
    """
    total, n = int(total), int(n)
    if n < 1:
        raise ValueError("n must be at least 1")
    lo = min(int(lo), total // n)
    hi = max(int(hi), -(-total // n))
    out = np.full(n, lo, dtype=np.int64)
    cap = np.full(n, hi - lo, dtype=np.int64)
    rem = total - lo * n
    w = rng.gamma(shape, size=n)
    while rem > 0:
        ww = np.where(cap > 0, w, 0.0)
        share = np.minimum(np.floor(rem * ww / ww.sum()).astype(np.int64), cap)
        if share.sum() == 0:
            order = np.argsort(-ww, kind="stable")
            order = order[cap[order] > 0][:rem]
            share = np.zeros(n, dtype=np.int64)
            share[order] = 1
        out += share
        cap -= share
        rem -= int(share.sum())
    return out


def _count_for(total: int, mean: float, lo: int, hi: int) -> int:
    """How many items of about *mean* (each in [lo, hi]) make *total*."""
    n = int(round(total / mean))
    return max(1, min(max(n, -(-total // hi)), max(1, total // lo)))


def _households(rng: np.random.Generator, people: np.ndarray, lo: float = 2.3, hi: float = 2.95) -> np.ndarray:
    """Households of buildings with *people*: people / U(lo, hi), at least 1."""
    people = np.asarray(people, dtype=float)
    return np.maximum(1, np.round(people / rng.uniform(lo, hi, len(people)))).astype(np.int64)


# --------------------------------------------------------------------------- curves


@dataclass(frozen=True)
class _Curve:
    """A gently curved grid line: a long bend, a short wiggle and a tilt.

    ``offset(t) = pos + amp·sin(2πt/lam + phase) + amp2·sin(2πt/lam2 + phase2) + tilt·(t − t0)``;
    ``axis == "v"`` means ``x = offset(y)`` (a north–south line), ``axis == "h"`` means ``y = offset(x)``.
    """

    axis: str
    pos: float
    amp: float = 0.0
    lam: float = 1000.0
    phase: float = 0.0
    amp2: float = 0.0
    lam2: float = 500.0
    phase2: float = 0.0
    tilt: float = 0.0
    t0: float = 0.0

    def offset(self, t):
        t = np.asarray(t, dtype=float)
        return (self.pos + self.amp * np.sin(2.0 * np.pi * t / self.lam + self.phase)
                + self.amp2 * np.sin(2.0 * np.pi * t / self.lam2 + self.phase2) + self.tilt * (t - self.t0))


@dataclass(frozen=True)
class _Blend:
    """The curve a fraction *u* of the way from curve *a* to curve *b* (same axis), plus a small wiggle."""

    a: Any
    b: Any
    u: float
    wiggle: Any = None

    @property
    def axis(self) -> str:
        return self.a.axis

    def offset(self, t):
        out = (1.0 - self.u) * self.a.offset(t) + self.u * self.b.offset(t)
        return out if self.wiggle is None else out + self.wiggle.offset(t)


def _curve_line(curve, lo: float, hi: float, step: float = 20.0) -> LineString:
    """The curve sampled every *step* metres for ``t`` in [lo, hi]."""
    t = np.linspace(lo, hi, max(2, int(math.ceil((hi - lo) / step)) + 1))
    o = curve.offset(t)
    xy = np.column_stack([o, t]) if curve.axis == "v" else np.column_stack([t, o])
    return LineString(xy)


def _random_curve(rng: np.random.Generator, axis: str, pos: float, amp: tuple, lam: tuple, amp2: tuple,
                  lam2: tuple, tilt: float, t0: float = 0.0) -> _Curve:
    """A :class:`_Curve` with random bend, wiggle, phases and tilt (``|tilt| ≤ tilt``)."""
    return _Curve(axis, float(pos), float(rng.uniform(*amp)), float(rng.uniform(*lam)),
                  float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(*amp2)), float(rng.uniform(*lam2)),
                  float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(-tilt, tilt)), float(t0))


def _side_of(curves: list, x: float, y: float) -> int:
    """How many of *curves* (all one axis) lie before the point (left of / below it)."""
    if not curves:
        return 0
    if curves[0].axis == "v":
        return int(sum(c.offset(y) < x for c in curves))
    return int(sum(c.offset(x) < y for c in curves))


# --------------------------------------------------------------------------- network helpers


def _clip(line: LineString, poly) -> LineString | None:
    """The longest piece of *line* inside *poly* (ends exactly on its boundary), or None."""
    g = shapely.intersection(line, poly)
    parts = [p for p in shapely.get_parts(g) if p.geom_type == "LineString" and not p.is_empty]
    if not parts:
        return None
    if len(parts) > 1:
        parts = list(shapely.get_parts(shapely.line_merge(shapely.MultiLineString(parts))))
    best = max(parts, key=lambda p: p.length)
    return best if best.length > 1.0 else None


def _ring_line(poly: Polygon) -> LineString:
    """The exterior of *poly* as a closed LineString."""
    return LineString(poly.exterior.coords)


def _snap_ends(lines: np.ndarray, tol: float = _SNAP_TOL) -> np.ndarray:
    """Insert every line end that lies on another line into it as a vertex.

    Clipped roads end *on* the line they meet only up to rounding; GEOS
    noding would miss such T-junctions. Snapping makes them exact shared
    vertices.
    """
    lines = np.asarray(lines, dtype=object)
    ends = np.concatenate([shapely.get_point(lines, 0), shapely.get_point(lines, -1)])
    tree = shapely.STRtree(ends)
    li, ei = tree.query(lines, predicate="dwithin", distance=tol)
    if len(li) == 0:
        return lines
    order = np.argsort(li, kind="stable")
    li, ei = li[order], ei[order]
    uniq, start = np.unique(li, return_index=True)
    mps = shapely.multipoints(shapely.get_coordinates(ends[ei]), indices=np.searchsorted(uniq, li))
    out = lines.copy()
    out[uniq] = shapely.snap(lines[uniq], mps, tol)
    return out


def _node(lines) -> np.ndarray:
    """Snap and node *lines*: the edges between junctions of the planar network."""
    snapped = _snap_ends(np.asarray(list(lines), dtype=object))
    return shapely.get_parts(shapely.node(shapely.GeometryCollection(list(snapped))))


def _faces(lines) -> np.ndarray:
    """Polygonize *lines* (snapped and noded); dangles bound no face."""
    return shapely.get_parts(shapely.polygonize(_node(lines)))


def _union(geoms) -> Any:
    """Union of polygons that form a coverage (faces of one network)."""
    geoms = [g for g in geoms]
    if len(geoms) == 1:
        return geoms[0]
    return shapely.union_all(geoms)


# --------------------------------------------------------------------------- point helpers


def _candidates(poly, spacing: float, rng: np.random.Generator, jitter: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """A jittered square grid of points (*spacing* metres) inside *poly*."""
    if poly is None or poly.is_empty:
        return np.empty(0), np.empty(0)
    minx, miny, maxx, maxy = poly.bounds
    ox, oy = rng.uniform(0, spacing, 2)
    xs = np.arange(minx + ox, maxx, spacing)
    ys = np.arange(miny + oy, maxy, spacing)
    gx, gy = np.meshgrid(xs, ys)
    gx = gx.ravel() + rng.uniform(-jitter, jitter, gx.size) * spacing
    gy = gy.ravel() + rng.uniform(-jitter, jitter, gy.size) * spacing
    shapely.prepare(poly)
    inside = shapely.contains_xy(poly, gx, gy)
    return gx[inside], gy[inside]


def _clear_of(tree: shapely.STRtree, x: np.ndarray, y: np.ndarray, distance: float) -> np.ndarray:
    """Mask of points farther than *distance* from every geometry in *tree*."""
    ok = np.ones(len(x), dtype=bool)
    if len(x) and distance > 0:
        hit = tree.query(shapely.points(x, y), predicate="dwithin", distance=distance)[0]
        ok[hit] = False
    return ok


def _place(poly, n: int, spacing: float, rng: np.random.Generator, tree: shapely.STRtree,
           clearance: float) -> tuple[np.ndarray, np.ndarray]:
    """Up to *n* well spread points in *poly*, *clearance* metres from every road.

    Tries a candidate grid of *spacing* metres and makes it finer until there
    are enough points; returns fewer than *n* only if even a fine grid is short.
    """
    x = y = np.empty(0)
    s = spacing
    for _ in range(10):
        x, y = _candidates(poly, s, rng)
        ok = _clear_of(tree, x, y, clearance)
        x, y = x[ok], y[ok]
        if len(x) >= n:
            idx = np.sort(rng.choice(len(x), size=n, replace=False))
            return x[idx], y[idx]
        s *= 0.8
    return x, y


# --------------------------------------------------------------------------- build state


@dataclass
class _Road:
    geom: LineString
    klass: str
    name: str
    road_id: str


@dataclass
class _Cell:
    id: int
    zone: str          # "urban" / "rural"
    i: int
    j: int
    poly: Polygon
    role: str = "regular"   # regular / university / industrial / rural
    old: bool = False
    vcurves: list = field(default_factory=list)


@dataclass
class _Block:
    id: int
    cell: int
    poly: Polygon
    col: int = 0
    kind: str = ""          # old_block estate market primary hospital school park university industrial rural
    people: int = 0
    final: Polygon | None = None
    community: int = -1
    part: Any = None        # market / primary school: the special part of the block
    rest: Any = None        # ... and the residential rest
    cut_box: Any = None     # ... the side of the dividing lane the special part lies on


@dataclass
class _Village:
    cell: int
    name: str
    people: int
    seeds: np.ndarray                       # (k, 2)
    hamlets: list[str]
    hamlet_people: np.ndarray


@dataclass
class _Estate:
    block: int
    name: str
    poly: Polygon
    gate: Point
    people: int = 0


class _Builder:
    """Holds the random generator and every intermediate of one district build."""

    def __init__(self, seed: int, scale: float):
        self.seed = int(seed)
        self.scale = float(scale)
        self.rng = np.random.default_rng(np.random.SeedSequence([self.seed, 20_240_601]))
        # separate streams for the internal-road count of estates and the entrances of buildings, so
        # that these choices do not shift every other draw of the district
        self.road_rng = np.random.default_rng(np.random.SeedSequence([self.seed, 77]))
        self.entrance_rng = np.random.default_rng(np.random.SeedSequence([self.seed, 78]))
        self.namer = _Namer(self.rng)
        self.roads: list[_Road] = []
        self.cells: list[_Cell] = []
        self.blocks: list[_Block] = []
        self.estates: list[_Estate] = []
        self.villages: list[_Village] = []
        self.specials: dict[str, dict] = {}

    # ------------------------------------------------------------------ roads

    def add_road(self, geom: LineString | None, klass: str, name: str | None = None,
                 name_kind: str | None = None) -> _Road | None:
        """Register a road (skips None); draws a name of *name_kind* when *name* is not given."""
        if geom is None:
            return None
        if name is None:
            name = self.namer.take(name_kind or klass)
        road = _Road(geom, klass, name, f"R{len(self.roads) + 1:05d}")
        self.roads.append(road)
        return road

    # ------------------------------------------------------------------ stage 1: frame and cells

    def frame(self) -> None:
        """Lay out the grid of arterials and rural roads and the wobbly district boundary."""
        rng, lin = self.rng, math.sqrt(self.scale)
        nc, nr, nrc = max(3, round(5 * lin)), max(2, round(4 * lin)), max(1, round(3 * lin))
        uw, uh, rw = rng.uniform(500, 800, nc), rng.uniform(500, 800, nr), rng.uniform(800, 1200, nrc)
        width, height = uw.sum() + rw.sum(), uh.sum()
        xs = -width / 2 + np.concatenate([[0.0], np.cumsum(uw)])
        rxs = xs[-1] + np.concatenate([[0.0], np.cumsum(rw)])
        ys = -height / 2 + np.concatenate([[0.0], np.cumsum(uh)])
        nrr = max(2, round(height / rng.uniform(800, 1000)))
        rh = rng.uniform(0.8, 1.2, nrr)
        rys = -height / 2 + np.concatenate([[0.0], np.cumsum(rh / rh.sum() * height)])
        self.nc, self.nr, self.nrc, self.nrr = nc, nr, nrc, nrr
        self.x0, self.x1, self.y0, self.y1 = xs[0], rxs[-1], ys[0], ys[-1]
        ucx, rcx = (xs[0] + xs[-1]) / 2, (rxs[0] + rxs[-1]) / 2
        half = max(width, height) / 2
        art = dict(amp=(10, 30), lam=(1800, 4000), amp2=(2, 8), lam2=(300, 700), tilt=min(0.035, 50 / half))
        rur = dict(amp=(20, 50), lam=(800, 1800), amp2=(5, 15), lam2=(250, 500), tilt=min(0.05, 80 / half))
        self.divide = _random_curve(rng, "v", xs[-1], **art)
        self.V = [_Curve("v", xs[0])] + [_random_curve(rng, "v", x, **art) for x in xs[1:-1]] + [self.divide]
        self.H = ([_Curve("h", ys[0])] + [_random_curve(rng, "h", y, t0=ucx, **art) for y in ys[1:-1]]
                  + [_Curve("h", ys[-1])])
        self.RV = [self.divide] + [_random_curve(rng, "v", x, **rur) for x in rxs[1:-1]] + [_Curve("v", rxs[-1])]
        self.RH = ([_Curve("h", rys[0])] + [_random_curve(rng, "h", y, t0=rcx, **rur) for y in rys[1:-1]]
                   + [_Curve("h", rys[-1])])
        self.district = self._boundary(xs[-1])
        self.ring = _ring_line(self.district)

    def _boundary(self, x_div: float) -> Polygon:
        """The district: the outer rectangle displaced by a smooth random field (more in the fringe)."""
        rng = self.rng
        x0, x1, y0, y1 = self.x0, self.x1, self.y0, self.y1
        per = lambda a, b: np.linspace(a, b, max(2, int(abs(b - a) / 30.0)), endpoint=False)  # noqa: E731
        x = np.concatenate([per(x0, x1), np.full(max(2, int((y1 - y0) / 30)), x1), per(x1, x0),
                            np.full(max(2, int((y1 - y0) / 30)), x0)])
        y = np.concatenate([np.full(max(2, int((x1 - x0) / 30)), y0), per(y0, y1),
                            np.full(max(2, int((x1 - x0) / 30)), y1), per(y1, y0)])
        ramp = np.clip((x - x_div) / 1200.0, 0.0, 1.0)
        gain = 0.45 + 0.55 * ramp * ramp * (3 - 2 * ramp)  # the fringe boundary meanders more
        dx, dy = np.zeros_like(x), np.zeros_like(y)
        for lo, hi, rel in ((2000, 3500, 0.05), (900, 1500, 0.04), (400, 700, 0.03)):
            lam = rng.uniform(lo, hi, 2)
            ph = rng.uniform(0, 2 * np.pi, 2)
            dx += rel * lam[0] * np.sin(2 * np.pi * y / lam[0] + ph[0])
            dy += rel * lam[1] * np.sin(2 * np.pi * x / lam[1] + ph[1])
        dx, dy = gain * dx, gain * dy
        xy = np.column_stack([x + dx, y + dy])
        poly = Polygon(np.vstack([xy, xy[:1]]))
        if not poly.is_valid:  # cannot happen with these amplitudes; keep the build honest
            raise RuntimeError("synthetic district boundary is not valid")
        return shapely.orient_polygons(poly)

    def cells_stage(self) -> None:
        """Arterials, the urban/rural divide and rural roads; polygonize into cells (superblocks)."""
        span_y = (self.y0 - 400, self.y1 + 400)
        divide = self.add_road(_clip(_curve_line(self.divide, *span_y), self.district), "arterial",
                               name_kind="arterial_v")
        self.divide_road = divide
        zones = _faces([self.ring, divide.geom])
        rp = shapely.point_on_surface(zones)
        is_urban = np.array([p.x < self.divide.offset(p.y) for p in rp])
        self.urban_zone, self.rural_zone = zones[is_urban][0], zones[~is_urban][0]
        for c in self.V[1:-1]:
            self.add_road(_clip(_curve_line(c, *span_y), self.urban_zone), "arterial", name_kind="arterial_v")
        xdiv = self.divide.offset(np.array(span_y))
        for c in self.H[1:-1]:
            self.add_road(_clip(_curve_line(c, self.x0 - 400, xdiv.max() + 400), self.urban_zone), "arterial",
                          name_kind="arterial_h")
        for c in self.RV[1:-1]:
            self.add_road(_clip(_curve_line(c, *span_y), self.rural_zone), "rural_road", name_kind="rural")
        for c in self.RH[1:-1]:
            self.add_road(_clip(_curve_line(c, xdiv.min() - 400, self.x1 + 400), self.rural_zone), "rural_road",
                          name_kind="rural")
        faces = _faces([self.ring] + [r.geom for r in self.roads])
        self._classify_cells(faces)

    def _classify_cells(self, faces: np.ndarray) -> None:
        """Turn stage-1 faces into cells indexed (zone, i, j) by the curves around them."""
        seen = {}
        for f, p in zip(faces, shapely.point_on_surface(faces)):
            if p.x < self.divide.offset(p.y):
                key = ("urban", _side_of(self.V[1:-1], p.x, p.y), _side_of(self.H[1:-1], p.x, p.y))
            else:
                key = ("rural", _side_of(self.RV[1:-1], p.x, p.y), _side_of(self.RH[1:-1], p.x, p.y))
            if key in seen:
                raise RuntimeError(f"two faces for cell {key}")
            seen[key] = f
        order = sorted(seen, key=lambda k: (k[0] != "urban", k[1], k[2]))
        for n, key in enumerate(order):
            zone, i, j = key
            self.cells.append(_Cell(n, zone, i, j, seen[key], "regular" if zone == "urban" else "rural",
                                    old=zone == "urban" and (i + 0.5) < self.nc / 2))
        if len(self.cells) != self.nc * self.nr + self.nrc * self.nrr:
            raise RuntimeError("unexpected number of cells")

    def cell_at(self, zone: str, i: int, j: int) -> _Cell:
        return next(c for c in self.cells if (c.zone, c.i, c.j) == (zone, i, j))

    def roles(self) -> None:
        """Industrial park at the south-east urban corner; university in the north."""
        self.cell_at("urban", self.nc - 1, 0).role = "industrial"
        cands = [c for c in self.cells if c.zone == "urban" and c.role == "regular"
                 and c.j >= self.nr / 2 and c.i <= self.nc - 2]
        cands[int(self.rng.integers(len(cands)))].role = "university"

    # ------------------------------------------------------------------ stage 2: secondary roads and blocks

    def blocks_stage(self) -> None:
        """Secondary roads inside urban cells (some ending in T-junctions); polygonize into blocks."""
        for cell in self.cells:
            if cell.zone == "rural" or cell.role == "university":
                self._add_block(cell, cell.poly)
                continue
            self._secondaries(cell)

    def _add_block(self, cell: _Cell, poly: Polygon, col: int = 0) -> None:
        kind = {"rural": "rural", "university": "university", "industrial": "industrial"}.get(cell.role, "")
        self.blocks.append(_Block(len(self.blocks), cell.id, poly, col, kind))

    def _wiggle(self, axis: str) -> _Curve:
        """A small random bend (≤ 10 m) added to a secondary road."""
        return _random_curve(self.rng, axis, 0.0, amp=(2, 10), lam=(400, 1200), amp2=(0, 3), lam2=(150, 300),
                             tilt=0.0)

    def _secondaries(self, cell: _Cell) -> None:
        rng = self.rng
        a, b, c, d = self.V[cell.i], self.V[cell.i + 1], self.H[cell.j], self.H[cell.j + 1]
        minx, miny, maxx, maxy = cell.poly.bounds
        cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
        w, h = float(b.offset(cy) - a.offset(cy)), float(d.offset(cx) - c.offset(cx))
        spacing = rng.uniform(170, 250) if cell.old else rng.uniform(260, 380)
        if cell.role == "industrial":
            spacing = rng.uniform(330, 420)
        nv, nh = max(0, round(w / spacing) - 1), max(0, round(h / spacing) - 1)
        if not cell.old and cell.role == "regular" and rng.random() < 0.25:
            nv, nh = (0, nh) if rng.random() < 0.5 else (nv, 0)
        kind = "secondary"
        vlines = []
        for k in range(nv):
            u = (k + 1) / (nv + 1) + rng.uniform(-0.05, 0.05)
            curve = _Blend(a, b, u, self._wiggle("v"))
            road = self.add_road(_clip(_curve_line(curve, miny - 60, maxy + 60), cell.poly), kind,
                                 name_kind="secondary")
            if road is not None:
                cell.vcurves.append(curve)
                vlines.append(road.geom)
        strips = _faces([_ring_line(cell.poly)] + vlines) if vlines else np.array([cell.poly], dtype=object)
        hlines = []
        for k in range(nh):
            v = (k + 1) / (nh + 1) + rng.uniform(-0.05, 0.05)
            where = cell.poly
            if len(strips) > 1 and rng.random() < 0.3:
                where = strips[int(rng.integers(len(strips)))]  # a T-junction at both ends
            line = _curve_line(_Blend(c, d, v, self._wiggle("h")), minx - 60, maxx + 60)
            road = self.add_road(_clip(line, where), kind, name_kind="secondary")
            if road is not None:
                hlines.append(road.geom)
        polys = _faces([_ring_line(cell.poly)] + vlines + hlines) if (vlines or hlines) else [cell.poly]
        rps = shapely.point_on_surface(np.asarray(polys, dtype=object))
        items = sorted(((p.x, p.y, poly) for p, poly in zip(rps, polys)), key=lambda t: (round(t[0]), round(t[1])))
        ranks = np.argsort(np.argsort([t[1] for t in items], kind="stable"), kind="stable")
        for (x, y, poly), rank in zip(items, ranks):
            # the strip a community split may cut along: block columns, or rows when there is one column
            self._add_block(cell, poly, _side_of(cell.vcurves, x, y) if vlines else int(rank))

    # ------------------------------------------------------------------ block kinds and special places

    def kinds_stage(self) -> None:
        """Old blocks in the west, estates in the east; hospital, school, park, market, primary school."""
        rng = self.rng
        for blk in self.blocks:
            if blk.kind:
                continue
            cell = self.cells[blk.cell]
            p_estate = 0.2 if cell.old else 0.72
            blk.kind = "estate" if (blk.poly.area >= 40_000 and rng.random() < p_estate) else "old_block"
        for kind in ("hospital", "school", "park"):
            self._place_special_block(kind)
        for kind in ("market", "primary"):
            self._place_mixed_block(kind)
        res = [b for b in self.blocks if b.kind in ("old_block", "estate")]
        if not any(b.kind == "estate" for b in res):
            max(res, key=lambda b: b.poly.area).kind = "estate"
        if not any(b.kind == "old_block" for b in res):
            min(res, key=lambda b: b.poly.area).kind = "old_block"

    def _regular_blocks(self, kinds: tuple[str, ...], min_area: float) -> list[_Block]:
        return [b for b in self.blocks if self.cells[b.cell].role == "regular" and b.kind in kinds
                and b.poly.area >= min_area]

    def _place_special_block(self, kind: str) -> None:
        """Turn one residential block into *kind*, preferring cells with no special block yet."""
        taken = {b.cell for b in self.blocks if b.kind in ("hospital", "school", "park")}
        per_cell = {}
        for b in self.blocks:
            per_cell[b.cell] = per_cell.get(b.cell, 0) + 1
        cands = self._regular_blocks(("old_block", "estate"), 25_000)
        # never a block whose removal cuts the rest of its cell in two (residents on the far side
        # would be an island no grid of their community could reach)
        whole = [b for b in cands if not self._cuts_cell(b)]
        good = [b for b in whole if b.cell not in taken and per_cell[b.cell] >= 2]
        pool = good or whole or cands
        pool[int(self.rng.integers(len(pool)))].kind = kind

    def _cuts_cell(self, blk: _Block) -> bool:
        """Whether turning *blk* into an exclusive unit disconnects the other blocks of its cell."""
        rest = [b for b in self.blocks if b.cell == blk.cell and b.id != blk.id and b.kind not in _BARRIER_KINDS]
        if len(rest) <= 1:
            return False
        edges = _block_edges(rest, final=False)
        seen, stack = {rest[0].id}, [rest[0].id]
        while stack:
            for y in edges[stack.pop()]:
                if y not in seen:
                    seen.add(y)
                    stack.append(y)
        return len(seen) < len(rest)

    def _place_mixed_block(self, kind: str) -> None:
        """A market / primary school taking part of one old block (the rest stays residential)."""
        pool = self._regular_blocks(("old_block",), 30_000) or self._regular_blocks(("old_block", "estate"), 20_000)
        pool[int(self.rng.integers(len(pool)))].kind = kind

    # ------------------------------------------------------------------ stage 3: lanes, estate roads, hamlets

    def lanes_stage(self) -> None:
        """Lanes in old blocks: some cross the block, some are dead ends (cul-de-sacs).

        A market or primary school takes one side of its old block: a lane
        separates it from the residential rest, which has lanes like any old
        block.
        """
        for blk in self.blocks:
            if blk.kind == "old_block":
                self._lanes(blk)
            elif blk.kind in ("market", "primary"):
                self._cut_part(blk)
                self._lanes(blk, shapely.difference(blk.poly, blk.cut_box))

    def _lanes(self, blk: _Block, poly: Polygon | None = None) -> None:
        rng = self.rng
        poly = blk.poly if poly is None else poly
        minx, miny, maxx, maxy = poly.bounds
        vertical = (maxx - minx) >= (maxy - miny)  # lanes cut across the long side
        lo, hi = (minx, maxx) if vertical else (miny, maxy)
        pos = lo + 40 + rng.uniform(0, 30)
        first = True
        while pos < hi - 40:
            ang = math.tan(math.radians(rng.uniform(-4, 4)))
            if vertical:
                full = LineString([(pos - ang * 600, miny - 600), (pos + ang * 600, maxy + 600)])
            else:
                full = LineString([(minx - 600, pos - ang * 600), (maxx + 600, pos + ang * 600)])
            piece = _clip(full, poly)
            if piece is not None and piece.length > 60:
                a, b = np.asarray(piece.coords[0]), np.asarray(piece.coords[-1])
                if first or rng.random() < 0.55:
                    if rng.random() < 0.5:
                        a, b = b, a
                    b = a + (b - a) * rng.uniform(0.35, 0.65)  # dead end from a street into the block
                self.add_road(LineString([a, b]), "lane", name_kind="lane")
                first = False
            pos += rng.uniform(55, 100)

    def estates_stage(self) -> None:
        """Each estate block gets a gated 小区: a spine road from one gate to the far wall, fire lanes across it."""
        for blk in self.blocks:
            if blk.kind == "estate":
                self._estate(blk)

    def _estate(self, blk: _Block) -> None:
        rng = self.rng
        name = self.namer.take("estate")
        poly = blk.poly.buffer(-12.0, join_style="mitre")
        minx, miny, maxx, maxy = blk.poly.bounds
        vertical = (maxy - miny) >= (maxx - minx)  # the spine runs along the long side
        c = ((minx + maxx) / 2 + rng.uniform(-0.1, 0.1) * (maxx - minx)) if vertical else \
            ((miny + maxy) / 2 + rng.uniform(-0.1, 0.1) * (maxy - miny))
        full = LineString([(c, miny - 500), (c, maxy + 500)]) if vertical else \
            LineString([(minx - 500, c), (maxx + 500, c)])
        piece = _clip(full, blk.poly)
        gate_first = rng.random() < 0.5
        a, b = (np.asarray(piece.coords[0]), np.asarray(piece.coords[-1]))
        if not gate_first:
            a, b = b, a
        # the spine runs from the gate on the street to the far wall of the estate, and the branches
        # (fire lanes) from wall to wall: roads a grid edge can follow all the way across the estate
        inside = _clip(LineString([a, b]), poly)
        end = max((np.asarray(q) for q in (inside.coords[0], inside.coords[-1])),
                  key=lambda q: float(np.hypot(*(q - a))))
        spine = LineString([a, end])
        n = 1
        n_roads = int(self.road_rng.integers(0, 4))  # 0-3 internal roads: some estates have none
        if n_roads >= 1:
            self.add_road(spine, "estate_road", name=self.namer.reserve(f"{name}{n}号路"))
        t_lo, t_hi = sorted([float(a[1] if vertical else a[0]), float(end[1] if vertical else end[0])])
        t = t_lo + 45 + rng.uniform(0, 20)
        while t < t_hi - 15:
            cross = LineString([(minx - 10, t), (maxx + 10, t)]) if vertical else \
                LineString([(t, miny - 10), (t, maxy + 10)])
            branch = _clip(cross, poly)
            if branch is not None and branch.intersects(spine):
                n += 1
                if n <= n_roads:
                    self.add_road(branch, "estate_road", name=self.namer.reserve(f"{name}{n}号路"))
            t += rng.uniform(60, 90)
        self.estates.append(_Estate(blk.id, name, poly, Point(a), blk.people))

    def rural_stage(self) -> None:
        """Villages: population, hamlet (natural village) seeds, names and spur roads to the hamlets."""
        rng = self.rng
        roads = [r for r in self.roads if r.klass == "rural_road"] + [self.divide_road]
        tree = shapely.STRtree([r.geom for r in roads])
        hi = int(800 + 2200 * min(1.0, max(0.25, self.scale / 0.3)))  # small districts: smaller villages
        for cell in self.cells:
            if cell.zone != "rural":
                continue
            seeds = self._seeds(cell.poly.buffer(-130.0), 230.0, 9)
            if len(seeds) < 2:  # a narrow cell: pack the hamlets closer
                seeds = self._seeds(cell.poly.buffer(-80.0), 160.0, 9)
            people = int(rng.integers(800, hi + 1))
            k_lo = -(-people // 600)
            if k_lo > len(seeds):
                people = len(seeds) * 560
                k_lo = len(seeds)
            k_hi = min(people // 150, len(seeds))
            k = int(np.clip(round(people / rng.uniform(300, 480)), k_lo, k_hi))
            seeds = seeds[:k]
            split = _split_total(rng, people, k, 150, 600, shape=6.0)
            name = self.namer.take("village")
            hamlets = [self.namer.take("hamlet") for _ in range(k)]
            self.villages.append(_Village(cell.id, name, people, seeds, hamlets, split))
            for (sx, sy), hamlet in zip(seeds, hamlets):
                self._spur(cell, Point(sx, sy), tree, roads, hamlet)
            self._field_roads(cell, seeds, name)

    def _field_roads(self, cell: _Cell, seeds: np.ndarray, village: str) -> None:
        """Field roads (机耕路) between the hamlets: along the borders of their natural villages.

        The borders are the Voronoi edges of the hamlet seeds inside the cell,
        so every natural village is a block of its own and a village too big
        for one grid can be divided along roads, as an urban community can.
        Houses keep at least 6 m from them (they stay 6 m inside their
        natural village). No random draws: the rest of the build is unchanged.
        """
        if len(seeds) < 2:
            return
        env = shapely.box(*cell.poly.buffer(300.0).bounds)
        edges = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=env,
                                                            only_edges=True))
        parts = shapely.get_parts(shapely.intersection(edges, cell.poly))
        parts = parts[(shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 1.0)]
        mid = shapely.line_interpolate_point(parts, 0.5, normalized=True)
        order = np.lexsort((shapely.get_x(mid), -np.round(shapely.get_y(mid), 3)))  # north-west first
        for n, k in enumerate(order, start=1):
            self.add_road(parts[k], "rural_road", name=self.namer.reserve(f"{village}{n}号机耕路"))

    def _seeds(self, area, min_dist: float, k_max: int) -> np.ndarray:
        """Greedy Poisson-disc points in *area* at least *min_dist* apart."""
        rng = self.rng
        minx, miny, maxx, maxy = area.bounds
        x, y = rng.uniform(minx, maxx, 400), rng.uniform(miny, maxy, 400)
        shapely.prepare(area)
        ok = shapely.contains_xy(area, x, y)
        pts: list[tuple[float, float]] = []
        for px, py in zip(x[ok], y[ok]):
            if all((px - qx) ** 2 + (py - qy) ** 2 >= min_dist ** 2 for qx, qy in pts):
                pts.append((px, py))
                if len(pts) == k_max:
                    break
        if not pts:
            p = area.representative_point() if not area.is_empty else Point(0, 0)
            pts.append((p.x, p.y))
        return np.asarray(pts)

    def _spur(self, cell: _Cell, seed: Point, tree: shapely.STRtree, roads: list[_Road], hamlet: str) -> None:
        """A dead-end village road from the nearest rural road to the hamlet centre."""
        line = roads[int(tree.query_nearest(seed)[0])].geom
        q = line.interpolate(line.project(seed))
        if q.distance(seed) < 40.0:
            return
        spur = LineString([q, seed])
        if cell.poly.buffer(0.5).contains(spur):
            self.add_road(spur, "rural_road", name=self.namer.reserve(f"{hamlet}支路"))

    # ------------------------------------------------------------------ stage 4: the final network

    def network_stage(self) -> None:
        """Snap and node every road with the boundary; polygonize the final faces; map faces to blocks."""
        sources = np.asarray([self.ring] + [r.geom for r in self.roads], dtype=object)
        snapped = _snap_ends(sources)
        edges = shapely.get_parts(shapely.node(shapely.GeometryCollection(list(snapped))))
        mids = shapely.line_interpolate_point(edges, 0.5, normalized=True)
        ei, si = shapely.STRtree(snapped).query(mids, predicate="dwithin", distance=1e-6)
        src = np.full(len(edges), -1, dtype=np.int64)
        order = np.lexsort((si, ei))
        ei, si = ei[order], si[order]
        first = np.unique(ei, return_index=True)[1]
        src[ei[first]] = si[first]
        if (src < 0).any():
            raise RuntimeError("an edge of the noded network has no source line")
        self.edges, self.edge_src = edges, src
        faces = shapely.get_parts(shapely.polygonize(edges))
        total = float(shapely.area(faces).sum())
        if abs(total - self.district.area) > 1e-6 * self.district.area:
            raise RuntimeError(f"faces cover {total:.1f} m² of a {self.district.area:.1f} m² district")
        self._faces_to_blocks(faces)

    def _faces_to_blocks(self, faces: np.ndarray) -> None:
        polys = np.asarray([b.poly for b in self.blocks], dtype=object)
        tree = shapely.STRtree(polys)
        fi, bi = tree.query(shapely.point_on_surface(faces), predicate="within")
        owner = np.full(len(faces), -1, dtype=np.int64)
        owner[fi] = bi
        for f in np.flatnonzero(owner < 0):  # a face on a stage-2 edge (cannot happen; be robust)
            cand = tree.query(faces[f], predicate="intersects")
            owner[f] = cand[np.argmax(shapely.area(shapely.intersection(polys[cand], faces[f])))]
        self.faces, self.face_block = faces, owner
        for b in self.blocks:
            b.final = _union(faces[owner == b.id])
            if b.cut_box is not None:  # market / primary school: the faces on either side of its lane
                mine = faces[owner == b.id]
                side = shapely.within(shapely.point_on_surface(mine), b.cut_box)
                b.part, b.rest = _union(mine[side]), _union(mine[~side])

    # ------------------------------------------------------------------ population per block

    def people_stage(self) -> None:
        """Fix special and rural populations; share the rest over residential blocks by area."""
        rng, s = self.rng, self.scale
        target = int(round(BASE_PEOPLE * s))
        sp = self.specials
        univ = int(round(max(1500, 14000 * s)))
        sp["university_dorms"] = _split_total(rng, univ, _count_for(univ, 1000, 300, 1600), 300, 1600)
        sp["industrial_dorms"] = np.concatenate([[int(rng.integers(2200, 2900))],
                                                 rng.integers(300, 900, max(1, round(3 * math.sqrt(s))))])
        sp["school_dorms"] = np.array([int(rng.integers(300, 700))])
        sp["hospital_dorms"] = np.array([int(rng.integers(100, 300))])
        fixed = sum(int(v.sum()) for v in sp.values()) + sum(v.people for v in self.villages)
        self._residential(target - fixed)

    def _residential(self, total: int) -> None:
        rng = self.rng
        res = [b for b in self.blocks if b.kind in ("old_block", "estate", "market", "primary")]
        floors = rng.uniform(3100, 4800, len(res))  # smallest estate size, drawn per block
        while True:
            area = np.array([b.poly.area * (0.55 if b.kind in ("market", "primary") else 1.0) for b in res])
            est = np.array([b.kind == "estate" for b in res])
            w = area * np.where(est, 1.25, 1.0) * rng.lognormal(0.0, 0.25, len(res))
            p = total * w / w.sum()
            p[est] = np.clip(p[est], floors[est], 19_500)
            rest = total - p[est].sum()
            if rest >= 25.0 * area[~est].sum() / 1000.0 or est.sum() <= 1:
                break
            smallest = min((b for b in res if b.kind == "estate"), key=lambda b: p[res.index(b)])
            smallest.kind = "old_block"  # estates would leave too few people for old blocks
        people = np.zeros(len(res), dtype=np.int64)
        people[est] = np.round(p[est]).astype(np.int64)
        rest, floor = int(total - people[est].sum()), 60  # every old block keeps a few buildings
        floor = min(floor, rest // max(1, int((~est).sum())))
        people[~est] = floor + _apportion(w[~est], rest - floor * int((~est).sum()))
        for b, n in zip(res, people):
            b.people = int(n)

    # ------------------------------------------------------------------ communities and subdistricts

    def communities_stage(self) -> None:
        """Group blocks into communities (along secondary roads), cells into streets and towns."""
        self.communities: list[dict] = []
        cell_people = {c.id: 0 for c in self.cells}
        for b in self.blocks:
            cell_people[b.cell] += b.people
        for v in self.villages:
            cell_people[v.cell] = v.people
        self.cell_people = cell_people
        for cell in self.cells:
            blocks = [b for b in self.blocks if b.cell == cell.id]
            if cell.role == "regular":
                self._split_cell(cell, blocks)
            else:
                self._new_community(cell, blocks)
        self._subdistricts()

    def _new_community(self, cell: _Cell, blocks: list[_Block]) -> None:
        cid = len(self.communities)
        for b in blocks:
            b.community = cid
        self.communities.append({"id": cid, "cell": cell.id, "blocks": [b.id for b in blocks],
                                 "urban": cell.zone == "urban", "role": cell.role})

    def _split_cell(self, cell: _Cell, blocks: list[_Block]) -> None:
        """One to several communities per cell, each a run of whole block columns (rows if one column).

        A special block (hospital, school) inside a run can cut the rest of
        its community in two; no planner could then keep the community's grids
        contiguous. Such a cut-off part joins the neighbouring community of
        the cell it shares the longest road with (:func:`_reunite`).
        """
        cols = sorted({b.col for b in blocks})
        pop = np.array([sum(b.people for b in blocks if b.col == c) for c in cols], dtype=float)
        k = int(np.clip(round(pop.sum() / 7000.0), 1, len(cols)))
        cuts = _balanced_cuts(pop, k)
        group = {b.id: next(g for g in range(k) if cuts[g] <= cols.index(b.col) < cuts[g + 1]) for b in blocks}
        group = _reunite(blocks, group, barrier=lambda b: b.kind in _BARRIER_KINDS)
        for g in sorted(set(group.values())):
            self._new_community(cell, [b for b in blocks if group[b.id] == g])

    def _subdistricts(self) -> None:
        """Streets: runs of urban cells along a serpentine path; towns: the fringe (+ industrial park)."""
        nc, nr = self.nc, self.nr
        path = []
        for i in range(nc):
            rows = range(nr - 1, -1, -1) if (nc - 1 - i) % 2 == 0 else range(nr)
            path += [self.cell_at("urban", i, j) for j in rows]
        path = [c for c in path if c.role != "industrial"]
        pop = np.array([self.cell_people[c.id] for c in path], dtype=float)
        k = int(np.clip(round(pop.sum() / 60_000.0), 2, len(path)))
        cuts = _balanced_cuts(pop, k)
        self.subdistricts: list[dict] = []
        for g in range(k):
            self.subdistricts.append({"kind": "jiedao", "cells": [c.id for c in path[cuts[g]:cuts[g + 1]]]})
        n_towns = 2 if self.scale >= 0.5 else 1
        half = self.nrr / 2
        towns = [{"kind": "zhen", "cells": []} for _ in range(n_towns)]
        for c in self.cells:
            if c.role == "industrial":
                towns[0]["cells"].insert(0, c.id)
            elif c.zone == "rural":
                towns[0 if (n_towns == 1 or c.j < half) else 1]["cells"].append(c.id)
        self.subdistricts += towns

    # ------------------------------------------------------------------ codes and names

    def codes_stage(self) -> None:
        """12-digit codes: 街道 001…, 镇 101…; 社区 001…, 村 201…; names from the pools."""
        n_j = n_z = 0
        by_cell = {}
        for com in self.communities:
            by_cell.setdefault(com["cell"], []).append(com)
        vill_by_cell = {v.cell: v for v in self.villages}
        for sd in self.subdistricts:
            if sd["kind"] == "jiedao":
                n_j += 1
                sd["code"] = f"{COUNTY_CODE}{n_j:03d}000"
                sd["name"] = self.namer.take("jiedao")
            else:
                n_z += 1
                sd["code"] = f"{COUNTY_CODE}{100 + n_z:03d}000"
                sd["name"] = self.namer.take("zhen")
            sd["urban"] = sd["kind"] == "jiedao"
            n_she, n_cun = 0, 200
            for cid in sd["cells"]:
                for com in by_cell[cid]:
                    com["parent_code"] = sd["code"]
                    if com["urban"]:
                        n_she += 1
                        com["code"] = f"{sd['code'][:9]}{n_she:03d}"
                        com["name"] = self._community_name(com["role"])
                    else:
                        n_cun += 1
                        com["code"] = f"{sd['code'][:9]}{n_cun:03d}"
                        com["name"] = vill_by_cell[cid].name

    def _community_name(self, role: str) -> str:
        if role == "university":
            return self.namer.reserve("学府社区")
        if role == "industrial":
            return self.namer.reserve("工业园社区")
        return self.namer.take("community")

    # ------------------------------------------------------------------ special areas and land use

    def specials_stage(self) -> None:
        """Special-area polygons (whole blocks, or part of one), the lake and its park."""
        nm = self.namer
        self.special_areas: list[dict] = []
        self.landuse: list[dict] = []
        by_kind: dict[str, list[_Block]] = {}
        for b in self.blocks:
            by_kind.setdefault(b.kind, []).append(b)
        spec = [
            ("university", "university", nm.reserve("滨湖大学"), "学生公寓", "university_dorms"),
            ("hospital", "hospital", nm.reserve("示范区人民医院"), "职工宿舍", "hospital_dorms"),
            ("school", "school", nm.reserve("示范区第一中学"), "学生宿舍", "school_dorms"),
            ("primary", "school", nm.reserve("示范区实验小学"), None, None),
            ("market", "market", nm.reserve("民生农贸市场"), None, None),
            ("industrial", "industrial_park", nm.reserve("兴业工业园"), "员工宿舍", "industrial_dorms"),
        ]
        for n, (bkind, kind, name, dorm, key) in enumerate(spec, start=1):
            blocks = by_kind[bkind]
            geom = _union([b.part if b.part is not None else b.final for b in blocks])
            self.special_areas.append({"id": f"SP{n:02d}", "name": name, "kind": kind, "geom": geom,
                                       "blocks": [b.id for b in blocks], "dorm": dorm, "key": key})
        park = by_kind["park"][0]
        lake = self._lake(park.final)
        self.landuse.append({"id": "LU01", "name": nm.reserve("镜湖"), "kind": "water", "geom": lake})
        self.landuse.append({"id": "LU02", "name": nm.reserve("镜湖公园"), "kind": "park",
                             "geom": park.final.difference(lake)})

    def _cut_part(self, blk: _Block) -> None:
        """Split a block by a straight lane: the smaller side is the special place, the rest stays residential.

        The special side is drawn at random, unless the residential rest would
        then reach the other blocks of its cell only through the special place.
        """
        rng = self.rng
        minx, miny, maxx, maxy = blk.poly.bounds
        f = rng.uniform(0.35, 0.5)
        if (maxx - minx) >= (maxy - miny):
            cut = minx + f * (maxx - minx)
            if rng.random() >= 0.5:
                cut = maxx - (cut - minx)
            low = shapely.box(minx - 1, miny - 1, cut, maxy + 1)
            high = shapely.box(cut, miny - 1, maxx + 1, maxy + 1)
            small = cut - minx < maxx - cut
            line = LineString([(cut, miny - 1), (cut, maxy + 1)])
        else:
            cut = miny + f * (maxy - miny)
            if rng.random() >= 0.5:
                cut = maxy - (cut - miny)
            low = shapely.box(minx - 1, miny - 1, maxx + 1, cut)
            high = shapely.box(minx - 1, cut, maxx + 1, maxy + 1)
            small = cut - miny < maxy - cut
            line = LineString([(minx - 1, cut), (maxx + 1, cut)])
        box, other = (low, high) if small else (high, low)
        if not self._touches_cell(blk, shapely.intersection(blk.poly, other)) and \
                self._touches_cell(blk, shapely.intersection(blk.poly, box)):
            box = other  # the rest would reach the other blocks of its cell only through the special place
        blk.cut_box = box
        self.add_road(_clip(line, blk.poly), "lane", name_kind="lane")

    def _touches_cell(self, blk: _Block, rest) -> bool:
        """Whether *rest* (part of *blk*) shares a road with another residential block of its cell."""
        others = [b.poly for b in self.blocks if b.cell == blk.cell and b.id != blk.id
                  and b.kind not in _BARRIER_KINDS]
        if not others:
            return True
        shared = shapely.length(shapely.intersection(shapely.boundary(rest), shapely.boundary(np.asarray(
            others, dtype=object))))
        return bool((shared > 1.0).any())

    def _lake(self, park: Polygon) -> Polygon:
        """An irregular lake inside *park*, at least 25 m from its edge."""
        rng = self.rng
        c = park.representative_point()
        r0 = 0.33 * math.sqrt(park.area)
        th = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        ph = rng.uniform(0, 2 * np.pi, 3)
        r = r0 * (1 + 0.18 * np.sin(2 * th + ph[0]) + 0.1 * np.sin(3 * th + ph[1]) + 0.06 * np.sin(5 * th + ph[2]))
        blob = Polygon(np.column_stack([c.x + r * np.cos(th), c.y + 0.8 * r * np.sin(th)]))
        lake = shapely.intersection(blob, park.buffer(-25.0))
        if lake.geom_type != "Polygon":
            lake = max(shapely.get_parts(lake), key=lambda g: g.area)
        return lake

    # ------------------------------------------------------------------ buildings

    def points_stage(self) -> None:
        """Address points: old-block buildings, estate high-rises, dormitories, village houses."""
        self.tree = shapely.STRtree(self.edges)
        self.points: list[dict] = []
        big = max(self.estates, key=lambda e: e.people)
        if big.people < 4000:
            big = None  # too small for a super-tall tower (the factory dormitory is still > 2,000)
        for blk in self.blocks:
            if blk.kind in ("old_block", "market", "primary") and blk.people > 0:
                self._old_points(blk)
        for e in self.estates:
            self._estate_points(e, tower=e is big)
        for sa in self.special_areas:
            if sa["key"]:
                self._dorm_points(sa)
        self.hamlet_polys = {}
        for v in self.villages:
            self._village_points(v)

    def _emit(self, x, y, people, households, kind, block, **extra) -> None:
        for k in range(len(x)):
            rec = {"x": float(x[k]), "y": float(y[k]), "people": int(people[k]),
                   "households": int(households[k]), "kind": kind, "block": block}
            rec.update({key: (val[k] if isinstance(val, (list, np.ndarray)) else val) for key, val in extra.items()})
            self.points.append(rec)

    def _old_points(self, blk: _Block) -> None:
        rng = self.rng
        poly = (blk.rest if blk.rest is not None else blk.final).buffer(-6.0)
        n = _count_for(blk.people, rng.uniform(45, 90), 20, 200)
        spacing = float(np.clip(math.sqrt(poly.area / (n * 1.8)), 12, 45))
        x, y = _place(poly, n, spacing, rng, self.tree, 6.0)
        n = max(1, len(x))
        if len(x) == 0:
            p = poly.representative_point()
            x, y = np.array([p.x]), np.array([p.y])
        people = _split_total(rng, blk.people, n, 20, 200, shape=2.5)
        self._emit(x, y, people, _households(rng, people), "old_block", blk.id, estate=None, special=None)

    def _estate_points(self, e: _Estate, tower: bool) -> None:
        rng = self.rng
        poly = e.poly.buffer(-8.0)
        total = e.people
        tall = int(rng.integers(2050, 2600)) if tower else 0
        n = _count_for(total - tall, rng.uniform(180, 320), 100, 400) + (1 if tower else 0)
        spacing = float(np.clip(math.sqrt(poly.area / (n * 1.5)), 18, 60))
        x, y = _place(poly, n, spacing, rng, self.tree, 10.0)
        n = len(x)
        if n < (2 if tower else 1):
            raise RuntimeError(f"no room for the buildings of estate {e.name}")
        rest = _split_total(rng, total - tall, n - (1 if tower else 0), 100, 400, shape=5.0)
        people = np.concatenate([[tall], rest]) if tower else rest
        order = np.lexsort((x, -y))  # number buildings row by row from the north
        x, y = x[order], y[order]
        self._emit(x, y, people, _households(rng, people, 2.4, 2.9), "estate", e.block, estate=e.name,
                   special=None)

    def _dorm_points(self, sa: dict) -> None:
        rng = self.rng
        people = self.specials[sa["key"]]
        inset = 40.0 if sa["kind"] == "university" else 25.0
        poly = sa["geom"].buffer(-inset)
        x, y = _place(poly, len(people), 55.0, rng, self.tree, 12.0)
        if len(x) < len(people):
            raise RuntimeError(f"no room for the dormitories of {sa['name']}")
        blocks = np.asarray(sa["blocks"])
        owner = blocks[np.argmax(np.column_stack([shapely.contains_xy(self.blocks[b].final, x, y)
                                                  for b in blocks]), axis=1)]
        hh = np.maximum(1, np.round(people / rng.uniform(4.0, 6.0, len(people)))).astype(np.int64)
        for k in range(len(x)):
            self._emit(x[k:k + 1], y[k:k + 1], people[k:k + 1], hh[k:k + 1], "special", int(owner[k]),
                       estate=None, special=sa["id"])

    def _village_points(self, v: _Village) -> None:
        rng = self.rng
        blk = next(b for b in self.blocks if b.cell == v.cell)
        polys = _hamlet_polygons(blk.final, v.seeds)
        self.hamlet_polys[v.cell] = polys
        for h, ((sx, sy), poly, people) in enumerate(zip(v.seeds, polys, v.hamlet_people)):
            area = shapely.intersection(Point(sx, sy).buffer(100.0), poly.buffer(-6.0))
            n = _count_for(int(people), rng.uniform(4.0, 5.2), 3, 8)
            spacing = float(np.clip(math.sqrt(max(area.area, 1.0) / (n * 1.6)), 9, 22))
            x, y = _place(area, n, spacing, rng, self.tree, 6.0)
            if len(x) == 0:
                raise RuntimeError(f"no room for the houses of {v.hamlets[h]}")
            pp = _split_total(rng, int(people), len(x), 3, 8, shape=5.0)
            self._emit(x, y, pp, _households(rng, pp, 2.6, 3.4), "village", blk.id, estate=None, special=None,
                       hamlet=h)


#: Block kinds that are exclusive units of their own (专属网格): residents cannot pass through them.
_BARRIER_KINDS = ("hospital", "school")


def _block_edges(blocks: list, final: bool = True) -> dict[int, dict[int, float]]:
    """Road length shared by every pair of touching blocks, ``{id: {id: m}}`` (``final`` or stage-2 outline)."""
    # a market / primary school block reaches its neighbours through its residential rest only
    geoms = np.asarray([(b.rest if b.rest is not None else b.final) if final else b.poly for b in blocks],
                       dtype=object)
    a, c = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = a < c
    a, c = a[keep], c[keep]
    shared = shapely.length(shapely.intersection(shapely.boundary(geoms[a]), shapely.boundary(geoms[c])))
    out: dict[int, dict[int, float]] = {b.id: {} for b in blocks}
    for x, y, w in zip(a.tolist(), c.tolist(), shared.tolist()):
        if w > 1.0:
            out[blocks[x].id][blocks[y].id] = w
            out[blocks[y].id][blocks[x].id] = w
    return out


def _reunite(blocks: list, group: dict[int, int], barrier) -> dict[int, int]:
    """Move parts of a group cut off from the rest by *barrier* blocks to a touching group.

    Within every group the blocks that are not barriers must be connected
    through shared roads (barrier blocks are walls, not passages). A part
    that is not the group's most populous one joins the group (of the same
    cell) it shares the longest road with; a part touching no other group
    stays (the engine then flags it honestly).

    Returns
    -------
    dict
        The new group of every block id (groups may disappear, none appear).
    """
    group = dict(group)
    edges = _block_edges(blocks)
    by_id = {b.id: b for b in blocks}
    for _ in range(len(blocks)):
        moved = False
        for g in sorted(set(group.values())):
            free = [b.id for b in blocks if group[b.id] == g and not barrier(b)]
            parts, seen = [], set()
            for start in free:
                if start in seen:
                    continue
                part, stack = [], [start]
                seen.add(start)
                while stack:
                    x = stack.pop()
                    part.append(x)
                    for y in edges[x]:
                        if y not in seen and group[y] == g and not barrier(by_id[y]):
                            seen.add(y)
                            stack.append(y)
                parts.append(sorted(part))
            if len(parts) <= 1:
                continue
            parts.sort(key=lambda q: (-sum(by_id[x].people for x in q), q[0]))
            for part in parts[1:]:
                touch: dict[int, float] = {}
                for x in part:
                    for y, w in edges[x].items():
                        h = group[y]
                        if h != g and not barrier(by_id[y]):
                            touch[h] = touch.get(h, 0.0) + w
                if touch:
                    dest = max(sorted(touch), key=lambda h: touch[h])
                    for x in part:
                        group[x] = dest
                    moved = True
            if moved:
                break
        if not moved:
            break
    return group


def _balanced_cuts(pop: np.ndarray, k: int) -> list[int]:
    """Cut a sequence into *k* non-empty contiguous runs with sums close to equal.

    Returns the ``k + 1`` boundaries (``0 = c₀ < … < c_k = len(pop)``).
    """
    n = len(pop)
    k = max(1, min(k, n))
    cum = np.concatenate([[0.0], np.cumsum(pop)])
    cuts = [0]
    for g in range(1, k):
        goal = cum[-1] * g / k
        c = int(np.argmin(np.abs(cum[1:n] - goal))) + 1
        c = max(c, cuts[-1] + 1)
        c = min(c, n - (k - g))
        cuts.append(c)
    cuts.append(n)
    return cuts


def _hamlet_polygons(village: Polygon, seeds: np.ndarray) -> list[Polygon]:
    """Split *village* into the Voronoi regions of its hamlet *seeds* (exact tiling, one per seed)."""
    if len(seeds) == 1:
        return [village]
    env = shapely.box(*village.buffer(300.0).bounds)
    edges = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=env, only_edges=True))
    faces = _faces([_ring_line(village)] + list(edges))
    rps = shapely.point_on_surface(faces)
    inside = shapely.within(rps, village)
    faces, rps = faces[inside], rps[inside]
    xy = shapely.get_coordinates(rps)
    nearest = np.argmin(((xy[:, None, :] - seeds[None, :, :]) ** 2).sum(axis=2), axis=1)
    return [_union(faces[nearest == k]) for k in range(len(seeds))]


# --------------------------------------------------------------------------- addresses


def _house_numbers(points: np.ndarray, lines: np.ndarray, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest road and a house number for each point (odd on the left, even on the right, ~20 m apart)."""
    tree = shapely.STRtree(lines)
    pi, li = tree.query_nearest(points, all_matches=False)
    road = np.empty(len(points), dtype=np.int64)
    road[pi] = li
    ln = lines[road]
    d = shapely.line_locate_point(ln, points)
    p0 = shapely.line_interpolate_point(ln, d)
    p1 = shapely.line_interpolate_point(ln, d + 1.0)
    a, b, q = shapely.get_coordinates(p0), shapely.get_coordinates(p1), shapely.get_coordinates(points)
    cross = (b[:, 0] - a[:, 0]) * (q[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (q[:, 0] - a[:, 0])
    num = 2 * (np.floor(d / 20.0).astype(np.int64) + 1) - (cross > 0)
    return names[road], num


def _addresses(b: _Builder, pts: pd.DataFrame, special_names: dict) -> np.ndarray:
    """Chinese addresses: ``中山大道123号``/``…号5栋``, ``…号锦绣华府5栋``, ``李家湾村王家湾12号``."""
    roads = [r for r in b.roads if r.klass in ("arterial", "secondary", "lane")]
    lines = np.asarray([r.geom for r in roads], dtype=object)
    names = np.asarray([r.name for r in roads], dtype=object)
    out = np.empty(len(pts), dtype=object)
    old = np.flatnonzero(pts["kind"].to_numpy() == "old_block")
    rn, num = _house_numbers(shapely.points(pts["x"].to_numpy()[old], pts["y"].to_numpy()[old]), lines, names)
    base = np.array([f"{r}{n}号" for r, n in zip(rn, num)], dtype=object)
    uniq, inv, cnt = np.unique(base, return_inverse=True, return_counts=True)
    seen: dict[int, int] = {}
    for k, (i, g) in enumerate(zip(old, inv)):
        seen[g] = seen.get(g, 0) + 1
        out[i] = base[k] if cnt[g] == 1 else f"{base[k]}{seen[g]}栋"
    for e in b.estates:
        rn, num = _house_numbers(np.asarray([e.gate], dtype=object), lines, names)
        idx = np.flatnonzero(pts["estate"].to_numpy() == e.name)
        for k, i in enumerate(idx, start=1):
            out[i] = f"{rn[0]}{num[0]}号{e.name}{k}栋"
    for sid, (sname, dorm, gate) in special_names.items():
        rn, num = _house_numbers(np.asarray([gate], dtype=object), lines, names)
        idx = np.flatnonzero(pts["special"].to_numpy() == sid)
        for k, i in enumerate(idx, start=1):
            out[i] = f"{rn[0]}{num[0]}号{sname}{dorm}{k}栋"
    vil = np.flatnonzero(pts["kind"].to_numpy() == "village")
    counter: dict[tuple, int] = {}
    for i in vil:
        key = (pts["village_name"].iat[i], pts["hamlet_name"].iat[i])
        counter[key] = counter.get(key, 0) + 1
        out[i] = f"{key[0]}{key[1]}{counter[key]}号"
    return out


# --------------------------------------------------------------------------- projection and frames


_TO_METRIC = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
_ORIGIN = np.array(_TO_METRIC.transform(*CENTER_LONLAT))


def _frame(records: list[dict], geoms: list, columns: list[str]) -> gpd.GeoDataFrame:
    """A GeoDataFrame in EPSG:4326 from metric geometries relative to the district centre."""
    arr = np.asarray(geoms, dtype=object) if len(geoms) else np.empty(0, dtype=object)
    if len(arr):
        arr = shapely.transform(arr, lambda xy: xy + _ORIGIN)
    df = pd.DataFrame.from_records(records, columns=columns)
    gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(arr, crs=METRIC_CRS), crs=METRIC_CRS)
    return gdf.to_crs("EPSG:4326")


def _assemble(b: _Builder) -> dict[str, gpd.GeoDataFrame]:
    """Every output layer as a GeoDataFrame in EPSG:4326."""
    com_geom = [_union([b.blocks[k].final for k in c["blocks"]]) for c in b.communities]
    pts = _points_frame(b)
    people_by = pts.groupby("community")[["people", "households"]].sum()
    layers = {}
    layers["communities"] = _communities_layer(b, com_geom, people_by).sort_values("code", ignore_index=True)
    layers["subdistricts"], sd_geom = _subdistricts_layer(b, com_geom, pts)
    layers["boundary"] = _frame(
        [{"code": DISTRICT_CODE, "name": DISTRICT_NAME, "level": "district", "parent_code": COUNTY_CODE[:4] + "0" * 8,
          "urban": True, "people": int(pts["people"].sum()), "households": int(pts["households"].sum())}],
        [_union(sd_geom)], ["code", "name", "level", "parent_code", "urban", "people", "households"])
    layers["streets"] = _streets_layer(b)
    layers["population"] = _population_layer(pts)
    layers["special_areas"] = _special_layer(b, pts)
    layers["villages"] = _villages_layer(b, pts)
    layers["landuse"] = _frame([{k: v for k, v in lu.items() if k != "geom"} for lu in b.landuse],
                               [lu["geom"] for lu in b.landuse], ["id", "name", "kind"])
    layers["estates"] = _estates_layer(b, pts)
    return layers


def _points_frame(b: _Builder) -> pd.DataFrame:
    """Address points with community, subdistrict, hamlet and address columns (metric x/y)."""
    pts = pd.DataFrame.from_records(b.points)
    com = np.array([b.blocks[k].community for k in pts["block"]])
    pts["community"] = [b.communities[c]["code"] for c in com]
    pts["subdistrict"] = [b.communities[c]["parent_code"] for c in com]
    vcode = {b.blocks[k].cell: b.communities[b.blocks[k].community]["code"] for k in range(len(b.blocks))}
    vname = {v.cell: v for v in b.villages}
    cells = np.array([b.blocks[k].cell for k in pts["block"]])
    hamlet = pts["hamlet"].to_numpy() if "hamlet" in pts else np.full(len(pts), np.nan)
    is_v = pts["kind"].to_numpy() == "village"
    pts["natural_village"] = [f"{vcode[c]}{int(h) + 1:03d}" if v else None for c, h, v in zip(cells, hamlet, is_v)]
    pts["village_name"] = [vname[c].name if v else None for c, v in zip(cells, is_v)]
    pts["hamlet_name"] = [vname[c].hamlets[int(h)] if v else None for c, h, v in zip(cells, hamlet, is_v)]
    pts = pts.sort_values(["community"], kind="stable").reset_index(drop=True)
    serial = pts.groupby("community").cumcount() + 1
    pts["building"] = [f"{c}-{k:05d}" for c, k in zip(pts["community"], serial)]
    gates = {}
    for sa in b.special_areas:
        if sa["dorm"]:
            gates[sa["id"]] = (sa["name"], sa["dorm"], sa["geom"].representative_point())
    pts["address"] = _addresses(b, pts, gates)
    return _entrances(b, pts)


#: Entrances of one building keep at least this far (m) from the address points of other buildings.
_ENTRANCE_CLEARANCE = 8.0


def _entrances(b: _Builder, pts: pd.DataFrame) -> pd.DataFrame:
    """One address point per entrance (单元): estate and dormitory buildings get 2-4, old blocks' larger ones 2-3.

    The entrances of a building lie on a line through its location, 5-15 m apart, share its
    ``building`` id and split its people and households; the address gains ``N单元``. A building
    whose entrances would leave its estate or block, cross a road or come within
    ``_ENTRANCE_CLEARANCE`` of another building's points keeps one point.
    """
    rng = b.entrance_rng
    tree = shapely.STRtree(b.edges)
    estate_poly = {e.name: e.poly for e in b.estates}
    rows = []
    centre = pts[["x", "y"]].to_numpy(dtype=float)
    placed = np.zeros((0, 2))  # entrances placed so far (other buildings keep this far from them)
    for n_rec, rec in enumerate(pts.to_dict("records")):
        kind = rec["kind"]
        if kind in ("estate", "special"):
            k = int(rng.integers(2, 5))
        elif kind == "old_block" and rec["people"] >= 80:
            k = int(rng.integers(2, 4))
        else:
            k = 1
        if k == 1 or rec["people"] < k:
            rows.append(dict(rec, entrance=1))
            placed = np.vstack([placed, centre[n_rec:n_rec + 1]])
            continue
        area = estate_poly.get(rec["estate"]) if rec["estate"] else None
        area = area if area is not None else b.blocks[rec["block"]].final
        xy = None
        for attempt in range(10):  # turn the row of entrances (and close it up) until it fits
            gaps = rng.uniform(5.0, 15.0 if attempt < 5 else 7.0, k - 1)
            theta = rng.uniform(0, math.pi)
            t = np.r_[0.0, np.cumsum(gaps)]
            t -= t.mean()
            cand = np.array([rec["x"], rec["y"]]) + t[:, None] * np.array([math.cos(theta), math.sin(theta)])
            others = np.concatenate([np.delete(centre[n_rec + 1:], [], axis=0), placed])
            clear = others.size == 0 or np.min(np.hypot(*(cand[:, None, :] - others[None, :, :]).transpose(2, 0, 1))) \
                >= _ENTRANCE_CLEARANCE
            if clear and all(area.contains(Point(p)) for p in cand) and \
                    not len(tree.query(LineString(cand).buffer(3.0), predicate="intersects")):
                xy = cand
                break
        if xy is None:
            rows.append(dict(rec, entrance=1))
            placed = np.vstack([placed, centre[n_rec:n_rec + 1]])
            continue
        placed = np.vstack([placed, xy])
        people = _apportion(rng.uniform(0.7, 1.3, k), int(rec["people"]))
        hh = _apportion(people.astype(float) + 1e-9, int(rec["households"]))
        for j in range(k):
            rows.append(dict(rec, x=float(xy[j, 0]), y=float(xy[j, 1]), people=int(people[j]),
                             households=int(hh[j]), address=f"{rec['address']}{j + 1}单元", entrance=j + 1))
    return pd.DataFrame.from_records(rows)


def _population_layer(pts: pd.DataFrame) -> gpd.GeoDataFrame:
    cols = ["id", "building", "entrance", "address", "households", "people", "estate", "community", "kind",
            "subdistrict", "natural_village", "special_area"]
    df = pts.rename(columns={"special": "special_area"})
    df["id"] = [f"{b}-{e}" for b, e in zip(df["building"], df["entrance"])]  # one id per address point
    recs = df[cols].astype(object).where(df[cols].notna(), None).to_dict("records")
    return _frame(recs, list(shapely.points(df["x"].to_numpy(), df["y"].to_numpy())), cols)


def _communities_layer(b: _Builder, geoms: list, people_by: pd.DataFrame) -> gpd.GeoDataFrame:
    recs = []
    for c in b.communities:
        p = people_by.loc[c["code"]] if c["code"] in people_by.index else {"people": 0, "households": 0}
        recs.append({"code": c["code"], "name": c["name"], "level": "community",
                     "kind": "社区" if c["urban"] else "村", "parent_code": c["parent_code"], "urban": c["urban"],
                     "people": int(p["people"]), "households": int(p["households"])})
    cols = ["code", "name", "level", "kind", "parent_code", "urban", "people", "households"]
    return _frame(recs, geoms, cols)


def _subdistricts_layer(b: _Builder, com_geom: list, pts: pd.DataFrame) -> tuple[gpd.GeoDataFrame, list]:
    recs, geoms = [], []
    people = pts.groupby("subdistrict")[["people", "households"]].sum()
    for sd in b.subdistricts:
        members = [g for c, g in zip(b.communities, com_geom) if c["parent_code"] == sd["code"]]
        geoms.append(_union(members))
        p = people.loc[sd["code"]]
        recs.append({"code": sd["code"], "name": sd["name"], "level": "street",
                     "kind": "街道" if sd["kind"] == "jiedao" else "镇", "parent_code": DISTRICT_CODE,
                     "urban": sd["urban"], "people": int(p["people"]), "households": int(p["households"])})
    cols = ["code", "name", "level", "kind", "parent_code", "urban", "people", "households"]
    return _frame(recs, geoms, cols), geoms


def _streets_layer(b: _Builder) -> gpd.GeoDataFrame:
    """Noded edges with road attributes; boundary edges in the urban zone are the ring road."""
    mids = shapely.line_interpolate_point(b.edges, 0.5, normalized=True)
    xy = shapely.get_coordinates(mids)
    perimeter = {}
    recs, geoms = [], []
    for k, (edge, src) in enumerate(zip(b.edges, b.edge_src)):
        if src == 0:
            x, y = xy[k]
            if x >= b.divide.offset(y):
                continue  # the district boundary in the fringe runs through fields, not along a road
            side = "北" if y > b.y1 - 250 else ("南" if y < b.y0 + 250 else "西")
            if side not in perimeter:
                perimeter[side] = (f"R{len(b.roads) + len(perimeter) + 1:05d}", b.namer.reserve(f"环城{side}路"))
            road_id, name, klass = *perimeter[side], "arterial"
        else:
            r = b.roads[src - 1]
            road_id, name, klass = r.road_id, r.name, r.klass
        recs.append({"road_id": road_id, "name": name, "klass": klass, "highway": HIGHWAY_OF[klass],
                     "length_m": round(float(edge.length), 2)})
        geoms.append(edge)
    for n, rec in enumerate(recs, start=1):
        rec["id"] = f"S{n:06d}"
    return _frame(recs, geoms, ["id", "road_id", "name", "klass", "highway", "length_m"])


def _special_layer(b: _Builder, pts: pd.DataFrame) -> gpd.GeoDataFrame:
    recs = []
    for sa in b.special_areas:
        coms = sorted({b.communities[b.blocks[k].community]["code"] for k in sa["blocks"]})
        recs.append({"id": sa["id"], "name": sa["name"], "kind": sa["kind"], "community": coms[0],
                     "people": int(pts.loc[pts["special"] == sa["id"], "people"].sum())})
    return _frame(recs, [sa["geom"] for sa in b.special_areas], ["id", "name", "kind", "community", "people"])


def _villages_layer(b: _Builder, pts: pd.DataFrame) -> gpd.GeoDataFrame:
    recs, geoms = [], []
    for v in b.villages:
        blk = next(k for k in b.blocks if k.cell == v.cell)
        com = b.communities[blk.community]
        sel = pts["community"] == com["code"]
        recs.append({"code": com["code"], "name": v.name, "level": "village", "parent_code": com["parent_code"],
                     "people": int(pts.loc[sel, "people"].sum()), "households": int(pts.loc[sel, "households"].sum())})
        geoms.append(blk.final)
        for h, poly in enumerate(b.hamlet_polys[v.cell]):
            code = f"{com['code']}{h + 1:03d}"
            sel = pts["natural_village"] == code
            recs.append({"code": code, "name": v.hamlets[h], "level": "natural_village", "parent_code": com["code"],
                         "people": int(pts.loc[sel, "people"].sum()),
                         "households": int(pts.loc[sel, "households"].sum())})
            geoms.append(poly)
    return _frame(recs, geoms, ["code", "name", "level", "parent_code", "people", "households"])


def _estates_layer(b: _Builder, pts: pd.DataFrame) -> gpd.GeoDataFrame:
    recs = []
    for n, e in enumerate(b.estates, start=1):
        sel = pts["estate"] == e.name
        recs.append({"id": f"E{n:03d}", "name": e.name,
                     "community": b.communities[b.blocks[e.block].community]["code"],
                     "people": int(pts.loc[sel, "people"].sum()), "households": int(pts.loc[sel, "households"].sum()),
                     "buildings": int(pts.loc[sel, "building"].nunique())})
    return _frame(recs, [e.poly for e in b.estates], ["id", "name", "community", "people", "households", "buildings"])


# --------------------------------------------------------------------------- public API


@dataclass
class SyntheticDistrict:
    """A generated synthetic district: one GeoDataFrame per layer (EPSG:4326) and metadata.

    Attributes
    ----------
    boundary : GeoDataFrame
        The district (区): ``code``, ``name``, ``level`` ("district"), ``parent_code``, ``urban``,
        ``people``, ``households``.
    subdistricts : GeoDataFrame
        Streets and towns (街道/镇): ``code``, ``name``, ``level`` ("street"), ``kind`` ("街道"/"镇"),
        ``parent_code``, ``urban``, ``people``, ``households``.
    communities : GeoDataFrame
        社区 and 村: ``code``, ``name``, ``level`` ("community"), ``kind`` ("社区"/"村"), ``parent_code``,
        ``urban``, ``people``, ``households``.
    streets : GeoDataFrame
        Noded road edges: ``id``, ``road_id``, ``name``, ``klass`` (arterial, secondary, lane, estate_road,
        rural_road), ``highway`` (OSM equivalent), ``length_m``.
    population : GeoDataFrame
        One point per entrance: ``id`` (unique per point), ``building`` (shared by the entrances of a
        building), ``entrance`` (1..4),
        ``address``, ``households``, ``people``, ``estate``,
        ``community``, ``kind`` (old_block, estate, village, special), ``subdistrict``, ``natural_village``,
        ``special_area``.
    special_areas : GeoDataFrame
        ``id``, ``name``, ``kind`` (university, hospital, industrial_park, market, school), ``community``,
        ``people``.
    villages : GeoDataFrame
        行政村 (``level`` "village", 12-digit code) and 自然村 (``level`` "natural_village", village code +
        3 digits): ``code``, ``name``, ``level``, ``parent_code``, ``people``, ``households``.
    landuse : GeoDataFrame
        Zero-population areas: ``id``, ``name``, ``kind`` ("water"/"park").
    estates : GeoDataFrame
        Gated estates (小区): ``id``, ``name``, ``community``, ``people``, ``households``, ``buildings``.
    metadata : dict
        ``synthetic: True``, generator, version, seed, scale, totals and a note that the data is not real.
    """

    boundary: gpd.GeoDataFrame
    subdistricts: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    population: gpd.GeoDataFrame
    special_areas: gpd.GeoDataFrame
    villages: gpd.GeoDataFrame
    landuse: gpd.GeoDataFrame
    estates: gpd.GeoDataFrame
    metadata: dict

    LAYERS: ClassVar[tuple[str, ...]] = ("boundary", "subdistricts", "communities", "streets", "population",
                                         "special_areas", "villages", "landuse", "estates")

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """The layers by name, in :attr:`LAYERS` order."""
        return {name: getattr(self, name) for name in self.LAYERS}

    def write(self, directory: str | Path, driver: str = "GPKG") -> dict[str, Path]:
        """Write one file per layer plus ``metadata.json`` into *directory*.

        Parameters
        ----------
        directory : str or Path
            Created if missing; files of the same name are replaced.
        driver : {"GPKG", "GeoJSON"}
            GeoPackage (``<layer>.gpkg``, layer named like the file) or GeoJSON (``<layer>.geojson``).

        Returns
        -------
        dict
            Layer name (and ``"metadata"``) → path written.
        """
        ext = {"GPKG": "gpkg", "GEOJSON": "geojson"}.get(driver.upper())
        if ext is None:
            raise ValueError(f"driver must be 'GPKG' or 'GeoJSON', not {driver!r}")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for name, gdf in self.layers().items():
            path = out / f"{name}.{ext}"
            if path.exists():
                path.unlink()
            gdf.to_file(path, layer=name if ext == "gpkg" else None, driver="GPKG" if ext == "gpkg" else "GeoJSON")
            paths[name] = path
        meta = dict(self.metadata)
        meta["files"] = {k: p.name for k, p in paths.items()}
        paths["metadata"] = out / "metadata.json"
        paths["metadata"].write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        return paths


def _metadata(b: _Builder, layers: dict[str, gpd.GeoDataFrame]) -> dict:
    pop, st, com = layers["population"], layers["streets"], layers["communities"]
    vil = layers["villages"]
    return {
        "synthetic": True,
        "note": NOTE,
        "generator": GENERATOR_NAME,
        "generator_version": GENERATOR_VERSION,
        "seed": b.seed,
        "scale": b.scale,
        "crs": "EPSG:4326",
        "metric_crs": METRIC_CRS,
        "center_lonlat": list(CENTER_LONLAT),
        "district": {"code": DISTRICT_CODE, "name": DISTRICT_NAME},
        "totals": {
            "people": int(pop["people"].sum()),
            "households": int(pop["households"].sum()),
            "buildings": int(pop["building"].nunique()),
            "address_points": len(pop),
            "max_building_people": int(pop.groupby("building")["people"].sum().max()),
            "area_km2": round(float(b.district.area) / 1e6, 3),
            "subdistricts": len(layers["subdistricts"]),
            "communities": len(com),
            "urban_communities": int(com["urban"].sum()),
            "villages": int((~com["urban"].astype(bool)).sum()),
            "natural_villages": int((vil["level"] == "natural_village").sum()),
            "estates": len(layers["estates"]),
            "special_areas": len(layers["special_areas"]),
            "street_edges": len(st),
            "street_km": round(float(st["length_m"].sum()) / 1000.0, 2),
            "people_by_kind": {k: int(v) for k, v in pop.groupby("kind")["people"].sum().items()},
        },
        "layers": {name: len(gdf) for name, gdf in layers.items()},
    }


def generate_district(seed: int = 42, scale: float = 1.0) -> SyntheticDistrict:
    """Generate a synthetic district deterministically.

    Parameters
    ----------
    seed : int
        Seed of the random generator; the same seed and scale give identical frames.
    scale : float
        Size relative to the default district of about 300,000 people
        (``0.1`` ≈ 30,000). Area scales with it, road spacing does not.
        Between 0.05 and 5.

    Returns
    -------
    SyntheticDistrict

    Raises
    ------
    ValueError
        If *scale* is out of range.
    """
    scale = float(scale)
    if not (MIN_SCALE <= scale <= MAX_SCALE):
        raise ValueError(f"scale must be between {MIN_SCALE} and {MAX_SCALE}, not {scale}")
    b = _Builder(seed, scale)
    b.frame()
    b.cells_stage()
    b.roles()
    b.blocks_stage()
    b.kinds_stage()
    b.rural_stage()
    b.people_stage()
    b.lanes_stage()
    b.estates_stage()
    b.network_stage()
    b.communities_stage()
    b.codes_stage()
    b.specials_stage()
    b.points_stage()
    layers = _assemble(b)
    return SyntheticDistrict(**layers, metadata=_metadata(b, layers))


def write_demo(directory: str | Path, seed: int = 42, scale: float = 1.0, driver: str = "GPKG") -> dict:
    """Generate a district and write it; for a CLI command such as ``geo demo-data``.

    Parameters
    ----------
    directory : str or Path
        Output directory (created).
    seed, scale :
        See :func:`generate_district`.
    driver : {"GPKG", "GeoJSON"}
        File format.

    Returns
    -------
    dict
        ``directory``, ``files`` (layer → path string), ``totals`` (from the metadata) and ``seconds``.
    """
    t0 = time.perf_counter()
    district = generate_district(seed=seed, scale=scale)
    paths = district.write(directory, driver=driver)
    return {"directory": str(Path(directory)), "files": {k: str(p) for k, p in paths.items()},
            "totals": district.metadata["totals"], "seconds": round(time.perf_counter() - t0, 3)}


def population_cells(district: SyntheticDistrict, cell: float = 120.0) -> gpd.GeoDataFrame:
    """Polygon population units finer than street blocks: square cells summing the address points.

    Parameters
    ----------
    district : SyntheticDistrict
    cell : float
        Cell size (m) in the district's metric CRS; cells are clipped to the district.

    Returns
    -------
    GeoDataFrame
        ``id``, ``people``, ``households`` and the cell polygon (EPSG:4326); cells without
        address points have 0 people. Cells cross streets, as census cells often do.
    """
    pts = district.population.to_crs(METRIC_CRS)
    jur = shapely.union_all(np.asarray(district.boundary.to_crs(METRIC_CRS).geometry.values))
    minx, miny, maxx, maxy = jur.bounds
    xs = np.arange(minx, maxx + cell, cell)
    ys = np.arange(miny, maxy + cell, cell)
    gx, gy = np.meshgrid(xs[:-1], ys[:-1])
    boxes = shapely.intersection(shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + cell, gy.ravel() + cell), jur)
    boxes = boxes[~shapely.is_empty(boxes) & (shapely.area(boxes) > 1.0)]
    xy = shapely.get_coordinates(np.asarray(pts.geometry.values, dtype=object))
    tree = shapely.STRtree(boxes)
    pi, ci = tree.query(shapely.points(xy), predicate="intersects")
    first = np.r_[True, pi[1:] != pi[:-1]] if len(pi) else np.zeros(0, bool)
    pi, ci = pi[first], ci[first]
    people = np.bincount(ci, weights=pts["people"].to_numpy(dtype=float)[pi], minlength=len(boxes))
    hh = np.bincount(ci, weights=pts["households"].to_numpy(dtype=float)[pi], minlength=len(boxes))
    out = gpd.GeoDataFrame({"id": [f"C{k:05d}" for k in range(len(boxes))],
                            "people": np.rint(people).astype(np.int64), "households": np.rint(hh).astype(np.int64)},
                           geometry=boxes, crs=METRIC_CRS)
    return out.to_crs("EPSG:4326")
