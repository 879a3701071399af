"""Tight ranges (max - min small against min): split pieces sized to combine, warm refine, exact counts.

At 1,000–1,200 a block of 1,526 people has no whole number of in-range pieces; cut in two (763 + 763)
between blocks of 600–900 people no combination of whole atoms lands in the range. The engine cuts
such a block into pieces of at most ``max - min`` people (:func:`geo.partition.split.piece_range`),
re-solves only around what is still infeasible (warm start), and balances the unrounded shares that
verify measures, so every published grid is in range.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.partition import partition
from geo.partition.plan import atoms_from_polygons
from geo.partition.split import choose_k, piece_range, split_oversized

CRS = "EPSG:32650"


def lattice(nx_, ny, people, size=100.0):
    boxes = [shapely.box(500_000 + i * size, 3_380_000 + j * size, 500_000 + (i + 1) * size,
                         3_380_000 + (j + 1) * size) for j in range(ny) for i in range(nx_)]
    return gpd.GeoDataFrame({"people": np.asarray(people, dtype=np.int64)}, geometry=boxes, crs=CRS)


def coarse_lattice(seed, n=6):
    """n×n blocks of 600–900 people (no two make a grid, none alone does) and four of 1,250–1,900."""
    rng = np.random.default_rng(seed)
    people = rng.integers(600, 900, n * n)
    people[rng.choice(n * n, 4, replace=False)] = rng.integers(1250, 1900, 4)
    return lattice(n, n, people)


def test_piece_range_only_changes_blocks_without_a_whole_number_of_grids():
    assert piece_range(2_100, 1000, 1200, 1100) == (1000, 1200, 1100)  # 2 × 1,050
    assert piece_range(5_000, 1000, 2000, 1500) == (1000, 2000, 1500)  # default range: always some k
    lo, hi, t = piece_range(1_526, 1000, 1200, 1100)  # ceil(1526/1200) = 2 > floor(1526/1000) = 1
    assert hi == 200 and lo < t < hi
    lo, hi, t = piece_range(1_526, 1000, 1010, 1005)  # very tight: at most 12 pieces
    assert hi == pytest.approx(1_526 / 12)


def test_split_of_a_block_with_no_legal_pieces_gives_pieces_to_combine():
    block = lattice(1, 1, [1_526], size=200.0)
    atoms = atoms_from_polygons(block)
    old_k = choose_k(1_526, 1000, 1200, 1100)
    assert old_k == 2  # what the split did before: 763 + 763
    out, rep = split_oversized(atoms, min_pop=1000, max_pop=1200, fine_units=block)
    assert len(out) >= 8 and out["people"].max() <= 200
    assert out["people"].sum() == 1_526
    assert out["people_exact"].sum() == pytest.approx(1_526)
    assert shapely.union_all(out.geometry.values).symmetric_difference(block.geometry.iat[0]).area < 1e-3
    assert rep.violations == [] and rep.split[0]["piece_range"] == [pytest.approx(200 / 3), 200.0]


@pytest.mark.parametrize("seed", [0, 2, 4, 7])
def test_coarse_lattice_at_a_tight_range_is_all_in_range(seed):
    pop = coarse_lattice(seed)
    plan = partition(population=pop, min_pop=1000, max_pop=1200, seed=seed)
    g = plan.grids
    rep = plan.report
    assert g["people"].sum() == pop["people"].sum()
    assert g["people"].between(1000, 1200).all(), sorted(g["people"].tolist())
    assert rep["range"]["in_range_share"] == 1.0
    assert rep["invariants"]["ok"], rep["invariants"]["failed"]  # counts, buildings, pieces, overlaps
    assert rep["counts"]["residents_counted_elsewhere"] == 0
    assert rep["pieces"]["grids_in_pieces"] == 0
    assert rep["coverage"]["covered_share"] == pytest.approx(1.0)
    # the engine's own count is what the polygons hold (no drift from rounding pieces one by one)
    assert rep["engine"]["claimed_in_range_share"] == 1.0


def test_larger_coarse_lattice_needs_a_refine_round_and_ends_in_range():
    """Blocks of 600–900 people cannot make 1,000–1,200 grids whole: the refine rounds (warm-started
    from the previous regions) cut them, and every grid ends in range with the invariants kept."""
    pop = coarse_lattice(1, n=8)
    plan = partition(population=pop, min_pop=1000, max_pop=1200, seed=1)
    assert plan.report["atoms"].get("refined")
    assert plan.grids["people"].between(1000, 1200).all(), sorted(plan.grids["people"].tolist())
    assert plan.report["invariants"]["ok"]
    assert plan.grids["people"].sum() == pop["people"].sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_update_adjacency_after_a_refine_equals_a_full_rebuild(seed):
    """The refine rounds measure only pairs at new pieces; the result is the full adjacency, bridges too."""
    from geo.partition.adjacency import build_adjacency, update_adjacency
    from geo.partition.plan import refine_infeasible
    from geo.partition.regions import FLAG_INFEASIBLE

    rng = np.random.default_rng(seed)
    boxes = [shapely.box(i * 100, j * 100, (i + 1) * 100, (j + 1) * 100) for j in range(8) for i in range(8)]
    boxes.append(shapely.box(815, 0, 900, 90))  # an island 15 m off the lattice: a bridged edge
    pop = gpd.GeoDataFrame({"people": rng.integers(300, 900, len(boxes))}, geometry=boxes, crs=CRS)
    atoms = atoms_from_polygons(pop)
    adj = build_adjacency(atoms, gap_tol=20.0)
    labels = np.arange(len(atoms)) // 4
    flags = [[FLAG_INFEASIBLE] if r in (3, 7, 16) else [] for r in range(labels.max() + 1)]
    new, _, _, parent = refine_infeasible(atoms, None, labels, flags, 1000, max_pop=1200, adjacency=adj,
                                          fine_units=pop, parents=True)
    assert len(new) > len(atoms) and parent.shape == (len(new),)
    assert new["people"].sum() == atoms["people"].sum()
    full = build_adjacency(new, gap_tol=20.0)
    upd = update_adjacency(adj, parent, atoms, new, gap_tol=20.0)
    assert full.bridged.any()
    for k in ("i", "j", "bridged"):
        assert np.array_equal(getattr(full, k), getattr(upd, k)), k
    assert np.allclose(full.length, upd.length) and np.allclose(full.gap, upd.gap)
