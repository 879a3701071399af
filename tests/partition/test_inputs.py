"""Bad input to partition(): a PartitionInputError naming the row and the field, never a silent change."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.partition import PartitionInputError, partition

CRS = "EPSG:32650"
X0, Y0 = 500_000.0, 3_380_000.0


def blocks(n=6, people=400):
    geoms = [shapely.box(X0 + i * 100, Y0, X0 + (i + 1) * 100, Y0 + 100) for i in range(n)]
    return gpd.GeoDataFrame({"people": [people] * n}, geometry=geoms, crs=CRS)


def pts(n=30):
    rng = np.random.default_rng(0)
    return gpd.GeoDataFrame({"people": [50] * n, "building": [f"B{k}" for k in range(n)]},
                            geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in
                                      zip(rng.uniform(5, 595, n), rng.uniform(5, 95, n))], crs=CRS)


JUR = shapely.box(X0, Y0, X0 + 600, Y0 + 100)


def _raises(match, **kw):
    with pytest.raises(PartitionInputError, match=match):
        partition(min_pop=500, max_pop=1500, **kw)


def test_missing_and_empty_geometry_name_the_row():
    p = blocks()
    p.loc[3, "geometry"] = None
    _raises(r"population row 3: field 'geometry' is missing", population=p)
    p = blocks()
    p.loc[2, "geometry"] = shapely.Polygon()
    _raises(r"population row 2: field 'geometry' is empty", population=p)


def test_nan_negative_and_fractional_population_name_the_row():
    for value, what in ((np.nan, "nan"), (-5, "-5"), (12.5, "12.5")):
        p = blocks()
        p["people"] = p["people"].astype(float)
        p.loc[4, "people"] = value
        _raises(rf"population row 4: field 'people' is {what}", population=p)
    p = blocks().set_index(np.array(["a", "b", "c", "d", "e", "f"]))
    p.loc["e", "people"] = -1
    _raises(r"population row 4 \(index 'e'\): field 'people'", population=p)


def test_population_without_people_or_crs():
    _raises(r"no 'people' column", population=blocks().rename(columns={"people": "pop"}))
    _raises(r"no CRS", population=blocks().set_crs(None, allow_override=True))


def test_special_areas_without_id_or_kind():
    sp = gpd.GeoDataFrame({"name": ["school"], "kind": ["school"]},
                          geometry=[shapely.box(X0 + 10, Y0 + 10, X0 + 60, Y0 + 60)], crs=CRS)
    _raises(r"special areas have no 'id' column", population=pts(), jurisdiction=JUR, special=sp)
    sp2 = sp.assign(id=["S1"]).drop(columns="kind")
    _raises(r"special areas have no 'kind' column", population=pts(), jurisdiction=JUR, special=sp2)
    sp3 = sp.assign(id=[None])
    _raises(r"special areas row 0: field 'id' is empty", population=pts(), jurisdiction=JUR, special=sp3)


def test_one_building_id_on_points_far_apart():
    p = pts()
    p.loc[7, "building"] = "B0"  # B0's other point is hundreds of metres away
    p.loc[0, "geometry"] = shapely.Point(X0 + 5, Y0 + 5)
    p.loc[7, "geometry"] = shapely.Point(X0 + 590, Y0 + 90)
    _raises(r"field 'building' = 'B0' is shared by address points \d+ m apart", population=p, jurisdiction=JUR)
    # entrances 12 m apart are one building
    p.loc[7, "geometry"] = shapely.Point(X0 + 17, Y0 + 5)
    plan = partition(population=p, jurisdiction=JUR, min_pop=500, max_pop=1500)
    assert plan.report["buildings"]["split_between_grids"] == 0


def test_good_input_is_unchanged():
    plan = partition(population=blocks(), min_pop=500, max_pop=1500)
    assert int(plan.grids["people"].sum()) == 2400
    assert plan.report["invariants"]["ok"]
