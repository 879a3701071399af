"""The dashboard's map helpers without a browser: GCJ-02 shifting, basemap detection, offline assets."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard import maps


def test_gcj_hosts_are_detected():
    assert maps.is_gcj_url("https://webrd0{s}.is.autonavi.com/appmaptile?x={x}&y={y}&z={z}&style=8")
    assert maps.is_gcj_url("https://rt{s}.map.gtimg.com/tile?z={z}&x={x}&y={y}")
    assert maps.is_gcj_url("https://wprd01.amap.com/{z}/{x}/{y}")
    assert not maps.is_gcj_url("https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    assert not maps.is_gcj_url(None)


def test_overlays_shift_to_gcj02_and_clicks_shift_back():
    from geo.crs import wgs84_to_gcj02

    bm = maps.Basemap("https://wprd01.amap.com/{z}/{x}/{y}", True)
    ring = [[114.30, 30.59], [114.31, 30.59], [114.31, 30.60], [114.30, 30.59]]
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "1"}, "geometry": {"type": "Polygon", "coordinates": [ring]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "MultiPolygon", "coordinates": [[ring]]}}]}
    out = maps.shift_fc(fc, bm)
    x, y = wgs84_to_gcj02(np.array([114.30]), np.array([30.59]))
    assert out["features"][0]["geometry"]["coordinates"][0][0] == pytest.approx([x[0], y[0]], abs=1e-6)
    assert out["features"][1]["geometry"]["coordinates"][0][0][0] == pytest.approx([x[0], y[0]], abs=1e-6)
    assert abs(x[0] - 114.30) > 1e-4  # the offset is hundreds of metres in Wuhan
    lon, lat = maps.from_display(float(x[0]), float(y[0]), bm)
    assert (lon, lat) == pytest.approx((114.30, 30.59), abs=1e-7)
    plain = maps.Basemap(None, False)
    assert maps.shift_fc(fc, plain) is fc
    assert maps.to_display(114.3, 30.59, plain) == (114.3, 30.59)


def test_base_map_uses_only_bundled_assets():
    m = maps.base_map([114.27, 30.59, 114.32, 30.61], maps.Basemap(None, False))
    html = m.get_root().render()
    for _, url in maps.LEAFLET_JS + maps.LEAFLET_CSS:
        assert url.startswith("../"), url
        assert (maps.STATIC_DIR / url.split("/", 2)[2]).exists(), url
    assert "tile.openstreetmap" not in html and "TileLayer" not in html.replace("tileLayer", "")
    layer = maps.workers_layer([{"lon": 114.3, "lat": 30.6, "on_duty": True, "outside_own_grids": True,
                                 "name": "x", "role": "chief"}], maps.Basemap(None, False), name="w",
                               label=lambda p: p["name"])
    assert layer is not None
    # the own basemap brings the vendored VectorGrid, served from the same place as Leaflet
    m2 = maps.base_map([114.27, 30.59, 114.32, 30.61], maps.Basemap(None, False),
                       own_basemap=("http://api.example/v1/tiles/basemap/{z}/{x}/{y}.mvt", {"X-API-Key": "k"}))
    assert maps.VECTORGRID_JS in m2.default_js
    assert (maps.STATIC_DIR / maps.VECTORGRID_JS[1].split("/", 2)[2]).exists()
    assert (maps.STATIC_DIR / "vendor" / "vectorgrid" / "LICENSE").exists()
    assert "vectorGrid.protobuf" in m2.get_root().render()
    # provider tiles configured: no own basemap on top of them
    m3 = maps.base_map([114.27, 30.59, 114.32, 30.61], maps.Basemap("https://wprd01.amap.com/{z}/{x}/{y}", True),
                       own_basemap=("http://api.example/{z}/{x}/{y}.mvt", {}))
    assert "vectorGrid" not in m3.get_root().render()


def test_heat_legend_counts_match_the_colours():
    cells = [{"cell": "89409", "count": c} for c in (1, 1, 2, 5, 9, 30, 31, 200)]
    buckets = maps.heat_buckets(cells)
    assert sum(n for *_, n in buckets) == len(cells)
    assert buckets[0][1] == 1 and buckets[-1][2] == 200
    for colour, lo, hi, _ in buckets:  # every count in a bucket gets that bucket's colour
        assert maps.HEAT_COLOURS[maps.heat_level(lo, 200)] == colour == maps.HEAT_COLOURS[maps.heat_level(hi, 200)]
    # the ranges follow each other without a gap (no "7–13, 18–29"), whatever counts the cells have
    assert all(b[1] == a[2] + 1 for a, b in zip(buckets, buckets[1:])), buckets
    assert [b[0] for b in buckets] == maps.HEAT_COLOURS
    assert maps.heat_buckets([]) == []


def test_worker_status_matches_the_legend():
    assert maps.worker_status({"on_duty": True, "outside_own_grids": False}) == "on"
    assert maps.worker_status({"on_duty": True, "outside_own_grids": True}) == "outside"
    assert maps.worker_status({"on_duty": False, "outside_own_grids": True}) == "off"


def test_zoom_fits_the_bbox():
    z = maps.zoom_for_bbox([114.27, 30.59, 114.32, 30.61], 1150, 735)
    assert 13 <= z <= 15 and (4 * z) == int(4 * z)
    b = [114.27, 30.59, 114.32, 30.61]
    assert maps.map_zoom_for(b) == min(16, int(maps.zoom_for_bbox(b)) + 1)
