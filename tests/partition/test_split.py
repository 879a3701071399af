"""Splitting oversized atoms (gated estates) into legal, contiguous pieces."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Polygon, box

from geo.partition.population import ATOM_COLUMNS, assign_population
from geo.partition.split import choose_k, split_oversized, strips

UTM = "EPSG:32650"


def estate_points(geom, n_buildings, total, *, seed=0, per_building=(2, 5), nx=None):
    """Address points of *n_buildings* buildings laid out on a grid inside *geom*.

    Building populations are random (±50 %) and add up to *total*; every
    building has 2-4 address points (units/entrances) close to each other.
    """
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = geom.bounds
    fill = geom.area / ((maxx - minx) * (maxy - miny))
    n_grid = int(np.ceil(n_buildings / fill))
    while True:
        gx = nx or int(np.ceil(np.sqrt(n_grid * (maxx - minx) / (maxy - miny))))
        gy = int(np.ceil(n_grid / gx))
        xs = minx + (np.arange(gx) + 0.5) * (maxx - minx) / gx
        ys = miny + (np.arange(gy) + 0.5) * (maxy - miny) / gy
        centres = [(x, y) for y in ys for x in xs if geom.contains(shapely.Point(x, y))]
        if len(centres) >= n_buildings:
            break
        n_grid += 1
    centres = centres[:n_buildings]
    w = rng.uniform(0.5, 1.5, n_buildings)
    pops = np.floor(w / w.sum() * total).astype(int)
    pops[: total - pops.sum()] += 1
    rows = []
    for b, ((x, y), p) in enumerate(zip(centres, pops)):
        k = int(rng.integers(*per_building))
        share = np.full(k, p // k)
        share[: p - share.sum()] += 1
        for u in range(k):
            rows.append({"building": f"B{b:03d}", "people": int(share[u]), "households": int(share[u] // 3),
                         "geometry": shapely.Point(x + 4 * u - 6, y + rng.uniform(-3, 3))})
    return gpd.GeoDataFrame(rows, crs=UTM)


def atoms_for(geoms, points=None, **kw):
    blocks = gpd.GeoDataFrame({"block": np.arange(len(geoms))}, geometry=list(geoms), crs=UTM)
    return assign_population(blocks, points, **kw)


def check_pieces(out, rep, block_geom, block_id, min_pop=1000, max_pop=2000):
    pieces = out[out["block"] == block_id]
    union = shapely.union_all(pieces.geometry.values)
    assert union.symmetric_difference(block_geom).area < 1e-6 * block_geom.area  # tiles the block
    assert pieces.area.sum() == pytest.approx(block_geom.area, rel=1e-9)  # no overlaps
    assert (pieces.geom_type == "Polygon").all()  # contiguous
    normal = pieces[~pieces["building_split"]]
    assert normal["people"].between(min_pop, max_pop).all(), normal["people"].tolist()
    return pieces


def buildings_whole(rep):
    """Every building's points ended in exactly one atom."""
    pts = rep.points
    return bool((pts.groupby("building")["atom"].nunique() == 1).all())


# --------------------------------------------------------------------------- helpers


def test_choose_k():
    assert choose_k(12_000, 1000, 2000, 1500) == 8
    assert choose_k(2_100, 1000, 2000, 1500) == 2
    assert choose_k(5_000, 1000, 2000, 1500) == 3
    assert choose_k(2_500, 1000, 2000, 1900) == 2  # round(1.3) = 1 is infeasible
    assert choose_k(900, 1000, 2000, 1500) == 1


def test_strips_have_equal_area_and_tile():
    g = Polygon([(0, 0), (300, 0), (300, 50), (100, 50), (100, 120), (0, 120)])
    st = strips(g, 5)
    assert len(st) == 5
    assert np.allclose(shapely.area(st), g.area / 5, rtol=1e-4)
    assert shapely.union_all(st).symmetric_difference(g).area < 1e-6


# --------------------------------------------------------------------------- estates


def test_estate_of_12000_in_40_buildings():
    estate = box(0, 0, 400, 300)
    pts = estate_points(estate, 40, 12_000, seed=3)
    atoms, prep = atoms_for([estate, box(400, 0, 500, 300)], pts)
    assert atoms["people"].tolist() == [12_000, 0]
    out, rep = split_oversized(atoms, prep.points, min_pop=1000, max_pop=2000)
    assert list(out.columns) == ATOM_COLUMNS and list(out.index) == list(range(len(out)))
    assert out["people"].sum() == 12_000 and out["households"].sum() == atoms["households"].sum()
    pieces = check_pieces(out, rep, estate, 0)
    assert len(pieces) == 8
    assert not pieces["building_split"].any()
    assert pieces["people"].std() < 250  # balanced around 1500
    assert buildings_whole(rep)
    # the points' atoms agree with the pieces' populations
    got = rep.points.groupby("atom")["people"].sum()
    assert got.to_dict() == out.loc[got.index, "people"].to_dict()
    assert len(rep.split) == 1 and rep.split[0]["pieces"] == 8 and rep.split[0]["ok"]
    assert rep.violations == [] and rep.building_split == []
    # untouched atom passes through
    assert out[out["block"] == 1]["people"].tolist() == [0]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_estates_of_various_sizes(seed):
    rng = np.random.default_rng(seed)
    total = int(rng.integers(3000, 20_000))
    nb = int(rng.integers(15, 80))
    estate = box(0, 0, float(rng.integers(200, 600)), float(rng.integers(150, 400)))
    pts = estate_points(estate, nb, total, seed=seed)
    atoms, prep = atoms_for([estate], pts)
    out, rep = split_oversized(atoms, prep.points)
    check_pieces(out, rep, estate, 0)
    assert out["people"].sum() == total
    assert buildings_whole(rep)


def test_non_convex_estate_pieces_are_contiguous():
    estate = Polygon([(0, 0), (400, 0), (400, 120), (120, 120), (120, 400), (0, 400)])  # L shape
    pts = estate_points(estate, 36, 9_000, seed=5, nx=10)
    atoms, prep = atoms_for([estate], pts)
    out, rep = split_oversized(atoms, prep.points)
    check_pieces(out, rep, estate, 0)
    assert buildings_whole(rep)


def test_building_above_max_becomes_its_own_flagged_atom():
    estate = box(0, 0, 300, 200)
    pts = estate_points(estate, 12, 4_000, seed=2)
    big = gpd.GeoDataFrame([{"building": "TOWER", "people": 625, "households": 200,
                             "geometry": shapely.Point(150 + d, 100)} for d in range(4)], crs=UTM)
    pts = gpd.GeoDataFrame(pd.concat([pts, big], ignore_index=True), crs=UTM)
    atoms, prep = atoms_for([estate], pts)
    assert atoms["people"].sum() == 6_500
    out, rep = split_oversized(atoms, prep.points)
    flagged = out[out["building_split"]]
    assert len(flagged) == 1 and flagged["people"].iloc[0] == 2_500
    assert len(rep.building_split) == 1 and rep.building_split[0]["building"] == ["TOWER"]
    tower_atoms = rep.points.loc[rep.points["building"] == "TOWER", "atom"].unique()
    assert tower_atoms.tolist() == [flagged.index[0]]
    assert out["people"].sum() == 6_500
    assert buildings_whole(rep)
    union = shapely.union_all(out.geometry.values)
    assert union.symmetric_difference(estate).area < 1e-6


def test_single_building_block_above_max():
    lot = box(0, 0, 80, 60)
    pts = gpd.GeoDataFrame({"building": ["T"] * 5, "people": [500] * 5},
                           geometry=[shapely.Point(40 + i, 30) for i in range(5)], crs=UTM)
    atoms, prep = atoms_for([lot], pts)
    out, rep = split_oversized(atoms, prep.points)
    assert len(out) == 1 and bool(out["building_split"].iloc[0]) and out["people"].iloc[0] == 2_500
    assert out.geometry.iloc[0].equals(lot)


def test_polygon_only_block_is_cut_in_area_proportional_strips():
    block = box(0, 0, 600, 200)
    pop = gpd.GeoDataFrame({"people": [5_000], "households": [1_700]}, geometry=[block], crs=UTM)
    atoms, _ = atoms_for([block], pop)
    out, rep = split_oversized(atoms)
    pieces = check_pieces(out, rep, block, 0)
    assert len(pieces) == 3
    assert out["people"].sum() == 5_000 and out["households"].sum() == 1_700
    assert np.allclose(pieces.area, block.area / 3, rtol=1e-3)
    assert rep.split[0]["method"] == "area"
    # cut across the long (x) axis: every piece spans the full height
    assert np.allclose(pieces.bounds["maxy"] - pieces.bounds["miny"], 200)


def test_internal_road_is_followed():
    estate = box(0, 0, 400, 200)
    road = LineString([(200, -5), (200, 205)])  # estate road splitting it in two halves
    pts = estate_points(estate, 32, 6_000, seed=11, nx=8)
    atoms, prep = atoms_for([estate], pts)
    out, rep = split_oversized(atoms, prep.points, internal_roads=gpd.GeoSeries([road], crs=UTM))
    check_pieces(out, rep, estate, 0)
    assert len(out) == 4
    west, east = box(0, 0, 200, 200), box(200, 0, 400, 200)
    for g in out.geometry:  # no piece crosses the road
        assert west.buffer(1e-6).contains(g) or east.buffer(1e-6).contains(g)
    assert rep.split[0]["roads"] == 2


def test_internal_road_stopping_short_of_the_wall_is_extended():
    estate = box(0, 0, 400, 200)
    road = LineString([(200, 20), (200, 180)])  # ends 20 m from the estate wall at both ends
    pts = estate_points(estate, 32, 6_000, seed=11, nx=8)
    atoms, prep = atoms_for([estate], pts)
    out, rep = split_oversized(atoms, prep.points, internal_roads=[road])
    check_pieces(out, rep, estate, 0)
    assert rep.split[0]["roads"] == 2
    west, east = box(0, 0, 200, 200), box(200, 0, 400, 200)
    for g in out.geometry:
        assert west.buffer(1e-6).contains(g) or east.buffer(1e-6).contains(g)
    # without extension the road is a dangle: no sub-blocks
    _, rep0 = split_oversized(atoms, prep.points, internal_roads=[road], road_extend=0)
    assert rep0.split[0]["roads"] == 1


def test_polygon_only_with_internal_road():
    block = box(0, 0, 400, 200)
    road = LineString([(200, -5), (200, 205)])
    pop = gpd.GeoDataFrame({"people": [6_000]}, geometry=[block], crs=UTM)
    atoms, _ = atoms_for([block], pop)
    out, rep = split_oversized(atoms, internal_roads=[road])
    check_pieces(out, rep, block, 0)
    west, east = box(0, 0, 200, 200), box(200, 0, 400, 200)
    for g in out.geometry:
        assert west.buffer(1e-6).contains(g) or east.buffer(1e-6).contains(g)


def test_special_units_and_small_atoms_are_left_alone():
    blocks = gpd.GeoDataFrame({"block": [0, 1]}, geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100)], crs=UTM)
    pop = gpd.GeoDataFrame({"people": [3_000, 1_500]}, geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100)],
                           crs=UTM)
    campus = gpd.GeoDataFrame({"id": ["U1"], "name": ["大学"], "kind": ["school"]},
                              geometry=[box(0, 0, 100, 100)], crs=UTM)
    atoms, _ = assign_population(blocks, pop, special=campus)
    out, rep = split_oversized(atoms)
    assert out["people"].tolist() == [3_000, 1_500]
    assert rep.unsplit == [{"atom": 0, "block": 0, "people": 3_000, "reason": "special unit"}]
    assert rep.split == []


def test_totals_kept_when_points_disagree_with_atoms():
    # atoms got people from a census polygon; points only say where the buildings are
    block = box(0, 0, 300, 200)
    pop = gpd.GeoDataFrame({"people": [4_321], "households": [1_500]}, geometry=[block], crs=UTM)
    atoms, _ = atoms_for([block], pop)
    pts = estate_points(block, 20, 2_000, seed=9).drop(columns=["people", "households"])
    out, rep = split_oversized(atoms, pts, by=None)
    assert out["people"].sum() == 4_321 and out["households"].sum() == 1_500
    check_pieces(out, rep, block, 0)
    assert buildings_whole(rep)


# --------------------------------------------------------------------------- straight cuts, cul-de-sacs


def scattered_buildings(geom, n, total, seed=0):
    """*n* one-point buildings scattered at random inside *geom* (an old block)."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = geom.bounds
    xy = np.column_stack([rng.uniform(minx + 5, maxx - 5, n), rng.uniform(miny + 5, maxy - 5, n)])
    w = rng.uniform(0.5, 1.5, n)
    pops = np.floor(w / w.sum() * total).astype(int)
    pops[: total - pops.sum()] += 1
    return gpd.GeoDataFrame({"building": [f"B{k:03d}" for k in range(n)], "people": pops, "households": pops // 3},
                            geometry=shapely.points(xy), crs=UTM)


def shared_edge(a, b):
    return shapely.length(shapely.intersection(shapely.boundary(a), shapely.boundary(b).buffer(1e-3)))


def test_old_block_is_cut_straight_across_its_short_side():
    """Buildings are points: a straight line between them keeps them whole and is the shortest cut
    (Voronoi cells of scattered buildings meet along zig-zags 1.3–2 times as long)."""
    block = box(0, 0, 300, 120)
    pts = scattered_buildings(block, 60, 3_000, seed=2)
    atoms, prep = atoms_for([block], pts)
    out, rep = split_oversized(atoms, prep.points)
    pieces = check_pieces(out, rep, block, 0)
    assert len(pieces) == 2 and buildings_whole(rep)
    assert shared_edge(*pieces.geometry.values) == pytest.approx(120.0, rel=1e-3)
    out_v, _ = split_oversized(atoms, prep.points, units="voronoi")  # Voronoi cells, for the record
    assert shared_edge(*out_v.geometry.values) > 1.2 * 120.0


def test_cut_follows_a_cul_de_sac():
    """A dead-end lane reaching 60 % across the block: the cut runs along it and straight on."""
    block = box(0, 0, 200, 300)
    lane = LineString([(0, 151), (120, 151)])  # from the west street into the block, dead end
    pts = scattered_buildings(block, 60, 3_000, seed=4)
    pts = pts[np.abs(pts.geometry.y - 151) > 3]
    atoms, prep = atoms_for([block], pts)
    out, rep = split_oversized(atoms, prep.points, internal_roads=[lane])
    pieces = check_pieces(out, rep, block, 0)
    assert len(pieces) == 2 and buildings_whole(rep)
    edge = shapely.intersection(shapely.boundary(pieces.geometry.iat[0]),
                                shapely.boundary(pieces.geometry.iat[1]).buffer(1e-3))
    on_lane = shapely.length(shapely.intersection(edge, lane.buffer(2.0)))
    assert on_lane >= 0.55 * 200  # most of the cut is the lane itself; the rest its straight extension
    assert shapely.length(edge) == pytest.approx(200.0, rel=0.02)


def test_refined_building_groups_keep_buildings_below_max_free():
    """Refinement cuts a block into groups of 250–600 people; a 700-person building is an indivisible
    group, not a grid of its own (only buildings above the grid maximum are)."""
    from geo.partition.plan import refine_infeasible
    from geo.partition.regions import FLAG_INFEASIBLE

    block = box(0, 0, 300, 200)
    pts = scattered_buildings(block, 20, 1_900, seed=5)
    pts.loc[0, "people"] += 700 - int(pts.loc[0, "people"])
    atoms, prep = atoms_for([block], pts)
    atoms["community"] = "420103001001"
    labels = np.zeros(len(atoms), dtype=np.int64)
    out, info, pts_out = refine_infeasible(atoms, prep.points, labels, [[FLAG_INFEASIBLE]], 1000, max_pop=2000)
    assert info["pieces"] == len(out) > 1
    assert out["people"].sum() == atoms["people"].sum()
    assert out["people"].max() >= 700 and not out["building_split"].any()
    # the points follow their buildings into the pieces
    got = pts_out.groupby("atom")["people"].sum()
    assert got.to_dict() == out.loc[got.index, "people"].to_dict()
