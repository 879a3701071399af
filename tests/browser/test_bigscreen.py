"""Big screen: KPI tiles equal /v1/stats/kpis; a new event shows after one refresh, without reloading the
map or losing its zoom/position."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from shapely.geometry import shape

from tests.browser.helpers import REFRESH_S, assert_no_traceback, auth, login, map_frame

pytestmark = pytest.mark.browser

TILES = ["events_today", "dispatch_rate", "resolution_rate", "satisfaction", "overdue", "workers_on_duty"]


def tile_values(page) -> dict:
    out = {}
    for name in TILES:
        raw = page.locator(f'[data-testid="kpi-{name}"]').get_attribute("data-value")
        out[name] = None if raw == "null" else float(raw)
    return out


def test_kpi_tiles_equal_the_api(stack, page):
    login(page, stack.dash_url, "leader")
    page.locator('[data-testid="kpi-tiles"]').wait_for()
    api = httpx.get(f"{stack.api_url}/v1/stats/kpis", headers=auth(stack.api_url, "leader"), timeout=10).json()
    shown = tile_values(page)
    for name in TILES:
        expected = api[name]
        assert shown[name] == (None if expected is None else pytest.approx(float(expected))), name
    # the formatted text agrees too
    assert page.locator('[data-testid="kpi-events_today"] .val').inner_text() == f'{api["events_today"]:,}'
    assert page.locator('[data-testid="kpi-dispatch_rate"] .val').inner_text() == f'{100 * api["dispatch_rate"]:.1f}%'
    # the map, its three data layers and the refresh stamp are there
    f = map_frame(page)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        layers = f.evaluate("() => window.__geo_layers || {}")
        if {"grids", "heat", "workers"} <= set(layers):
            break
        time.sleep(0.2)
    assert {"grids", "heat", "workers"} <= set(layers), layers
    assert layers["grids"]["features"] > 0 and layers["heat"]["features"] > 0
    assert page.locator('[data-testid="last-refreshed"]').count() == 1
    assert_no_traceback(page)


def _point_in_a_grid(api_url: str) -> tuple[float, float]:
    fc = httpx.get(f"{api_url}/v1/grids", headers=auth(api_url, "admin"), timeout=30).json()
    p = shape(fc["features"][0]["geometry"]).representative_point()
    return p.x, p.y


def test_new_event_appears_after_one_refresh(stack, page):
    login(page, stack.dash_url, "leader")
    page.locator('[data-testid="kpi-tiles"]').wait_for()
    f = map_frame(page)
    # mark the map's window and change the view: both must survive the refresh (no reload, no re-mount)
    f.evaluate("() => { window.__marker = 42; window.map.setZoom(window.map.getZoom() + 1, {animate: false}); }")
    time.sleep(1.5)  # the view change reruns the fragment once; let it settle
    zoom = f.evaluate("() => window.map.getZoom()")
    before = tile_values(page)["events_today"]
    ts0 = float(page.locator('[data-testid="last-refreshed"]').get_attribute("data-ts"))

    lon, lat = _point_in_a_grid(stack.api_url)
    r = httpx.post(f"{stack.api_url}/v1/events", headers=auth(stack.api_url, "dispatcher") | {
        "Idempotency-Key": str(uuid.uuid4())}, json={"category": "incident", "subtype": "garbage", "source": "patrol",
                                                     "lon": lon, "lat": lat, "description": "browser test"}, timeout=10)
    assert r.status_code == 201, r.text

    deadline = time.monotonic() + 4 * REFRESH_S + 6
    now = before
    while time.monotonic() < deadline:
        now = tile_values(page)["events_today"]
        if now == before + 1:
            break
        time.sleep(0.3)
    assert now == before + 1, (before, now)
    assert float(page.locator('[data-testid="last-refreshed"]').get_attribute("data-ts")) >= ts0
    f2 = map_frame(page)
    assert f2.evaluate("() => window.__marker") == 42, "the map was re-mounted by the refresh"
    assert f2.evaluate("() => window.map.getZoom()") == zoom
    assert_no_traceback(page)
