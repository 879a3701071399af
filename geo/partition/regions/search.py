"""Local search (mixin of :class:`RegionState`): atom moves and pair re-cuts.

* *atom moves*: a boundary atom moves to a neighbouring region when that lowers
  ``sum_r(-PP_r + w * ((p_r - T) / T)**2)`` plus a large penalty outside ``[min_pop, max_pop]``.
  Area, population and perimeter of a region are updated incrementally
  (``P' = P - perim_a + 2 * shared(a, r)``), so a move costs O(degree); the donor region must stay
  connected (BFS inside the region from one of the atom's neighbours, stopped as soon as all are reached).
* *pair re-cuts* (large neighbourhood): the union of two adjacent regions is re-cut by the best
  balanced straight cut, accepted when the objective drops and both sides are connected.
"""

from __future__ import annotations

import math
import random
from collections import deque

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

__all__ = ["SearchMixin"]


class SearchMixin:
    """Atom moves, pair re-cuts and the improvement loop alternating them."""

    def can_remove(self, a: int, r: int) -> bool:
        """True when region *r* stays connected without atom *a*."""
        lab = self.lab
        nb = self.nb
        inr = [b for b, _ in nb[a] if lab[b] == r]
        if len(inr) <= 1:
            return True
        targets = set(inr[1:])
        seen = {inr[0], a}
        stack = [inr[0]]
        while stack:
            u = stack.pop()
            for v, _ in nb[u]:
                if v not in seen and lab[v] == r:
                    seen.add(v)
                    if v in targets:
                        targets.discard(v)
                        if not targets:
                            return True
                    stack.append(v)
        return not targets


    # --- improvement -------------------------------------------------------------

    def improve(self, atoms_idx, rng: random.Random, sweeps: float, max_rounds: int, progress=None) -> dict:
        """Alternate atom moves and pair re-cuts on the regions of *atoms_idx*.

        Returns
        -------
        dict
            Counts of atom moves and accepted pair re-cuts.
        """
        atoms_idx = np.asarray(atoms_idx, dtype=np.int64)
        stats = {"atom_moves": 0, "pair_recuts": 0, "rounds": 0}
        if atoms_idx.size == 0:
            return stats
        budget = int(sweeps * atoms_idx.size) + 10
        moved = self.local_search(atoms_idx, rng, budget)
        stats["atom_moves"] += len(moved)
        dirty = set(int(r) for r in np.unique(self.lab[atoms_idx]) if r >= 0)
        for rnd in range(max_rounds):
            if progress is not None:
                progress(rnd / max_rounds)
            changed = self.pair_search(dirty, rng)
            stats["rounds"] += 1
            if not changed:
                break
            stats["pair_recuts"] += len(changed) // 2
            ch = np.zeros(len(self.rpop), dtype=bool)
            ch[list(changed)] = True
            idx = np.flatnonzero(ch[self.lab.clip(0)] & (self.lab >= 0) & self.movable)
            moved = self.local_search(idx, rng, int(sweeps * idx.size) + 10)
            stats["atom_moves"] += len(moved)
            dirty = set(changed) | moved
        if progress is not None:
            progress(1.0)
        return stats

    def local_search(self, atoms_idx, rng: random.Random, budget: int) -> set[int]:
        """Single-atom moves that lower the cost, until none is left or *budget* is spent.

        Parameters
        ----------
        atoms_idx : array of int
            Atoms to examine first (neighbours of moved atoms are added).
        rng : random.Random
            Shuffles the initial order.
        budget : int
            Maximum number of atom evaluations.

        Returns
        -------
        set of int
            Regions that gained or lost atoms.
        """
        lab = self.lab
        nb = self.nb
        if self._static_lists is None:  # atom sums never change: convert once, not per call
            self._static_lists = (self.pop.tolist(), self.area.tolist(), self.per.tolist())
        pop, area, per = self._static_lists
        rpop, rarea, rper, rsize = self.rpop, self.rarea, self.rper, self.rsize
        movable = self.movable.tolist()
        f = self.f
        frozen = self.frozen
        T = self.T
        home = self.home.tolist() if self.home is not None and self.move_cost > 0 else None
        mc = self.move_cost / T
        order = [int(a) for a in atoms_idx if movable[a]]
        rng.shuffle(order)
        dq = deque(order)
        inq = [False] * self.n
        for a in order:
            inq[a] = True
        lab_l = lab.tolist()
        fcache = [f(rpop[r], rarea[r], rper[r]) for r in range(len(rpop))]
        changed: set[int] = set()
        evals = 0
        while dq and evals < budget:
            a = dq.popleft()
            inq[a] = False
            evals += 1
            r = lab_l[a]
            if r in frozen or rsize[r] <= 1:
                continue
            lr = 0.0
            cand: dict[int, float] = {}
            for b, w in nb[a]:
                s = lab_l[b]
                if s == r:
                    lr += w
                elif s >= 0:
                    cand[s] = cand.get(s, 0.0) + w
            if not cand:
                continue
            pa, aa, qa = pop[a], area[a], per[a]
            pr2, ar2, qr2 = rpop[r] - pa, rarea[r] - aa, rper[r] - qa + 2.0 * lr
            fr2 = f(pr2, ar2, qr2)
            base = fr2 - fcache[r]
            best, bs, bf = -1e-9, -1, 0.0
            for s, ls in cand.items():
                if s in frozen:
                    continue
                fs2 = f(rpop[s] + pa, rarea[s] + aa, rper[s] + qa - 2.0 * ls)
                d = base + fs2 - fcache[s]
                if home is not None:
                    h = home[a]
                    if h == r:
                        d += mc * pa
                    elif h == s:
                        d -= mc * pa
                if d < best:
                    best, bs, bf = d, s, fs2
            if bs < 0 or not self.can_remove(a, r):
                continue
            s = bs
            lab[a] = s
            lab_l[a] = s
            rpop[r], rarea[r], rper[r] = pr2, ar2, qr2
            rsize[r] -= 1
            rpop[s] += pa
            rarea[s] += aa
            rper[s] += qa - 2.0 * cand[s]
            rsize[s] += 1
            fcache[r] = fr2
            fcache[s] = bf
            changed.add(r)
            changed.add(s)
            for b, _ in nb[a]:
                if not inq[b] and movable[b]:
                    inq[b] = True
                    dq.append(b)
        return changed

    def region_pairs(self, regions: set[int] | None = None) -> np.ndarray:
        """Adjacent region pairs (r < s) on the free graph, optionally touching *regions*."""
        a, b = self.lab[self.fi], self.lab[self.fj]
        m = (a != b) & (a >= 0) & (b >= 0) & self.movable[self.fi] & self.movable[self.fj]
        if regions is not None:
            sel = np.zeros(len(self.rpop), dtype=bool)
            sel[list(regions)] = True
            m &= sel[a.clip(0)] | sel[b.clip(0)]
        if not m.any():
            return np.zeros((0, 2), dtype=np.int64)
        return np.unique(np.stack([np.minimum(a[m], b[m]), np.maximum(a[m], b[m])], axis=1), axis=0)

    def pair_search(self, regions: set[int] | None, rng: random.Random, require: set[int] | None = None) -> set[int]:
        """Re-cut adjacent region pairs with the best balanced straight cut.

        Parameters
        ----------
        regions : set of int or None
            Only pairs touching these regions (None: all pairs).
        rng : random.Random
            Order in which pairs are visited.
        require : set of int, optional
            Only pairs with at least one region in this set (re-draw repair).

        Returns
        -------
        set of int
            Regions that were re-cut.
        """
        pairs = self.region_pairs(regions)
        if require is not None:
            keep = [i for i, (r, s) in enumerate(pairs) if r in require or s in require]
            pairs = pairs[keep]
        order = list(range(len(pairs)))
        rng.shuffle(order)
        changed: set[int] = set()
        frozen = self.frozen
        # members of each region once per round: a re-cut only moves atoms between its two regions,
        # and those are not visited again in this round
        regs = np.unique(pairs) if len(pairs) else np.zeros(0, dtype=np.int64)
        idx = np.flatnonzero(np.isin(self.lab, regs))
        lr = self.lab[idx]
        srt = np.argsort(lr, kind="stable")
        bounds = np.searchsorted(lr[srt], regs)
        ends = np.searchsorted(lr[srt], regs, side="right")
        self._members = {int(r): idx[srt[b:e]] for r, b, e in zip(regs.tolist(), bounds, ends)}
        try:
            for t in order:
                r, s = int(pairs[t][0]), int(pairs[t][1])
                if r in frozen or s in frozen or r in changed or s in changed:
                    continue  # pairs of regions re-cut in this round wait for the next one
                if self._recut_pair(r, s):
                    changed.add(r)
                    changed.add(s)
        finally:
            self._members = None
        return changed

    def _recut_pair(self, r: int, s: int, force: bool = False) -> bool:
        lab = self.lab
        if self._members is not None and r in self._members and s in self._members:
            u = np.sort(np.concatenate([self._members[r], self._members[s]]))
        else:
            u = np.flatnonzero((lab == r) | (lab == s))
        m = u.size
        if m < 2 or not self.movable[u].all():
            return False
        ptot = float(self.pop[u].sum())
        if ptot < 2 * self.lo - 1e-9 or ptot > 2 * self.hi + 1e-9:
            return False
        li, lj, el = self._local_edges(u)
        t = self._split_table(u, li, lj, el)
        pl = t["pop_l"]
        pr = ptot - pl
        feas = (pl >= self.lo - 1e-9) & (pl <= self.hi + 1e-9) & (pr >= self.lo - 1e-9) & (pr <= self.hi + 1e-9)
        if not feas.any():
            return False
        cost = self._fvec(pl, t["area_l"], t["per_l"]) + self._fvec(pr, t["area"] - t["area_l"], t["per_r"])
        cost = np.where(feas, cost, np.inf)
        cur = self.cost(r) + self.cost(s)
        order = t["order"]
        # which side keeps which label: fewer residents moved (matters for re-draws)
        home = self.home if self.home is not None else lab
        hu = home[u]
        pu = self.pop[u]
        cand = np.argsort(cost, axis=None, kind="stable")[: 64 if force else 8]
        if force:
            cur = math.inf
        for flat in cand:
            c = float(cost.flat[flat])
            if not math.isfinite(c):
                break
            d, k = divmod(int(flat), m - 1)
            left = np.zeros(m, dtype=bool)
            left[order[d, : k + 1]] = True
            stay_rs = pu[left & (hu == r)].sum() + pu[~left & (hu == s)].sum()
            stay_sr = pu[left & (hu == s)].sum() + pu[~left & (hu == r)].sum()
            lr_, ls_ = (r, s) if stay_rs >= stay_sr else (s, r)
            if self.home is not None and self.move_cost > 0:
                cur_moved = pu[hu != lab[u]].sum()
                new_moved = pu.sum() - max(stay_rs, stay_sr)
                c += self.move_cost * (new_moved - cur_moved) / self.T
                if not c < cur - 1e-7:
                    continue
            elif not c < cur - 1e-7:
                break
            same = left[li] == left[lj]
            g = sp.coo_matrix((np.ones(int(same.sum())), (li[same], lj[same])), shape=(m, m))
            nc, _ = connected_components(g, directed=False)
            if nc != 2:
                continue
            lab[u[left]] = lr_
            lab[u[~left]] = ls_
            for reg_id, msk in ((lr_, left), (ls_, ~left)):
                ein = msk[li] & msk[lj]
                self.rpop[reg_id] = float(pu[msk].sum())
                self.rarea[reg_id] = float(self.area[u][msk].sum())
                self.rper[reg_id] = float(self.per[u][msk].sum() - 2.0 * el[ein].sum())
                self.rsize[reg_id] = int(msk.sum())
            return True
        return False

