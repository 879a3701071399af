"""Region labels with incremental sums: the state the region algorithms work on."""

from __future__ import annotations

import numpy as np

from .common import FOUR_PI, PENALTY, neighbour_lists
from .grow import GrowMixin
from .repair import RepairMixin
from .search import SearchMixin

__all__ = ["RegionState"]


class RegionState(GrowMixin, SearchMixin, RepairMixin):
    """Region labels with incremental population, area and perimeter sums.

    The engine behind :class:`RegionBuilder` and :func:`geo.partition.redraw.redraw`.
    Only atoms with ``movable[a]`` change region; only edges ``(fi, fj)``
    (the "free graph") connect atoms for contiguity and moves.

    Parameters
    ----------
    lab : ndarray of int64
        Region per atom (-1 = none); modified in place.
    pop : ndarray of float
        Population per atom.
    geo : dict
        ``area``, ``perimeter``, ``x``, ``y`` per atom
        (:func:`~geo.partition.adjacency.atom_geometry_arrays`).
    fi, fj, fl : ndarray
        Free-graph edges and shared lengths.
    target, min_pop, max_pop, balance_weight, bisect_tol : float
        See :class:`RegionBuilder`.
    """

    def __init__(self, lab, pop, geo, fi, fj, fl, target, min_pop, max_pop, balance_weight=1.0, bisect_tol=0.1):
        self.n = int(lab.size)
        self.lab = lab
        self.pop = np.asarray(pop, dtype=float)
        self.geo = geo
        self.area = geo["area"]
        self.per = geo["perimeter"]
        self.x = geo["x"]
        self.y = geo["y"]
        self.fi, self.fj, self.fl = fi, fj, fl
        self.T = float(target)
        self.lo = float(min_pop)
        self.hi = float(max_pop)
        self.w = float(balance_weight)
        self.tol = float(bisect_tol)
        self.movable = np.zeros(self.n, dtype=bool)
        self.nb = neighbour_lists(self.n, fi, fj, fl)
        self.home: np.ndarray | None = None  # previous labels, for move costs in re-draws
        self.move_cost = 0.0
        self.frozen: set[int] = set()
        self._failed: set[int] = set()  # areas a local re-solve could not fix
        self.rpop: list[float] = []
        self.rarea: list[float] = []
        self.rper: list[float] = []
        self.rsize: list[int] = []
        self._csr_ptr: np.ndarray | None = None  # free graph as CSR (built on first use, see _local_edges)
        self._members: dict[int, np.ndarray] | None = None  # region -> atoms, valid during one pair_search
        self._static_lists: tuple | None = None  # pop, area, perimeter as lists (local_search)
        self.repair_counts: dict[str, int] = {}  # local re-solves by outcome: "bisect", "tree", "failed"

    # --- objective -----------------------------------------------------------

    def f(self, p: float, a: float, per: float) -> float:
        """Cost of one region: ``-PP + w * dev**2`` plus the range penalty."""
        pp = FOUR_PI * a / (per * per) if per > 0 else 0.0
        d = (p - self.T) / self.T
        c = -pp + self.w * d * d
        if p < self.lo - 1e-9:
            c += PENALTY * (1.0 + (self.lo - p) / self.T)
        elif p > self.hi + 1e-9:
            c += PENALTY * (1.0 + (p - self.hi) / self.T)
        return c

    def cost(self, r: int) -> float:
        """Current cost of region *r*."""
        return self.f(self.rpop[r], self.rarea[r], self.rper[r])

    def total_cost(self) -> float:
        """Sum of the costs of all non-empty regions."""
        return sum(self.cost(r) for r in range(len(self.rpop)) if self.rsize[r] > 0)

    def recompute(self, n_regions: int | None = None) -> None:
        """Recompute every region sum from the labels."""
        lab = self.lab
        if n_regions is None:
            n_regions = int(lab.max()) + 1 if lab.size else 0
        n_regions = max(n_regions, int(lab.max()) + 1 if lab.size else 0)
        ok = lab >= 0
        self.rpop = np.bincount(lab[ok], weights=self.pop[ok], minlength=n_regions).tolist()
        self.rarea = np.bincount(lab[ok], weights=self.area[ok], minlength=n_regions).tolist()
        per = np.bincount(lab[ok], weights=self.per[ok], minlength=n_regions)
        same = (lab[self.fi] == lab[self.fj]) & (lab[self.fi] >= 0)
        inner = np.bincount(lab[self.fi[same]], weights=self.fl[same], minlength=n_regions)
        self.rper = (per - 2.0 * inner).tolist()
        self.rsize = np.bincount(lab[ok], minlength=n_regions).tolist()

    def recompute_within(self, u: np.ndarray, also=()) -> None:
        """Recompute the sums of the regions of the atoms *u*, which must hold those regions whole.

        O(size of *u*) instead of :meth:`recompute`'s O(n): what a local re-solve changes.

        Parameters
        ----------
        u : ndarray of int
            Atoms.
        also : iterable of int
            Regions that may have lost all their atoms in *u* (set to empty unless present).
        """
        u = np.asarray(u, dtype=np.int64)
        lu = self.lab[u]
        ok = lu >= 0
        also = [int(r) for r in also]
        if also:
            self._grow(max(also) + 1)
        for r in also:
            self.rpop[r] = self.rarea[r] = self.rper[r] = 0.0
            self.rsize[r] = 0
        if not ok.any():
            return
        self._grow(int(lu.max()) + 1)
        regs = np.unique(lu[ok])
        for r in regs.tolist():
            self.rpop[r] = self.rarea[r] = self.rper[r] = 0.0
            self.rsize[r] = 0
        li, lj, el = self._local_edges(u)
        same = (lu[li] == lu[lj]) & (lu[li] >= 0)
        k = int(lu.max()) + 1
        pop = np.bincount(lu[ok], weights=self.pop[u][ok], minlength=k)
        area = np.bincount(lu[ok], weights=self.area[u][ok], minlength=k)
        per = np.bincount(lu[ok], weights=self.per[u][ok], minlength=k) - \
            2.0 * np.bincount(lu[li[same]], weights=el[same], minlength=k)
        size = np.bincount(lu[ok], minlength=k)
        for r in regs.tolist():
            self.rpop[r], self.rarea[r], self.rper[r], self.rsize[r] = float(pop[r]), float(area[r]), \
                float(per[r]), int(size[r])

    def _grow(self, n_regions: int) -> None:
        while len(self.rpop) < n_regions:
            self.rpop.append(0.0)
            self.rarea.append(0.0)
            self.rper.append(0.0)
            self.rsize.append(0)

    def _local_edges(self, idx: np.ndarray):
        """Edges inside *idx* as local positions plus shared lengths.

        Walks the neighbour lists of *idx* only (a CSR of the free graph built once), so the cost is
        the size of the area, not of the whole graph: pair re-cuts and local re-solves call this for
        every area they look at.
        """
        idx = np.asarray(idx, dtype=np.int64)
        if self._csr_ptr is None:
            both_i = np.concatenate([self.fi, self.fj])
            both_j = np.concatenate([self.fj, self.fi])
            eid = np.concatenate([np.arange(self.fi.size), np.arange(self.fi.size)])
            order = np.lexsort((both_j, both_i))
            self._csr_nbr = both_j[order]
            self._csr_eid = eid[order]
            self._csr_ptr = np.concatenate([[0], np.cumsum(np.bincount(both_i, minlength=self.n))]).astype(np.int64)
            self._loc = np.full(self.n, -1, dtype=np.int64)
        ptr, loc = self._csr_ptr, self._loc
        starts = ptr[idx]
        cnt = ptr[idx + 1] - starts
        total = int(cnt.sum())
        if total == 0:
            z = np.zeros(0, dtype=np.int64)
            return z, z, np.zeros(0)
        offs = np.cumsum(cnt) - cnt
        ranges = np.arange(total) - np.repeat(offs, cnt) + np.repeat(starts, cnt)
        nbr = self._csr_nbr[ranges]
        src = np.repeat(idx, cnt)
        loc[idx] = np.arange(idx.size)
        try:
            keep = (loc[nbr] >= 0) & (src < nbr)
            li, lj = loc[src[keep]], loc[nbr[keep]]
        finally:
            loc[idx] = -1
        return li, lj, self.fl[self._csr_eid[ranges[keep]]]
