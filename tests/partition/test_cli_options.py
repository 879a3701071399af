"""`geo partition --street-classes/--buildings`: bad values are refused before any work, with the reason."""

from __future__ import annotations

import geopandas as gpd
import shapely
from typer.testing import CliRunner

from geo.cli import app


def _run(*args):
    return CliRunner().invoke(app, ["partition", "429901001000", *args], catch_exceptions=False)


def test_empty_street_classes_are_refused():
    res = _run("--street-classes", " , ")
    assert res.exit_code == 2
    assert "--street-classes needs at least one class" in res.output


def test_buildings_file_missing_without_crs_or_not_polygons(tmp_path):
    res = _run("--buildings", str(tmp_path / "none.gpkg"))
    assert res.exit_code == 2 and "not found" in res.output
    lines = gpd.GeoDataFrame({"id": [1]}, geometry=[shapely.LineString([(0, 0), (1, 1)])], crs=4326)
    lines.to_file(tmp_path / "lines.gpkg")
    res = _run("--buildings", str(tmp_path / "lines.gpkg"))
    assert res.exit_code == 2 and "expected building polygons" in res.output
