"""Planner edits by hand in the browser: move a block to a neighbour, merge, split, lock, undo — live figures
change as the API computes them — and an edit that would break a grid's contiguity is refused in Chinese.

Works on a street other than the publish test's (its drafts would change that test's default plan)."""

from __future__ import annotations

import httpx
import pytest
import shapely
from shapely.geometry import shape

from tests.browser.helpers import assert_no_traceback, auth, goto, login
from tests.browser.test_publish import choose

pytestmark = pytest.mark.browser


def _candidates(api, h, pub):
    """A feasible move and a contiguity-breaking one on the published plan, found through the API."""
    fc = httpx.get(f"{api}/v1/plans/{pub}/grids", headers=h, timeout=30).json()
    grids = {f["properties"]["code"]: (shape(f["geometry"]), f["properties"]) for f in fc["features"]}
    ok = bad = None
    tries = 0
    for a, (ga, pa) in grids.items():
        for b, (gb, pb) in grids.items():
            if a >= b or pa["community_code"] != pb["community_code"] or pa["kind"] != "standard" \
                    or pb["kind"] != "standard":
                continue
            if shapely.intersection(ga.boundary, gb.buffer(1e-5)).length < 1e-4:
                continue
            minx, miny, maxx, maxy = ga.bounds
            pts = [shapely.Point(minx + (maxx - minx) * i / 6, miny + (maxy - miny) * j / 6)
                   for i in range(1, 6) for j in range(1, 6)]
            pts = sorted((p for p in pts if ga.contains(p)), key=lambda p: p.distance(gb))
            for p in pts[:6]:
                tries += 1
                r = httpx.post(f"{api}/v1/plans/{pub}/edits", headers=h, timeout=120,
                               json={"op": "move", "lon": p.x, "lat": p.y, "to": b})
                if r.status_code == 201 and ok is None:
                    ok = (a, b, p.x, p.y, r.json())
                elif r.status_code == 409 and r.json().get("reason") == "breaks_contiguity" and bad is None:
                    bad = (a, b, p.x, p.y)
                if ok and bad:
                    return ok, bad
                if tries > 80:
                    return ok, bad
    return ok, bad


def _figures(page, plan_after: int | None = None):
    sel = '[data-testid="edit-figures"]' + (f'[data-plan-id="{plan_after}"]' if plan_after else "")
    loc = page.locator(sel)
    loc.wait_for(timeout=120_000)
    return loc


def _pick(page, label: str, text: str) -> None:
    """Choose an option unless the selectbox already shows it (clicking an open one closes it)."""
    cur = page.locator(f"input[aria-label^='{label}']").first
    if cur.count() and text in (cur.input_value() or ""):
        return
    combo = page.get_by_role("combobox", name=label)
    combo.click()
    page.keyboard.type(text)  # long lists are virtualised: filter first, then the option is in view
    page.get_by_role("option").filter(has_text=text).first.click()
    page.wait_for_function("([l, t]) => { const e = document.querySelector(`input[aria-label^='${l}']`);"
                           " return e && e.value.includes(t); }", arg=[label, text])


def _apply(page, op_label: str, *, a: str | None = None, b: str | None = None, lon=None, lat=None, k=None):
    old = page.locator('[data-testid="edit-figures"]').get_attribute("data-plan-id") \
        if page.locator('[data-testid="edit-figures"]').count() else None
    _pick(page, "操作", op_label)
    if lon is not None:
        page.get_by_label("街区内一点 经度（点击地图）").fill(f"{lon:.6f}")
        page.get_by_label("纬度").fill(f"{lat:.6f}")
    if a:
        _pick(page, "网格 A", a)
    if b:
        _pick(page, "网格 B（目标）", b)
    if k:
        page.get_by_label("拆分为").fill(str(k))
    page.get_by_role("button", name="应用调整").click()
    page.wait_for_function("(old) => { const e = document.querySelector('[data-testid=\"edit-figures\"]');"
                           " const r = document.querySelector('[data-testid=\"edit-refused\"]');"
                           " return r || (e && e.dataset.planId !== old); }", arg=old, timeout=180_000)


@pytest.mark.xfail(strict=False, reason="known after the merge of 2026-12-02: on the new synthetic district (multi-entrance "
                   "buildings, estates cut between buildings) the search for a feasible block move on the demo street "
                   "finds none; the same edits pass in tests/api/test_planner_api.py")
def test_move_merge_split_lock_undo_and_refusal(stack, page):
    api = stack.api_url
    h = auth(api, "planner")
    js = httpx.get(f"{api}/v1/jurisdictions", headers=h, timeout=10).json()
    street = next(j for j in js if j["level"] == "street" and j["published_plan_id"] and j["code"] != stack.draft_code)
    pub = street["published_plan_id"]
    ok, bad = _candidates(api, h, pub)
    assert ok is not None, "no feasible block move found on the demo street"
    a, b, lon, lat, expected = ok
    want = {g["code"]: g["people"] for g in expected["grids"]}

    login(page, stack.dash_url, "planner")
    goto(page, "planner")
    page.get_by_text("质量报告").wait_for()
    choose(page, "选择辖区", street["code"])
    _pick(page, "查看方案", f"#{pub} ")
    page.get_by_text("手工调整").first.wait_for()

    # move: the block goes from A to its neighbour B; the figures are the API's
    _apply(page, "移动街区到相邻网格", lon=lon, lat=lat, b=b)
    fig = _figures(page)
    p1 = int(fig.get_attribute("data-plan-id"))
    assert int(fig.get_attribute(f"data-{a}")) == want[a] and int(fig.get_attribute(f"data-{b}")) == want[b]
    assert httpx.get(f"{api}/v1/plans/{p1}", headers=h).json()["status"] == "draft"

    # merge A and B: one grid with both populations
    _apply(page, "合并两个网格", a=a, b=b)
    fig = _figures(page)
    p2 = int(fig.get_attribute("data-plan-id"))
    assert p2 != p1 and int(fig.get_attribute(f"data-{a}")) == want[a] + want[b]
    # split it into 2 by the engine: two grids, same total
    _apply(page, "拆分网格", a=a, k=2)
    fig = _figures(page)
    p3 = int(fig.get_attribute("data-plan-id"))
    s = httpx.get(f"{api}/v1/plans/{p3}/edits", headers=h).json()["edits"][-1]
    assert s["op"] == "split" and len(s["into"]) == 2
    assert sum(int(fig.get_attribute(f"data-{c}")) for c in s["into"]) == want[a] + want[b]
    # lock A
    _apply(page, "锁定网格", a=a)
    fig = _figures(page)
    p4 = int(fig.get_attribute("data-plan-id"))
    assert page.locator('[data-testid="edit-figures"]').inner_text()
    grids = httpx.get(f"{api}/v1/plans/{p4}/grids", headers=h).json()["features"]
    assert next(f for f in grids if f["properties"]["code"] == a)["properties"]["flags"] == ["locked"]
    # undo: the lock goes
    old = fig.get_attribute("data-plan-id")
    js_changed = ("(old) => { const e = document.querySelector('[data-testid=\"edit-figures\"]');"
                  " return e && e.dataset.planId !== old; }")
    for _ in range(4):  # a press can be lost to a rerun still running: press again only if nothing happened
        page.get_by_role("button", name="撤销上一步").click()
        try:
            page.wait_for_function(js_changed, arg=old, timeout=30_000)
            break
        except Exception:  # noqa: BLE001 — playwright TimeoutError
            continue
    page.wait_for_function(js_changed, arg=old, timeout=30_000)
    p5 = int(page.locator('[data-testid="edit-figures"]').get_attribute("data-plan-id"))
    e5 = httpx.get(f"{api}/v1/plans/{p5}/edits", headers=h).json()["edits"]
    assert [e["op"] for e in e5] == ["move", "merge", "split"]
    grids = httpx.get(f"{api}/v1/plans/{p5}/grids", headers=h).json()["features"]
    assert next(f for f in grids if f["properties"]["code"] == a)["properties"]["flags"] == []
    assert_no_traceback(page)

    # refused: a move that cuts a grid in two, on the published plan
    if bad is None:
        pytest.skip("no contiguity-breaking move found on this street")
    _pick(page, "查看方案", f"#{pub} ")
    ba, bb, blon, blat = bad
    _apply(page, "移动街区到相邻网格", lon=blon, lat=blat, b=bb)
    ref = page.locator('[data-testid="edit-refused"]')
    ref.wait_for()
    assert "调整被拒绝：网格将不再连成一片" in ref.inner_text()
    assert_no_traceback(page)
