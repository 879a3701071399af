"""Dispatch: an address, a typed point and a map click find the grid that /v1/lookup names; bad coordinates
are refused in words; the event form enforces its required fields and a double click creates one event."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from shapely.geometry import shape

from tests.browser.helpers import assert_no_traceback, auth, click, goto, login, map_frame, wait_idle

pytestmark = pytest.mark.browser


def type_into(page, label: str, value: str) -> None:
    """Type into a text input and commit it with Enter; return once the rerun it causes is over."""
    wait_idle(page)
    page.get_by_label(label).fill(value)
    page.get_by_label(label).press("Enter")
    wait_idle(page)


def lookup_point(page, lon, lat) -> None:
    """Type the point (each input committed, its rerun finished), then press the button and let it run."""
    for label, v in (("经度", lon), ("纬度", lat)):
        type_into(page, label, v if isinstance(v, str) else f"{v:.6f}")
    click(page, page.get_by_role("button", name="查询所属网格"))


def _press_until(page, button: str, done, timeout: float) -> None:
    """Wait for *done()*; should the page be idle without it, press *button* again (a press that a concurrent
    rerun swallowed is pressed once more, never while a run is going on)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing came of pressing {button}")
        wait_idle(page)
        if not done():
            click(page, page.get_by_role("button", name=button))
    wait_idle(page)  # the run that showed it is over: nothing of the previous answer is left on the page


def search_until(page, query: str, done, timeout: float = 60) -> None:
    """Search the standard addresses for *query* until *done()*."""
    type_into(page, "地址关键词", query)
    click(page, page.get_by_role("button", name="搜索地址"))
    _press_until(page, "搜索地址", done, timeout)


def lookup_until(page, lon, lat, done, timeout: float = 60) -> None:
    """lookup_point until *done()* (see :func:`_press_until`)."""
    lookup_point(page, lon, lat)
    _press_until(page, "查询所属网格", done, timeout)


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


def refused(page, reason: str) -> bool:
    return page.locator(f'[data-testid="lookup-refused"][data-reason="{reason}"]').count() > 0


def test_bad_coordinates_are_refused_not_replaced(stack, page):
    h = auth(stack.api_url, "dispatcher")
    fc = httpx.get(f"{stack.api_url}/v1/grids", headers=h, timeout=30).json()
    p = shape(fc["features"][0]["geometry"]).representative_point()
    login(page, stack.dash_url, "dispatcher")
    goto(page, "dispatch")
    page.get_by_label("经度").wait_for()
    code = page.locator('[data-testid="lookup-grid-code"]')
    lookup_until(page, p.x, p.y, lambda: code.count() > 0)
    # a mistyped longitude: refused, naming the field; the previous point's result is gone, not shown again
    lookup_until(page, f"{p.x:.4f}x", f"{p.y:.6f}", lambda: refused(page, "number"))
    assert code.count() == 0
    assert "经度" in page.locator('[data-testid="stAlert"]').first.inner_text()
    # Beijing: outside the service area, said plainly (no "nearest grid about 1,048,365 m")
    lookup_until(page, 116.397, 39.909, lambda: refused(page, "out_of_area"))
    text = page.locator('[data-testid="stAlert"]').first.inner_text()
    assert "服务范围" in text and "1,048" not in text and code.count() == 0
    # latitude and longitude swapped
    lookup_until(page, p.y, p.x, lambda: refused(page, "swapped"))
    # out of range
    lookup_until(page, 200.0, p.y, lambda: refused(page, "range"))
    assert code.count() == 0
    assert_no_traceback(page)


def _fill_event_form(page, description: str) -> None:
    form = page.locator('[data-testid="stForm"]').filter(has=page.get_by_role("button", name="提交事件"))
    form.get_by_role("combobox").first.click()
    page.get_by_role("option").first.click()
    form.get_by_label("描述 *").fill(description)
    form.get_by_label("联系电话").fill("13800001234")
    time.sleep(0.6)


def _events_with(stack, code: str, description: str) -> list[dict]:
    h = auth(stack.api_url, "dispatcher")
    items = httpx.get(f"{stack.api_url}/v1/events", params={"grid": code, "limit": 200}, headers=h,
                      timeout=10).json()["items"]
    return [e for e in items if e["description"] == description]


def test_event_form_required_fields_and_double_submit(stack, page):
    h = auth(stack.api_url, "dispatcher")
    fc = httpx.get(f"{stack.api_url}/v1/grids", headers=h, timeout=30).json()
    feat = fc["features"][-1]
    p = shape(feat["geometry"]).representative_point()
    login(page, stack.dash_url, "dispatcher")
    goto(page, "dispatch")
    page.get_by_label("经度").wait_for()
    code = page.locator('[data-testid="lookup-grid-code"]')
    lookup_until(page, p.x, p.y, lambda: code.count() > 0)
    grid = code.inner_text().strip()
    submit = page.get_by_role("button", name="提交事件")
    submit.wait_for()
    # an empty form creates nothing and says which fields are missing, in Chinese
    n0 = httpx.get(f"{stack.api_url}/v1/events", params={"grid": grid, "limit": 1}, headers=h).json()["total"]
    time.sleep(1.5)  # let the map settle on the looked-up point (its report reruns the page)
    submit.click()
    errors = page.locator('[data-testid="form-errors"]')
    deadline = time.monotonic() + 20
    while not errors.count() and time.monotonic() < deadline:  # a press can be lost to a concurrent rerun
        time.sleep(3)
        if not errors.count():
            submit.click()
    msg = page.locator('[data-testid="stAlert"]').filter(has_text="请填写").first.inner_text()
    assert "事件子类" in msg and "描述" in msg
    assert httpx.get(f"{stack.api_url}/v1/events", params={"grid": grid, "limit": 1}, headers=h).json()["total"] == n0
    # a bad phone: named in words, not "invalid request: reporter_phone"
    desc = f"双击测试 {uuid.uuid4().hex[:8]}"
    _fill_event_form(page, desc)
    page.get_by_label("联系电话").fill("电话号码")
    submit.click()
    page.get_by_text("联系电话格式不正确").first.wait_for()
    assert "reporter_phone" not in page.inner_text("body")
    page.get_by_label("联系电话").fill("13800001234")
    time.sleep(0.6)
    # a double click: one event
    submit.dblclick()
    page.get_by_text("已创建").or_(page.get_by_text("重复提交")).first.wait_for()
    time.sleep(2 * 1.5)  # let a second submission, if any, reach the API
    got = _events_with(stack, grid, desc)
    assert len(got) == 1, got
    # the form is empty again (a new instance), the new event is selected and shows names, not ids
    assert page.get_by_label("描述 *").input_value() == ""
    page.locator(f'[data-testid="event-detail"][data-event-id="{got[0]["id"]}"]').wait_for()
    assert_no_traceback(page)


def test_dispatch_by_address(stack, page):
    h = auth(stack.api_url, "dispatcher")
    # a query a dispatcher would type: a community name and a building number of a real demo address
    probe = httpx.get(f"{stack.api_url}/v1/geocode", params={"q": "社区", "limit": 50}, headers=h, timeout=10)
    assert probe.status_code == 200, probe.text
    cands = probe.json()["candidates"]
    assert cands, "the demo has standard addresses"
    target = cands[len(cands) // 2]
    q = target["address"]
    api = httpx.get(f"{stack.api_url}/v1/geocode", params={"q": q, "limit": 8}, headers=h, timeout=10).json()
    best = api["candidates"][0]
    look = httpx.get(f"{stack.api_url}/v1/lookup", params={"lon": best["lon"], "lat": best["lat"]}, headers=h,
                     timeout=10).json()
    login(page, stack.dash_url, "dispatcher")
    goto(page, "dispatch")
    cands_box = page.locator('[data-testid="geocode-candidates"]')
    search_until(page, q, lambda: cands_box.count() > 0)
    assert cands_box.get_attribute("data-best-grid") == best["grid_code"]
    click(page, page.locator('[data-testid="stRadio"] [role="radiogroup"] label').first)
    code = page.locator('[data-testid="lookup-grid-code"]')
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (code.count() and code.inner_text().strip() == look["code"]):
        time.sleep(0.2)
    assert code.inner_text().strip() == look["code"] == best["grid_code"]
    assert best["address"] in page.locator('[data-testid="lookup-result"]').inner_text()
    # on-duty staff are listed by name
    ws = [w for w in httpx.get(f"{stack.api_url}/v1/grids/{look['code']}/workers", headers=h).json() if w["on_duty"]]
    if ws:
        page.get_by_text(ws[0]["name"]).first.wait_for()
    # nothing found: said so (a query the API finds nothing for)
    nothing = next(q for q in ("qzxj wvkp", "☃☃☃", "zzzz") if not httpx.get(
        f"{stack.api_url}/v1/geocode", params={"q": q}, headers=h, timeout=10).json()["candidates"])
    search_until(page, nothing, lambda: page.get_by_text("没有找到").count() > 0)
    assert page.locator('[data-testid="geocode-candidates"]').count() == 0
    assert_no_traceback(page)
