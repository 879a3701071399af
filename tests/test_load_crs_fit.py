"""Loaders refuse what they cannot load faithfully (issue 11, item 5): a declared CRS that does not fit the
coordinates, an unknown EPSG code in a GeoJSON, overflowing counts, empty files — each with a clear message
(naming the CRS and a sample coordinate, or the row and field) and never a traceback or a silent load."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
from pyproj import Transformer
from sqlalchemy import text
from typer.testing import CliRunner

from geo.cli import app
from geo.crs import CRSError
from geo.io.checks import validate
from geo.io.readers import InputError, read_table


def geo(*args):
    res = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return res.exit_code, res.output + (res.stderr if res.stderr_bytes is not None else "")


def _geojson(path, coords, crs_name=None, people=None):
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"pop": people[i] if people else 10 + i},
         "geometry": {"type": "Point", "coordinates": list(c)}} for i, c in enumerate(coords)]}
    if crs_name:
        doc["crs"] = {"type": "name", "properties": {"name": crs_name}}
    path.write_text(json.dumps(doc))
    return path


WUHAN = [(114.30 + 0.01 * k, 30.60 + 0.005 * k) for k in range(5)]


@pytest.mark.parametrize("declared", ["urn:ogc:def:crs:EPSG::3857", "EPSG:32650", "EPSG:4547"])
def test_degrees_declared_as_a_projected_crs_are_refused(tmp_path, declared):
    p = _geojson(tmp_path / "p.geojson", WUHAN, declared)
    with pytest.raises(CRSError) as e:
        validate(read_table(p), "population")
    msg = str(e.value)
    code = declared.split(":")[-1]
    assert f"EPSG:{code}" in msg and "(114.3, 30.6)" in msg and "degrees" in msg


def test_metres_in_the_wrong_zone_are_outside_the_area_of_use(tmp_path):
    t = Transformer.from_crs(4326, 4547, always_xy=True)  # real CGCS2000 3° Gauss-Krüger (CM 114°E) metres…
    xy = [t.transform(x, y) for x, y in WUHAN]
    p = tmp_path / "p.csv"
    p.write_text("x,y,pop\n" + "".join(f"{x},{y},5\n" for x, y in xy))
    ok, _ = validate(read_table(p, crs="EPSG:4547"), "population")
    assert len(ok) == 5 and abs(ok.geometry.x.iloc[0] - 114.30) < 1e-6
    with pytest.raises(CRSError) as e:  # …declared as the zone-prefixed GK zone 38 (CM 114°E, x = 38 500 000 + …)
        validate(read_table(p, crs="EPSG:4526"), "population")
    msg = str(e.value)
    assert "EPSG:4526" in msg and "area of use" in msg and f"({xy[0][0]:.6g}" in msg
    with pytest.raises(CRSError, match="EPSG:4490"):  # …or Wuhan's lon/lat declared as CGCS2000 but in Europe
        validate(read_table(_geojson(tmp_path / "eu.geojson", [(13.4, 52.5), (13.5, 52.6)]), crs="EPSG:4490"),
                 "population")


def test_unknown_epsg_in_a_geojson_is_an_error_not_wgs84(tmp_path):
    p = _geojson(tmp_path / "p.geojson", WUHAN, "urn:ogc:def:crs:EPSG::999999")
    with pytest.raises(CRSError, match="999999.*unknown"):
        read_table(p)
    # the caller's --crs still overrides the file's label
    assert read_table(p, crs="EPSG:4326").crs.to_epsg() == 4326
    # a known declared code is used as declared
    assert read_table(_geojson(tmp_path / "q.geojson", WUHAN, "urn:ogc:def:crs:EPSG::4490")).crs.to_epsg() == 4490


@pytest.mark.parametrize("content", ["", "lon,lat,pop\n"])
def test_empty_files_are_a_clear_error(tmp_path, content):
    p = tmp_path / "e.csv"
    p.write_text(content)
    with pytest.raises(InputError, match="empty|no rows"):
        read_table(p, crs="EPSG:4326")
    g = tmp_path / "e.geojson"
    g.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(InputError, match="no rows"):
        read_table(g)


def test_overflowing_counts_are_rejected_rows(tmp_path):
    p = _geojson(tmp_path / "p.geojson", WUHAN, people=[10, 3_000_000_000, 20, 10**19, 5])
    clean, report = validate(read_table(p), "population")
    assert not report.ok and report.counts["value_too_large"] == 2
    assert "3000000000 exceeds" in report.message() and "field 'pop'" in report.message()


def test_cli_gives_the_load_report_not_a_traceback(tmp_path, engine, geo_env):
    big = tmp_path / "big.csv"
    big.write_text("lon,lat,people\n114.3,30.6,3000000000\n114.31,30.61,12\n")
    code, out = geo("load", "population", big, "--pop", "people", "--crs", "EPSG:4326")
    assert code == 1 and "value_too_large" in out and "3000000000" in out and "Traceback" not in out
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, out = geo("load", "population", empty, "--pop", "people", "--crs", "EPSG:4326")
    assert code == 2 and "empty" in out and "Traceback" not in out
    deg = _geojson(tmp_path / "deg.geojson", WUHAN, "urn:ogc:def:crs:EPSG::3857")
    code, out = geo("load", "population", deg, "--pop", "pop")
    assert code == 2 and "EPSG:3857" in out and "Traceback" not in out
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM population_units")).scalar() == 0
