"""Grid codes and names (网格编码与命名).

A grid code has 15 digits: the 12-digit statistical division code
(统计用区划代码) of the community or village the grid lies in — 6 digits
county, 3 digits town/street (街道/乡镇), 3 digits community/village
(社区/村) — followed by a 3-digit serial starting at ``001``. Without
communities the *jurisdiction code* (default ``"000000000000"``) is the
prefix.

Names: ``"<community name>第<N>网格"`` for ordinary grids and
``"<unit name>专属网格"`` for the exclusive grid of a special unit (school,
hospital, park…).

Codes are stable across re-draws: a grid whose geometry is unchanged (or,
with ``carry="matched"``, that is the clear successor of a previous grid:
intersection over union ≥ ``match_iou`` in the same community) keeps its
previous code. New grids take the next free serial of their prefix, after
the largest serial ever used there, so a retired code is never handed to a
different grid. New grids are numbered north-west to south-east (rows of
roughly one grid height, west to east within a row), deterministically;
ordinary grids before exclusive ones, so that a fresh plan's names run
第1网格 … 第n网格 without gaps.

More than 999 grids under one prefix
------------------------------------
A 3-digit serial holds 999 grids. A prefix that is a community's code (its last
three digits are not ``000``) can never hold more: :func:`check_code_capacity`
says so *before* the solve, with the fix (pass the communities, or a
street/county-level prefix). A prefix ending in ``000`` is a county or
street/town code (统计用区划代码 gives 居委会 001–199 and 村委会 200–399 at the
community level, never 000 or 9xx): its grids beyond the 999th are numbered in
*overflow sub-prefixes* ``prefix[:9] + "901"`` … ``"999"`` (99 × 999 more
grids), so codes keep 15 digits. Overflow sub-prefixes are filled in order,
each after the largest serial ever used in it, so codes stay stable across
re-draws like ordinary ones; names keep counting (第1000网格, …).
"""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["assign_codes", "grid_name", "DEFAULT_PREFIX", "nw_order", "GridCodeCapacityError", "check_code_capacity",
           "code_capacity", "overflow_prefixes", "MAX_SERIAL"]

#: Prefix used when no community is known.
DEFAULT_PREFIX = "000000000000"
_CODE12 = re.compile(r"^\d{12}$")
#: Largest 3-digit serial under one 12-digit prefix.
MAX_SERIAL = 999
_OVERFLOW = range(901, 1000)  # community digits of the overflow sub-prefixes of a "...000" prefix


class GridCodeCapacityError(ValueError):
    """More grids under one 12-digit prefix than its codes can number (raised before the solve)."""


def overflow_prefixes(prefix: str) -> list[str]:
    """The 12-digit prefixes grids of *prefix* are numbered in, in order of use.

    Parameters
    ----------
    prefix : str
        12-digit prefix.

    Returns
    -------
    list of str
        ``[prefix]`` for a community code; for a county or street/town code
        (ending in ``000``) also its overflow sub-prefixes ``prefix[:9] + "901"`` … ``"999"``.
    """
    if prefix.endswith("000"):
        return [prefix] + [f"{prefix[:9]}{c:03d}" for c in _OVERFLOW]
    return [prefix]


def _family(prefix12: str) -> str:
    """The prefix whose numbering *prefix12* belongs to (itself unless it is an overflow sub-prefix)."""
    return f"{prefix12[:9]}000" if int(prefix12[9:]) in _OVERFLOW else prefix12


def code_capacity(prefix: str) -> int:
    """How many grids *prefix* can number (999, or 99,900 for a prefix ending in ``000``)."""
    return MAX_SERIAL * len(overflow_prefixes(prefix))


def check_code_capacity(values, community=None, special=None, min_pop: float = 1000, max_pop: float = 2000,
                        target: float | None = None, prefix: str = DEFAULT_PREFIX) -> dict[str, int]:
    """Check, before solving, that every prefix can number the grids it will get.

    The number of grids of a prefix is estimated from the atoms: the
    population to balance (atoms that are not special units) divided by the
    target, moved into ``[ceil(p / max_pop), floor(p / min_pop)]`` (the
    engine's own count, :func:`geo.partition.regions.region_count`), plus one
    exclusive grid per special unit.

    Parameters
    ----------
    values : array of float
        Population (the balanced column) per atom.
    community : array, optional
        12-digit community code per atom (None where unknown: *prefix*).
    special : array, optional
        Special unit id per atom (None for ordinary atoms).
    min_pop, max_pop, target : float
        Grid population range and target (default the middle).
    prefix : str
        12-digit prefix where no community is known.

    Returns
    -------
    dict
        Estimated grids per prefix.

    Raises
    ------
    GridCodeCapacityError
        When an estimate exceeds :func:`code_capacity`, naming the prefix, the
        estimate and the fix.
    """
    from .regions import region_count

    v = np.asarray(values, dtype=float)
    n = v.size
    target = float(target) if target else (min_pop + max_pop) / 2.0
    comm = pd.Series(list(community) if community is not None else [None] * n, dtype=object)
    pref = comm.map(lambda c: _prefix(c, prefix)).to_numpy(dtype=object) if n else np.zeros(0, dtype=object)
    spec = pd.Series(list(special) if special is not None else [None] * n, dtype=object)
    is_spec = spec.notna().to_numpy() if n else np.zeros(0, dtype=bool)
    out: dict[str, int] = {}
    for pf in sorted(set(pref.tolist())):
        m = pref == pf
        p = float(v[m & ~is_spec].sum())
        k = region_count(p, min_pop, max_pop, target) if p > 0 else 0
        k += int(spec[m & is_spec].nunique())
        out[pf] = k
        cap = code_capacity(pf)
        if k > cap:
            fix = ("pass the communities (each numbers its own grids)" if pf.endswith("000") else
                   "pass the communities, or a street/county-level prefix ending in 000 (its grids beyond the "
                   "999th are numbered in the overflow sub-prefixes ...901-...999)")
            raise GridCodeCapacityError(
                f"about {k:,} grids of {min_pop:g}-{max_pop:g} people would fall under prefix {pf} "
                f"({p:,.0f} people), but its 15-digit codes can number only {cap:,}: {fix}, or raise min_pop/max_pop"
            )
    return out


def grid_name(kind: str, serial: int, community_name: str | None = None, special_name: str | None = None,
              jurisdiction_name: str = "") -> str:
    """Display name of a grid.

    Parameters
    ----------
    kind : str
        ``"standard"``, ``"rural"`` or ``"exclusive"``.
    serial : int
        Serial number within the community (1-based).
    community_name : str, optional
        Name of the community (社区/村); the jurisdiction name is used when absent.
    special_name : str, optional
        Name of the special unit of an exclusive grid.
    jurisdiction_name : str
        Fallback prefix for grids outside any named community.

    Returns
    -------
    str
        e.g. ``"花园社区第3网格"`` or ``"市第一人民医院专属网格"``.
    """
    if kind == "exclusive" and special_name:
        return f"{special_name}专属网格"
    base = community_name if community_name else jurisdiction_name
    return f"{base}第{int(serial)}网格"


def nw_order(geoms, row_height: float | None = None) -> np.ndarray:
    """Order of geometries north-west to south-east (row-major by centroid).

    Parameters
    ----------
    geoms : array of geometries (metric CRS)
    row_height : float, optional
        Height of a row in metres; default the square root of the median
        area (about one grid).

    Returns
    -------
    ndarray of int
        Positions sorted by row (north first) then x (west first).
    """
    g = np.asarray(geoms)
    if g.size == 0:
        return np.zeros(0, dtype=np.int64)
    c = shapely.centroid(g)
    x, y = shapely.get_x(c), shapely.get_y(c)
    if row_height is None:
        med = float(np.median(shapely.area(g)))
        row_height = math.sqrt(med) if med > 0 else 1.0
    row = np.floor((y.max() - y) / row_height + 1e-9)
    return np.lexsort((np.round(x, 3), -np.round(y, 3), row))


def _prefix(code: Any, default: str) -> str:
    if code is None or (isinstance(code, float) and math.isnan(code)):
        return default
    s = str(code).strip()
    if not _CODE12.match(s):
        raise ValueError(f"community code {s!r} is not a 12-digit statistical division code (统计用区划代码)")
    return s


def _match_previous(geoms: np.ndarray, prefixes: list[str], previous: gpd.GeoDataFrame, crs,
                    carry: str, match_iou: float, equal_tol: float) -> list[str | None]:
    """Previous code carried by each grid (None = new)."""
    prev = previous.to_crs(crs) if previous.crs is not None else previous.set_crs(crs)
    pg = np.asarray(prev.geometry.values)
    pcodes = prev["code"].astype(str).to_numpy()
    out: list[str | None] = [None] * len(geoms)
    if len(pg) == 0 or len(geoms) == 0:
        return out
    gi, pi = shapely.STRtree(pg).query(geoms, predicate="intersects")
    inter = shapely.area(shapely.intersection(geoms[gi], pg[pi]))
    a_new = shapely.area(geoms)[gi]
    a_old = shapely.area(pg)[pi]
    union = a_new + a_old - inter
    iou = np.where(union > 0, inter / union, 0.0)
    sym = union - inter
    # unchanged: symmetric difference below equal_tol m² (or relative 1e-6)
    same = (sym <= np.maximum(equal_tol, 1e-6 * union))
    used: set[str] = set()
    pfam = [_family(c[:12]) if len(c) == 15 and c.isdigit() else c[:12] for c in pcodes]
    for g, p in zip(gi[same], pi[same]):
        if out[g] is None and pcodes[p] not in used and pfam[p] == prefixes[g]:
            out[g] = pcodes[p]
            used.add(pcodes[p])
    if carry == "matched":
        order = np.argsort(-iou, kind="stable")
        for k in order:
            g, p = gi[k], pi[k]
            if iou[k] < match_iou:
                break
            if out[g] is None and pcodes[p] not in used and pfam[p] == prefixes[g]:
                out[g] = pcodes[p]
                used.add(pcodes[p])
    return out


def assign_codes(
    grids: gpd.GeoDataFrame,
    community: Sequence | None = None,
    community_names: dict | None = None,
    special_names: Sequence | None = None,
    kinds: Sequence | None = None,
    previous: gpd.GeoDataFrame | None = None,
    *,
    prefix: str = DEFAULT_PREFIX,
    jurisdiction_name: str = "",
    carry: str = "matched",
    match_iou: float = 0.5,
    equal_tol: float = 1.0,
) -> pd.DataFrame:
    """Codes and names for grids, carrying codes over from a previous plan.

    Parameters
    ----------
    grids : GeoDataFrame
        Grid geometries (any CRS; a geographic one is projected for areas).
    community : sequence, optional
        12-digit community code per grid (None where unknown).
    community_names : dict, optional
        ``{code: name}`` of the communities.
    special_names : sequence, optional
        Special unit name per grid (None for ordinary grids).
    kinds : sequence, optional
        ``"standard"``, ``"rural"`` or ``"exclusive"`` per grid.
    previous : GeoDataFrame, optional
        Previous grids with a ``code`` column (any CRS).
    prefix : str
        12-digit jurisdiction code used where no community is known.
    jurisdiction_name : str
        Name prefix where no community name is known.
    carry : {"matched", "unchanged"}
        ``"unchanged"``: only grids with unchanged geometry keep their code;
        ``"matched"`` (default): also a grid that is the clear successor of a
        previous grid (IoU ≥ *match_iou*, same prefix) keeps it.
    match_iou : float
        Minimum intersection over union for ``carry="matched"``.
    equal_tol : float
        Symmetric-difference area (m²) below which geometries are unchanged.

    Returns
    -------
    DataFrame
        ``code``, ``name``, ``serial`` (int) and ``carried`` (bool), aligned
        with *grids*.
    """
    if carry not in ("matched", "unchanged"):
        raise ValueError("carry must be 'matched' or 'unchanged'")
    if not _CODE12.match(prefix):
        raise ValueError(f"prefix {prefix!r} must have 12 digits")
    n = len(grids)
    g = grids
    if g.crs is not None and g.crs.is_geographic:
        from geo.crs import local_metric_crs

        g = g.to_crs(local_metric_crs(g))
    geoms = np.asarray(g.geometry.values)
    comm = list(community) if community is not None else [None] * n
    prefixes = [_prefix(c, prefix) for c in comm]
    names = community_names or {}
    sp_names = list(special_names) if special_names is not None else [None] * n
    knd = list(kinds) if kinds is not None else ["standard"] * n

    carried: list[str | None] = [None] * n
    max_serial: dict[str, int] = {}
    if previous is not None and len(previous):
        if "code" not in previous.columns:
            raise ValueError("previous grids need a 'code' column")
        carried = _match_previous(geoms, prefixes, previous, g.crs, carry, match_iou, equal_tol)
        for c in previous["code"].astype(str):
            if len(c) == 15 and c.isdigit():
                max_serial[c[:12]] = max(max_serial.get(c[:12], 0), int(c[12:]))
    for c in carried:
        if c is not None:
            max_serial[c[:12]] = max(max_serial.get(c[:12], 0), int(c[12:]))

    codes: list[str] = [""] * n
    serials = np.zeros(n, dtype=np.int64)
    for k, c in enumerate(carried):
        if c is not None:
            codes[k] = c
            serials[k] = int(c[12:])
    # ordinary grids first (so that 第N网格 runs 1..n), then exclusive ones; each north-west to south-east
    nw = nw_order(geoms)
    rank = np.empty(n, dtype=np.int64)
    rank[nw] = np.arange(n)
    order = sorted(range(n), key=lambda k: (knd[k] == "exclusive", rank[k]))
    for k in order:
        if carried[k] is not None:
            continue
        family = overflow_prefixes(prefixes[k])
        for pf in family:
            s = max_serial.get(pf, 0) + 1
            if s <= MAX_SERIAL:
                break
        else:
            raise GridCodeCapacityError(
                f"more than {code_capacity(prefixes[k]):,} grids under prefix {prefixes[k]}: pass communities so "
                "that each community numbers its own grids"
            )
        max_serial[pf] = s
        codes[k] = f"{pf}{s:03d}"
        serials[k] = s
    # name numbers keep counting through the overflow sub-prefixes (第1000网格 ...)
    ordinal = [int(serials[k]) + (MAX_SERIAL * (_OVERFLOW.index(int(codes[k][9:12])) + 1)
                                  if codes[k] and _family(codes[k][:12]) != codes[k][:12] else 0) for k in range(n)]
    out_names = [
        grid_name(knd[k], ordinal[k], names.get(comm[k]) if comm[k] is not None else None, sp_names[k],
                  jurisdiction_name)
        for k in range(n)
    ]
    return pd.DataFrame(
        {"code": codes, "name": out_names, "serial": serials, "carried": [c is not None for c in carried]},
        index=grids.index,
    )
