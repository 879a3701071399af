"""Quality report and the residents-moved measure."""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.partition.quality import format_report, polsby_popper, quality_report, residents_moved

CRS = "EPSG:32650"
X0, Y0 = 500_000.0, 3_380_000.0


def sq(x, y, s=100.0):
    return shapely.box(X0 + x, Y0 + y, X0 + x + s, Y0 + y + s)


def grids(geoms, people, **cols):
    return gpd.GeoDataFrame({"people": people, **cols}, geometry=list(geoms), crs=CRS)


def test_polsby_popper_of_known_shapes():
    circle = shapely.Point(0, 0).buffer(10, quad_segs=256)
    pp = polsby_popper([sq(0, 0), shapely.box(0, 0, 200, 100), circle])
    np.testing.assert_allclose(pp[:2], [math.pi / 4, 4 * math.pi * 2 / 36], rtol=1e-9)
    assert 0.999 < pp[2] <= 1.0


def test_report_basic_figures_and_json():
    g = grids([sq(0, 0), sq(100, 0), sq(200, 0)], [1000, 1500, 2500],
              code=["a", "b", "c"], flags=["", "", "single building above max"])
    rep = quality_report(g, None, 1000, 2000, runtime_s=1.5)
    json.dumps(rep)  # serialisable
    assert rep["n_grids"] == 3
    assert rep["population"]["min"] == 1000 and rep["population"]["max"] == 2500
    assert rep["population"]["median"] == 1500
    assert rep["population"]["cv"] == pytest.approx(np.std([1000, 1500, 2500]) / np.mean([1000, 1500, 2500]))
    assert rep["range"]["in_range"] == 2
    assert rep["range"]["grids"] == [{"code": "c", "people": 2500.0, "reasons": ["single building above max"]}]
    assert rep["range"]["out_of_range_unexplained"] == 0
    assert rep["compactness"]["polsby_popper_mean"] == pytest.approx(math.pi / 4)
    assert rep["coverage"]["covered_share"] == pytest.approx(1.0)
    assert rep["runtime_s"] == 1.5
    assert "grids: 3" in format_report(rep)


def test_unflagged_out_of_range_grid_is_unexplained():
    g = grids([sq(0, 0), sq(100, 0)], [900, 1500])
    rep = quality_report(g, None, 1000, 2000)
    assert rep["range"]["out_of_range_unexplained"] == 1
    assert rep["range"]["reasons"] == {"infeasible": 1}


def test_coverage_gap_overlap_and_outside():
    jur = shapely.box(X0, Y0, X0 + 300, Y0 + 100)
    # grid 2 overlaps grid 1 by 20 x 100; nothing covers x in [200, 300]; grid 3 sticks out
    g = grids([sq(0, 0), shapely.box(X0 + 80, Y0, X0 + 180, Y0 + 100), shapely.box(X0, Y0 + 100, X0 + 50, Y0 + 150)],
              [1000, 1000, 1000])
    rep = quality_report(g, jur, 1000, 2000)
    c = rep["coverage"]
    assert c["jurisdiction_m2"] == pytest.approx(30_000)
    assert c["overlap_m2"] == pytest.approx(2_000)
    assert c["gap_m2"] == pytest.approx(12_000)
    assert c["outside_m2"] == pytest.approx(2_500)
    assert c["covered_share"] == pytest.approx(1 - 12_000 / 30_000)


def test_jurisdiction_in_another_crs():
    g = grids([sq(0, 0)], [1500])
    jur = gpd.GeoSeries([sq(0, 0)], crs=CRS).to_crs(4326)
    rep = quality_report(g.to_crs(4326), jur, 1000, 2000)
    assert rep["coverage"]["covered_share"] == pytest.approx(1.0, abs=1e-6)


def test_contiguity_counts_gaps_beyond_tolerance_only():
    near = shapely.union_all([sq(0, 0), sq(105, 0)])  # 5 m apart: joined
    far = shapely.union_all([sq(0, 300), sq(200, 300)])  # 100 m apart: not joined
    g = grids([near, far], [1500, 1500], code=["near", "far"])
    rep = quality_report(g, None, 1000, 2000, gap_tol=20)
    assert rep["contiguity"]["multipart_grids"] == 2
    assert rep["contiguity"]["noncontiguous"] == ["far"]


def test_enclosed_grid_is_reported():
    outer = shapely.box(X0, Y0, X0 + 300, Y0 + 300).difference(sq(100, 100))
    g = grids([outer, sq(100, 100)], [1500, 1200], code=["ring", "inner"])
    rep = quality_report(g, None, 1000, 2000)
    assert rep["contiguity"]["enclosed_grids"] == [{"code": "inner", "inside": "ring"}]


def test_boundary_on_streets_share():
    g = grids([sq(0, 0), sq(100, 0)], [1500, 1500])
    # a street along the shared edge x = 100, and one that follows nothing
    street = shapely.LineString([(X0 + 100, Y0 - 10), (X0 + 100, Y0 + 110)])
    rep = quality_report(g, None, 1000, 2000, streets=gpd.GeoSeries([street], crs=CRS))
    s = rep["streets"]
    assert s["internal_boundary_on_streets_share"] == pytest.approx(1.0)
    assert s["boundary_on_streets_share"] == pytest.approx(1.0)  # the rest is jurisdiction outline
    rep2 = quality_report(g, None, 1000, 2000,
                          streets=gpd.GeoSeries([shapely.LineString([(X0 + 50, Y0), (X0 + 50, Y0 + 100)])], crs=CRS))
    assert rep2["streets"]["internal_boundary_on_streets_share"] == pytest.approx(0.0)


def test_off_street_boundary_by_cause():
    """Two grids made of the two halves of one street block: their shared edge is a cut through the block;
    a third grid is a special unit cut out of another block."""
    g = grids([sq(0, 0), sq(100, 0), sq(200, 0)], [1500, 1500, 300], kind=["standard", "standard", "exclusive"])
    atoms = gpd.GeoDataFrame({"people": [1500, 1500, 300], "block": [0, 0, 1], "special": [None, None, "S1"],
                              "community": ["c", "c", "c"]}, geometry=[sq(0, 0), sq(100, 0), sq(200, 0)], crs=CRS)
    outline = shapely.box(X0, Y0, X0 + 300, Y0 + 100).exterior
    rep = quality_report(g, None, 1000, 2000, streets=gpd.GeoSeries([outline], crs=CRS), atoms=atoms)
    s = rep["streets"]
    assert s["off_street_m"] == pytest.approx(200.0)
    assert s["off_street_m_by_cause"]["inside a street block"] == pytest.approx(100.0)
    assert s["off_street_m_by_cause"]["special unit edge"] == pytest.approx(100.0)
    assert s["boundary_on_streets_share"] == pytest.approx(800.0 / 1000.0)


def test_residents_moved_is_label_independent():
    people = np.array([10, 20, 30, 40])
    old = np.array([0, 0, 1, 1])
    assert residents_moved(people, old, np.array([7, 7, 3, 3]))["moved"] == 0
    r = residents_moved(people, old, np.array([7, 3, 3, 3]))
    assert r["moved"] == 20
    assert r["grids_changed"] == 2
    assert r["share"] == pytest.approx(0.2)
    # a split grid: the larger part stays matched
    r = residents_moved(people, old, np.array([0, 0, 1, 2]))
    assert r["moved"] == 30 and r["grids_changed"] == 2


def test_stability_against_previous_grids():
    atoms = grids([sq(0, 0), sq(100, 0), sq(200, 0), sq(300, 0)], [500, 500, 600, 600], grid=["A", "A", "B", "B"])
    prev = grids([shapely.union_all([sq(0, 0), sq(100, 0), sq(200, 0)]), sq(300, 0)], [1600, 600], code=["p1", "p2"])
    new = grids([shapely.union_all([sq(0, 0), sq(100, 0)]), shapely.union_all([sq(200, 0), sq(300, 0)])],
                [1000, 1200], code=["A", "B"])
    rep = quality_report(new, None, 1000, 2000, previous=prev, atoms=atoms)
    assert rep["stability"]["moved"] == 600  # atom 2 left p1 (matched to A) for B (matched to p2)
    assert rep["stability"]["previous_grids"] == 2
