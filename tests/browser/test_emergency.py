"""平急转换 on the big screen: a leader switches it on (reason required); mobilised vs assigned per grid."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.helpers import assert_no_traceback, auth, login

pytestmark = pytest.mark.browser


def test_emergency_mode_shows_mobilised_vs_assigned(stack, page):
    h = auth(stack.api_url, "leader")
    login(page, stack.dash_url, "leader")
    page.locator('[data-testid="kpi-tiles"]').wait_for()
    page.locator('[data-testid="emergency"][data-active="false"]').wait_for(state="attached")
    sidebar = page.locator('[data-testid="stSidebar"]')
    try:
        sidebar.get_by_text("平急转换").click()
        sidebar.get_by_role("button", name="启动应急状态").click()
        sidebar.get_by_text("请填写“启动原因”").wait_for()  # a reason is required
        assert httpx.get(f"{stack.api_url}/v1/emergency", headers=h).json()["active"] is False
        sidebar.get_by_label("启动原因 *").fill("暴雨红色预警（浏览器测试）")
        sidebar.get_by_role("button", name="启动应急状态").click()
        panel = page.locator('[data-testid="emergency"][data-active="true"]')
        panel.wait_for()
        grids = httpx.get(f"{stack.api_url}/v1/emergency/grids", headers=h).json()
        rows = grids["grids"] if isinstance(grids, dict) else grids
        assert int(panel.get_attribute("data-assigned")) == sum(r["assigned"] for r in rows) > 0
        assert int(panel.get_attribute("data-mobilised")) == sum(r["mobilised"] for r in rows) > 0
        assert "暴雨红色预警" in panel.inner_text()
        assert_no_traceback(page)
    finally:
        httpx.post(f"{stack.api_url}/v1/emergency", json={"active": False}, headers=h, timeout=10)
