"""Initial partition: recursive balanced bisection by straight cuts (mixin of :class:`RegionState`).

A component that must hold ``k`` regions is cut into parts holding ``k//2`` and ``k - k//2`` regions'
worth of population. Atoms are ordered along 8 directions (every 22.5°); every split position whose
population lies within ``bisect_tol * target`` of the ideal is scored with cumulative sums (population,
area, perimeter and cut length of both sides for all positions of all orders at once) and the shortest
cut wins; the last level (two regions) minimises the region objective directly.
"""

from __future__ import annotations

import numpy as np

from .common import COS, FOUR_PI, SIN

__all__ = ["GrowMixin"]


class GrowMixin:
    """Bisection and the cumulative-sum table of straight cuts (used by the pair re-cuts too)."""

    def bisect(self, members: np.ndarray, ids: list[int]) -> None:
        """Recursively bisect *members* into ``len(ids)`` regions labelled *ids*."""
        lab = self.lab
        stack = [(np.asarray(members, dtype=np.int64), list(ids))]
        while stack:
            idx, rids = stack.pop()
            if len(rids) == 1 or idx.size == 1:
                lab[idx] = rids[0]
                continue
            k1 = len(rids) // 2
            k2 = len(rids) - k1
            left = self._best_cut(idx, k1, k2)
            side = np.zeros(self.n, dtype=bool)
            side[left] = True
            right = idx[~side[idx]]
            stack.append((left, rids[:k1]))
            stack.append((right, rids[k1:]))

    def _split_table(self, idx, li, lj, el):
        """Cumulative sums for every split of every ordering of *idx*.

        Returns
        -------
        dict with ``order`` (D, m) and, for split ``s`` (first ``s+1`` atoms of
        the order on the left), arrays (D, m-1): ``pop_l``, ``area_l``,
        ``per_l``, ``per_r``, ``cut``; plus totals ``pop``, ``area``.
        """
        m = idx.size
        p = self.pop[idx]
        a = self.area[idx]
        q = self.per[idx]
        proj = self.x[idx][None, :] * COS + self.y[idx][None, :] * SIN
        order = np.argsort(proj, axis=1, kind="stable")
        d = order.shape[0]
        pos = np.empty_like(order)
        np.put_along_axis(pos, order, np.broadcast_to(np.arange(m), (d, m)), axis=1)
        pop_l = np.cumsum(p[order], axis=1)[:, :-1]
        area_l = np.cumsum(a[order], axis=1)[:, :-1]
        q_l = np.cumsum(q[order], axis=1)[:, :-1]
        et = float(el.sum())
        if li.size:
            pa, pb = pos[:, li], pos[:, lj]
            off = (np.arange(d) * m)[:, None]
            w = np.broadcast_to(el, pa.shape).ravel()
            hi_e = (np.maximum(pa, pb) + off).ravel()
            lo_e = (np.minimum(pa, pb) + off).ravel()
            in_l = np.cumsum(np.bincount(hi_e, weights=w, minlength=d * m).reshape(d, m), axis=1)[:, :-1]
            below = np.cumsum(np.bincount(lo_e, weights=w, minlength=d * m).reshape(d, m), axis=1)[:, :-1]
            in_r = et - below
        else:
            in_l = in_r = np.zeros((d, m - 1))
        qt = float(q.sum())
        return {
            "order": order,
            "pop_l": pop_l,
            "area_l": area_l,
            "per_l": np.maximum(q_l - 2.0 * in_l, 1e-9),
            "per_r": np.maximum(qt - q_l - 2.0 * in_r, 1e-9),
            "cut": et - in_l - in_r,
            "pop": float(p.sum()),
            "area": float(a.sum()),
        }

    def _fvec(self, p, a, per):
        """Vectorised :meth:`f` (without the range penalty)."""
        d = (p - self.T) / self.T
        return -FOUR_PI * a / (per * per) + self.w * d * d

    def _best_cut(self, idx, k1, k2):
        """Left part of the best balanced straight cut of *idx* into k1 + k2 regions."""
        m = idx.size
        li, lj, el = self._local_edges(idx)
        t = self._split_table(idx, li, lj, el)
        pl = t["pop_l"]
        total = t["pop"]
        want = total * k1 / (k1 + k2)
        dev = np.abs(pl - want)
        feas = (pl >= k1 * self.lo) & (pl <= k1 * self.hi) & (total - pl >= k2 * self.lo) & (total - pl <= k2 * self.hi)
        cand = feas & (dev <= self.tol * self.T)
        if not cand.any():
            cand = feas if feas.any() else np.ones_like(feas)
            cand = cand & (dev <= dev[cand].min() + 1e-9)
        if k1 == 1 and k2 == 1:
            score = self._fvec(pl, t["area_l"], t["per_l"]) + self._fvec(total - pl, t["area"] - t["area_l"], t["per_r"])
        else:
            score = t["cut"] + 1e-6 * dev
        score = np.where(cand, score, np.inf)
        flat = int(np.argmin(score))
        d, s = divmod(flat, m - 1)
        return idx[t["order"][d, : s + 1]]

