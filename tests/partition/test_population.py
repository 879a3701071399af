"""Population onto blocks: points, areal weighting, communities, special units."""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, box

from geo.partition.blocks import filter_streets, street_blocks
from geo.partition.population import (
    ATOM_COLUMNS,
    assign_population,
    largest_remainder,
    largest_remainder_grouped,
    locate_points,
)
from geo.partition.split import split_oversized
from tests.conftest import shared_path

UTM = "EPSG:32650"


def blocks_frame(geoms):
    return gpd.GeoDataFrame({"block": np.arange(len(geoms))}, geometry=list(geoms), crs=UTM)


def two_by_two():
    """Four 100 m blocks: 0 = SW, 1 = SE, 2 = NW, 3 = NE."""
    return blocks_frame([box(0, 0, 100, 100), box(100, 0, 200, 100), box(0, 100, 100, 200), box(100, 100, 200, 200)])


def assert_contract(atoms, area):
    assert list(atoms.columns) == ATOM_COLUMNS
    assert list(atoms.index) == list(range(len(atoms)))
    assert atoms.crs is not None and not atoms.crs.is_geographic
    assert atoms["people"].dtype == np.int64 and (atoms["people"] >= 0).all()
    assert atoms["households"].dtype == np.int64 and (atoms["households"] >= 0).all()
    assert atoms["building_split"].dtype == bool
    union = shapely.union_all(atoms.geometry.values)
    assert union.area == pytest.approx(area, rel=1e-9)
    assert atoms.area.sum() == pytest.approx(area, rel=1e-9)  # no overlaps


# --------------------------------------------------------------------------- rounding


def test_largest_remainder_keeps_total_and_is_proportional():
    out = largest_remainder([0.3, 0.7], 7)
    assert out.tolist() == [2, 5]
    rng = np.random.default_rng(1)
    for _ in range(50):
        w = rng.random(rng.integers(1, 20))
        t = int(rng.integers(0, 10_000))
        out = largest_remainder(w, t)
        assert out.sum() == t and (out >= 0).all()
        assert np.all(np.abs(out - w / w.sum() * t) < 1)
    assert largest_remainder([0, 0, 0], 4).tolist() == [2, 1, 1]


def test_largest_remainder_grouped():
    w = np.array([1.0, 1.0, 1.0, 2.0, 0.5])
    g = np.array([0, 0, 0, 1, 1])
    out = largest_remainder_grouped(w, g, [10, 9])
    assert out[:3].sum() == 10 and out[3:].sum() == 9
    assert out.tolist() == [4, 3, 3, 7, 2]


# --------------------------------------------------------------------------- points


def test_points_on_edges_and_outside():
    blocks = two_by_two()
    pts = gpd.GeoDataFrame(
        {"people": [3, 5, 7, 11, 13], "households": [1, 2, 3, 4, 5]},
        geometry=[Point(50, 50), Point(100, 50), Point(100, 100), Point(150, 150), Point(500, 500)],
        crs=UTM,
        index=["a", "b", "c", "d", "e"],
    )
    atoms, rep = assign_population(blocks, pts)
    assert_contract(atoms, 40_000)
    # edge point b → lowest atom (block 0); vertex point c (4 blocks) → block 0 too
    by_block = atoms.set_index("block")["people"]
    assert by_block.to_dict() == {0: 3 + 5 + 7, 1: 0, 2: 0, 3: 11}
    assert rep.points_on_edge == 2
    assert rep.points_outside == 1 and rep.outside_ids == ["e"] and rep.people_outside == 13
    assert rep.people_in == 39 and rep.people_out == 26
    assert rep.households_out == 1 + 2 + 3 + 4
    assert rep.points["atom"].tolist()[-1] == -1
    # the same points in another order give the same answer
    atoms2, _ = assign_population(blocks, pts.iloc[::-1])
    assert atoms2["people"].tolist() == atoms["people"].tolist()


def test_points_snap_when_asked():
    blocks = two_by_two()
    pts = gpd.GeoDataFrame({"people": [4]}, geometry=[Point(205, 50)], crs=UTM)
    atoms, rep = assign_population(blocks, pts, snap_distance=10)
    assert rep.points_snapped == 1 and rep.points_outside == 0
    assert atoms.set_index("block").loc[1, "people"] == 4


def test_locate_points_lowest_index_on_shared_edge():
    polys = np.array([box(0, 0, 1, 1), box(1, 0, 2, 1)])
    idx, edge, _ = locate_points(shapely.points([[1, 0.5], [0.5, 0.5], [3, 3]]), polys[::-1])
    assert idx.tolist() == [0, 1, -1] and edge.tolist() == [True, False, False]


# --------------------------------------------------------------------------- polygons


def test_areal_weighting_preserves_totals_exactly():
    blocks = two_by_two()
    rng = np.random.default_rng(7)
    polys, people, hh = [], [], []
    for _ in range(60):
        x, y = rng.uniform(0, 170, 2)
        w, h = rng.uniform(5, 60, 2)
        polys.append(box(x, y, min(x + w, 200), min(y + h, 200)))
        people.append(int(rng.integers(0, 500)))
        hh.append(int(rng.integers(0, 200)))
    pop = gpd.GeoDataFrame({"people": people, "households": hh}, geometry=polys, crs=UTM)
    atoms, rep = assign_population(blocks, pop)
    assert atoms["people"].sum() == sum(people)
    assert atoms["households"].sum() == sum(hh)
    assert rep.people_out == rep.people_in == sum(people)
    assert 0 < rep.moved_share < 0.5


def test_areal_weighting_split_and_moved_share():
    blocks = two_by_two()
    # 70 % in block 0, 30 % in block 1: 7 people → 5 + 2 (largest remainder)
    pop = gpd.GeoDataFrame({"people": [7], "households": [3]}, geometry=[box(30, 0, 130, 10)], crs=UTM)
    atoms, rep = assign_population(blocks, pop)
    by_block = atoms.set_index("block")["people"]
    assert by_block[0] == 5 and by_block[1] == 2
    assert atoms["households"].sum() == 3
    assert rep.people_moved_by_weighting == 2
    assert rep.moved_share == pytest.approx(2 / 7)


def test_polygon_sticking_out_keeps_its_people_and_polygon_outside_is_reported():
    blocks = two_by_two()
    pop = gpd.GeoDataFrame({"people": [100, 9]}, geometry=[box(150, 150, 250, 250), box(300, 300, 310, 310)],
                           crs=UTM)
    atoms, rep = assign_population(blocks, pop)
    assert atoms["people"].sum() == 100
    assert rep.polygons_partly_outside == 1
    assert rep.polygons_outside == 1 and rep.people_outside == 9


def test_fractional_population_is_rounded_keeping_total():
    blocks = two_by_two()
    pop = gpd.GeoDataFrame({"people": [1.5, 2.5, 3.0]},
                           geometry=[box(10, 10, 20, 20), box(110, 10, 120, 20), box(10, 110, 20, 120)], crs=UTM)
    atoms, _ = assign_population(blocks, pop)
    assert atoms["people"].sum() == 7


# --------------------------------------------------------------------------- communities / special


def test_block_crossing_a_community_boundary_is_cut():
    blocks = blocks_frame([box(0, 0, 200, 100), box(200, 0, 300, 100)])
    communities = gpd.GeoDataFrame({"code": ["420103001", "420103002"]},
                                   geometry=[box(-10, -10, 120, 110), box(120, -10, 310, 110)], crs=UTM)
    pts = gpd.GeoDataFrame({"people": [10, 20, 30]}, geometry=[Point(50, 50), Point(150, 50), Point(250, 50)],
                           crs=UTM)
    atoms, rep = assign_population(blocks, pts, communities=communities)
    assert_contract(atoms, 30_000)
    assert len(atoms) == 3
    assert sorted(atoms["block"].tolist()) == [0, 0, 1]
    com_geom = dict(zip(communities["code"], communities.geometry))
    for _, a in atoms.iterrows():  # no atom straddles two communities
        assert com_geom[a["community"]].buffer(1e-6).contains(a.geometry)
    got = atoms.groupby("community")["people"].sum().to_dict()
    assert got == {"420103001": 10, "420103002": 50}


def test_community_sliver_is_merged_within_block():
    # the community line runs 0.4 m off the street at x=100 (digitised differently)
    blocks = blocks_frame([box(0, 0, 100, 100), box(100, 0, 200, 100)])
    communities = gpd.GeoDataFrame({"code": ["A", "B"]},
                                   geometry=[box(0, 0, 100.4, 100), box(100.4, 0, 200, 100)], crs=UTM)
    atoms, rep = assign_population(blocks, None, communities=communities)
    assert len(atoms) == 2
    assert atoms.sort_values("block")["community"].tolist() == ["A", "B"]
    assert rep.community_slivers_merged == 1
    assert rep.community_sliver_area_m2 == pytest.approx(40)
    assert_contract(atoms, 20_000)


def test_area_outside_every_community_gets_none():
    blocks = blocks_frame([box(0, 0, 100, 100)])
    communities = gpd.GeoDataFrame({"code": ["A"]}, geometry=[box(0, 0, 50, 100)], crs=UTM)
    atoms, _ = assign_population(blocks, None, communities=communities)
    assert sorted(atoms["community"].tolist(), key=str) == ["A", None]


def test_special_area_is_its_own_atom():
    blocks = two_by_two()
    school = gpd.GeoDataFrame({"id": ["S1"], "name": ["第一中学"], "kind": ["school"]},
                              geometry=[box(20, 20, 80, 80)], crs=UTM)
    pts = gpd.GeoDataFrame({"people": [40, 2]}, geometry=[Point(50, 50), Point(10, 10)], crs=UTM)
    atoms, rep = assign_population(blocks, pts, special=school)
    assert_contract(atoms, 40_000)
    assert len(atoms) == 5 and rep.n_special_atoms == 1
    sp = atoms[atoms["special"].notna()].iloc[0]
    assert sp["special"] == "S1" and sp["special_name"] == "第一中学" and sp["special_kind"] == "school"
    assert sp["block"] == 0 and sp["people"] == 40 and sp.geometry.area == pytest.approx(3600)
    ring = atoms[(atoms["block"] == 0) & atoms["special"].isna()].iloc[0]
    assert ring["people"] == 2 and ring.geometry.area == pytest.approx(10_000 - 3600)


def test_special_area_spanning_blocks_and_slightly_overshooting():
    blocks = two_by_two()
    # a hospital covering block 1 and overshooting 0.3 m into block 0 (a sliver)
    hosp = gpd.GeoDataFrame({"id": ["H"], "name": ["医院"], "kind": ["hospital"]},
                            geometry=[box(99.7, 0, 200, 100)], crs=UTM)
    atoms, rep = assign_population(blocks, None, special=hosp)
    assert len(atoms) == 4
    assert atoms.set_index("block").loc[1, "special"] == "H"
    assert atoms.set_index("block").loc[0, "special"] is None
    assert rep.special_slivers_merged == 1


# --------------------------------------------------------------------------- real data


def poa_hexagons():
    import h3

    df = pd.read_csv(shared_path("porto_alegre", "poa_hexgrid.csv"))
    geoms = [shapely.Polygon([(lon, lat) for lat, lon in h3.cell_to_boundary(c)]) for c in df["id"]]
    return gpd.GeoDataFrame(df, geometry=geoms, crs=4326)


@pytest.mark.realdata
def test_porto_alegre_hexagons_on_osm_blocks_keep_population_exactly():
    hexes = poa_hexagons()
    lines = gpd.read_file(shared_path("porto_alegre", "poa_osm.pbf"), layer="lines")
    # blocks are bounded by public streets; footways, paths, cycleways, steps and
    # service ways (driveways, parking aisles) are not block edges
    streets = filter_streets(lines)
    assert set(streets["highway"]).isdisjoint({"footway", "path", "cycleway", "steps", "service"})
    jurisdiction = gpd.GeoDataFrame(geometry=[hexes.union_all()], crs=4326)
    t = time.perf_counter()
    blocks = street_blocks(streets, jurisdiction)
    atoms, rep = assign_population(blocks, hexes, by="population", households=None)
    elapsed = time.perf_counter() - t
    assert hexes["population"].sum() == 812_935
    assert atoms["people"].sum() == 812_935
    assert rep.people_in == rep.people_out == 812_935
    assert rep.polygons_outside == 0
    area = jurisdiction.to_crs(atoms.crs).area.sum()
    assert atoms.area.sum() == pytest.approx(area, rel=1e-6)
    assert 1500 <= len(atoms) <= 6000  # measured 3307
    # 18 atoms hold more than 2,000 people (big hexagon-weighted blocks): area split
    out, srep = split_oversized(atoms, min_pop=1000, max_pop=2000)
    elapsed = time.perf_counter() - t
    assert out["people"].sum() == 812_935
    assert len(srep.split) == (atoms["people"] > 2000).sum() > 0
    assert srep.violations == []
    assert (out["people"] <= 2000).all()
    assert out.area.sum() == pytest.approx(area, rel=1e-6)
    assert elapsed < 30
