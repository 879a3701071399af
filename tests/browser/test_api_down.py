"""The API goes away: the dashboard says so in words, never with a traceback; the big screen keeps its last data
under a "stale since" badge.

This module runs an API and a dashboard of its own (the shared ones must stay up), so its dashboard may well be
the run's first, cold Streamlit against a cold API. Every wait is a condition with a generous limit, never a
sleep: the screen must have painted real data once before the API is stopped, and the badge is awaited over as
many refreshes as a busy machine needs.
"""

from __future__ import annotations

import sys
import time

import pytest

from tests.browser.helpers import (APP, REFRESH_S, Proc, assert_no_traceback, free_port, login, wait_http,
                                   wait_painted)

pytestmark = pytest.mark.browser

PAINT_S = 120  # a cold dashboard's first paint on a busy 2-core machine
STALE_S = 60  # from the API's stop to the badge: the refresh in flight may wait for its reads to time out


@pytest.fixture(scope="module")
def own_stack(stack):
    """An API and a dashboard of this module's own (the shared ones must stay up)."""
    api_port, dash_port = free_port(), free_port()
    # every request in the log (GEO_ACCESS_LOG=all): a slow first paint can be read off it
    api = Proc("api-down-api", [sys.executable, "-m", "geo.cli", "serve", "--demo", "--port", str(api_port)],
               stack.env | {"GEO_CORS_ORIGINS": f"http://127.0.0.1:{dash_port}", "GEO_ACCESS_LOG": "all"},
               stack.work, stack.work)
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


def _refreshed_at(page) -> float:
    return float(page.locator('[data-testid="last-refreshed"]').get_attribute("data-ts"))


def _wait(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (v := fn()):
        assert time.monotonic() < deadline, what
        time.sleep(0.25)
    return v


def test_api_down_while_watching_the_big_screen(own_stack, page):
    """The last data stays on the wall under a "数据更新于 … (stale since)" badge; never "ConnectError"."""
    login(page, own_stack["dash_url"], "leader")
    wait_painted(page, PAINT_S)
    before = page.locator('[data-testid="kpi-events"]').get_attribute("data-value")
    t_stop = time.time()
    own_stack["api"].stop()
    badge = page.locator('[data-testid="stale-badge"]')
    badge.wait_for(timeout=STALE_S * 1000)
    assert "无法连接到网格服务 API" in badge.inner_text() and "数据更新于" in badge.inner_text()
    since = float(badge.get_attribute("data-since"))
    assert since <= t_stop + 1  # the data shown is from before the stop
    # the last data is still there: KPIs with the same values, the map, the panels
    assert page.locator('[data-testid="kpi-events"]').get_attribute("data-value") == before
    assert page.locator('iframe[title="streamlit_folium.st_folium"]').count() == 1
    assert page.locator('[data-testid="trend"]').count() == 1
    # two further refreshes (their stamp moves on) keep it that way
    t_badge = _refreshed_at(page)
    _wait(lambda: _refreshed_at(page) >= t_badge + 2 * REFRESH_S - 0.5, STALE_S, "the big screen stopped refreshing")
    assert page.locator('[data-testid="stale-badge"]').count() == 1
    assert float(page.locator('[data-testid="stale-badge"]').get_attribute("data-since")) == since
    assert page.locator('[data-testid="kpi-events"]').get_attribute("data-value") == before
    assert page.locator('[data-testid="live-badge"]').count() == 0
    body = page.inner_text("body")
    assert "ConnectError" not in body
    assert_no_traceback(page)


def test_api_down_at_login(own_stack, page):
    own_stack["api"].stop()  # stopped by the test above already (stop is idempotent)
    assert not own_stack["api"].alive()
    login(page, own_stack["dash_url"], "leader", expect_ok=False)
    page.get_by_text("无法连接到网格服务 API").first.wait_for(timeout=STALE_S * 1000)
    assert page.locator('[data-testid="geo-role"]').count() == 0
    assert_no_traceback(page)
