"""Big screen: KPI tiles equal /v1/stats/kpis for the chosen window and category; the layout fills 1920×1080,
3840×2160 and 1366×768; workers are drawn one by one; a new event shows after one refresh without reloading
the map; a clicked grid opens its panel; track replay and patrol coverage on the demo data."""

from __future__ import annotations

import time
import uuid
import os
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest
from shapely.geometry import shape

from tests.browser.helpers import REFRESH_S, assert_no_traceback, auth, click, login, map_frame, settled

pytestmark = pytest.mark.browser

TZ = ZoneInfo(os.environ.get("GEO_TZ", "Asia/Shanghai"))  # track and patrol days are calendar days here

TILES = ["events", "reported", "in_progress", "resolved", "dispatch_rate", "resolution_rate", "satisfaction",
         "overdue", "grids", "workers_online"]


def tile_values(page) -> dict:
    out = {}
    for name in TILES:
        raw = page.locator(f'[data-testid="kpi-{name}"]').get_attribute("data-value")
        out[name] = None if raw == "null" else float(raw)
    return out


def api_kpis(stack, **params) -> dict:
    return httpx.get(f"{stack.api_url}/v1/stats/kpis", params=params, headers=auth(stack.api_url, "leader"),
                     timeout=10).json()


def wait_for(fn, timeout: float = 4 * REFRESH_S + 10, every: float = 0.3):
    """Poll *fn* until it returns a truthy value; returns the last value."""
    deadline = time.monotonic() + timeout
    v = fn()
    while not v and time.monotonic() < deadline:
        time.sleep(every)
        v = fn()
    return v


def open_bigscreen(stack, page) -> None:
    login(page, stack.dash_url, "leader")
    page.locator('[data-testid="kpi-tiles"]').wait_for()


def test_kpi_tiles_equal_the_api(stack, page):
    open_bigscreen(stack, page)
    # the default window is 7 days: compare with the API over the same window (the screen rounds to the minute)
    frm = page.locator('[data-testid="kpi-tiles"]').get_attribute("data-window")
    assert frm == "7d"
    start = (datetime.now(timezone.utc) - timedelta(days=7)).replace(second=0, microsecond=0)
    api = api_kpis(stack, **{"from": start.isoformat()})
    shown = tile_values(page)
    for name in ("dispatch_rate", "resolution_rate", "satisfaction", "overdue"):
        expected = api[name]
        assert shown[name] == (None if expected is None else pytest.approx(float(expected), abs=0.02)), name
    assert abs(shown["events"] - api["events"]) <= 3  # events may arrive between the two reads
    assert page.locator('[data-testid="kpi-dispatch_rate"] .val').inner_text() == f'{100 * api["dispatch_rate"]:.1f}%'
    # 网格数 (综合/专属), workers online of total, reported / in progress / resolved: the API's numbers
    grids = api.get("grids") or {"total": api["grids_total"]}
    assert shown["grids"] == grids["total"]
    if "comprehensive" in grids:
        tile = page.locator('[data-testid="kpi-grids"]')
        assert tile.get_attribute("data-comprehensive") == str(grids["comprehensive"])
        assert tile.get_attribute("data-exclusive") == str(grids["exclusive"])
    if api.get("workers"):
        assert shown["workers_online"] == api["workers"]["online"]
        assert page.locator('[data-testid="kpi-workers_online"]').get_attribute("data-total") == \
            str(api["workers"]["total"])
    if api.get("counts"):
        c = api["counts"]
        assert abs(shown["reported"] - c["reported"]) <= 3 and abs(shown["in_progress"] - c["in_progress"]) <= 3
    # the map, its data layers and the refresh stamp are there
    f = map_frame(page)
    layers = wait_for(lambda: (lambda x: x if {"grids", "heat", "workers"} <= set(x) else None)(
        f.evaluate("() => window.__geo_layers || {}")), 20) or {}
    assert {"grids", "heat", "workers"} <= set(layers), layers
    assert layers["grids"]["features"] > 0 and layers["heat"]["features"] > 0
    page.locator('[data-testid="last-refreshed"]').wait_for(state="attached")
    page.locator('[data-testid="live-badge"]').wait_for()
    assert_no_traceback(page)


def _choose_window(page, label: str, window: str) -> float:
    """Click a time filter; once the refresh it causes has drawn the tiles for *window* and Streamlit is idle
    with the value steady, the events tile's value."""
    click(page, page.get_by_text(label, exact=True))
    page.locator(f'[data-testid="kpi-tiles"][data-window="{window}"]').wait_for(timeout=60_000)
    return settled(page, lambda: float(page.locator('[data-testid="kpi-events"]').get_attribute("data-value")))


def test_filters_change_the_kpis(stack, page):
    open_bigscreen(stack, page)
    tile = page.locator('[data-testid="kpi-events"]')
    week = settled(page, lambda: float(tile.get_attribute("data-value")))
    month = _choose_window(page, "近30天", "30d")
    assert month > week, (week, month)  # the demo has events over weeks: a month holds more than a week
    api = api_kpis(stack)  # the API's default window is 30 days
    assert abs(month - api["events"]) <= 3
    today = _choose_window(page, "今日", "today")
    assert today < week and abs(today - api_kpis(stack)["events_today"]) <= 3
    # the trend follows the window too ("today" shows the last 7 days), once its read is in
    trend = page.locator('[data-testid="trend"]')
    assert wait_for(lambda: trend.get_attribute("data-days") == "7", 60), trend.get_attribute("data-days")
    # a category narrows the KPIs to its events
    _choose_window(page, "近30天", "30d")
    cats = httpx.get(f"{stack.api_url}/v1/catalogue", timeout=10).json()["categories"]
    by_cat = {c["code"]: api_kpis(stack, category=c["code"])["events"] for c in cats}
    code = max(by_cat, key=by_cat.get)
    name = next(c["name"] for c in cats if c["code"] == code)
    assert 0 < by_cat[code] < api["events"], by_cat  # the API filters by category
    click(page, page.get_by_role("combobox", name="事件类别"))
    click(page, page.get_by_role("option", name=f"{name} ({code})"))
    got = wait_for(lambda: (lambda v: v if v is not None and abs(v - by_cat[code]) <= 3 else None)(
        settled(page, lambda: float(tile.get_attribute("data-value")))), 60)
    assert got is not None, (tile.get_attribute("data-value"), by_cat[code])
    assert_no_traceback(page)


def _point_in_a_grid(api_url: str) -> tuple[float, float]:
    fc = httpx.get(f"{api_url}/v1/grids", headers=auth(api_url, "admin"), timeout=30).json()
    p = shape(fc["features"][0]["geometry"]).representative_point()
    return p.x, p.y


def test_new_event_appears_after_one_refresh(stack, page):
    open_bigscreen(stack, page)
    f = map_frame(page)
    # mark the map's window and change the view: both must survive the refresh (no reload, no re-mount)
    f.evaluate("() => { window.__marker = 42; window.map.setZoom(window.map.getZoom() + 1, {animate: false}); }")
    time.sleep(1.5)  # the view change reruns the fragment once; let it settle
    zoom = f.evaluate("() => window.map.getZoom()")
    before = tile_values(page)["events"]
    ts0 = float(page.locator('[data-testid="last-refreshed"]').get_attribute("data-ts"))

    lon, lat = _point_in_a_grid(stack.api_url)
    r = httpx.post(f"{stack.api_url}/v1/events", headers=auth(stack.api_url, "dispatcher") | {
        "Idempotency-Key": str(uuid.uuid4())}, json={"category": "incident", "subtype": "garbage", "source": "patrol",
                                                     "lon": lon, "lat": lat, "description": "browser test"}, timeout=10)
    assert r.status_code == 201, r.text
    now = wait_for(lambda: (lambda v: v if v >= before + 1 else None)(tile_values(page)["events"]))
    assert now is not None and now >= before + 1, (before, tile_values(page)["events"])
    assert float(page.locator('[data-testid="last-refreshed"]').get_attribute("data-ts")) >= ts0
    f2 = map_frame(page)
    assert f2.evaluate("() => window.__marker") == 42, "the map was re-mounted by the refresh"
    assert f2.evaluate("() => window.map.getZoom()") == zoom
    assert_no_traceback(page)


def test_workers_drawn_one_by_one_in_legend_colours(stack, page):
    open_bigscreen(stack, page)
    pos = httpx.get(f"{stack.api_url}/v1/workers/positions/latest", headers=auth(stack.api_url, "leader"),
                    timeout=10).json()
    assert pos, "the demo has worker positions"
    f = map_frame(page)
    layers = wait_for(lambda: (lambda x: x if "workers" in x else None)(f.evaluate("() => window.__geo_layers || {}")))
    assert layers["workers"]["features"] == len(pos)
    # one circle per worker on the canvas, coloured as the legend says; no cluster bubbles
    colours = f.evaluate("""() => { const out = {}; window.map.eachLayer(l => {
        if (l instanceof L.CircleMarker && l.options.fillColor) {
            out[l.options.fillColor] = (out[l.options.fillColor] || 0) + 1; } }); return out; }""")
    expected = {"on": 0, "outside": 0, "off": 0}
    for p in pos:
        expected["off" if not p["on_duty"] else ("outside" if p["outside_own_grids"] else "on")] += 1
    legend = {s: int(page.locator(f'[data-testid="legend-workers-{s}"]').inner_text()) for s in expected}
    assert legend == expected
    assert colours.get("#2ecc71", 0) >= expected["on"] and colours.get("#ff9f1c", 0) >= expected["outside"]
    assert f.evaluate("() => document.querySelectorAll('.marker-cluster').length") == 0
    # the heat legend says how many events each colour means
    assert any(ch.isdigit() for ch in page.locator('[data-testid="legend-heat"]').inner_text())


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160), (1366, 768)], ids=["1080p", "4k", "1366"])
def test_layout_fills_the_screen(stack, browser, size):
    w, h = size
    ctx = browser.new_context(viewport={"width": w, "height": h}, locale="zh-CN")
    page = ctx.new_page()
    try:
        open_bigscreen(stack, page)
        page.locator('[data-testid="stSidebar"]').hover()
        page.locator('[data-testid="stSidebarCollapseButton"] button').click(force=True)
        map_frame(page)
        time.sleep(1.5)
        m = page.evaluate("""() => {
            const f = document.querySelector('iframe[title="streamlit_folium.st_folium"]').getBoundingClientRect();
            const v = document.querySelector('[data-testid="kpi-events"] .val');
            const t = document.querySelector('[data-testid="bs-title"]');
            const main = document.querySelector('[data-testid="stMain"]');
            return {mapH: f.height, mapW: f.width, mapBottom: f.bottom, kpiPx: parseFloat(getComputedStyle(v).fontSize),
                    titleScroll: t.scrollWidth, titleClient: t.clientWidth, titleRight: t.getBoundingClientRect().right,
                    scrollH: main.scrollHeight, scrollW: main.scrollWidth};
        }""")
        assert m["titleScroll"] <= m["titleClient"] + 1 and m["titleRight"] <= w, m  # the title is not cut
        assert m["scrollW"] <= w + 1, m  # nothing sticks out sideways
        assert m["scrollH"] <= h + 4, m  # one screen: no scrolling on a wall
        assert m["mapH"] >= 0.55 * h and m["mapBottom"] <= h, m  # the map takes most of the height, on screen
        if w >= 3840:
            assert m["kpiPx"] >= 48, m  # readable from 5 m
            assert m["mapH"] >= 1.8 * 816 * 0.9, m  # twice the 1080p map, not 770 px
        # a map label sits at its point (a tooltip scaled by CSS zoom on a 4K wall drifted away from its marker)
        f = map_frame(page)
        gap = f.evaluate("""() => { const c = window.map.getCenter();
            const t = L.tooltip({permanent: true, direction: 'top'}).setLatLng(c).setContent('测试').addTo(window.map);
            const r = t.getElement().getBoundingClientRect(), p = window.map.latLngToContainerPoint(c);
            const m = window.map.getContainer().getBoundingClientRect(); t.remove();
            return {dx: Math.abs(r.left + r.width / 2 - (m.left + p.x)), dy: (m.top + p.y) - r.bottom}; }""")
        assert gap["dx"] < 4 and -2 < gap["dy"] < 30, gap
        legend = page.locator('[data-testid="bs-legend"]').bounding_box()
        assert legend["y"] + legend["height"] <= h + 1, legend
        page.screenshot(path=str(stack.work / f"bigscreen-{w}.png"))
        assert_no_traceback(page)
    finally:
        ctx.close()


def test_grid_click_opens_its_panel(stack, page):
    open_bigscreen(stack, page)
    f = map_frame(page)
    time.sleep(1.5)
    fc = httpx.get(f"{stack.api_url}/v1/grids", headers=auth(stack.api_url, "leader"), timeout=30).json()
    feat = max(fc["features"], key=lambda x: shape(x["geometry"]).area)
    p = shape(feat["geometry"]).representative_point()
    xy = f.evaluate(f"() => {{ const q = window.map.latLngToContainerPoint([{p.y}, {p.x}]); return [q.x, q.y]; }}")
    box = page.locator('iframe[title="streamlit_folium.st_folium"]').bounding_box()
    page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
    panel = page.locator('[data-testid="grid-panel"]')
    panel.wait_for(timeout=(4 * REFRESH_S + 10) * 1000)
    assert panel.get_attribute("data-grid-code") == feat["properties"]["code"]
    g = httpx.get(f"{stack.api_url}/v1/grids/{feat['properties']['code']}", headers=auth(stack.api_url, "leader"),
                  timeout=10).json()
    assert f'{g["population"]:,}' in panel.inner_text()
    assert_no_traceback(page)


def _walk_the_grid(stack, h: dict, worker: dict) -> int:
    """Today's patrol of *worker*: a walk round their grid's outline, a fix every ~15 m with GPS jitter, sent
    through the API like the app does. Returns the number of fixes sent."""
    import numpy as np

    grid = httpx.get(f"{stack.api_url}/v1/grids/{worker['grid_code']}", headers=h, timeout=10).json()
    fc = httpx.get(f"{stack.api_url}/v1/grids", headers=h, timeout=30).json()
    geom = next(shape(f["geometry"]) for f in fc["features"] if f["properties"]["code"] == grid["code"])
    ring = geom.buffer(-0.00008).exterior if geom.geom_type == "Polygon" else max(geom.geoms, key=lambda g: g.area).exterior
    n = max(20, min(400, int(ring.length / 0.00015)))
    rng = np.random.default_rng(13)
    now = datetime.now(timezone.utc)
    midnight = datetime.now(TZ).replace(hour=0, minute=0, second=1, microsecond=0).astimezone(timezone.utc)
    start = max(midnight, now - timedelta(hours=2))
    span = (now - timedelta(seconds=30) - start).total_seconds()
    fixes = []
    for i in range(n):
        pt = ring.interpolate(i / n, normalized=True)
        fixes.append({"ts": (start + timedelta(seconds=span * i / n)).isoformat(),
                      "lon": pt.x + rng.normal(0, 0.00003), "lat": pt.y + rng.normal(0, 0.00003),
                      "accuracy_m": float(rng.uniform(3, 15))})
    r = httpx.post(f"{stack.api_url}/v1/workers/{worker['id']}/positions", json={"fixes": fixes},
                   headers=auth(stack.api_url, "admin"), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["inserted"]


def test_track_replay_and_patrol_coverage(stack, page):
    h = auth(stack.api_url, "leader")
    day = datetime.now(TZ).date().isoformat()
    pos = httpx.get(f"{stack.api_url}/v1/workers/positions/latest", headers=h, timeout=10).json()
    worker = next(p for p in pos if p.get("grid_code") and p["on_duty"])
    before = httpx.get(f"{stack.api_url}/v1/stats/patrol-coverage", params={"day": day, "grid": worker["grid_code"]},
                       headers=h, timeout=30)
    assert before.status_code == 200, before.text
    sent = _walk_the_grid(stack, h, worker)
    fixes = httpx.get(f"{stack.api_url}/v1/workers/{worker['id']}/track", params={"day": day}, headers=h,
                      timeout=10).json()["fixes"]
    assert len(fixes) >= sent >= 20
    cov = httpx.get(f"{stack.api_url}/v1/stats/patrol-coverage", params={"day": day}, headers=h, timeout=30)
    assert cov.status_code == 200, cov.text
    mine = next(i for i in cov.json()["items"] if i["grid_code"] == worker["grid_code"])
    old = next((i for i in before.json()["items"] if i["grid_code"] == worker["grid_code"]), {"coverage": 0})
    # the walk along the grid's edge streets counts: covered now, never less than before it
    assert mine["covered_m"] > 0 and mine["coverage"] >= (old["coverage"] or 0), (old, mine)

    open_bigscreen(stack, page)
    # patrol coverage, as the API computes it (once its read is in: a slow one first says "being computed")
    page.locator('[data-testid="patrol"][data-coverage]').wait_for(timeout=60_000)
    panel = page.locator('[data-testid="patrol"]')
    assert panel.get_attribute("data-available") != "false"
    items = cov.json()["items"]
    street = sum(i["street_m"] for i in items)
    overall = sum(i["covered_m"] for i in items) / street
    assert float(panel.get_attribute("data-coverage")) == pytest.approx(overall, abs=2e-3)
    # replay the worker's track
    box = page.get_by_role("combobox", name="轨迹回放")
    box.click()
    box.fill(worker["name"])  # the option list is virtual: type to find the worker
    page.get_by_role("option", name=worker["name"]).first.click()
    page.locator('[data-testid="track-info"]').wait_for()
    assert int(page.locator('[data-testid="track-info"]').get_attribute("data-fixes")) == len(fixes)
    f = map_frame(page)
    tr = wait_for(lambda: f.evaluate("() => window.__geo_track || null"), 20)
    assert tr and tr["fixes"] == len(fixes)
    step = tr["step"]
    time.sleep(2)
    assert f.evaluate("() => window.__geo_track.step") > step, "the replay marker moves"
    assert_no_traceback(page)
