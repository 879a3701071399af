"""Adjacency and the regionalization engine on small known cases (+ Denver real data)."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from geo.partition.adjacency import build_adjacency
from geo.partition.regions import (
    FLAG_BUILDING,
    FLAG_COMMUNITY_BELOW_MIN,
    FLAG_EXCLUSIVE,
    FLAG_ISLAND_BELOW_MIN,
    RegionBuilder,
    region_count,
)

CRS = "EPSG:32650"
X0, Y0 = 500_000.0, 3_380_000.0


def lattice(nx_: int, ny: int, people=250, size: float = 100.0, x0: float = X0, y0: float = Y0, **cols):
    """nx_ × ny unit squares (metres) as atoms, row-major from the south-west corner."""
    boxes = [shapely.box(x0 + i * size, y0 + j * size, x0 + (i + 1) * size, y0 + (j + 1) * size)
             for j in range(ny) for i in range(nx_)]
    n = len(boxes)
    data = {"people": np.broadcast_to(np.asarray(people), (n,)).astype(np.int64).copy()}
    for k, v in cols.items():
        data[k] = v
    return gpd.GeoDataFrame(data, geometry=boxes, crs=CRS)


def region_graph_connected(atoms, labels, adj=None) -> bool:
    """Every region is connected on the adjacency graph."""
    adj = adj or build_adjacency(atoms)
    g = nx.Graph()
    g.add_nodes_from(range(len(atoms)))
    same = labels[adj.i] == labels[adj.j]
    g.add_edges_from(zip(adj.i[same].tolist(), adj.j[same].tolist()))
    for r in np.unique(labels):
        members = np.flatnonzero(labels == r).tolist()
        if not nx.is_connected(g.subgraph(members)):
            return False
    return True


# --------------------------------------------------------------------------- adjacency


def test_adjacency_is_rook_by_length_not_queen():
    atoms = lattice(2, 2)
    adj = build_adjacency(atoms)
    pairs = set(zip(adj.i.tolist(), adj.j.tolist()))
    # 0 1 / 2 3 (row-major from the south): 0-1, 0-2, 1-3, 2-3 share sides; 0-3 and 1-2 only corners
    assert pairs == {(0, 1), (0, 2), (1, 3), (2, 3)}
    np.testing.assert_allclose(adj.length, 100.0)
    assert not adj.bridged.any()


def test_adjacency_min_shared_threshold():
    a = shapely.box(0, 0, 10, 10)
    b = shapely.box(10, 9.5, 20, 20)  # shares 0.5 m of a side
    c = shapely.box(10, -10, 20, 9.5)  # shares 9.5 m
    atoms = gpd.GeoDataFrame(geometry=[a, b, c], crs=CRS)
    adj = build_adjacency(atoms, min_shared=1.0, gap_tol=0)
    assert set(zip(adj.i.tolist(), adj.j.tolist())) == {(0, 2), (1, 2)}


def test_adjacency_bridges_narrow_gaps_only():
    main = lattice(3, 3)
    near = lattice(1, 1, x0=X0 + 300 + 8)  # 8 m east of the lattice
    far = lattice(1, 1, x0=X0 - 100 - 60)  # 60 m west
    atoms = gpd.GeoDataFrame(
        gpd.pd.concat([main, near, far], ignore_index=True), geometry="geometry", crs=CRS
    )
    adj = build_adjacency(atoms, gap_tol=20.0)
    nc, comp = adj.components()
    assert nc == 2
    assert comp[9] == comp[0]  # the near piece is joined…
    assert comp[10] != comp[0]  # …the far one is not
    assert adj.bridged.sum() >= 1
    assert np.all(adj.gap[adj.bridged] > 0) and np.all(adj.gap[adj.bridged] < 20.0)
    assert np.all(adj.length[adj.bridged] == 0)


def test_adjacency_rejects_geographic_crs():
    with pytest.raises(ValueError, match="metric"):
        build_adjacency(lattice(2, 2).to_crs(4326))


# --------------------------------------------------------------------------- regions


def test_region_count_rounds_into_feasible_range():
    assert region_count(9000, 1000, 2000, 1500) == 6
    assert region_count(2100, 1000, 2000, 1500) == 1 + 1  # round(1.4)=1 is infeasible (> max)
    assert region_count(500, 1000, 2000, 1500) == 1


def test_lattice_6x6_known_answer():
    atoms = lattice(6, 6, people=250)
    rb = RegionBuilder(atoms, min_pop=1000, max_pop=2000, seed=0).solve()
    labels = rb.labels_
    assert labels.shape == (36,) and (labels >= 0).all()  # every atom in exactly one region
    assert rb.n_regions_ == 6  # 9000 / 1500
    sizes = np.bincount(labels)
    assert ((sizes >= 4) & (sizes <= 8)).all()
    assert ((rb.region_pop_ >= 1000) & (rb.region_pop_ <= 2000)).all()
    assert rb.region_pop_.sum() == 9000
    assert region_graph_connected(atoms, labels)
    assert all(not f for f in rb.region_flags_)
    # compact: on a 6x6 grid six regions of six cells can all be rectangles (PP >= 0.6)
    geoms = [shapely.union_all(atoms.geometry.values[labels == r]) for r in range(rb.n_regions_)]
    pp = [4 * np.pi * g.area / g.length**2 for g in geoms]
    assert np.mean(pp) > 0.6


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(3)
    atoms = lattice(10, 10, people=rng.integers(0, 200, 100))
    a = RegionBuilder(atoms, seed=5).solve().labels_
    b = RegionBuilder(atoms, seed=5).solve().labels_
    np.testing.assert_array_equal(a, b)


def test_random_lattice_in_range_and_contiguous():
    rng = np.random.default_rng(11)
    atoms = lattice(20, 20, people=rng.integers(0, 160, 400))
    rb = RegionBuilder(atoms, seed=0).solve()
    p = rb.region_pop_
    assert ((p >= 1000) & (p <= 2000)).all()
    assert region_graph_connected(atoms, rb.labels_)
    assert p.sum() == atoms["people"].sum()


def test_zero_population_atoms_are_absorbed():
    people = np.full(36, 300)
    people[[14, 15, 20, 21]] = 0  # a park in the middle
    atoms = lattice(6, 6, people=people)
    rb = RegionBuilder(atoms).solve()
    assert (rb.labels_ >= 0).all()
    assert (rb.region_pop_ > 0).all()  # no empty region
    assert region_graph_connected(atoms, rb.labels_)


def test_uninhabited_part_joins_a_neighbour_of_its_own_community():
    # community A: a 0-people atom (19) cut off from the rest of A by community B atoms
    comm = np.array(["A"] * 20, dtype=object)
    comm[[14, 18]] = "B"
    people = np.full(20, 250)
    people[19] = 0
    people[[14, 18]] = 600
    atoms = lattice(5, 4, people=people, community=comm)
    rb = RegionBuilder(atoms).solve()
    r19 = rb.labels_[19]
    # 19 touches only B atoms (14, 18): it cannot join them, so it is a flagged grid of its own
    assert set(np.flatnonzero(rb.labels_ == r19)) == {19}
    assert rb.region_flags_[r19]
    for r in range(rb.n_regions_):
        assert len(set(comm[rb.labels_ == r])) == 1


def test_uninhabited_atoms_inside_community_are_absorbed():
    comm = np.array(["A"] * 20, dtype=object)
    comm[[3, 4, 8, 9]] = "B"  # B: 4 atoms in the south-east corner
    people = np.full(20, 250)
    people[9] = 0
    atoms = lattice(5, 4, people=people, community=comm)
    rb = RegionBuilder(atoms).solve()
    assert rb.labels_[9] in {rb.labels_[4], rb.labels_[8]}
    for r in range(rb.n_regions_):
        assert len(set(comm[rb.labels_ == r])) == 1


def test_island_beyond_gap_tol_is_never_joined_and_flagged():
    main = lattice(6, 4, people=250)  # 6000 people
    island = lattice(1, 2, people=150, x0=X0 + 600 + 50)  # 50 m off, 300 people
    atoms = gpd.GeoDataFrame(gpd.pd.concat([main, island], ignore_index=True), geometry="geometry", crs=CRS)
    rb = RegionBuilder(atoms, gap_tol=20.0).solve()
    isl = rb.labels_[24]
    assert rb.labels_[25] == isl
    assert not np.isin(np.arange(24), np.flatnonzero(rb.labels_ == isl)).any()
    assert FLAG_ISLAND_BELOW_MIN in rb.region_flags_[isl]
    assert rb.region_pop_[isl] == 300


def test_island_within_gap_tol_is_joined():
    main = lattice(6, 4, people=250)
    island = lattice(1, 2, people=150, x0=X0 + 600 + 5)  # 5 m off (like Denver's island)
    atoms = gpd.GeoDataFrame(gpd.pd.concat([main, island], ignore_index=True), geometry="geometry", crs=CRS)
    rb = RegionBuilder(atoms, gap_tol=20.0).solve()
    isl = rb.labels_[24]
    assert (rb.labels_ == isl).sum() > 2  # shares a region with mainland atoms
    assert not rb.region_flags_[isl]
    assert ((rb.region_pop_ >= 1000) & (rb.region_pop_ <= 2000)).all()


def test_community_boundaries_are_respected_and_small_community_flagged():
    comm = np.array(["A"] * 36, dtype=object)
    comm[[0, 1, 6]] = "B"  # 3 atoms x 250 = 750 < min
    atoms = lattice(6, 6, people=250, community=comm)
    rb = RegionBuilder(atoms).solve()
    for r in range(rb.n_regions_):
        assert len(set(comm[rb.labels_ == r])) == 1
    rb_b = rb.labels_[0]
    assert set(np.flatnonzero(rb.labels_ == rb_b)) == {0, 1, 6}
    assert FLAG_COMMUNITY_BELOW_MIN in rb.region_flags_[rb_b]
    assert rb.region_community_[rb_b] == "B"


def test_special_unit_is_its_own_exclusive_region():
    special = np.full(36, None, dtype=object)
    special[[14, 15]] = "hospital-1"
    atoms = lattice(6, 6, people=250, special=special)
    rb = RegionBuilder(atoms).solve()
    r = rb.labels_[14]
    assert set(np.flatnonzero(rb.labels_ == r)) == {14, 15}
    assert rb.region_kind_[r] == "exclusive"
    assert FLAG_EXCLUSIVE in rb.region_flags_[r]
    assert rb.region_special_[r] == "hospital-1"
    others = [k for k in range(rb.n_regions_) if k != r]
    assert all(1000 <= rb.region_pop_[k] <= 2000 for k in others)


def test_building_above_max_is_its_own_flagged_region():
    people = np.full(36, 200)
    people[20] = 2600
    bs = np.zeros(36, dtype=bool)
    bs[20] = True
    atoms = lattice(6, 6, people=people, building_split=bs)
    rb = RegionBuilder(atoms).solve()
    r = rb.labels_[20]
    assert (rb.labels_ == r).sum() == 1
    assert FLAG_BUILDING in rb.region_flags_[r]


def test_range_repair_with_coarse_atoms():
    # a chain where the straight bisection cannot balance: the repair must still find a feasible split
    people = np.array([900, 100, 950, 50, 800, 300, 700, 400, 600, 500])
    atoms = lattice(10, 1, people=people)
    rb = RegionBuilder(atoms).solve()
    assert ((rb.region_pop_ >= 1000) & (rb.region_pop_ <= 2000)).all()
    assert region_graph_connected(atoms, rb.labels_)


def test_progress_callback_is_called():
    calls = []
    RegionBuilder(lattice(6, 6), progress=lambda s, f: calls.append((s, f))).solve()
    assert calls and calls[-1][1] == 1.0
    assert all(0.0 <= f <= 1.0 for _, f in calls)


# --------------------------------------------------------------------------- found on the synthetic district


def test_adjacency_of_edges_noded_differently():
    """A piece cut out of a block gets vertices on the block outline that lie on the neighbour's edge
    only up to rounding: the exact intersection of the outlines is a scatter of points. Still adjacent."""
    a = shapely.Polygon([(0, 0), (100, 0), (100, 100), (0, 100)])
    # b's western edge is a's eastern edge with extra vertices a hair off the line (as after a clip)
    ys = np.linspace(0, 100, 11)
    west = [(100.0 + (1e-9 if 0 < y < 100 else 0.0) * (-1) ** k, y) for k, y in enumerate(ys)]
    b = shapely.Polygon(west + [(200, 100), (200, 0)])
    assert shapely.length(shapely.intersection(a.boundary, b.boundary)) < 1.0  # exact: points only
    atoms = gpd.GeoDataFrame({"people": [1, 1]}, geometry=[a, b], crs=CRS)
    adj = build_adjacency(atoms, gap_tol=0)
    assert adj.n_edges == 1 and adj.length[0] == pytest.approx(100.0, abs=0.01)
    # a real corner contact stays no edge
    c = shapely.box(100, 100, 200, 200)
    adj = build_adjacency(gpd.GeoDataFrame({"people": [1, 1]}, geometry=[a, c], crs=CRS), gap_tol=0)
    assert adj.n_edges == 0


def chain_community():
    """Three blocks around a fourth (791), then a chain 471 – 1,146 – 1,145 (a synthetic community).

    Legal only as [1382] [1405] [1219] [791+471] [1146] [1145]: a greedy cut taking 471 with 1,146
    leaves 791 with a 1,219 block (2,010).
    """
    def sq(x, y, w=100, h=100):
        return shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)

    d = shapely.Polygon([(X0, Y0), (X0 + 350, Y0), (X0 + 350, Y0 + 300), (X0 + 300, Y0 + 300),
                         (X0 + 300, Y0 + 100), (X0, Y0 + 100)])  # 791: an L under and beside the three
    geoms = [sq(0, 100, 150), sq(150, 100, 150), sq(0, 200, 300), d, sq(350, 0), sq(450, 0), sq(550, 0)]
    people = [1382, 1405, 1219, 791, 471, 1146, 1145]
    return gpd.GeoDataFrame({"people": people}, geometry=geoms, crs=CRS)


@pytest.mark.parametrize("seed", range(8))
def test_spanning_tree_repair_backs_out_of_a_greedy_dead_end(seed):
    atoms = chain_community()
    rb = RegionBuilder(atoms, min_pop=1000, max_pop=2000, seed=seed).solve()
    assert all(not f for f in rb.region_flags_), rb.region_flags_
    assert ((rb.region_pop_ >= 1000) & (rb.region_pop_ <= 2000)).all()
    assert rb.labels_[3] == rb.labels_[4]  # 791 + 471


def test_off_street_edges_are_avoided():
    """2 × 2 atoms of 750: cutting between the columns is more compact, but those edges run through a
    street block (off the streets); with ``off_street`` the grids meet along the street instead."""
    atoms = lattice(2, 2, people=750, size=1.0)
    atoms = atoms.set_geometry([shapely.box(X0 + 120 * (k % 2), Y0 + 100 * (k // 2), X0 + 120 * (k % 2 + 1),
                                            Y0 + 100 * (k // 2 + 1)) for k in range(4)], crs=CRS)
    adj = build_adjacency(atoms)
    plain = RegionBuilder(atoms, adj, min_pop=1000, max_pop=2000).solve().labels_
    assert plain[0] == plain[2] and plain[0] != plain[1]  # columns: the shorter cut
    off = np.where(np.abs(adj.j - adj.i) == 1, adj.length, 0.0)  # 0-1 and 2-3: through a block
    labels = RegionBuilder(atoms, adj, min_pop=1000, max_pop=2000, off_street=off).solve().labels_
    assert labels[0] == labels[1] and labels[0] != labels[2]  # rows: along the street
    with pytest.raises(ValueError):
        RegionBuilder(atoms, adj, off_street=off[:1]).solve()


# --------------------------------------------------------------------------- Denver


@pytest.mark.realdata
@pytest.mark.slow
def test_denver_targets():
    from tests.conftest import shared_path

    from geo.partition import partition

    path = shared_path("denver", "denver_blocks_2020.parquet")
    blocks = gpd.read_parquet(path).rename(columns={"TOTPOP20": "people"})
    plan = partition(population=blocks, min_pop=1000, max_pop=2000, seed=0)
    rep = plan.report
    g = plan.grids
    assert int(g["people"].sum()) == 715_522
    assert rep["range"]["in_range_share"] == 1.0
    assert rep["contiguity"]["noncontiguous_grids"] == 0
    assert rep["population"]["empty_grids"] == 0
    assert rep["coverage"]["covered_share"] > 1 - 1e-9
    assert rep["coverage"]["gap_m2"] < 1.0 and rep["coverage"]["overlap_m2"] < 1.0
    assert rep["compactness"]["polsby_popper_mean"] >= 0.65
    assert rep["population"]["cv"] <= 0.15
    # every atom in exactly one grid, and grids are the dissolve of their atoms
    assert plan.atoms["grid"].notna().all()
    assert set(plan.atoms["grid"]) == set(g["code"])
