"""A wall display logs in with a kiosk token in its URL and stays logged in across F5; the own basemap draws."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.browser.helpers import assert_no_traceback, auth, map_frame

pytestmark = pytest.mark.browser


def _has(stack, path: str, method: str = "post") -> bool:
    doc = httpx.get(f"{stack.api_url}/openapi.json", timeout=10).json()
    return method in doc.get("paths", {}).get(path, {})


def test_kiosk_token_survives_reload(stack, browser):
    if not _has(stack, "/v1/kiosk-tokens"):
        pytest.skip("the API has no POST /v1/kiosk-tokens (docs/dispatch-api.md §9) yet")
    r = httpx.post(f"{stack.api_url}/v1/kiosk-tokens", json={"name": "大屏测试"}, headers=auth(stack.api_url, "leader"),
                   timeout=10)
    assert r.status_code == 201, r.text
    key = r.json()["token"]
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = ctx.new_page()
    try:
        page.goto(f"{stack.dash_url}/bigscreen?kiosk={key}")
        page.locator('[data-testid="kpi-tiles"]').wait_for()
        assert page.get_by_label("密码").count() == 0  # no login form on a wall
        assert not page.locator('[data-testid="stSidebar"]').is_visible()
        first = page.locator('[data-testid="kpi-events"]').get_attribute("data-value")
        page.reload()  # F5: a new Streamlit session, the token in the URL logs it in again
        page.locator('[data-testid="kpi-tiles"]').wait_for()
        assert page.get_by_label("密码").count() == 0
        assert page.locator('[data-testid="kpi-events"]').get_attribute("data-value") is not None and first
        assert_no_traceback(page)
        # a wrong token is refused in words
        page.goto(f"{stack.dash_url}/bigscreen?kiosk=geo_not-a-token")
        page.get_by_text("大屏令牌无效").first.wait_for()
        assert page.locator('[data-testid="kpi-tiles"]').count() == 0
        assert_no_traceback(page)
    finally:
        ctx.close()


def test_own_basemap_without_tile_url(stack, page):
    """No GEO_TILE_URL: streets, community boundaries and names from the API's vector tiles, not a black map."""
    from tests.browser.helpers import login

    assert not stack.env.get("GEO_TILE_URL")
    z, x, y = 15, 0, 0
    login(page, stack.dash_url, "leader")
    page.locator('[data-testid="kpi-tiles"]').wait_for()
    f = map_frame(page)
    bbox = f.evaluate("() => { const b = window.map.getBounds(); return [b.getWest(), b.getSouth(), b.getEast(), "
                      "b.getNorth(), Math.round(window.map.getZoom())]; }")
    import math

    z = min(16, int(bbox[4]))
    lon, lat = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    x = int((lon + 180) / 360 * 2 ** z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z)
    r = httpx.get(f"{stack.api_url}/v1/tiles/basemap/{z}/{x}/{y}.mvt", headers=auth(stack.api_url, "leader"),
                  timeout=30)
    if r.status_code == 404 and not _has(stack, "/v1/tiles/basemap/{z}/{x}/{y}.mvt", "get"):
        pytest.skip("the API has no basemap tiles (docs/dispatch-api.md §8) yet")
    assert r.status_code == 200 and len(r.content) > 0, (r.status_code, len(r.content))
    deadline = time.monotonic() + 30
    bm = {}
    while time.monotonic() < deadline:
        bm = f.evaluate("() => window.__geo_basemap || {}")
        if bm.get("tiles", 0) > 0 and bm.get("features", 0) > 0:
            break
        time.sleep(0.3)
    assert bm.get("tiles", 0) > 0 and bm.get("features", 0) > 0, bm
    assert bm.get("errors", 0) == 0, bm
    assert_no_traceback(page)
