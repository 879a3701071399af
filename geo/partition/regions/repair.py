"""Repair (mixin of :class:`RegionState`): contiguity, range repair, enclosed regions, warm starts.

Regions still outside the range are merged with a neighbour (too small) or split (too large);
failing that, the region and its neighbours up to three rings away are re-divided (bisection, then
exact tree partitions, see :mod:`.treecut`) and improved again with everything else frozen.
"""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .common import RegionMeta, region_count
from .treecut import random_spanning_tree, tree_partition

__all__ = ["RepairMixin"]


class RepairMixin:
    """Contiguity, range repair and enclosure repair."""

    # --- contiguity --------------------------------------------------------------

    def make_contiguous(self, within: np.ndarray | None = None) -> None:
        """Give every disconnected part of a movable region to a neighbouring region.

        The part of each region holding most population (then most atoms)
        stays; the other parts join the neighbouring region they share most
        boundary with.

        Parameters
        ----------
        within : ndarray of int, optional
            Only these atoms (whole regions: a local re-solve), worked on with
            the area's own edges; default every movable atom.
        """
        if within is None:
            _contiguous(self.lab, self.fi, self.fj, self.fl, self.movable, self.pop)
            return
        u = np.asarray(within, dtype=np.int64)
        u = u[self.movable[u]]
        li, lj, el = self._local_edges(u)
        lab_u = self.lab[u].copy()
        _contiguous(lab_u, li, lj, el, np.ones(u.size, dtype=bool), self.pop[u])
        self.lab[u] = lab_u

    def fill_unlabelled(self) -> None:
        """Give movable atoms without a region the region of a labelled neighbour.

        Repeated in waves (longest shared boundary first) until every movable
        atom reachable from a labelled one has a region.
        """
        lab, fi, fj, fl = self.lab, self.fi, self.fj, self.fl
        for _ in range(self.n):
            un = self.movable & (lab < 0)
            if not un.any():
                return
            e1 = un[fi] & (lab[fj] >= 0)
            e2 = un[fj] & (lab[fi] >= 0)
            a = np.concatenate([fi[e1], fj[e2]])
            if a.size == 0:
                return
            r = np.concatenate([lab[fj[e1]], lab[fi[e2]]])
            w = np.concatenate([fl[e1], fl[e2]]) + 1e-6
            df = pd.DataFrame({"a": a, "r": r, "w": w}).groupby(["a", "r"], sort=True)["w"].sum().reset_index()
            df = df.sort_values(["a", "w", "r"], ascending=[True, False, True]).drop_duplicates("a")
            lab[df["a"].to_numpy()] = df["r"].to_numpy()


    def repair_warm(self, reg: RegionMeta, rng: random.Random, sweeps: float) -> dict:
        """Repair out-of-range regions of a warm start, touching as little as possible.

        1. atom moves restricted to the bad regions and their neighbours
           (everything else frozen), each moved resident costing
           ``move_cost / target``;
        2. pair re-cuts of a bad region with a neighbour, same move cost;
        3. :meth:`fix_range` (merge / split / local re-solve) for what is left.

        Returns
        -------
        dict
            Regions that were out of range at the start and at the end.
        """
        start = self.out_of_range(reg.checked())
        stats = {"out_of_range_before": len(start), "out_of_range_after": 0}
        if not start:
            return stats
        for _ in range(4):
            bad = self.out_of_range(reg.checked())
            if not bad:
                break
            area = set(bad)
            members = np.flatnonzero(np.isin(self.lab, bad))
            area |= set(self._neighbour_regions(members))
            atoms = np.flatnonzero(np.isin(self.lab, sorted(area)) & self.movable)
            frozen_before = self.frozen
            self.frozen = set(range(len(self.rpop))) - area
            try:
                self.local_search(atoms, rng, int(sweeps * atoms.size) + 10)
                bad = self.out_of_range(reg.checked())
                if bad:
                    self.pair_search(None, rng, require=set(bad))
            finally:
                self.frozen = frozen_before
        bad = self.out_of_range(reg.checked())
        if bad:
            self.fix_range(bad, reg, rng)
        stats["out_of_range_after"] = len(self.out_of_range(reg.checked()))
        return stats


    def enclosed(self) -> list[tuple[int, int]]:
        """Pairs (r, s): movable region r whose whole boundary is shared with region s.

        A region with any boundary on the outline, on another community or
        on an exclusive unit is not enclosed.
        """
        lab = self.lab
        a, b = lab[self.fi], lab[self.fj]
        m = (a != b) & (a >= 0) & (b >= 0)
        if not m.any():
            return []
        df = pd.DataFrame({"r": np.concatenate([a[m], b[m]]), "s": np.concatenate([b[m], a[m]]),
                           "w": np.concatenate([self.fl[m], self.fl[m]])})
        shared = df.groupby(["r", "s"], sort=True)["w"].sum().reset_index()
        cnt = shared.groupby("r")["s"].transform("size")
        one = shared[cnt == 1]
        out = []
        for r, s_, w in zip(one["r"].to_numpy(), one["s"].to_numpy(), one["w"].to_numpy()):
            r, s_ = int(r), int(s_)
            if self.rsize[r] > 0 and w >= self.rper[r] - 1e-3 * max(1.0, self.rper[r]) and self.movable[lab == r].all():
                out.append((r, s_))
        return out

    def fix_enclosed(self) -> list[tuple[int, int]]:
        """Re-cut every enclosed region with its surrounding one, whatever the cost.

        A re-cut is kept only when it removes the enclosure (then
        both parts are connected and in range). Enclosures that cannot be
        removed this way (typically one block with a hole holding other
        blocks, too populous to merge) are returned.

        Returns
        -------
        list of (r, s)
            Pairs still enclosed.
        """
        for _ in range(3):
            pairs = self.enclosed()
            if not pairs:
                return []
            for r, s in pairs:
                u = np.flatnonzero((self.lab == r) | (self.lab == s))
                saved = self.lab[u].copy()
                sums = [(x, self.rpop[x], self.rarea[x], self.rper[x], self.rsize[x]) for x in (r, s)]
                if self._recut_pair(min(r, s), max(r, s), force=True) and (r, s) not in self.enclosed():
                    continue
                self.lab[u] = saved
                for x, p_, a_, q_, n_ in sums:
                    self.rpop[x], self.rarea[x], self.rper[x], self.rsize[x] = p_, a_, q_, n_
        return self.enclosed()

    # --- range repair --------------------------------------------------------------

    def out_of_range(self, checked: list[bool]) -> list[int]:
        """Non-empty checked regions whose population is outside the range."""
        out = []
        for r, ok in enumerate(checked):
            if ok and r < len(self.rsize) and self.rsize[r] > 0:
                if self.rpop[r] < self.lo - 1e-9 or self.rpop[r] > self.hi + 1e-9:
                    out.append(r)
        return out

    def _neighbour_regions(self, members) -> dict[int, float]:
        lab = self.lab
        out: dict[int, float] = {}
        rs = set(int(lab[a]) for a in members)
        for a in members:
            for b, w in self.nb[a]:
                s = int(lab[b])
                if s >= 0 and s not in rs and self.movable[b] and s not in self.frozen:
                    out[s] = out.get(s, 0.0) + w + 1e-6
        return out

    def fix_range(self, bad: list[int], reg: RegionMeta, rng: random.Random | None = None) -> np.ndarray:
        """Bring out-of-range regions back into the range.

        For each region, in order: absorb a too-small region into a
        neighbour with room; split a too-large region that holds at least two
        minimum regions; otherwise re-solve the region together with the
        neighbouring regions up to 1, 2, 3 rings away (bisect the union into
        ``region_count`` regions, then improve it with everything else
        frozen), keeping the first attempt that puts every region of the area
        in range.

        Returns
        -------
        ndarray
            Atoms of the touched regions and of their neighbours.
        """
        rng = rng or random.Random(0)
        lab = self.lab
        touched: set[int] = set()
        for r in sorted(bad, key=lambda r: (self.rpop[r], r)):
            if r in touched or self.rsize[r] == 0:
                continue
            if self.lo - 1e-9 <= self.rpop[r] <= self.hi + 1e-9:
                continue
            members = np.flatnonzero(lab == r)
            p = self.rpop[r]
            nbr = self._neighbour_regions(members)
            if p < self.lo:
                ok = [s for s in nbr if self.rpop[s] + p <= self.hi + 1e-9]
                if ok:  # absorb into the neighbour with the longest shared boundary
                    s = max(ok, key=lambda s: (nbr[s], -s))
                    lab[members] = s
                    self.rpop[s] += p
                    self.rarea[s] += self.rarea[r]
                    self.rsize[s] += self.rsize[r]
                    self.rpop[r] = self.rarea[r] = self.rper[r] = 0.0
                    self.rsize[r] = 0
                    self.recompute(len(reg))
                    touched.update((r, s))
                    continue
            elif p >= 2 * self.lo and self._resolve_area([r], reg, rng):
                touched.update(self._last_ids)
                continue
            # smallest areas first: the region with one neighbour (tight ranges are often fixed there,
            # and a small area's trees can be divided far more often), then whole rings
            near = [s for s in sorted(nbr, key=lambda s: (-nbr[s], s))[:6] if s not in touched]
            small = [[r, s] for s in near if self.can_hold(p + self.rpop[s])]
            small += [[r, s, t] for s, t in itertools.combinations(near, 2)
                      if self.can_hold(p + self.rpop[s] + self.rpop[t])]
            if next((a for a in small[:6] if self._resolve_area(a, reg, rng)), None) is not None:
                touched.update(self._last_ids)
                continue
            area = [r]
            for _ring in range(getattr(self, "repair_rings", 3)):
                ring = set(self._neighbour_regions(np.flatnonzero(np.isin(lab, area))))
                if not ring:
                    break
                area = sorted(set(area) | ring)
                # beyond three rings (a peninsula of coarse blocks whose cumulative people fit no whole
                # number of grids until far out) few trees divide: draw more of them
                if self._resolve_area(area, reg, rng, n_trees=8 if _ring < 3 else 32):
                    touched.update(self._last_ids)
                    break
        if not touched:
            return np.zeros(0, dtype=np.int64)
        tr = np.zeros(len(self.rpop), dtype=bool)
        tr[list(touched)] = True
        inside = np.flatnonzero(tr[lab.clip(0)] & (lab >= 0) & self.movable)
        ring = set(self._neighbour_regions(inside))
        tr[list(ring)] = True
        return np.flatnonzero(tr[lab.clip(0)] & (lab >= 0) & self.movable)

    _last_ids: list[int] = []

    def can_hold(self, p: float) -> bool:
        """True when some whole number of regions in range can add up to population *p*."""
        return p > 0 and math.ceil(p / self.hi - 1e-9) <= math.floor(p / self.lo + 1e-9)

    def _resolve_area(self, regions: list[int], reg: RegionMeta, rng: random.Random, n_trees: int = 8) -> bool:
        """Re-divide the union of *regions*; keep the result only if all land in range.

        First by balanced bisection; when that leaves a region out of range
        (coarse atoms), by exact range-feasible cuts of random spanning trees
        (:meth:`_tree_divide`, any number of regions). The winner is then
        improved with everything else frozen; it is kept only when every
        region of the area is still in range.
        """
        lab = self.lab
        u = np.flatnonzero(np.isin(lab, regions))
        if u.size == 0:
            return False
        key = hash(u.tobytes())
        if key in self._failed:
            return False
        ptot = float(self.pop[u].sum())
        if not self.can_hold(ptot):  # no number of regions in range adds up to this total
            self._failed.add(key)
            return False
        saved = lab[u].copy()
        k0 = region_count(ptot, self.lo, self.hi, self.T)
        for method in ("bisect", "tree"):
            if method == "bisect":
                k = k0
                loc = None
            else:
                loc = self._tree_divide(u, rng, n_trees=n_trees)
                if loc is None:
                    continue
                k = int(loc.max()) + 1
            ids = list(regions[:k])
            while len(ids) < k:
                ids.append(reg.new("standard", []))
            self._grow(len(reg))
            if loc is None:
                self.bisect(u, ids)
                self.make_contiguous(within=u)
            else:
                lab[u] = np.asarray(ids, dtype=np.int64)[loc]
            self.recompute_within(u, also=list(regions) + ids)
            frozen_before = self.frozen
            self.frozen = set(range(len(self.rpop))) - set(ids)
            try:
                budget = int(20 * u.size) + 10
                self.local_search(u, rng, budget)
                for _ in range(4):
                    if not self.pair_search(set(ids), rng):
                        break
                    self.local_search(u, rng, budget)
            finally:
                self.frozen = frozen_before
            after = [r for r in ids if self.rsize[r] > 0 and not (self.lo - 1e-9 <= self.rpop[r] <= self.hi + 1e-9)]
            if not after:
                self._last_ids = ids + [r for r in regions if r not in ids]
                self.repair_counts[method] = self.repair_counts.get(method, 0) + 1
                return True
            lab[u] = saved
            self.recompute_within(u, also=list(regions) + ids)
        self._failed.add(key)
        self.repair_counts["failed"] = self.repair_counts.get("failed", 0) + 1
        return False

    def _tree_divide(self, u: np.ndarray, rng: random.Random, n_trees: int = 48) -> np.ndarray | None:
        """Divide the atoms *u* into connected parts all in range, by cuts of random spanning trees.

        Each tree (:func:`~geo.partition.regions.treecut.random_spanning_tree`, following the
        centroids) is divided exactly when it can be (:func:`~geo.partition.regions.treecut.tree_partition`);
        the first tree that can wins. Parts are subtrees, hence connected.

        Returns
        -------
        ndarray of int or None
            Part ``0..k-1`` of each atom of *u*, or None when no tree tried can be divided.
        """
        m = u.size
        li, lj, _ = self._local_edges(u)
        g = sp.coo_matrix((np.ones(li.size), (li, lj)), shape=(m, m))
        if m > 1 and connected_components(g, directed=False)[0] != 1:
            return None
        p = self.pop[u]
        x, y = self.x[u], self.y[u]
        nprng = np.random.default_rng(rng.randrange(2**32))
        groups = self.lab[u]
        for t in range(n_trees):
            # every other tree follows the current regions (cuts shift along it), the others are free
            ti, tj = random_spanning_tree(m, li, lj, x, y, nprng, spread=0.3 if t < 2 else 1.5,
                                          groups=groups if t % 2 == 0 else None)
            loc = tree_partition(ti, tj, p, self.lo, self.hi, self.T, nprng, root=int(nprng.integers(m)))
            if loc is not None:
                return loc
        return None


def _first_per_group(group: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Positions of the first row of each *group* value when sorted by *keys* (ascending) within it."""
    order = np.lexsort(tuple(reversed(keys)) + (group,))
    g = group[order]
    first = np.ones(g.size, dtype=bool)
    first[1:] = g[1:] != g[:-1]
    return order[first]


def _contiguous(lab: np.ndarray, fi, fj, fl, scope: np.ndarray, pop: np.ndarray, max_iter: int = 100) -> None:
    """Reassign, in place, every part of a region but its main one to the neighbour sharing most boundary.

    ``lab`` holds regions of nodes ``0..n-1``, edges ``(fi, fj)`` with lengths ``fl``; only nodes with
    ``scope`` take part. The main part holds most population, then most nodes.
    """
    n = lab.size
    idx = np.flatnonzero(scope)
    if idx.size == 0:
        return
    for _ in range(max_iter):
        same = (lab[fi] == lab[fj]) & scope[fi] & scope[fj]
        g = sp.coo_matrix((np.ones(int(same.sum())), (fi[same], fj[same])), shape=(n, n))
        _, comp = connected_components(g, directed=False)
        r, c = lab[idx], comp[idx]
        base = int(comp.max()) + 1
        key, inv = np.unique(r * base + c, return_inverse=True)
        kr, kc = key // base, key % base
        if np.unique(kr).size == kr.size:
            return
        psum = np.bincount(inv, weights=pop[idx], minlength=key.size)
        cnt = np.bincount(inv, minlength=key.size)
        main = kc[_first_per_group(kr, -psum, -cnt, kc)]
        is_main = np.zeros(n, dtype=bool)
        is_main[idx[np.isin(c, main)]] = True
        frag = scope & ~is_main
        e1 = frag[fi] & is_main[fj]
        e2 = frag[fj] & is_main[fi]
        fc = np.concatenate([comp[fi[e1]], comp[fj[e2]]])
        if fc.size == 0:
            return
        tr = np.concatenate([lab[fj[e1]], lab[fi[e2]]])
        w = np.concatenate([fl[e1], fl[e2]]) + 1e-6
        rb = int(tr.max()) + 1
        key2, inv2 = np.unique(fc * rb + tr, return_inverse=True)
        wsum = np.bincount(inv2, weights=w, minlength=key2.size)
        c2, r2 = key2 // rb, key2 % rb
        pick = _first_per_group(c2, -wsum, r2)
        target = np.full(base, -1, dtype=np.int64)
        target[c2[pick]] = r2[pick]
        move = frag & (target[comp] >= 0)
        lab[move] = target[comp[move]]
