"""The public pipeline: partition(), the trivial polygon adapter, area splits and codes."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.partition import Plan, partition
from geo.partition.codes import assign_codes, grid_name, nw_order
from geo.partition.plan import atoms_from_polygons, metric_crs, split_atoms_by_area, split_polygon_by_area

CRS = "EPSG:32650"
X0, Y0 = 500_000.0, 3_380_000.0
GRID_COLUMNS = ["code", "name", "kind", "level", "people", "households", "community", "flags", "geometry"]


def lattice(nx_, ny, people=250, size=100.0, x0=X0, y0=Y0, crs=CRS):
    boxes = [shapely.box(x0 + i * size, y0 + j * size, x0 + (i + 1) * size, y0 + (j + 1) * size)
             for j in range(ny) for i in range(nx_)]
    n = len(boxes)
    return gpd.GeoDataFrame({"people": np.broadcast_to(np.asarray(people), (n,)).astype(np.int64).copy()},
                            geometry=boxes, crs=crs)


# --------------------------------------------------------------------------- adapter and split


def test_atoms_from_polygons_contract():
    pop = lattice(3, 2).to_crs(4326)
    pop["households"] = 100
    atoms = atoms_from_polygons(pop)
    for c in ["people", "households", "community", "special", "special_name", "block", "building_split"]:
        assert c in atoms.columns
    assert atoms.crs.equals(gpd.GeoSeries([], crs=CRS).crs) or atoms.crs.is_projected
    assert list(atoms.index) == list(range(6))
    assert atoms["people"].dtype == np.int64 and atoms["people"].sum() == 1500
    assert atoms["building_split"].dtype == bool and not atoms["building_split"].any()


def test_metric_crs_keeps_metre_projections_and_replaces_feet():
    assert metric_crs(lattice(1, 1)).to_epsg() == 32650
    feet = lattice(1, 1).to_crs(2232)  # Colorado Central, US survey feet
    assert metric_crs(feet).to_epsg() != 2232


def test_split_polygon_by_area_equal_strips_along_long_axis():
    rect = shapely.box(0, 0, 400, 100)
    pieces = split_polygon_by_area(rect, 4500, 1500, target=1500)
    assert len(pieces) == 3
    areas = [p.area for p, _, _ in pieces]
    np.testing.assert_allclose(areas, rect.area / 3, rtol=1e-6)
    assert sum(p for _, p, _ in pieces) == 4500 and sum(h for _, _, h in pieces) == 1500
    assert all(p == 1500 for _, p, _ in pieces)
    # strips cut across the long (x) axis: each spans the full height
    for g, _, _ in pieces:
        minx, miny, maxx, maxy = g.bounds
        assert maxy - miny == pytest.approx(100) and maxx - minx == pytest.approx(400 / 3, rel=1e-4)
    assert shapely.union_all([p for p, _, _ in pieces]).symmetric_difference(rect).area < 1e-6


def test_split_atoms_by_area_keeps_totals_and_block():
    atoms = atoms_from_polygons(lattice(3, 1, people=[500, 4000, 600]))
    out = split_atoms_by_area(atoms, 2000, 1500)
    assert out["people"].sum() == 5100
    big = out[out["block"] == 1]
    assert len(big) == 3 and ((big["people"] >= 1000) & (big["people"] <= 2000)).all()
    assert list(out.index) == list(range(len(out)))


# --------------------------------------------------------------------------- partition


def test_partition_lattice_in_geographic_crs():
    pop = lattice(8, 6, people=250).to_crs(4326)
    pop["households"] = 90
    calls = []
    plan = partition(population=pop, progress=lambda s, f: calls.append((s, f)))
    assert isinstance(plan, Plan)
    g = plan.grids
    assert list(g.columns) == GRID_COLUMNS
    assert g.crs.to_epsg() == 4326  # the input's CRS
    assert g["people"].sum() == 12_000 and g["households"].sum() == 90 * 48
    assert ((g["people"] >= 1000) & (g["people"] <= 2000)).all()
    assert g["code"].str.fullmatch(r"\d{15}").all() and g["code"].is_unique
    assert (g["code"].str[:12] == "000000000000").all()
    assert set(g["kind"]) == {"standard"} and (g["level"] == 1).all()
    rep = plan.report
    json.dumps(rep)
    assert rep["coverage"]["covered_share"] == pytest.approx(1.0)
    assert rep["coverage"]["overlap_m2"] < 1e-3
    assert rep["contiguity"]["noncontiguous_grids"] == 0
    assert "grid" in plan.atoms.columns and set(plan.atoms["grid"]) == set(g["code"])
    assert plan.params["min_pop"] == 1000 and calls and calls[-1] == ("done", 1.0)


def test_partition_is_deterministic():
    rng = np.random.default_rng(1)
    pop = lattice(12, 10, people=rng.integers(0, 180, 120))
    a = partition(population=pop, seed=3).grids
    b = partition(population=pop, seed=3).grids
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
    assert all(x.equals(y) for x, y in zip(a.geometry, b.geometry))


def test_partition_splits_a_block_above_max():
    people = np.full(24, 200)
    people[10] = 4200
    plan = partition(population=lattice(6, 4, people=people))
    g = plan.grids
    assert ((g["people"] >= 1000) & (g["people"] <= 2000)).all()
    assert g["people"].sum() == people.sum()
    pieces = plan.atoms[plan.atoms["block"] == 10]
    assert len(pieces) >= 3  # 4200 people need at least three grids
    assert plan.report["coverage"]["covered_share"] == pytest.approx(1.0)


def test_partition_with_communities_and_special_unit():
    pop = lattice(8, 6, people=250)
    west = shapely.box(X0, Y0, X0 + 500, Y0 + 600)
    east = shapely.box(X0 + 500, Y0, X0 + 700, Y0 + 600)
    tiny = shapely.box(X0 + 700, Y0, X0 + 800, Y0 + 300)  # 3 cells x 250 = 750 people
    rest = shapely.box(X0 + 700, Y0 + 300, X0 + 800, Y0 + 600)
    communities = gpd.GeoDataFrame(
        {"code": ["420103001001", "420103001002", "420103001003", "420103001004"],
         "name": ["花园社区", "江滨社区", "小河社区", "北岸村"], "rural": [False, False, False, True]},
        geometry=[west, east, tiny, rest], crs=CRS)
    special = gpd.GeoDataFrame({"id": ["H1"], "name": ["市第一人民医院"], "kind": ["hospital"]},
                               geometry=[shapely.box(X0 + 100, Y0 + 100, X0 + 300, Y0 + 200)], crs=CRS)
    plan = partition(population=pop, communities=communities, special=special)
    g = plan.grids
    assert g["people"].sum() == 12_000
    ex = g[g["kind"] == "exclusive"]
    assert len(ex) == 1 and ex["name"].iat[0] == "市第一人民医院专属网格"
    assert ex["code"].iat[0].startswith("420103001001")
    small = g[g["community"] == "420103001003"]
    assert len(small) == 1 and "community below min" in small["flags"].iat[0]
    assert small["name"].iat[0] == "小河社区第1网格"
    rural = g[g["community"] == "420103001004"]
    assert (rural["kind"] == "rural").all()
    std = g[(g["kind"] != "exclusive") & (g["flags"] == "")]
    assert ((std["people"] >= 1000) & (std["people"] <= 2000)).all()
    assert g["name"].str.contains(r"第\d+网格$").sum() == len(g) - 1
    # ordinary grids are numbered 1..n per community, exclusive grids after them
    west = g[(g["community"] == "420103001001") & (g["kind"] != "exclusive")]
    assert sorted(west["name"]) == [f"花园社区第{k}网格" for k in range(1, len(west) + 1)]
    assert ex["code"].iat[0] == f"420103001001{len(west) + 1:03d}"
    # grids never cross communities
    for code, geom in zip(g["community"], g.geometry):
        com = communities.loc[communities["code"] == code].geometry.iat[0]
        assert geom.difference(com.buffer(0.01)).area < 1.0


def test_partition_requires_population_and_valid_range():
    with pytest.raises(ValueError):
        partition(population=lattice(2, 2), min_pop=3000, max_pop=2000)
    with pytest.raises(ValueError):
        partition(population=None)


# --------------------------------------------------------------------------- codes


def test_grid_names():
    assert grid_name("standard", 3, "花园社区") == "花园社区第3网格"
    assert grid_name("exclusive", 1, "花园社区", "市第一人民医院") == "市第一人民医院专属网格"
    assert grid_name("standard", 2, None, None, "示范区") == "示范区第2网格"


def test_codes_nw_to_se_and_stable_for_unchanged_grids():
    g = lattice(3, 2)
    order = nw_order(g.geometry.values)
    # north row first (j = 1: positions 3,4,5), west to east
    assert list(order) == [3, 4, 5, 0, 1, 2]
    first = assign_codes(g, community=["420103001001"] * 6)
    assert list(first["code"].iloc[order]) == [f"420103001001{k:03d}" for k in range(1, 7)]
    prev = g.assign(code=first["code"])
    # re-draw: two grids merged into a new one, the rest unchanged
    merged = shapely.union_all([g.geometry.iat[0], g.geometry.iat[1]])
    new = gpd.GeoDataFrame(geometry=[merged, *g.geometry.iloc[2:]], crs=CRS)
    second = assign_codes(new, community=["420103001001"] * 5, previous=prev, carry="unchanged")
    assert list(second["code"].iloc[1:]) == list(first["code"].iloc[2:])
    assert second["code"].iat[0] == "420103001001007"  # next free serial, never a retired one
    assert second["carried"].tolist() == [False, True, True, True, True]
    # with carry="matched" the merged grid keeps the code of the grid it mostly covers… none here (IoU 0.5)
    third = assign_codes(new, community=["420103001001"] * 5, previous=prev, carry="matched", match_iou=0.4)
    assert third["code"].iat[0] in {first["code"].iat[0], first["code"].iat[1]}


def test_codes_reject_bad_community_code():
    with pytest.raises(ValueError, match="12-digit"):
        assign_codes(lattice(1, 1), community=["12345"])


# --------------------------------------------------------------------------- buildings, real data


def test_no_building_split_between_grids_and_the_check_can_tell():
    """Address points (2–4 per building, e.g. entrances) in an estate of 7,000 and an old block: every
    building's points end in one grid; the report's check counts a building whose points were put apart."""
    from geo.partition.plan import buildings_across_grids

    rng = np.random.default_rng(3)
    rows = []
    for b in range(70):
        x, y = X0 + rng.uniform(10, 590), Y0 + rng.uniform(10, 290)
        k = int(rng.integers(2, 5))
        if b == 0:
            x, k = X0 + 397.0, 4  # entrances geocoded on both sides of the street centerline
        elif abs(x - X0 - 400) < 10:
            x += 20.0
        for u in range(k):
            rows.append({"building": f"B{b:03d}", "people": 25 if x < X0 + 400 else 60,
                         "geometry": shapely.Point(x + 2 * u, y + rng.uniform(-1, 1))})
    pts = gpd.GeoDataFrame(rows, crs=CRS)
    jur = shapely.box(X0, Y0, X0 + 600, Y0 + 300)
    streets = gpd.GeoDataFrame({"highway": ["primary", "residential"]},
                               geometry=[jur.exterior, shapely.LineString([(X0 + 400, Y0), (X0 + 400, Y0 + 300)])],
                               crs=CRS)
    plan = partition(jurisdiction=jur, population=pts, streets=streets)
    assert plan.report["buildings"]["n_buildings"] == 70
    assert plan.report["buildings"]["split_between_grids"] == 0
    joined = gpd.sjoin(pts[pts["building"] != "B000"], plan.grids.to_crs(CRS)[["code", "geometry"]],
                       predicate="within")
    assert (joined.groupby("building")["code"].nunique() == 1).all()
    assert plan.report["atoms"]["population"]["points_moved_to_their_building"] >= 1
    assert len(plan.grids) >= 3
    # the check itself: one point of a building counted in an atom of another grid is a split building
    pts_in = plan.report["buildings"]
    assert pts_in["split_between_grids"] == 0
    counted = gpd.GeoDataFrame({"building": ["X", "X"], "atom": [0, 0]},
                               geometry=[shapely.Point(X0, Y0)] * 2, crs=CRS)
    assert buildings_across_grids(counted, plan.atoms)["split_between_grids"] == 0
    other = int(np.flatnonzero(plan.atoms["grid"].to_numpy() != plan.atoms["grid"].iat[0])[0])
    assert buildings_across_grids(counted.assign(atom=[0, other]), plan.atoms)["split_between_grids"] == 1


def poa_hexagons(path):
    import h3

    df = pd.read_csv(path)
    polys = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in df["id"]]
    return gpd.GeoDataFrame({"people": df["population"].fillna(0).astype(int)}, geometry=polys, crs="EPSG:4326")


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("with_streets", [False, True])
def test_porto_alegre_targets(with_streets):
    """Porto Alegre, H3 r9 cells (and OSM streets): every grid in range except offshore islands of the
    Guaíba (131 people on four cells 780 m out, and an uninhabited pair 1.2 km out), which no contiguous
    grid can reach; nothing infeasible, nothing non-contiguous."""
    from tests.conftest import shared_path

    hexes = poa_hexagons(shared_path("porto_alegre", "poa_hexgrid.csv"))
    if with_streets:
        from geo.partition.blocks import NON_BLOCK_HIGHWAYS

        lines = gpd.read_file(shared_path("porto_alegre", "poa_osm.pbf"), layer="lines", engine="pyogrio")
        lines = lines[lines["highway"].notna() & ~lines["highway"].isin(NON_BLOCK_HIGHWAYS)]
        jur = shapely.union_all(np.asarray(hexes.geometry.values))
        plan = partition(jurisdiction=jur, population=hexes, streets=lines[["highway", "geometry"]])
        assert plan.report["streets"]["boundary_on_streets_share"] >= 0.95
    else:
        plan = partition(population=hexes)
    rep = plan.report
    assert rep["contiguity"]["noncontiguous_grids"] == 0
    assert rep["coverage"]["covered_share"] > 1 - 1e-6
    assert int(plan.grids["people"].sum()) == int(hexes["people"].sum())
    out = rep["range"]["grids"]
    assert {tuple(o["reasons"]) for o in out} <= {("island below min",), ("uninhabited island",)}, out
    assert len(out) <= 2 and sum(o["people"] for o in out) <= 131
    assert rep["range"]["in_range_share"] >= 0.995


def test_pinholes_between_atoms_are_filled_but_real_holes_kept():
    from shapely.geometry import Polygon, box

    from geo.partition.plan import fill_pinholes

    outer = box(0, 0, 100, 100)
    pin = box(50, 50, 50.0005, 50.0005)  # 2.5e-7 m²: a rounding gap
    courtyard = box(10, 10, 30, 30)  # 400 m²: a grid enclosed by this one
    g = Polygon(outer.exterior, [pin.exterior, courtyard.exterior])
    out = fill_pinholes(g)
    assert len(out.interiors) == 1 and out.interiors[0].equals(courtyard.exterior)
    assert fill_pinholes(outer) is outer
