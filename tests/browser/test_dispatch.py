"""Dispatch: a typed point and a map click find the grid that /v1/lookup names."""

from __future__ import annotations

import time

import httpx
import pytest
from shapely.geometry import shape

from tests.browser.helpers import assert_no_traceback, auth, goto, login, map_frame

pytestmark = pytest.mark.browser


def lookup_point(page, lon: float, lat: float) -> None:
    """Type the point (each input committed with Enter), wait for the app to settle, press the button."""
    for label, v in (("经度", lon), ("纬度", lat)):
        page.get_by_label(label).fill(f"{v:.6f}")
        page.get_by_label(label).press("Enter")
    time.sleep(0.8)  # let the reruns of the two inputs finish, so the button press is not coalesced away
    page.get_by_role("button", name="查询所属网格").click()


def lookup_until(page, lon: float, lat: float, done, timeout: float = 30) -> None:
    """lookup_point, pressing the button again if nothing shows (a press can be lost to a concurrent rerun)."""
    lookup_point(page, lon, lat)
    deadline = time.monotonic() + timeout
    last_press = time.monotonic()
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("the lookup result did not appear")
        if time.monotonic() - last_press > 6:
            page.get_by_role("button", name="查询所属网格").click()
            last_press = time.monotonic()
        time.sleep(0.2)


def wait_code(page, expected: str, timeout: float = 20) -> str:
    loc = page.locator('[data-testid="lookup-grid-code"]')
    deadline = time.monotonic() + timeout
    text = None
    while time.monotonic() < deadline:
        if loc.count():
            text = loc.inner_text().strip()
            if text == expected:
                return text
        time.sleep(0.2)
    return text


def test_lookup_matches_the_api(stack, page):
    h = auth(stack.api_url, "dispatcher")
    fc = httpx.get(f"{stack.api_url}/v1/grids", headers=h, timeout=30).json()
    feat = fc["features"][len(fc["features"]) // 2]
    p = shape(feat["geometry"]).representative_point()
    api = httpx.get(f"{stack.api_url}/v1/lookup", params={"lon": p.x, "lat": p.y}, headers=h, timeout=10).json()
    assert api["code"] == feat["properties"]["code"]

    login(page, stack.dash_url, "dispatcher")
    goto(page, "dispatch")
    page.get_by_label("经度").wait_for()
    map_frame(page)
    code = page.locator('[data-testid="lookup-grid-code"]')
    lookup_until(page, p.x, p.y, lambda: code.count() and code.inner_text().strip() == api["code"])
    res = page.locator('[data-testid="lookup-result"]')
    assert res.get_attribute("data-plan-id") == str(api["plan"]["id"])
    assert_no_traceback(page)

    # the map is now centred on the point: a click in its middle finds the same grid
    time.sleep(1.5)
    box = page.locator('iframe[title="streamlit_folium.st_folium"]').bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and page.get_by_label("经度").input_value() == f"{p.x:.6f}":
        time.sleep(0.2)
    lon = float(page.get_by_label("经度").input_value())
    lat = float(page.get_by_label("纬度").input_value())
    again = httpx.get(f"{stack.api_url}/v1/lookup", params={"lon": lon, "lat": lat}, headers=h, timeout=10).json()
    assert abs(lon - p.x) < 0.001 and abs(lat - p.y) < 0.001
    assert wait_code(page, again["code"]) == again["code"]


def test_outside_every_grid_names_the_nearest(stack, page):
    login(page, stack.dash_url, "dispatcher")
    goto(page, "dispatch")
    page.get_by_label("经度").wait_for()
    lookup_until(page, 100.0, 40.0, lambda: page.get_by_text("不在任何已发布网格内").count() > 0)
    assert page.locator('[data-testid="lookup-grid-code"]').count() == 0
    assert_no_traceback(page)
