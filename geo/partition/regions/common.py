"""Shared pieces of the region engine: flags, region metadata, the region count, small helpers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..adjacency import Adjacency

__all__ = [
    "FLAG_EXCLUSIVE", "FLAG_BUILDING", "FLAG_COMMUNITY_BELOW_MIN", "FLAG_ISLAND_BELOW_MIN", "FLAG_PART_BELOW_MIN",
    "FLAG_UNINHABITED", "FLAG_INFEASIBLE", "FLAG_ENCLOSED", "EXEMPT_FLAGS", "RegionMeta", "region_count",
]

#: Reasons a region may be outside ``[min_pop, max_pop]`` (``region_flags_``).
FLAG_EXCLUSIVE = "exclusive unit"
FLAG_BUILDING = "single building above max"
FLAG_COMMUNITY_BELOW_MIN = "community below min"
FLAG_ISLAND_BELOW_MIN = "island below min"
FLAG_PART_BELOW_MIN = "cut-off part below min"
FLAG_UNINHABITED = "uninhabited island"
FLAG_INFEASIBLE = "infeasible"
FLAG_ENCLOSED = "enclosed by one grid (no feasible alternative)"

#: Flags that exempt a region from the population range.
EXEMPT_FLAGS = frozenset({FLAG_EXCLUSIVE, FLAG_BUILDING, FLAG_COMMUNITY_BELOW_MIN, FLAG_ISLAND_BELOW_MIN,
                          FLAG_PART_BELOW_MIN, FLAG_UNINHABITED, FLAG_INFEASIBLE})


FOUR_PI = 4.0 * math.pi
DIRECTIONS = np.deg2rad(np.arange(0.0, 180.0, 22.5))
COS = np.cos(DIRECTIONS)[:, None]
SIN = np.sin(DIRECTIONS)[:, None]
PENALTY = 10.0  # cost of a region outside the range (>> any PP gain)


class RegionMeta:
    """Per-region metadata while solving."""

    def __init__(self):
        self.kinds: list[str] = []
        self.flags: list[list[str]] = []
        self.specials: list = []

    def __len__(self) -> int:
        return len(self.kinds)

    def new(self, kind: str, flags: list[str], special=None) -> int:
        self.kinds.append(kind)
        self.flags.append(list(flags))
        self.specials.append(special)
        return len(self.kinds) - 1

    def checked(self) -> list[bool]:
        """Regions whose range must hold (standard, no flag that exempts them)."""
        return [k == "standard" and not (set(f) & EXEMPT_FLAGS) for k, f in zip(self.kinds, self.flags)]


def region_count(p: float, lo: float, hi: float, target: float) -> int:
    """Number of regions for a component of population *p* (at least 1).

    ``round(p / target)``, moved into ``[ceil(p / hi), floor(p / lo)]`` when
    that interval is not empty.
    """
    k = max(1, int(round(p / target)))
    kmin = max(1, math.ceil(p / hi - 1e-9))
    kmax = max(1, math.floor(p / lo + 1e-9))
    if kmin <= kmax:
        k = min(max(k, kmin), kmax)
    return k


def column_values(atoms, name):
    if hasattr(atoms, "columns") and name in atoms.columns:
        col = atoms[name]
        if col.isna().all():
            return None
        return col.to_numpy(dtype=object)
    return None


def category_codes(values) -> np.ndarray | None:
    """Integer codes of a categorical column (-1 for missing), None when absent."""
    if values is None:
        return None
    s = pd.Series(values, dtype=object).map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    codes, _ = pd.factorize(s, sort=True, use_na_sentinel=True)
    return codes.astype(np.int64)


def group_indices(inv: np.ndarray, items: np.ndarray, k: int) -> list[np.ndarray]:
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(k + 1))
    return [items[order[bounds[c]:bounds[c + 1]]] for c in range(k)]


def neighbour_lists(n, fi, fj, fl) -> list[list[tuple[int, float]]]:
    nb: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for a, b, w in zip(fi.tolist(), fj.tolist(), fl.tolist()):
        nb[a].append((b, w))
        nb[b].append((a, w))
    return nb


def best_neighbour_region(members, adj: Adjacency, lab, allowed=None, kinds=None) -> int:
    """Region sharing the longest boundary with *members* (-1 if none).

    Parameters
    ----------
    allowed : ndarray of bool, optional
        Atoms whose region may be chosen (e.g. the same community).
    kinds : list of str, optional
        Region kinds; exclusive regions are only chosen when nothing else is.
    """
    m = np.zeros(adj.n, dtype=bool)
    m[members] = True
    ok = lab >= 0
    if allowed is not None:
        ok &= allowed
    e1 = m[adj.i] & ~m[adj.j] & ok[adj.j]
    e2 = m[adj.j] & ~m[adj.i] & ok[adj.i]
    r = np.concatenate([lab[adj.j[e1]], lab[adj.i[e2]]])
    if r.size == 0:
        return -1
    w = np.concatenate([adj.length[e1], adj.length[e2]]) + 1e-6
    s = pd.Series(w).groupby(r).sum().sort_index()
    if kinds is not None:
        std = [k for k in s.index if kinds[int(k)] != "exclusive"]
        if std:
            s = s.loc[std]
    return int(s.idxmax())
