"""Log in as every role: the role and jurisdiction are shown; wrong passwords get a friendly message."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import ROLES, assert_no_traceback, login

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("role", ROLES)
def test_login_shows_role(stack, page, role):
    login(page, stack.dash_url, role)
    badge = page.locator('[data-testid="geo-role"]')
    assert badge.get_attribute("data-role") == role
    assert f"({role})" in badge.inner_text()
    me = httpx.post(f"{stack.api_url}/v1/auth/token", data={"username": role, "password": "demo-only-change-me"}).json()
    assert me["jurisdiction"]["code"] in page.locator('[data-testid="geo-user"]').inner_text()
    assert_no_traceback(page)


def test_logout_returns_to_login(stack, page):
    login(page, stack.dash_url, "leader")
    page.get_by_role("button", name="退出登录").click()
    page.get_by_label("用户名").wait_for()
    expect(page.locator('[data-testid="geo-role"]')).to_have_count(0)


def test_wrong_password_is_a_friendly_message(stack, page):
    page.goto(f"{stack.dash_url}/bigscreen")
    page.get_by_label("用户名").fill("leader")
    page.get_by_label("密码").fill("not-the-password")
    page.get_by_role("button", name="登录", exact=True).click()
    page.get_by_text("用户名或密码错误").wait_for()
    assert page.locator('[data-testid="geo-role"]').count() == 0
    assert_no_traceback(page)


def test_english_switch(stack, page):
    login(page, stack.dash_url, "leader")
    page.locator('[data-testid="stSidebar"]').get_by_text("English", exact=True).click()
    page.get_by_text("Workers online").wait_for()
    assert "Leader (leader)" in page.locator('[data-testid="geo-role"]').inner_text()
