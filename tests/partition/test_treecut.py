"""Exact range-feasible tree cuts (geo.partition.regions.treecut) and tight ranges in RegionBuilder."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from geo.partition.regions import RegionBuilder
from geo.partition.regions.treecut import TreePartition, random_spanning_tree, tree_partition
from tests.partition.test_regions import lattice, region_graph_connected


def random_tree(rng, n):
    tj = np.arange(1, n)
    ti = np.array([rng.integers(0, v) for v in tj], dtype=np.int64)
    return ti, tj


def brute_force_feasible(ti, tj, pop, lo, hi) -> bool:
    n = pop.size
    for mask in itertools.product([False, True], repeat=n - 1):
        keep = np.array(mask, dtype=bool)
        g = sp.coo_matrix((np.ones(int(keep.sum())), (ti[keep], tj[keep])), shape=(n, n))
        _, lab = connected_components(g, directed=False)
        s = np.bincount(lab, weights=pop)
        if ((s >= lo) & (s <= hi)).all():
            return True
    return False


def parts_are_subtrees(ti, tj, lab) -> bool:
    n = lab.size
    same = lab[ti] == lab[tj]
    g = sp.coo_matrix((np.ones(int(same.sum())), (ti[same], tj[same])), shape=(n, n))
    nc, _ = connected_components(g, directed=False)
    return nc == int(lab.max()) + 1


@pytest.mark.parametrize("seed", range(6))
def test_tree_partition_is_exact_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n = int(rng.integers(2, 11))
        ti, tj = random_tree(rng, n)
        pop = rng.integers(0, 700, n).astype(float)
        lo, hi = 1000, int(rng.choice([1100, 1300, 1600]))
        got = tree_partition(ti, tj, pop, lo, hi, rng=rng, root=int(rng.integers(n)))
        assert (got is not None) == brute_force_feasible(ti, tj, pop, lo, hi)
        if got is not None:
            s = np.bincount(got, weights=pop)
            assert ((s >= lo) & (s <= hi)).all()
            assert parts_are_subtrees(ti, tj, got)


def test_tree_partition_known_answers():
    # a path of 20 × 150: parts of 7 or 8 atoms (1,050 or 1,200) cannot make 3,000
    li = np.arange(19)
    assert tree_partition(li, li + 1, np.full(20, 150.0), 1000, 1200) is None
    # 24 × 150 = 3,600: three parts of 1,200
    lab = tree_partition(np.arange(23), np.arange(1, 24), np.full(24, 150.0), 1000, 1200)
    assert lab is not None and sorted(np.bincount(lab, weights=np.full(24, 150.0))) == [1200, 1200, 1200]
    # an atom above the maximum can never be in range
    assert tree_partition(np.array([0]), np.array([1]), np.array([1300.0, 10.0]), 1000, 1200) is None
    # not a tree (an edge missing)
    assert tree_partition(np.array([0]), np.array([1]), np.array([600.0, 600.0, 600.0]), 1000, 2000) is None


@pytest.mark.parametrize("seed", range(4))
def test_random_spanning_tree_spans_and_varies(seed):
    atoms = lattice(7, 5)
    from geo.partition.adjacency import atom_geometry_arrays, build_adjacency

    adj = build_adjacency(atoms)
    g = atom_geometry_arrays(atoms)
    rng = np.random.default_rng(seed)
    t1 = random_spanning_tree(35, adj.i, adj.j, g["x"], g["y"], rng)
    t2 = random_spanning_tree(35, adj.i, adj.j, g["x"], g["y"], rng)
    for ti, tj in (t1, t2):
        assert ti.size == 34
        nc, _ = connected_components(sp.coo_matrix((np.ones(34), (ti, tj)), shape=(35, 35)), directed=False)
        assert nc == 1
        edges = set(zip(adj.i.tolist(), adj.j.tolist()))
        assert all((min(a, b), max(a, b)) in edges for a, b in zip(ti.tolist(), tj.tolist()))
    assert set(zip(*map(np.ndarray.tolist, t1))) != set(zip(*map(np.ndarray.tolist, t2)))


@pytest.mark.parametrize("seed", range(4))
def test_tree_partition_class_on_a_lattice(seed):
    rng = np.random.default_rng(seed)
    atoms = lattice(6, 6, people=rng.integers(100, 200, 36))
    from geo.partition.adjacency import build_adjacency

    adj = build_adjacency(atoms)
    tp = TreePartition(36, adj.i, adj.j, atoms["people"], 1000, 1400, seed=seed, n_trees=200).solve()
    assert tp.labels_ is not None, tp.trees_tried_
    assert ((tp.part_pop_ >= 1000) & (tp.part_pop_ <= 1400)).all()
    assert tp.part_pop_.sum() == atoms["people"].sum()
    assert region_graph_connected(atoms, tp.labels_, adj)


def test_tree_partition_class_disconnected_graph_gives_none():
    tp = TreePartition(4, [0, 2], [1, 3], [600, 600, 600, 600], 1000, 2000).solve()
    assert tp.labels_ is None and tp.n_parts_ == 0


@pytest.mark.parametrize("seed", range(4))
def test_region_builder_tight_range_on_coarse_atoms(seed):
    """1,000–1,200 on atoms of 60–240 people (a 200-person window, atoms up to a fifth of a grid)."""
    rng = np.random.default_rng(100 + seed)
    atoms = lattice(14, 12, people=rng.integers(60, 240, 168))
    rb = RegionBuilder(atoms, min_pop=1000, max_pop=1200, seed=seed).solve()
    p = rb.region_pop_
    assert p.sum() == atoms["people"].sum()
    assert ((p >= 1000) & (p <= 1200)).all(), sorted(p)
    assert region_graph_connected(atoms, rb.labels_)
    assert all(not f for f in rb.region_flags_)


def _state(atoms, lo=1000, hi=2000):
    from geo.partition.adjacency import atom_geometry_arrays, build_adjacency
    from geo.partition.regions import RegionState

    adj = build_adjacency(atoms)
    n = len(atoms)
    lab = np.full(n, -1, dtype=np.int64)
    st = RegionState(lab, atoms["people"].to_numpy(float), atom_geometry_arrays(atoms), adj.i, adj.j, adj.length,
                     (lo + hi) / 2, lo, hi)
    st.movable[:] = True
    return st, adj


@pytest.mark.parametrize("seed", range(5))
def test_local_sums_and_edges_match_the_global_ones(seed):
    """recompute_within / _local_edges (O(area)) agree with recompute / a scan of every edge (O(n))."""
    rng = np.random.default_rng(seed)
    atoms = lattice(9, 7, people=rng.integers(0, 300, 63))
    st, adj = _state(atoms)
    st.lab[:] = np.arange(63) // 9  # 7 rows as regions
    st.recompute()
    area = np.flatnonzero(np.isin(st.lab, [2, 3, 4]))
    st.lab[area] = rng.choice([2, 3, 4, 7], area.size)  # relabel inside the area, one new region
    st.recompute_within(area, also=[2, 3, 4, 7])
    local = (list(st.rpop), list(st.rarea), list(st.rper), list(st.rsize))
    st.recompute(8)
    np.testing.assert_allclose(local[0], st.rpop)
    np.testing.assert_allclose(local[1], st.rarea)
    np.testing.assert_allclose(local[2], st.rper)
    assert local[3] == st.rsize
    idx = np.sort(rng.choice(63, 25, replace=False))
    li, lj, el = st._local_edges(idx)
    got = {(int(idx[a]), int(idx[b]), round(float(w), 6)) for a, b, w in zip(li, lj, el)}
    inside = np.isin(adj.i, idx) & np.isin(adj.j, idx)
    want = {(int(a), int(b), round(float(w), 6)) for a, b, w in zip(adj.i[inside], adj.j[inside], adj.length[inside])}
    assert got == want


@pytest.mark.parametrize("seed", range(4))
def test_make_contiguous_within_an_area(seed):
    rng = np.random.default_rng(seed)
    atoms = lattice(8, 8, people=rng.integers(50, 300, 64))
    st, adj = _state(atoms)
    st.lab[:] = np.where(np.arange(64) % 8 < 4, 0, 1)  # west half 0, east half 1
    area = np.flatnonzero(np.arange(64) % 8 >= 4)
    st.lab[area] = rng.choice([1, 2], area.size)  # scatter region 2 inside the east half
    outside = st.lab[np.arange(64) % 8 < 4].copy()
    st.make_contiguous(within=area)
    assert (st.lab[np.arange(64) % 8 < 4] == outside).all()  # nothing outside the area moves
    assert set(st.lab[area]) <= {1, 2}
    assert region_graph_connected(atoms, st.lab, adj)
