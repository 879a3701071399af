"""Exact range-feasible partitions of a spanning tree (dynamic programming).

Cutting edges of a spanning tree of an area splits it into subtrees, and every
subtree is connected on the atom graph. :func:`tree_partition` decides, for one
tree, whether some set of cut edges leaves *every* part with a population in
``[lo, hi]`` (any number of parts) and returns such a division. It is exact for
the tree: a pseudo-polynomial dynamic program over subtrees, bottom-up.

For each atom ``v`` let ``R(v)`` be the set of populations the part holding
``v`` can have inside ``v``'s subtree (children's parts that are cut off must
already be in range). With children ``c1..cd``::

    R(v) = {pop(v)} ⊕ opt(c1) ⊕ … ⊕ opt(cd),   opt(c) = R(c) ∪ ({0} if R(c) ∩ [lo, hi] ≠ ∅)

(``⊕`` is the sum set, truncated at ``hi``); the tree can be divided when
``R(root) ∩ [lo, hi] ≠ ∅``. Sets are boolean arrays over ``0..hi`` in
population units (integers; populations are rounded to ``unit`` when ``hi``
is large), so one atom costs O(degree · hi) at worst and usually far less
(sum sets of small supports are built from their support points). The
division is read back top-down, choosing among the feasible options at
random (seeded), so different seeds give different divisions.

Random spanning trees (:func:`random_spanning_tree`: minimum spanning tree of
centroid distances scaled by random factors, so trees follow the geometry)
give the range repair of :class:`~geo.partition.regions.RegionState` many
candidate divisions of an area where straight cuts cannot balance coarse
atoms (Denver at 1,000–1,200 or 500–800).

:class:`TreePartition` wraps both in the spopt style (``solve()`` and plain
attributes) for a whole graph.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree

__all__ = ["tree_partition", "random_spanning_tree", "TreePartition"]

_DIRECT_LIMIT = 250_000  # support pairs above which sum sets are convolved instead of enumerated


def _sumset(a: np.ndarray, b: np.ndarray, h: int) -> np.ndarray:
    """Boolean sum set ``{x + y : a[x], b[y]}`` truncated to ``0..h``."""
    ia = np.flatnonzero(a)
    ib = np.flatnonzero(b)
    out = np.zeros(h + 1, dtype=bool)
    if ia.size == 0 or ib.size == 0:
        return out
    if ia.size * ib.size <= _DIRECT_LIMIT:
        s = (ia[:, None] + ib[None, :]).ravel()
        out[s[s <= h]] = True
        return out
    a0, a1, b0, b1 = ia[0], ia[-1], ib[0], ib[-1]
    c = np.convolve(a[a0:a1 + 1].astype(np.float64), b[b0:b1 + 1].astype(np.float64))
    nz = np.flatnonzero(c > 0.5) + a0 + b0
    out[nz[nz <= h]] = True
    return out


def tree_partition(ti, tj, pop, lo: float, hi: float, target: float | None = None, rng=None, root: int = 0,
                   unit: float | None = None) -> np.ndarray | None:
    """Divide a tree into parts whose populations all lie in ``[lo, hi]``.

    Parameters
    ----------
    ti, tj : array of int
        The ``n - 1`` edges of a spanning tree on nodes ``0..n-1``.
    pop : array of float
        Population per node (>= 0).
    lo, hi : float
        Allowed part population (inclusive).
    target : float, optional
        Preferred part population (default ``(lo + hi) / 2``): the root's
        part is chosen closest to it, as is each part cut off.
    rng : numpy.random.Generator, optional
        Breaks ties among feasible choices (default: seed 0).
    root : int
        Root of the tree.
    unit : float, optional
        Population unit of the dynamic program (default 1, or ``hi / 4000``
        when ``hi`` is larger than 4,000). The result is checked with the
        exact populations.

    Returns
    -------
    ndarray of int64 or None
        Part ``0..k-1`` of each node, or None when no cut of this tree puts
        every part in range (or the edges do not form a spanning tree).
    """
    pop = np.asarray(pop, dtype=float)
    n = int(pop.size)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rng = rng if rng is not None else np.random.default_rng(0)
    target = float(target) if target is not None else (lo + hi) / 2.0
    if unit is None:
        unit = 1.0 if hi <= 4000 else hi / 4000.0
    p = np.rint(pop / unit).astype(np.int64)
    L = int(math.ceil(lo / unit - 1e-9))
    H = int(math.floor(hi / unit + 1e-9))
    Tu = target / unit
    if L > H or (p > H).any():
        return None
    ti = np.asarray(ti, dtype=np.int64)
    tj = np.asarray(tj, dtype=np.int64)
    if ti.size != n - 1:
        return None
    g = sp.coo_matrix((np.ones(ti.size), (ti, tj)), shape=(n, n)).tocsr()
    order, pred = breadth_first_order(g, root, directed=False, return_predecessors=True)
    if order.size != n:
        return None
    children: list[list[int]] = [[] for _ in range(n)]
    for v in order[1:].tolist():
        children[int(pred[v])].append(v)
    R: list[np.ndarray | None] = [None] * n
    steps: list[list[np.ndarray]] = [[] for _ in range(n)]
    pl = p.tolist()
    for v in order[::-1].tolist():
        cur = np.zeros(H + 1, dtype=bool)
        cur[pl[v]] = True
        st = steps[v]
        for c in children[v]:
            opt = R[c].copy()
            if R[c][L:].any():
                opt[0] = True
            st.append(cur)
            cur = _sumset(cur, opt, H)
        R[v] = cur
    ok_root = np.flatnonzero(R[root][L:]) + L
    if ok_root.size == 0:
        return None

    def pick(values: np.ndarray) -> int:
        d = np.abs(values - Tu)
        best = np.flatnonzero(d <= d.min() + 1e-9)
        return int(values[best[int(rng.integers(best.size))]])

    out = np.full(n, -1, dtype=np.int64)
    n_parts = 1
    stack = [(root, pick(ok_root), 0)]
    while stack:
        v, w, part = stack.pop()
        out[v] = part
        for i in range(len(children[v]) - 1, -1, -1):
            c = children[v][i]
            before = steps[v][i]
            rc = R[c]
            xs = np.arange(w + 1)
            merge = rc[: w + 1] & before[w - xs]
            closable = bool(rc[L:].any()) and bool(before[w])
            m_idx = np.flatnonzero(merge)
            choices = m_idx.size + (1 if closable else 0)
            if choices == 0:  # cannot happen when the tables are right
                return None
            k = int(rng.integers(choices))
            if k < m_idx.size:
                x = int(m_idx[k])
                stack.append((c, x, part))
                w -= x
            else:
                stack.append((c, pick(np.flatnonzero(rc[L:]) + L), n_parts))
                n_parts += 1
    sums = np.bincount(out, weights=pop, minlength=n_parts)
    if (sums < lo - 1e-9).any() or (sums > hi + 1e-9).any():
        return None
    return out


def random_spanning_tree(n: int, li, lj, x=None, y=None, rng=None, spread: float = 1.0, groups=None):
    """A random spanning tree (forest) of a graph, following its geometry.

    Minimum spanning tree of edge weights ``d * exp(spread * N(0, 1))`` where
    ``d`` is the distance between the nodes' centroids (1 without
    coordinates), so short edges are preferred but every draw differs.

    Parameters
    ----------
    n : int
        Number of nodes.
    li, lj : array of int
        Graph edges.
    x, y : array of float, optional
        Node coordinates.
    rng : numpy.random.Generator, optional
    spread : float
        Log-normal spread of the random factor (0: the plain MST).
    groups : array of int, optional
        A current division of the nodes (regions, each connected): edges
        between groups then come last, so the tree spans each group on its
        own and joins the groups by as few edges as a tree can. Cutting
        those edges gives back the current division, and the dynamic
        program can shift every cut along the tree — chains of small moves
        from region to region that single moves cannot make.

    Returns
    -------
    (ndarray, ndarray)
        Tree edges ``(ti, tj)``; fewer than ``n - 1`` when the graph is not connected.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    li = np.asarray(li, dtype=np.int64)
    lj = np.asarray(lj, dtype=np.int64)
    if li.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z
    d = np.ones(li.size) if x is None else np.hypot(x[li] - x[lj], y[li] - y[lj]) + 1e-3
    w = d * np.exp(spread * rng.standard_normal(li.size)) + 1e-9
    if groups is not None:
        groups = np.asarray(groups)
        w = w + (groups[li] != groups[lj]) * (10.0 * float(w.max()) + 1.0)
    m = sp.coo_matrix((w, (li, lj)), shape=(n, n)).tocsr()
    t = minimum_spanning_tree(m + m.T).tocoo()
    return t.row.astype(np.int64), t.col.astype(np.int64)


class TreePartition:
    """Range-feasible connected parts of a graph by random spanning trees (spopt style).

    Parameters
    ----------
    n : int
        Number of nodes.
    li, lj : array of int
        Graph edges (undirected).
    pop : array of float
        Population per node.
    lo, hi : float
        Allowed part population.
    target : float, optional
        Preferred part population.
    x, y : array of float, optional
        Node coordinates (trees follow them).
    seed : int
        Seed of the trees and of the choices.
    n_trees : int
        Trees tried before giving up.

    Attributes
    ----------
    labels_ : ndarray of int64 or None
        Part per node, None when no tree tried could be divided.
    n_parts_ : int
        Number of parts (0 when not found).
    part_pop_ : ndarray
        Population per part.
    trees_tried_ : int
        Trees drawn until one could be divided.
    """

    def __init__(self, n, li, lj, pop, lo, hi, target=None, x=None, y=None, seed: int = 0, n_trees: int = 20):
        self.n = int(n)
        self.li = np.asarray(li, dtype=np.int64)
        self.lj = np.asarray(lj, dtype=np.int64)
        self.pop = np.asarray(pop, dtype=float)
        self.lo, self.hi = float(lo), float(hi)
        self.target = target
        self.x = None if x is None else np.asarray(x, dtype=float)
        self.y = None if y is None else np.asarray(y, dtype=float)
        self.seed = int(seed)
        self.n_trees = int(n_trees)

    def solve(self) -> "TreePartition":
        """Draw trees until one can be divided; returns ``self``."""
        rng = np.random.default_rng(self.seed)
        self.labels_, self.n_parts_, self.part_pop_, self.trees_tried_ = None, 0, np.zeros(0), 0
        g = sp.coo_matrix((np.ones(self.li.size), (self.li, self.lj)), shape=(self.n, self.n))
        if self.n and connected_components(g, directed=False)[0] != 1:
            return self
        for t in range(self.n_trees):
            self.trees_tried_ = t + 1
            ti, tj = random_spanning_tree(self.n, self.li, self.lj, self.x, self.y, rng, spread=0.0 if t == 0 else 1.0)
            lab = tree_partition(ti, tj, self.pop, self.lo, self.hi, self.target, rng)
            if lab is not None:
                self.labels_ = lab
                self.n_parts_ = int(lab.max()) + 1 if lab.size else 0
                self.part_pop_ = np.bincount(lab, weights=self.pop, minlength=self.n_parts_)
                break
        return self
