"""Loaders: every format, every bad-input case, all-or-nothing, real data."""

from __future__ import annotations

import json
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box
from sqlalchemy import text
from typer.testing import CliRunner

from geo.cli import app
from tests.conftest import shared_path

runner = CliRunner()


def geo(*args):
    res = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return res.exit_code, res.output + (res.stderr if res.stderr_bytes is not None else "")


def _count(engine, table, where="true"):
    with engine.connect() as c:
        return c.execute(text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one()


def _points(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return gpd.GeoDataFrame(
        {"bid": [f"B{i:03d}" for i in range(n)], "pop": rng.integers(5, 300, n), "hh": rng.integers(2, 100, n)},
        geometry=gpd.points_from_xy(rng.uniform(114.28, 114.32, n), rng.uniform(30.58, 30.62, n)),
        crs=4326,
    )


def _polys():
    cells = [box(114.28 + i * 0.01, 30.58 + j * 0.01, 114.29 + i * 0.01, 30.59 + j * 0.01)
             for i in range(3) for j in range(3)]
    return gpd.GeoDataFrame({"bid": [f"P{i}" for i in range(9)], "pop": list(range(100, 1000, 100))},
                            geometry=cells, crs=4326)


WRITERS = {
    "geojson": lambda g, p: g.to_file(p, driver="GeoJSON"),
    "gpkg": lambda g, p: g.to_file(p, driver="GPKG"),
    "shp": lambda g, p: g.to_file(p),
    "parquet": lambda g, p: g.to_parquet(p),
}


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "parquet", "zip", "csv"])
def test_population_loads_from_every_format(fmt, tmp_path, engine, geo_env):
    pts = _points()
    if fmt == "zip":
        shp = tmp_path / "pts.shp"
        WRITERS["shp"](pts, shp)
        path = tmp_path / "pts.zip"
        with zipfile.ZipFile(path, "w") as z:
            for f in tmp_path.glob("pts.*"):
                if f.suffix != ".zip":
                    z.write(f, f.name)
    elif fmt == "csv":
        path = tmp_path / "pts.csv"
        pd.DataFrame({"bid": pts.bid, "lon": pts.geometry.x, "lat": pts.geometry.y, "pop": pts["pop"],
                      "hh": pts.hh}).to_csv(path, index=False)
    else:
        path = tmp_path / f"pts.{fmt}"
        WRITERS[fmt](pts, path)
    extra = ["--crs", "EPSG:4326"] if fmt == "csv" else []
    code, out = geo("load", "population", path, "--pop", "pop", "--households", "hh", "--id-col", "bid",
                    "--dataset", f"t_{fmt}", *extra)
    assert code == 0, out
    with engine.connect() as c:
        n, people, hh = c.execute(text("SELECT count(*), sum(people), sum(households) FROM population_units")).one()
        ids = set(c.execute(text("SELECT source_id FROM population_units")).scalars())
    assert (n, people, hh) == (20, int(pts["pop"].sum()), int(pts.hh.sum()))
    assert ids == set(pts.bid)
    assert _count(engine, "loads") == 1 and _count(engine, "audit_log", "action = 'load'") == 1


def test_polygons_streets_special_and_boundaries(tmp_path, engine, geo_env):
    polys = _polys()
    WRITERS["gpkg"](polys, tmp_path / "p.gpkg")
    assert geo("load", "population", tmp_path / "p.gpkg", "--pop", "pop", "--id-col", "bid")[0] == 0
    streets = gpd.GeoDataFrame({"name": ["解放路", "中山大道"], "highway": ["primary", "secondary"]},
                               geometry=[LineString([(114.28, 30.585), (114.31, 30.585)]),
                                         LineString([(114.295, 30.58), (114.295, 30.61)])], crs=4326)
    WRITERS["geojson"](streets, tmp_path / "s.geojson")
    code, out = geo("load", "streets", tmp_path / "s.geojson")
    assert code == 0, out
    with engine.connect() as c:
        assert c.execute(text("SELECT klass FROM streets WHERE name='解放路'")).scalar_one() == "primary"
        assert c.execute(text("SELECT GeometryType(geom) FROM streets LIMIT 1")).scalar_one() == "MULTILINESTRING"
    special = gpd.GeoDataFrame({"name": ["第一人民医院"], "kind": ["hospital"]},
                               geometry=[box(114.29, 30.59, 114.295, 30.595)], crs=4326)
    WRITERS["gpkg"](special, tmp_path / "sp.gpkg")
    assert geo("load", "special-areas", tmp_path / "sp.gpkg")[0] == 0

    b = gpd.GeoDataFrame(
        {"code": ["429901000000", "429901001000", "429901001001", "429901001002"],
         "name": ["示范区", "东湖街道", "桂园社区", "李家村"], "level": ["district", "street", "community", "village"]},
        geometry=[box(114.28, 30.58, 114.31, 30.61), box(114.28, 30.58, 114.31, 30.61),
                  box(114.28, 30.58, 114.295, 30.61), box(114.295, 30.58, 114.31, 30.61)], crs=4326)
    WRITERS["geojson"](b, tmp_path / "b.geojson")
    code, out = geo("load", "boundaries", tmp_path / "b.geojson", "--level-col", "level")
    assert code == 0, out
    with engine.connect() as c:
        rows = dict(c.execute(text(
            "SELECT c.code, p.code FROM jurisdictions c LEFT JOIN jurisdictions p ON p.id = c.parent_id")).all())
        village = c.execute(text("SELECT level, urban, path FROM jurisdictions WHERE code='429901001002'")).one()
    assert rows == {"429901000000": None, "429901001000": "429901000000", "429901001001": "429901001000",
                    "429901001002": "429901001000"}
    assert village.level == "community" and village.urban is False and village.path.count("/") == 4
    # a second load of the same codes needs --replace
    code, out = geo("load", "boundaries", tmp_path / "b.geojson", "--level-col", "level")
    assert code == 2 and "--replace" in out
    assert geo("load", "boundaries", tmp_path / "b.geojson", "--level-col", "level", "--replace")[0] == 0


def test_gcj02_input_is_converted_on_load(tmp_path, engine, geo_env):
    pts = _points(5)
    WRITERS["geojson"](pts, tmp_path / "amap.geojson")  # labelled 4326, really GCJ-02
    assert geo("load", "population", tmp_path / "amap.geojson", "--pop", "pop", "--crs", "gcj02")[0] == 0
    from geo.crs import gcj02_to_wgs84

    with engine.connect() as c:
        xy = np.array(c.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM population_units ORDER BY source_id::int"))
                      .all())
    ex, ey = gcj02_to_wgs84(pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
    assert np.allclose(xy[:, 0], ex, atol=1e-9) and np.allclose(xy[:, 1], ey, atol=1e-9)
    assert np.abs(xy[:, 0] - pts.geometry.x.to_numpy()).min() > 0.003  # moved by the offset, not by zero


# --------------------------------------------------------------------------- bad input

BAD_CASES = {
    # case: (mutate(frame) -> frame, expected problem code, expected row (1-based))
    "missing_population": (lambda g: g.assign(pop=g["pop"].astype(float).where(g.index != 3)), "missing_value", 4),
    "negative_population": (lambda g: g.assign(pop=g["pop"].where(g.index != 6, -4)), "negative_value", 7),
    "duplicate_id": (lambda g: g.assign(bid=g.bid.where(g.index != 9, "B002")), "duplicate_id", 10),
    "empty_geometry": (lambda g: g.set_geometry(g.geometry.where(g.index != 1, Point())), "empty_geometry", 2),
    "swapped": (lambda g: g.set_geometry(g.geometry.where(
        g.index != 5, Point(g.geometry.iloc[5].y, g.geometry.iloc[5].x))), "swapped_lat_lon", 6),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_one_bad_row_rejects_the_whole_load(case, tmp_path, engine, geo_env):
    mutate, problem, row = BAD_CASES[case]
    g = mutate(_points())
    path = tmp_path / "bad.gpkg"
    WRITERS["gpkg"](g, path)
    code, out = geo("load", "population", path, "--pop", "pop", "--id-col", "bid", "--crs", "gcj02",
                    "--report-json", tmp_path / "r.json")
    assert code == 1, out
    assert f"row {row}" in out and problem in out
    assert "nothing was written" in out
    assert _count(engine, "population_units") == 0 and _count(engine, "loads") == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["problems"][problem] == 1 and rep["rows_rejected"] == 1
    rejects = pd.read_csv(tmp_path / "bad.gpkg.rejects.csv")
    assert list(rejects["row"]) == [row] and rejects["problem"][0] == problem
    # --skip-bad loads the rest, and says how many were rejected
    code, out = geo("load", "population", path, "--pop", "pop", "--id-col", "bid", "--crs", "gcj02", "--skip-bad")
    assert code == 0 and "1 rejected" in out
    assert _count(engine, "population_units") == 19


def test_invalid_geometry_is_repaired_and_counted(tmp_path, engine, geo_env):
    polys = _polys()
    bowtie = Polygon([(114.28, 30.58), (114.29, 30.59), (114.29, 30.58), (114.28, 30.59)])
    polys.loc[4, "geometry"] = bowtie
    WRITERS["geojson"](polys, tmp_path / "p.geojson")
    code, out = geo("load", "population", tmp_path / "p.geojson", "--pop", "pop", "--report-json", tmp_path / "r.json")
    assert code == 0, out
    assert json.loads((tmp_path / "r.json").read_text())["problems"] == {"repaired_geometry": 1}
    with engine.connect() as c:
        assert c.execute(text("SELECT bool_and(ST_IsValid(geom)) FROM population_units")).scalar_one()
        assert c.execute(text("SELECT count(*) FROM population_units")).scalar_one() == 9


def test_points_outside_the_jurisdiction(tmp_path, engine, geo_env):
    b = gpd.GeoDataFrame({"code": ["429901001001"], "name": ["桂园社区"]},
                         geometry=[box(114.28, 30.58, 114.30, 30.60)], crs=4326)
    WRITERS["geojson"](b, tmp_path / "b.geojson")
    assert geo("load", "boundaries", tmp_path / "b.geojson")[0] == 0
    pts = gpd.GeoDataFrame({"pop": [10, 20, 30]},
                           geometry=[Point(114.29, 30.59), Point(114.40, 30.70), Point(30.59, 114.29)], crs=4326)
    WRITERS["gpkg"](pts, tmp_path / "pts.gpkg")
    code, out = geo("load", "population", tmp_path / "pts.gpkg", "--pop", "pop", "--jurisdiction", "429901001001",
                    "--report-json", tmp_path / "r.json")
    assert code == 1
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["problems"] == {"outside_jurisdiction": 1, "swapped_lat_lon": 1}
    assert any("row 2" in e for e in rep["examples"]["outside_jurisdiction"])


def test_unknown_crs_and_missing_columns_are_fatal(tmp_path, engine, geo_env):
    p = tmp_path / "p.csv"
    p.write_text("lon,lat,pop\n114.3,30.6,10\n")
    code, out = geo("load", "population", p, "--pop", "pop")
    assert code == 2 and "--crs" in out and "CSV carries no CRS" in out
    code, out = geo("load", "population", p, "--pop", "people_count", "--crs", "EPSG:4326")
    assert code == 2 and "'people_count'" in out
    code, out = geo("load", "population", p, "--pop", "pop", "--crs", "EPSG:999999")
    assert code == 2 and "unknown CRS" in out
    code, out = geo("load", "population", tmp_path / "nope.gpkg", "--pop", "pop")
    assert code == 2 and "file not found" in out
    assert _count(engine, "loads") == 0


def test_rejects_file_goes_to_data_dir_when_input_dir_is_read_only(tmp_path, engine, geo_env):
    """Read-only input folders (like ../shared/data) are never written to, even by root."""
    from pathlib import Path

    ro = tmp_path / "ro"
    ro.mkdir()
    g = BAD_CASES["negative_population"][0](_points())
    WRITERS["gpkg"](g, ro / "bad.gpkg")
    ro.chmod(0o555)
    try:
        code, out = geo("load", "population", ro / "bad.gpkg", "--pop", "pop")
    finally:
        ro.chmod(0o755)
    assert code == 1
    assert list(ro.iterdir()) == [ro / "bad.gpkg"]
    expected = Path(geo_env["GEO_DATA_DIR"]).resolve() / "rejects" / "bad.gpkg.rejects.csv"
    assert expected.exists() and str(expected) in out.replace("\n", "")


def test_load_is_one_transaction(tmp_path, engine, geo_env, monkeypatch):
    """A failure half-way through writing leaves nothing behind."""
    from geo.db import loads

    pts = _points(50)
    WRITERS["gpkg"](pts, tmp_path / "p.gpkg")
    real = loads._rows

    def failing(*a, **k):
        for i, r in enumerate(real(*a, **k)):
            if i == 30:
                raise RuntimeError("disk full")
            yield r

    monkeypatch.setattr(loads, "_rows", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        runner.invoke(app, ["load", "population", str(tmp_path / "p.gpkg"), "--pop", "pop"], catch_exceptions=False)
    assert _count(engine, "population_units") == 0 and _count(engine, "loads") == 0
    assert _count(engine, "audit_log") == 0


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_denver_blocks_parquet_and_zip(engine, geo_env):
    pq = shared_path("denver", "denver_blocks_2020.parquet")
    code, out = geo("load", "population", pq, "--pop", "TOTPOP20", "--id-col", "GEOID20")
    assert code == 0, out
    assert "loaded 10149" in out and "715,522 people" in out
    z = shared_path("denver", "denver_blocks_2020.zip")
    code, out = geo("load", "population", z, "--pop", "TOTPOP20", "--id-col", "GEOID20", "--dataset", "dz")
    assert code == 0, out
    with engine.connect() as c:
        rows = c.execute(text("SELECT dataset, count(*), sum(people) FROM population_units GROUP BY 1 ORDER BY 1"))
        assert [tuple(r) for r in rows] == [("denver_blocks_2020", 10149, 715522), ("dz", 10149, 715522)]
        # the shapefile is in US survey feet (EPSG:2232); both land on the same place in 4326
        d = c.execute(text("SELECT max(ST_Distance(a.geom::geography, b.geom::geography)) FROM population_units a "
                           "JOIN population_units b USING (source_id) WHERE a.dataset='dz' AND b.dataset<>'dz' "
                           "AND a.source_id IN (SELECT source_id FROM population_units LIMIT 50)")).scalar_one()
    assert d < 0.5


@pytest.mark.realdata
def test_denver_with_one_broken_row_is_rejected_with_its_row_number(tmp_path, engine, geo_env):
    g = gpd.read_parquet(shared_path("denver", "denver_blocks_2020.parquet"))
    g.loc[1234, "TOTPOP20"] = -1
    g.to_parquet(tmp_path / "denver_broken.parquet")
    code, out = geo("load", "population", tmp_path / "denver_broken.parquet", "--pop", "TOTPOP20",
                    "--id-col", "GEOID20")
    assert code == 1 and "row 1235" in out and "negative" in out
    assert _count(engine, "population_units") == 0


@pytest.mark.realdata
def test_wuhan_streets_and_porto_alegre_pbf(engine, geo_env):
    code, out = geo("load", "streets", shared_path("wuhan", "wuhan_streets.parquet"), "--class-col", "highway")
    assert code == 0, out
    assert _count(engine, "streets") == 92667
    code, out = geo("load", "streets", shared_path("porto_alegre", "poa_osm.pbf"), "--id-col", "osm_id")
    assert code == 0, out
    assert _count(engine, "streets", "dataset = 'poa_osm'") == 15904


@pytest.mark.realdata
def test_jianghan_gcj02_boundary_lines_up_with_osm_streets_after_conversion(engine, geo_env):
    """Converted from GCJ-02, the 江汉区 boundary moves by the local offset and matches the streets."""
    b = shared_path("wuhan", "jianghan_boundary_gcj02.geojson")
    streets = gpd.read_parquet(shared_path("wuhan", "wuhan_streets.parquet"))
    raw = gpd.read_file(b)
    code, out = geo("load", "boundaries", b, "--crs", "gcj02", "--code-col", "adcode", "--level", "district")
    assert code == 0, out
    with engine.connect() as c:
        wkb = c.execute(text("SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = '420103000000'")).scalar_one()
    loaded = shapely.from_wkb(bytes(wkb))
    # every vertex moved by the GCJ-02 offset there: hundreds of metres, not zero
    gv = shapely.get_coordinates(raw.geometry.iloc[0])
    lv = shapely.get_coordinates(loaded)
    from pyproj import Geod

    _, _, d = Geod(ellps="WGS84").inv(gv[:, 0], gv[:, 1], lv[:, 0], lv[:, 1])
    assert 400 < d.min() and d.max() < 800
    # The district boundary runs along roads: after conversion far more of it lies near a street.
    utm = streets.crs
    near = {}
    for label, geom in (("raw", raw.geometry.iloc[0]), ("converted", loaded)):
        ring = gpd.GeoSeries([geom.boundary], crs=4326).to_crs(utm).iloc[0]
        samples = shapely.line_interpolate_point(ring, np.linspace(0, ring.length, 2000))
        tree = shapely.STRtree(streets.geometry.values)
        _, dist = tree.query_nearest(samples, return_distance=True, all_matches=False)
        near[label] = float(np.mean(dist < 30))
    assert near["converted"] > 0.5 and near["converted"] > 2 * near["raw"], near
    # and it encloses the district's street network: streets well inside the raw polygon's core stay inside
    conv_utm = gpd.GeoSeries([loaded], crs=4326).to_crs(utm).iloc[0]
    inner = streets[streets.intersects(conv_utm.buffer(-300))]
    assert len(inner) > 2000
    assert inner.within(conv_utm).mean() > 0.99


def test_address_column_is_kept_for_the_standard_address_search(tmp_path, engine, geo_env):
    pts = _points(6, seed=3)
    pts["addr_text"] = ["中山大道1号锦绣华府1栋", " 中山大道1号锦绣华府2栋 ", None, "李家湾村王家湾12号",
                        "中山大道１号锦绣华府3栋2单元", ""]
    path = tmp_path / "addr.csv"
    pd.DataFrame({"bid": pts.bid, "lon": pts.geometry.x, "lat": pts.geometry.y, "pop": pts["pop"],
                  "addr_text": pts.addr_text}).to_csv(path, index=False)
    code, out = geo("load", "population", path, "--pop", "pop", "--id-col", "bid", "--crs", "EPSG:4326",
                    "--address-col", "addr_text")
    assert code == 0, out
    with engine.connect() as c:
        got = dict(c.execute(text("SELECT source_id, address FROM population_units")).all())
        props = c.execute(text("SELECT props FROM population_units WHERE source_id = 'B000'")).scalar_one()
    assert got["B000"] == "中山大道1号锦绣华府1栋" and got["B003"] == "李家湾村王家湾12号"
    assert got["B004"] == "中山大道１号锦绣华府3栋2单元"  # stored as given; the search normalises
    assert got["B002"] is None and len(got) == 6  # rows without an address are still loaded
    assert "addr_text" not in props
    code, out = geo("load", "population", path, "--pop", "pop", "--id-col", "bid", "--crs", "EPSG:4326",
                    "--address-col", "no_such_col", "--dataset", "other")
    assert code != 0 and "no_such_col" in out
