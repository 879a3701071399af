"""GCJ-02 against published point pairs, round trips, CRS parsing and metric CRS choice."""

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point, Polygon

from geo import crs as C

# (wgs lon, wgs lat, gcj lon, gcj lat) — published test pairs of widely used implementations:
# eviltransform's test suite (Shanghai, Shenzhen, Beijing) and wandergis/coordtransform's README (Beijing).
PUBLISHED = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),
    (116.404, 39.915, 116.41024449916938, 39.91640428150164),
]


@pytest.mark.parametrize("wlon,wlat,glon,glat", PUBLISHED)
def test_forward_matches_published_pairs(wlon, wlat, glon, glat):
    x, y = C.wgs84_to_gcj02(wlon, wlat)
    assert x == pytest.approx(glon, abs=1e-9)
    assert y == pytest.approx(glat, abs=1e-9)


@pytest.mark.parametrize("wlon,wlat,glon,glat", PUBLISHED)
def test_inverse_recovers_published_wgs84(wlon, wlat, glon, glat):
    x, y = C.gcj02_to_wgs84(glon, glat)
    # 1e-7 degrees is about 1 cm
    assert x == pytest.approx(wlon, abs=1e-7)
    assert y == pytest.approx(wlat, abs=1e-7)


def _metres(lon1, lat1, lon2, lat2):
    from pyproj import Geod

    _, _, d = Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)
    return np.asarray(d)


def test_round_trip_under_one_metre_anywhere_in_china():
    rng = np.random.default_rng(7)
    lon = rng.uniform(73.6, 134.8, 200_000)
    lat = rng.uniform(18.2, 53.5, 200_000)
    g = C.wgs84_to_gcj02(lon, lat)
    back = C.gcj02_to_wgs84(*g)
    err = _metres(lon, lat, back[0], back[1])
    assert err.max() < 1.0
    # and the other direction: GCJ-02 → WGS84 → GCJ-02
    w = C.gcj02_to_wgs84(lon, lat)
    again = C.wgs84_to_gcj02(*w)
    assert _metres(lon, lat, again[0], again[1]).max() < 1.0


def test_offset_is_hundreds_of_metres_in_china_and_zero_outside():
    x, y = C.wgs84_to_gcj02(114.27, 30.60)  # Wuhan
    d = _metres(114.27, 30.60, x, y)
    assert 300 < d < 900
    x, y = C.wgs84_to_gcj02(-104.99, 39.74)  # Denver: not obfuscated
    assert (x, y) == (-104.99, 39.74)


def test_frame_conversion_and_back():
    poly = Polygon([(114.25, 30.58), (114.27, 30.58), (114.27, 30.60), (114.25, 30.60)])
    gcj = gpd.GeoDataFrame({"a": [1]}, geometry=[poly], crs=4326)
    wgs = C.to_wgs84(gcj, "gcj02")
    assert wgs.crs.to_epsg() == 4326
    moved = _metres(*poly.exterior.coords[0], *wgs.geometry.iloc[0].exterior.coords[0])
    assert moved > 300
    back = C.from_wgs84(wgs, "gcj02")
    assert back.geometry.iloc[0].equals_exact(poly, 1e-8)


def test_cgcs2000_and_epsg_frames():
    pts = gpd.GeoDataFrame(geometry=[Point(114.3, 30.6)], crs=4490)
    out = C.to_wgs84(pts)
    assert out.geometry.iloc[0].distance(Point(114.3, 30.6)) < 1e-6
    utm = gpd.GeoDataFrame(geometry=[Point(500000, 3385000)], crs=32650)
    assert C.to_wgs84(utm).geometry.iloc[0].x == pytest.approx(117.0, abs=1e-6)


def test_parse_crs_errors_name_the_input():
    assert C.parse_crs("GCJ-02") == "gcj02"
    assert C.parse_crs("cgcs2000").to_epsg() == 4490
    with pytest.raises(C.CRSError, match="unknown CRS 'EPSG:999999'"):
        C.parse_crs("EPSG:999999")
    with pytest.raises(C.CRSError, match="no CRS"):
        C.parse_crs(None)
    with pytest.raises(C.CRSError, match="--crs"):
        C.to_wgs84(gpd.GeoDataFrame(geometry=[Point(0, 0)]))


def test_point_helper():
    x, y = C.point_to_wgs84(116.41024449916938, 39.91640428150164, "gcj02")
    assert (x, y) == pytest.approx((116.404, 39.915), abs=1e-7)
    assert C.point_to_wgs84(116.4, 39.9, "wgs84") == (116.4, 39.9)


def test_local_metric_crs_picks_utm_zone():
    assert C.local_metric_crs(Point(114.3, 30.6)).to_epsg() == 32650
    assert C.local_metric_crs(Point(-104.9, 39.7)).to_epsg() == 32613
    assert C.local_metric_crs(Point(-51.2, -30.0)).to_epsg() == 32722
