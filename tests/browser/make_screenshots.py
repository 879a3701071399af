"""Screenshots of every dashboard page from a running demo (not a test); the big screen at 1920×1080
(bigscreen.png and bigscreen-1080p.png), 3840×2160 (bigscreen-4k.png) and 1366×768 (bigscreen-1366.png).

    geo demo                      # or: geo serve --demo + streamlit run dashboard/app.py
    python -m tests.browser.make_screenshots --url http://127.0.0.1:8501 --out docs/screenshots

The planner shot looks best with a draft next to the published plan (e.g. ``geo partition 429901001000
--min 800 --max 1500 --seed 3``).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import sync_playwright
from shapely.geometry import shape

from tests.browser.helpers import (CHROMIUM, CHROMIUM_ARGS, PASSWORD, goto, login, map_frame, wait_idle,
                                   wait_painted)


def settle(page, seconds: float = 2.5) -> None:
    time.sleep(seconds)


def scroll_to(page, locator) -> None:
    locator.first.evaluate("e => e.scrollIntoView({block: 'start'})")
    time.sleep(0.8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8501", help="the dashboard")
    ap.add_argument("--api", default="http://127.0.0.1:8000", help="the API (to choose a point to look up)")
    ap.add_argument("--out", default="docs/screenshots")
    ap.add_argument("--user", default="admin")
    ap.add_argument("--plan", type=int, default=None, help="plan id to show on the planner page (default: newest draft)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = httpx.post(f"{args.api}/v1/auth/token", data={"username": args.user, "password": PASSWORD}).json()
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(f"{args.url}/bigscreen")
        page.get_by_label("用户名").wait_for()
        settle(page, 1)
        page.screenshot(path=str(out / "login.png"))

        for (w, hh), name in (((3840, 2160), "bigscreen-4k.png"), ((1366, 768), "bigscreen-1366.png"),
                              ((1920, 1080), "bigscreen-1080p.png")):
            wall = browser.new_page(viewport={"width": w, "height": hh})
            _bigscreen(wall, args.url, args.user, out / name, h, args.api)
            if name == "bigscreen-1080p.png":
                (out / "bigscreen.png").write_bytes((out / name).read_bytes())
            wall.close()

        login(page, args.url, args.user)
        page.locator('[data-testid="kpi-tiles"]').wait_for()

        goto(page, "dispatch")
        page.get_by_label("经度").wait_for()
        fc = httpx.get(f"{args.api}/v1/grids", headers=h, timeout=30).json()
        top = httpx.get(f"{args.api}/v1/stats/top-grids", params={"n": 1}, headers=h).json()
        feat = next((f for f in fc["features"] if top and f["properties"]["code"] == top[0]["grid_code"]),
                    fc["features"][0])
        pt = shape(feat["geometry"]).representative_point()
        cands = httpx.get(f"{args.api}/v1/geocode", params={"q": feat["properties"].get("name", "社区")[:4],
                                                              "limit": 5}, headers=h, timeout=10)
        if cands.status_code == 200 and cands.json().get("candidates"):  # address first, as a dispatcher works
            page.get_by_label("地址关键词").fill(cands.json()["candidates"][0]["address"])
            page.get_by_role("button", name="搜索地址").click()
            page.locator('[data-testid="geocode-candidates"]').wait_for(state="attached")
            settle(page, 1)
            page.locator('[data-testid="stRadio"] [role="radiogroup"] label').first.click()
        else:
            page.get_by_label("经度").fill(f"{pt.x:.6f}")
            page.get_by_label("纬度").fill(f"{pt.y:.6f}")
            settle(page, 1)
            page.get_by_role("button", name="查询所属网格").click()
        page.locator('[data-testid="lookup-grid-code"]').wait_for()
        settle(page, 3)
        page.screenshot(path=str(out / "dispatch.png"))

        goto(page, "planner")
        page.locator('[data-testid="plan-quality"]').wait_for()
        settle(page, 2)
        if args.plan:
            page.get_by_role("combobox", name="查看方案").click()
            page.get_by_role("option").filter(has_text=f"#{args.plan} ").first.click()
            page.locator(f'[data-testid="plan-quality"][data-plan-id="{args.plan}"]').wait_for()
        settle(page, 3)
        scroll_to(page, page.get_by_text("质量报告"))
        settle(page, 2)
        page.screenshot(path=str(out / "planner.png"))

        goto(page, "events")
        frame = page.locator('[data-testid="stDataFrame"]').first
        frame.wait_for()
        settle(page, 2)
        bb = frame.bounding_box()
        page.mouse.click(bb["x"] + 14, bb["y"] + 35 + 17)  # select the first row
        page.locator('[data-testid="event-detail"]').wait_for()
        settle(page, 2)
        scroll_to(page, page.locator('[data-testid="stCaptionContainer"]'))
        page.screenshot(path=str(out / "events.png"))
        browser.close()
    print(f"screenshots in {out}")


def _bigscreen(page, url: str, user: str, path: Path, h: dict, api: str) -> None:
    """The wall view (sidebar folded), with a grid clicked and a worker's track replaying."""
    login(page, url, user)
    wait_painted(page)
    f = map_frame(page)
    page.locator('[data-testid="stSidebar"]').hover()
    page.locator('[data-testid="stSidebarCollapseButton"] button').click(force=True)
    wait_idle(page)
    settle(page, 2)  # the map re-fits to its new width
    top = httpx.get(f"{api}/v1/stats/top-grids", params={"n": 1}, headers=h).json()
    fc = httpx.get(f"{api}/v1/grids", headers=h, timeout=30).json()
    feat = next((x for x in fc["features"] if top and x["properties"]["code"] == top[0]["grid_code"]), None)
    if feat:
        p = shape(feat["geometry"]).representative_point()
        xy = f.evaluate(f"() => {{ const q = window.map.latLngToContainerPoint([{p.y}, {p.x}]); return [q.x, q.y]; }}")
        box = page.locator('iframe[title="streamlit_folium.st_folium"]').bounding_box()
        wait_idle(page)
        page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
        page.locator('[data-testid="grid-panel"]').wait_for(timeout=60_000)
    day = datetime.now(ZoneInfo(os.environ.get("GEO_TZ", "Asia/Shanghai"))).date().isoformat()  # days are in GEO_TZ
    pos = [w for w in httpx.get(f"{api}/v1/workers/positions/latest", headers=h, timeout=10).json() if w["on_duty"]]
    busiest = max(pos[:40], key=lambda w: len(httpx.get(f"{api}/v1/workers/{w['id']}/track", params={"day": day},
                                                        headers=h, timeout=10).json()["fixes"]), default=None)
    if busiest:
        box = page.get_by_role("combobox", name="轨迹回放")
        wait_idle(page)
        box.click()
        box.fill(busiest["name"])
        page.get_by_role("option", name=busiest["name"]).first.click()
        page.locator('[data-testid="track-info"]').wait_for(timeout=60_000)
        deadline = time.monotonic() + 60
        while not map_frame(page).evaluate("() => !!window.__geo_track") and time.monotonic() < deadline:
            time.sleep(0.3)
    settle(page, 4)  # the replay marker walks a few steps
    wait_idle(page)
    page.screenshot(path=str(path))


if __name__ == "__main__":
    main()
