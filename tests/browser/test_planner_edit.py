"""Planner edits by hand in the browser: move a block to a neighbour, merge, split, lock, undo — live figures
change as the API computes them — and an edit that would break a grid's contiguity is refused in Chinese.
The unit moved is one the page's move panel offers (the API's move options), not a guessed point.

Works on a street other than the publish test's (its drafts would change that test's default plan)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.browser.helpers import assert_no_traceback, auth, goto, login
from tests.browser.test_publish import choose

pytestmark = pytest.mark.browser


def _offered(api, h, pub):
    """A grid with a movable unit and a grid with a unit whose move would cut it apart, as the planner's move
    options (``GET /v1/plans/{id}/move-options``) offer them; the page shows the same list."""
    fc = httpx.get(f"{api}/v1/plans/{pub}/grids", headers=h, timeout=30).json()
    codes = sorted(f["properties"]["code"] for f in fc["features"] if f["properties"]["kind"] == "standard")
    ok = bad = None
    for code in codes:
        r = httpx.get(f"{api}/v1/plans/{pub}/move-options", headers=h, params={"grid": code}, timeout=120)
        assert r.status_code == 200, r.text
        opts = r.json()["options"]
        if ok is None and any(o["ok"] for o in opts):
            ok = code
        if bad is None and any(o["reason"] == "breaks_contiguity" for o in opts):
            bad = code
        if ok and bad:
            break
    return ok, bad


def _shows_plan(page, plan_id: int) -> None:
    """Wait until the page's edit panel is the one of *plan_id* (the rerun after choosing it is over)."""
    page.locator(f'[data-testid="edit-panel"][data-plan-id="{plan_id}"]').wait_for(state="attached", timeout=120_000)


def _page_options(page, code: str) -> list[dict]:
    """The move options the page shows for *code* (chosen in the move panel)."""
    _pick(page, "从网格", code)
    loc = page.locator(f'[data-testid="move-options"][data-grid="{code}"]')
    loc.wait_for(timeout=120_000)
    return json.loads(loc.get_attribute("data-options"))


def _pick_option(page, options: list[dict], k: int) -> None:
    """Pick option *k* in the move panel: it fills the edit form (operation, point, target, unit)."""
    _pick(page, "选择一个单元（填入下方调整表单）", f"#{k + 1} →")
    o = options[k]
    # one rerun fills all four fields; they reach the page one after another
    page.wait_for_function("""([lon, lat, to]) => {
        const v = (l) => { const e = document.querySelector(`input[aria-label^='${l}']`); return e ? e.value : ''; };
        return Math.abs(parseFloat(v('街区内一点 经度（点击地图）')) - lon) < 2e-6
            && Math.abs(parseFloat(v('纬度')) - lat) < 2e-6 && v('网格 B（目标）').includes(to)
            && v('操作').includes('移动街区到相邻网格'); }""", arg=[o["lon"], o["lat"], o["to"]], timeout=60_000)


def _figures(page, plan_after: int | None = None):
    sel = '[data-testid="edit-figures"]' + (f'[data-plan-id="{plan_after}"]' if plan_after else "")
    loc = page.locator(sel)
    loc.wait_for(timeout=120_000)
    return loc


def _pick(page, label: str, text: str, tries: int = 3) -> None:
    """Choose an option unless the selectbox already shows it (clicking an open one closes it). A rerun still
    running can re-draw the list under the click: then the pick is tried again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        cur = page.locator(f"input[aria-label^='{label}']").first
        if cur.count() and text in (cur.input_value() or ""):
            return
        try:
            page.get_by_role("combobox", name=label).click(timeout=20_000)
            page.keyboard.type(text)  # long lists are virtualised: filter first, then the option is in view
            page.get_by_role("option").filter(has_text=text).first.click(timeout=15_000)
            page.wait_for_function("([l, t]) => { const e = document.querySelector(`input[aria-label^='${l}']`);"
                                   " return e && e.value.includes(t); }", arg=[label, text], timeout=30_000)
            return
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
            page.wait_for_timeout(1000)


def _apply(page, op_label: str | None, *, a: str | None = None, b: str | None = None, lon=None, lat=None, k=None):
    """Fill the edit form (*op_label* None: as the move panel filled it) and apply it; waits for the answer."""
    old = page.locator('[data-testid="edit-figures"]').get_attribute("data-plan-id") \
        if page.locator('[data-testid="edit-figures"]').count() else None
    if op_label:
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


def test_move_merge_split_lock_undo_and_refusal(stack, page):
    api = stack.api_url
    h = auth(api, "planner")
    js = httpx.get(f"{api}/v1/jurisdictions", headers=h, timeout=10).json()
    street = next(j for j in js if j["level"] == "street" and j["published_plan_id"] and j["code"] != stack.draft_code)
    pub = street["published_plan_id"]
    a, bad_grid = _offered(api, h, pub)
    assert a is not None, "the move options offer no movable unit on the demo street"
    assert bad_grid is not None, "the move options offer no unit whose move would cut its grid"

    login(page, stack.dash_url, "planner")
    goto(page, "planner")
    page.get_by_text("质量报告").wait_for()
    choose(page, "选择辖区", street["code"])
    _pick(page, "查看方案", f"#{pub} ")
    _shows_plan(page, pub)

    # the move panel offers A's units on each neighbour's boundary: the same list as the API's
    opts = _page_options(page, a)
    api_opts = httpx.get(f"{api}/v1/plans/{pub}/move-options", headers=h, params={"grid": a}, timeout=120).json()
    assert [(o["to"], o["unit"], o["ok"], o["people"]) for o in opts] == \
        [(o["to"], o["unit"], o["ok"], o["people"]) for o in api_opts["options"]]
    k = next(i for i, o in enumerate(opts) if o["ok"])
    b, want = opts[k]["to"], opts[k]["after"]
    # move: the offered unit goes from A to its neighbour B; the live figures are the ones offered
    _pick_option(page, opts, k)
    _apply(page, None)
    fig = _figures(page)
    p1 = int(fig.get_attribute("data-plan-id"))
    assert int(fig.get_attribute(f"data-{a}")) == want[a] and int(fig.get_attribute(f"data-{b}")) == want[b]
    assert httpx.get(f"{api}/v1/plans/{p1}", headers=h).json()["status"] == "draft"
    last = httpx.get(f"{api}/v1/plans/{p1}/edits", headers=h).json()["edits"][-1]
    assert (last["op"], last["from"], last["to"], last["unit"]) == ("move", a, b, opts[k]["unit"])

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

    # refused: a unit the panel marks as cutting its grid apart, tried anyway on the published plan
    _pick(page, "查看方案", f"#{pub} ")
    _shows_plan(page, pub)
    opts = _page_options(page, bad_grid)
    k = next(i for i, o in enumerate(opts) if o["reason"] == "breaks_contiguity")
    _pick_option(page, opts, k)
    shown = page.locator("input[aria-label^='选择一个单元']").first.input_value()
    assert "网格将不再连成一片" in shown, shown  # the panel said so before the planner tried
    _apply(page, None)
    ref = page.locator('[data-testid="edit-refused"]')
    ref.wait_for()
    assert "调整被拒绝：网格将不再连成一片" in ref.inner_text()
    assert_no_traceback(page)
