"""Planner publishes a draft (created by the CLI in the fixture); dispatch then answers with it.

Runs after the other browser tests (file order): publishing changes the grids they look at."""

from __future__ import annotations

import time

import httpx
import pytest
from playwright.sync_api import expect
from shapely.geometry import shape

from tests.browser.helpers import assert_no_traceback, auth, goto, login, map_frame
from tests.browser.test_dispatch import lookup_until

pytestmark = pytest.mark.browser


def choose(page, label: str, option_text: str) -> None:
    """Pick an option of a Streamlit selectbox by (part of) its text."""
    combo = page.get_by_role("combobox", name=label)
    combo.click()
    page.get_by_role("option").filter(has_text=option_text).first.click()
    page.wait_for_function("([l, t]) => { const e = document.querySelector(`input[aria-label^='${l}']`);"
                           " return e && e.value.includes(t); }", arg=[label, option_text])


def test_leader_sees_no_publish_button(stack, page):
    login(page, stack.dash_url, "leader")
    goto(page, "planner")
    page.locator('[data-testid="plan-quality"]').wait_for()
    page.get_by_text("与已发布方案对比").wait_for()
    assert page.get_by_role("button", name="发布此方案").count() == 0
    assert page.get_by_text("确认发布").count() == 0


def test_planner_publishes_and_dispatch_uses_it(stack, page):
    h = auth(stack.api_url, "planner")
    draft = stack.draft_plan_id
    assert httpx.get(f"{stack.api_url}/v1/plans/{draft}", headers=h).json()["status"] == "draft"

    login(page, stack.dash_url, "planner")
    goto(page, "planner")
    page.get_by_text("质量报告").wait_for()
    choose(page, "选择辖区", stack.draft_code)
    page.locator(f'[data-testid="plan-quality"][data-plan-id="{draft}"]').wait_for()
    page.get_by_text("与已发布方案对比").wait_for()
    map_frame(page, 0)
    map_frame(page, 1)
    page.get_by_text("确认发布").click()  # inside a form: no rerun until the button is pressed
    deadline = time.monotonic() + 40
    while httpx.get(f"{stack.api_url}/v1/plans/{draft}", headers=h).json()["status"] != "published":
        assert time.monotonic() < deadline, "publishing did not happen"
        button = page.get_by_role("button", name="发布此方案")
        if button.count():
            button.click()  # a press can be lost to a concurrent rerun: press again (publishing is checked)
        time.sleep(3)
    page.get_by_text(f"方案 #{draft} 已发布").wait_for()
    expect(page.get_by_role("button", name="发布此方案")).to_have_count(0)
    assert_no_traceback(page)

    # dispatch now answers with the new plan
    fc = httpx.get(f"{stack.api_url}/v1/plans/{draft}/grids", headers=h, timeout=30).json()
    p = shape(fc["features"][0]["geometry"]).representative_point()
    # a published plan takes effect at its scheduled instant (GEO_PUBLISH_SWITCH_SECONDS after publishing)
    deadline = time.monotonic() + 30
    while True:
        api = httpx.get(f"{stack.api_url}/v1/lookup", params={"lon": p.x, "lat": p.y}, headers=h, timeout=10).json()
        if api["plan"]["id"] == draft or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert api["plan"]["id"] == draft
    goto(page, "dispatch")
    page.get_by_label("经度").wait_for()
    res = page.locator(f'[data-testid="lookup-result"][data-plan-id="{draft}"]')
    lookup_until(page, p.x, p.y, lambda: res.count() > 0)
    assert res.get_attribute("data-grid-code") == api["code"]
    assert f"#{draft} v{api['plan']['version']}" in page.locator('[data-testid="lookup-plan"]').inner_text()
    assert_no_traceback(page)
