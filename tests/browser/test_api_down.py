"""The API goes away: the dashboard says so in words, never with a traceback."""

from __future__ import annotations

import sys
import time

import pytest

from tests.browser.helpers import (APP, REFRESH_S, Proc, assert_no_traceback, free_port, login, map_frame,
                                   wait_http)

pytestmark = [pytest.mark.browser, pytest.mark.xfail(
    strict=False, reason="known 2026-12-02: when this module's own dashboard is the first Streamlit of the run, "
    "the big screen's KPIs do not appear within 30 s and both tests fail; they pass in the full suite")]


@pytest.fixture(scope="module")
def own_stack(stack):
    """An API and a dashboard of this module's own (the shared ones must stay up)."""
    api_port, dash_port = free_port(), free_port()
    api = Proc("api-down-api", [sys.executable, "-m", "geo.cli", "serve", "--demo", "--port", str(api_port)],
               stack.env | {"GEO_CORS_ORIGINS": f"http://127.0.0.1:{dash_port}"}, stack.work, stack.work)
    dash = None
    try:
        wait_http(f"http://127.0.0.1:{api_port}/readyz", api, 90)
        env = stack.env | {"GEO_API_URL": f"http://127.0.0.1:{api_port}", "GEO_DASHBOARD_REFRESH_S": str(REFRESH_S)}
        dash = Proc("api-down-dashboard", [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port",
                                           str(dash_port), "--server.address", "127.0.0.1", "--server.headless", "true",
                                           "--browser.gatherUsageStats", "false"], env, stack.work, stack.work)
        wait_http(f"http://127.0.0.1:{dash_port}/_stcore/health", dash, 90)
        yield {"api": api, "dash_url": f"http://127.0.0.1:{dash_port}"}
    finally:
        for p in (dash, api):
            if p:
                p.stop()


def test_api_down_while_watching_the_big_screen(own_stack, page):
    """The last data stays on the wall under a "数据更新于 … (stale since)" badge; never "ConnectError"."""
    login(page, own_stack["dash_url"], "leader")
    page.locator('[data-testid="kpi-tiles"]').wait_for()
    map_frame(page)
    page.locator('[data-testid="live-badge"]').wait_for()
    before = page.locator('[data-testid="kpi-events"]').get_attribute("data-value")
    t_stop = time.time()
    own_stack["api"].stop()
    badge = page.locator('[data-testid="stale-badge"]')
    badge.wait_for(timeout=(4 * REFRESH_S + 10) * 1000)
    assert "无法连接到网格服务 API" in badge.inner_text() and "数据更新于" in badge.inner_text()
    assert float(badge.get_attribute("data-since")) <= t_stop + 1  # the data shown is from before the stop
    # the last data is still there: KPIs with the same values, the map, the panels
    assert page.locator('[data-testid="kpi-events"]').get_attribute("data-value") == before
    assert page.locator('iframe[title="streamlit_folium.st_folium"]').count() == 1
    assert page.locator('[data-testid="trend"]').count() == 1
    time.sleep(2 * REFRESH_S)  # further refreshes keep it that way
    assert page.locator('[data-testid="stale-badge"]').count() == 1
    assert page.locator('[data-testid="kpi-events"]').get_attribute("data-value") == before
    body = page.inner_text("body")
    assert "ConnectError" not in body
    assert_no_traceback(page)


def test_api_down_at_login(own_stack, page):
    assert not own_stack["api"].alive()
    login(page, own_stack["dash_url"], "leader", expect_ok=False)
    page.get_by_text("无法连接到网格服务 API").first.wait_for()
    assert page.locator('[data-testid="geo-role"]').count() == 0
    assert_no_traceback(page)
    time.sleep(0.5)
