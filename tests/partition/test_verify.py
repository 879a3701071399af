"""verify(): the independent check from the final polygons, and the engine's invariants measured with it.

The first tests build plans by hand to show each check can fail (a miscount, a split building, a grid in
pieces, a crossed footprint, overlaps); the rest run the engine on synthetic districts with
multi-entrance buildings (several seeds), on polygon units finer than the blocks, and on Denver and
Porto Alegre, and assert the invariants through verify().
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.partition import partition, verify
from geo.partition.verify import measure_counts

CRS = "EPSG:32650"
X0, Y0 = 500_000.0, 3_380_000.0


def two_grids(codes=("B", "A"), people=(10, 0)):
    """Two 100 m squares side by side (west, east) sharing the edge x = X0 + 100."""
    geoms = [shapely.box(X0, Y0, X0 + 100, Y0 + 100), shapely.box(X0 + 100, Y0, X0 + 200, Y0 + 100)]
    return gpd.GeoDataFrame({"code": list(codes), "people": list(people)}, geometry=geoms, crs=CRS)


def points(xy, people, building=None):
    d = {"people": people}
    if building is not None:
        d["building"] = building
    return gpd.GeoDataFrame(d, geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in xy], crs=CRS)


# --------------------------------------------------------------------------- the checks themselves


def test_point_on_a_shared_edge_counts_in_the_smallest_code_like_the_lookup():
    pop = points([(100.0, 50.0)], [10])
    rep = verify(two_grids(codes=("B", "A"), people=(10, 0)), pop, min_pop=0, max_pop=100)
    # the west grid "B" claims the point, but on the shared edge the lookup gives it to "A"
    assert rep["counts"]["residents_counted_elsewhere"] == 10
    assert rep["counts"]["grids_miscounted"] == 2
    assert rep["invariants"]["ok"] is False
    assert rep["invariants"]["failed"][0]["invariant"] == "residents counted in their grid"
    ok = verify(two_grids(codes=("B", "A"), people=(0, 10)), pop, min_pop=0, max_pop=100)
    assert ok["counts"]["residents_counted_elsewhere"] == 0 and ok["invariants"]["ok"]


def test_polygon_units_by_areal_weighting_rounded_once_per_grid():
    unit = gpd.GeoDataFrame({"people": [100]}, geometry=[shapely.box(X0 + 70, Y0, X0 + 110, Y0 + 100)], crs=CRS)
    m = measure_counts(two_grids(), unit)
    assert m["people"].tolist() == [75, 25] and m["people_exact"].tolist() == pytest.approx([75.0, 25.0])
    # a claim within the rounding allowance (1 per grid) is not a miscount, beyond it is
    assert verify(two_grids(people=(74.4, 25.6)), unit, min_pop=0, max_pop=100)["counts"][
        "residents_counted_elsewhere"] == 0
    assert verify(two_grids(people=(70, 30)), unit, min_pop=0, max_pop=100)["counts"][
        "residents_counted_elsewhere"] == 4


def test_building_with_points_in_two_grids_and_a_crossed_footprint_are_found():
    pop = points([(90.0, 50.0), (110.0, 50.0), (20.0, 20.0)], [5, 5, 3], building=["T1", "T1", "T2"])
    rep = verify(two_grids(people=(8, 5)), pop, min_pop=0, max_pop=100)
    assert rep["buildings"]["n_buildings"] == 2 and rep["buildings"]["split_between_grids"] == 1
    assert rep["buildings"]["examples"] == ["T1"]
    fp = gpd.GeoSeries([shapely.box(X0 + 85, Y0 + 40, X0 + 115, Y0 + 60), shapely.box(X0 + 10, Y0 + 10, X0 + 30,
                                                                                      Y0 + 30)], crs=CRS)
    rep = verify(two_grids(people=(8, 5)), pop, buildings=fp, min_pop=0, max_pop=100)
    assert rep["buildings"]["footprints_crossed"] == 1
    assert any(f["invariant"] == "buildings whole" for f in rep["invariants"]["failed"])


def test_grid_in_pieces_versus_an_island():
    west = shapely.box(X0, Y0, X0 + 100, Y0 + 100)
    east = shapely.box(X0 + 100, Y0, X0 + 200, Y0 + 100)
    far = shapely.box(X0 + 200, Y0, X0 + 300, Y0 + 100)
    # grid A = west + far (apart by 100 m, the territory between them is grid B): in pieces
    grids = gpd.GeoDataFrame({"code": ["A", "B"], "people": [0, 0]},
                             geometry=[shapely.MultiPolygon([west, far]), east], crs=CRS)
    rep = verify(grids, points([(50, 50)], [0]), min_pop=0, max_pop=10)
    assert rep["pieces"]["grids_in_pieces"] == 1 and rep["pieces"]["in_pieces"] == ["A"]
    assert not rep["invariants"]["ok"]
    # the same grid on a territory that is itself in two parts (an island 1 km out): flagged, allowed
    island = shapely.box(X0 + 1200, Y0, X0 + 1250, Y0 + 50)
    grids = gpd.GeoDataFrame({"code": ["A"], "people": [0]}, geometry=[shapely.MultiPolygon([west, island])],
                             crs=CRS)
    rep = verify(grids, points([(50, 50)], [0]), min_pop=0, max_pop=10)
    assert rep["pieces"]["grids_in_pieces"] == 0 and rep["pieces"]["islands"] == ["A"]
    assert rep["invariants"]["ok"]


def test_overlapping_grids_are_refused():
    grids = gpd.GeoDataFrame({"code": ["A", "B"], "people": [0, 0]},
                             geometry=[shapely.box(X0, Y0, X0 + 100, Y0 + 100),
                                       shapely.box(X0 + 50, Y0, X0 + 150, Y0 + 100)], crs=CRS)
    rep = verify(grids, points([(10, 10)], [0]), min_pop=0, max_pop=10)
    assert rep["coverage"]["overlap_m2"] == pytest.approx(5000.0)
    assert any(f["invariant"] == "no overlaps" for f in rep["invariants"]["failed"])


def test_areas_in_metres_whatever_the_grids_crs():
    """A grid in a US-feet CRS is measured in m² (one local metric CRS), not in ft²."""
    grids = two_grids().to_crs(2232)
    rep = verify(grids, points([(50, 50)], [10]).to_crs(4326), min_pop=0, max_pop=100)
    assert rep["coverage"]["grids_m2"] == pytest.approx(20_000.0, rel=1e-3)
    assert "2232" not in rep["crs"]


# --------------------------------------------------------------------------- the engine, through verify


SEEDS = [42, 7, 2024]
LEGIT = {"exclusive unit", "single building above max", "community below min"}


@pytest.fixture(scope="module", params=SEEDS)
def district_plan(request):
    from geo.demo.synthetic import generate_district

    d = generate_district(seed=request.param, scale=0.15)
    plan = partition(jurisdiction=d.boundary, population=d.population, streets=d.streets,
                     communities=d.communities, special=d.special_areas)
    return d, plan


def test_engine_invariants_on_address_points_with_multi_entrance_buildings(district_plan):
    d, plan = district_plan
    assert (d.population.groupby("building").size() >= 2).sum() >= 20  # the hard case is there
    rep = plan.report
    assert rep["counts"]["residents_counted_elsewhere"] == 0, rep["counts"]["miscounted"]
    assert rep["counts"]["points_outside"] == 0
    assert rep["buildings"]["n_buildings"] == d.population["building"].nunique()
    assert rep["buildings"]["split_between_grids"] == 0, rep["buildings"]["examples"]
    assert rep["pieces"]["grids_in_pieces"] == 0, rep["pieces"]["detail"]
    assert rep["invariants"]["ok"], rep["invariants"]
    for g in rep["range"]["grids"]:  # 100 % in range apart from exclusive units and single buildings
        assert set(g["reasons"]) <= LEGIT, g
    # the published counts are what the polygons hold: recount every address point independently
    pts = d.population.to_crs(plan.grids.crs)
    j = gpd.sjoin(pts, plan.grids[["code", "geometry"]], predicate="within")
    assert len(j) == len(pts)
    by_grid = j.groupby("code")["people"].sum()
    assert (by_grid.reindex(plan.grids["code"], fill_value=0).to_numpy() == plan.grids["people"].to_numpy()).all()


def test_split_blocks_report_cuts_and_clearance(district_plan):
    _, plan = district_plan
    split = plan.report["atoms"]["split"]["split"]
    assert split, "an estate above the maximum is split"
    for s in split:
        if s["pieces"] > 1:
            assert s["cut_m"] > 0
            assert s["cut_on_roads_m"] + s["cut_between_buildings_m"] == pytest.approx(s["cut_m"], abs=0.2)
            if s["method"] == "buildings":
                assert s["min_clearance_m"] is not None and s["min_clearance_m"] > 0  # no cut through a point


def test_polygon_units_finer_than_blocks_are_not_spread_by_area():
    """Population cells (finer than street blocks) with streets: a split block's pieces get the people of
    the cells inside them, so the published polygons hold what the plan claims (within areal rounding)."""
    from geo.demo.synthetic import generate_district, population_cells

    d = generate_district(seed=11, scale=0.15)
    cells = population_cells(d, cell=100.0)
    plan = partition(jurisdiction=d.boundary, population=cells, streets=d.streets, communities=d.communities)
    rep = plan.report
    assert rep["counts"]["people_areally_weighted"] > 0
    assert rep["counts"]["max_abs_difference"] <= 1.0 + 1e-6
    assert rep["counts"]["residents_counted_elsewhere"] == 0
    assert rep["pieces"]["grids_in_pieces"] == 0
    assert int(plan.grids["people"].sum()) == int(cells["people"].sum())


def test_footways_and_service_roads_do_not_make_blocks_unless_asked():
    jur = shapely.box(X0, Y0, X0 + 400, Y0 + 200)
    streets = gpd.GeoDataFrame({"highway": ["primary", "footway", "service"]},
                               geometry=[jur.exterior, shapely.LineString([(X0 + 200, Y0), (X0 + 200, Y0 + 200)]),
                                         shapely.LineString([(X0 + 100, Y0), (X0 + 100, Y0 + 200)])], crs=CRS)
    rng = np.random.default_rng(0)
    pop = points(np.column_stack([rng.uniform(5, 395, 60), rng.uniform(5, 195, 60)]), [25] * 60)
    plan = partition(jurisdiction=jur, population=pop, streets=streets, min_pop=500, max_pop=2000)
    assert plan.report["atoms"]["street_classes"] == ["primary"]
    assert plan.report["streets"]["classes"] == ["primary"]
    assert len(plan.grids) == 1  # one block: the footway and the service road do not cut it
    both = partition(jurisdiction=jur, population=pop, streets=streets, min_pop=500, max_pop=2000,
                     street_classes=["primary", "footway", "service"])
    assert both.report["atoms"]["street_classes"] == ["footway", "primary", "service"]
    assert both.report["atoms"]["population"]["n_atoms"] == 3


def test_building_entrances_on_both_sides_of_a_street_are_one_building():
    """Entrances geocoded on either side of a street centerline: the two blocks are joined so that the
    building lies in one grid polygon and every entrance is counted where it lies."""
    jur = shapely.box(X0, Y0, X0 + 600, Y0 + 300)
    streets = gpd.GeoDataFrame({"highway": ["primary", "residential"]},
                               geometry=[jur.exterior, shapely.LineString([(X0 + 300, Y0), (X0 + 300, Y0 + 300)])],
                               crs=CRS)
    rng = np.random.default_rng(1)
    xy = [(x, y) for x, y in zip(rng.uniform(10, 590, 80), rng.uniform(10, 290, 80)) if abs(x - 300) > 20]
    pop = points(xy + [(295.0, 150.0), (305.0, 150.0)], [20] * len(xy) + [30, 30],
                 building=[f"B{k}" for k in range(len(xy))] + ["X", "X"])
    plan = partition(jurisdiction=jur, population=pop, streets=streets, min_pop=500, max_pop=1000)
    rep = plan.report
    assert rep["atoms"]["atoms_joined_by_buildings"] == 1
    assert rep["buildings"]["split_between_grids"] == 0
    assert rep["counts"]["residents_counted_elsewhere"] == 0
    assert rep["invariants"]["ok"]


@pytest.mark.realdata
@pytest.mark.slow
def test_denver_census_blocks_verified():
    from tests.conftest import shared_path

    d = gpd.read_parquet(shared_path("denver", "denver_blocks_2020.parquet"))
    pop = d.rename(columns={"TOTPOP20": "people"})[["GEOID20", "people", "geometry"]]
    rep = partition(population=pop).report
    assert rep["counts"]["residents_counted_elsewhere"] == 0
    assert rep["counts"]["max_abs_difference"] <= 1.0
    assert rep["range"]["in_range_share"] == 1.0
    assert rep["pieces"]["grids_in_pieces"] == 0
    assert rep["coverage"]["jurisdiction_m2"] == pytest.approx(4.0e8, rel=0.1)  # ~400 km², in m² not ft²


@pytest.mark.realdata
@pytest.mark.slow
def test_porto_alegre_with_every_highway_line_verified():
    """Every OSM highway line as loaded: vehicle classes make the blocks, the rest guide cuts; the hexagons'
    people counted by areal weighting against the final grids agree with the plan within rounding."""
    from tests.conftest import shared_path

    from tests.partition.test_plan import poa_hexagons

    pytest.importorskip("h3")
    hexes = poa_hexagons(shared_path("porto_alegre", "poa_hexgrid.csv"))
    lines = gpd.read_file(shared_path("porto_alegre", "poa_osm.pbf"), layer="lines", engine="pyogrio")
    lines = lines[lines["highway"].notna()][["highway", "geometry"]]
    plan = partition(jurisdiction=shapely.union_all(np.asarray(hexes.geometry.values)), population=hexes,
                     streets=lines)
    rep = plan.report
    assert "footway" not in rep["streets"]["classes"] and "service" not in rep["streets"]["classes"]
    assert rep["counts"]["residents_counted_elsewhere"] == 0
    assert rep["counts"]["max_abs_difference"] <= 1.0
    assert rep["pieces"]["grids_in_pieces"] == 0
    for g in rep["range"]["grids"]:  # in range except the offshore islands, flagged
        assert set(g["reasons"]) <= {"island below min", "uninhabited island"}, g
    assert int(plan.grids["people"].sum()) == int(hexes["people"].sum())


def test_footprints_given_with_buildings_are_never_crossed():
    """--buildings: footprints (here 6 m around each estate building's entrances) are whole in one grid."""
    from geo.demo.synthetic import generate_district

    d = generate_district(seed=42, scale=0.15)
    m = d.population.to_crs("EPSG:32650")
    est = m[m["kind"] == "estate"]
    fp = est.dissolve(by="building").geometry.convex_hull.buffer(6.0)
    fp = gpd.GeoDataFrame({"building": fp.index}, geometry=fp.values, crs=m.crs)
    plan = partition(jurisdiction=d.boundary, population=d.population, streets=d.streets,
                     communities=d.communities, special=d.special_areas, buildings=fp[["geometry"]])
    rep = plan.report
    assert rep["buildings"]["n_footprints"] == len(fp)
    assert rep["buildings"]["footprints_crossed"] == 0
    assert rep["invariants"]["ok"], rep["invariants"]
    assert plan.params["buildings"] is True
