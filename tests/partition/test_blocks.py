"""Street blocks: polygonizing street centerlines into blocks that tile a jurisdiction."""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon, box

from geo.partition.blocks import (
    boundary_on_lines_share,
    filter_streets,
    is_sliver,
    merge_slivers,
    polygon_blocks,
    street_blocks,
)
from tests.conftest import shared_path

UTM = "EPSG:32650"
JUR = box(0, 0, 400, 300)


def grid_streets(xs=(100, 200, 300), ys=(100, 200), pad=10.0, extent=(0, 0, 400, 300)):
    """Straight streets crossing the whole jurisdiction (overshooting it by *pad*)."""
    x0, y0, x1, y1 = extent
    lines = [LineString([(x, y0 - pad), (x, y1 + pad)]) for x in xs]
    lines += [LineString([(x0 - pad, y), (x1 + pad, y)]) for y in ys]
    return lines


def frame(lines, highway="residential"):
    return gpd.GeoDataFrame({"highway": [highway] * len(lines)}, geometry=lines, crs=UTM)


def jur(geom=JUR):
    return gpd.GeoDataFrame(geometry=[geom], crs=UTM)


def assert_tiles(blocks, geom, rel=1e-9):
    """Blocks cover *geom* exactly, without overlaps."""
    union = shapely.union_all(blocks.geometry.values)
    assert union.symmetric_difference(geom).area <= rel * geom.area
    assert blocks.area.sum() == pytest.approx(geom.area, rel=rel)  # sum == union → no overlaps
    assert blocks.is_valid.all()


def test_grid_gives_known_blocks_and_tiles_exactly():
    blocks = street_blocks(frame(grid_streets()), jur())
    assert len(blocks) == 12
    assert blocks.crs == UTM
    assert list(blocks.index) == list(range(12))
    assert list(blocks["block"]) == list(range(12))
    assert np.allclose(blocks["area_m2"], 10_000)
    assert_tiles(blocks, JUR)


def test_block_ids_are_deterministic():
    a = street_blocks(frame(grid_streets()), jur())
    b = street_blocks(frame(grid_streets()[::-1]), jur())
    assert all(x.equals(y) for x, y in zip(a.geometry, b.geometry))


def test_dead_end_lane_makes_no_block_and_loses_no_area():
    lane = LineString([(150, 100), (150, 160), (170, 170)])  # cul-de-sac into a block
    blocks, net = street_blocks(frame(grid_streets() + [lane]), jur(), return_streets=True)
    assert len(blocks) == 12
    assert_tiles(blocks, JUR)
    hit = blocks[blocks.contains(shapely.Point(150, 150).buffer(1))]
    assert len(hit) == 1 and hit.area.iloc[0] == pytest.approx(10_000)
    # the lane is in the network but does not bound a block
    lane_edges = net[net.geometry.intersects(shapely.Point(150, 130))]
    assert len(lane_edges) == 1 and not lane_edges["bounds_block"].iloc[0]
    assert net["bounds_block"].sum() > 0


def test_dual_carriageway_sliver_is_merged():
    # y=100 is a dual carriageway: two one-way centerlines 12 m apart
    streets = grid_streets(ys=(200,)) + [LineString([(-10, 94), (410, 94)]), LineString([(-10, 106), (410, 106)])]
    blocks = street_blocks(frame(streets), jur())
    assert len(blocks) == 12  # not 16: the four 100 x 12 m strips were merged
    assert blocks["n_faces"].sum() == 16
    assert_tiles(blocks, JUR)
    assert blocks["area_m2"].min() >= 9_400 - 1e-6


def test_crossing_dual_carriageways_merge_junction_squares_and_strips():
    streets = [LineString([(-10, 94), (410, 94)]), LineString([(-10, 106), (410, 106)]),
               LineString([(194, -10), (194, 310)]), LineString([(206, -10), (206, 310)])]
    blocks = street_blocks(frame(streets), jur())
    assert len(blocks) == 4  # 4 quadrants; 4 strips per road + junction square folded in
    assert_tiles(blocks, JUR)


def test_wide_road_corridor_of_four_carriageways_is_merged():
    # side road, two carriageways, side road: three parallel 14 m strips (42 m together,
    # too wide for the shape test). Side streets end at the side roads (T junctions), so
    # each strip shares more edge with the next strip than with any block; the strips
    # merge with each other first and the corridor must still end up in a block.
    ys = (66, 80, 94, 108)
    streets = [LineString([(200, -10), (200, 310)])]
    streets += [LineString([(-10, y), (410, y)]) for y in ys]
    streets += [LineString([(x, -10), (x, 66)]) for x in (100, 300)]
    streets += [LineString([(x, 108), (x, 310)]) for x in (100, 300)]
    blocks = street_blocks(frame(streets), jur())
    assert len(blocks) == 8
    assert blocks["n_faces"].sum() == 14
    assert_tiles(blocks, JUR)


def test_small_square_block_is_kept_thin_strip_is_not():
    area = np.array([1600.0, 1200.0, 800.0])
    perim = np.array([160.0, 2 * (100 + 12), 120.0])
    out = is_sliver(area, perim, min_area=1000, sliver_width=25)
    assert out.tolist() == [False, True, True]


def test_island_and_hole():
    island = box(500, 0, 600, 100)  # no streets reach it
    lake = box(20, 20, 60, 60)  # a hole in the jurisdiction
    main = Polygon(JUR.exterior.coords, [lake.exterior.coords])
    geom = MultiPolygon([main, island])
    blocks = street_blocks(frame(grid_streets()), jur(geom))
    assert len(blocks) == 13
    assert_tiles(blocks, geom)
    assert not blocks.intersects(shapely.Point(40, 40)).any()  # the hole is not a block
    isl = blocks[blocks.intersects(island.centroid)]
    assert len(isl) == 1 and isl.area.iloc[0] == pytest.approx(10_000)


def test_undershoot_is_closed():
    streets = grid_streets(xs=(100, 300))
    streets.append(LineString([(200, 100.3), (200, 199.7)]))  # stops 0.3 m short at both ends
    blocks = street_blocks(frame(streets), jur(), snap_tol=0.5)
    assert len(blocks) == 10
    blocks_nosnap = street_blocks(frame(streets), jur(), snap_tol=0.0)
    assert len(blocks_nosnap) == 9
    assert_tiles(blocks, JUR)


def test_no_streets_gives_the_jurisdiction():
    blocks = street_blocks(frame([]), jur())
    assert len(blocks) == 1
    assert_tiles(blocks, JUR)


def test_geographic_input_is_projected():
    off = (238_000, 3_390_000)  # central Wuhan in UTM 50N
    j = jur().translate(*off).to_crs(4326)
    s = frame(grid_streets()).translate(*off)
    s = gpd.GeoDataFrame({"highway": ["residential"] * len(s)}, geometry=s.values, crs=UTM).to_crs(4326)
    blocks = street_blocks(s, j)
    assert blocks.crs.to_epsg() == 32650  # local UTM zone chosen from lon/lat
    assert len(blocks) == 12
    assert blocks.area.sum() == pytest.approx(j.to_crs(blocks.crs).area.sum(), rel=1e-9)


def test_filter_streets_drops_paths_and_non_highways():
    lines = gpd.GeoDataFrame(
        {"highway": ["residential", "footway", None, "service", "primary", "path"]},
        geometry=[LineString([(0, i), (1, i)]) for i in range(6)], crs=UTM)
    assert filter_streets(lines)["highway"].tolist() == ["residential", "primary"]


def test_merge_slivers_prefers_longest_shared_edge():
    a = box(0, 0, 100, 100)
    b = box(100, 0, 200, 30)
    c = box(100, 30, 200, 100)
    sliver = box(100, 100, 200, 105)  # shares 100 m with c only
    labels = merge_slivers(np.array([a, b, c, sliver]), min_area=1000, sliver_width=20)
    assert labels.tolist() == [0, 1, 2, 2]


def test_polygon_blocks_resolve_overlaps_and_gaps():
    polys = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 100), box(90, 0, 200, 100)], crs=UTM)
    blocks = polygon_blocks(polys, jur(box(0, 0, 200, 120)), min_area=50, sliver_width=2)
    assert_tiles(blocks, box(0, 0, 200, 120))
    assert len(blocks) == 4  # left, overlap, right, gap strip on top


def test_boundary_on_lines_share():
    sq = box(0, 0, 100, 100)
    lines = [LineString([(0, -5), (0, 105)]), LineString([(-5, 0), (105, 0)])]
    share = boundary_on_lines_share([sq], lines, tol=0.5, step=1.0)
    assert share[0] == pytest.approx(0.5, abs=0.02)
    share_ex = boundary_on_lines_share([sq], lines, tol=0.5, step=1.0,
                                       exclude=LineString([(100, -5), (100, 105)]))
    assert share_ex[0] == pytest.approx(2 / 3, abs=0.02)


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_jianghan_blocks_cover_district():
    from geo.crs import to_wgs84

    boundary = gpd.read_file(shared_path("wuhan", "jianghan_boundary_gcj02.geojson"))
    streets = gpd.read_parquet(shared_path("wuhan", "wuhan_streets.parquet"))
    district = to_wgs84(boundary, "gcj02")  # the file says EPSG:4326 but is GCJ-02
    t = time.perf_counter()
    blocks = street_blocks(streets, district)
    elapsed = time.perf_counter() - t
    area = district.to_crs(blocks.crs).area.sum()
    assert area == pytest.approx(28.7e6, rel=0.01)
    union = shapely.union_all(blocks.geometry.values)
    assert union.area == pytest.approx(area, rel=1e-4)  # covers the district
    assert blocks.area.sum() == pytest.approx(union.area, rel=1e-6)  # no overlaps
    assert 250 <= len(blocks) <= 900  # measured 411
    assert blocks["area_m2"].min() >= 1000
    assert elapsed < 15
