"""The worker page (网格员): its filters are the API's (community/street, grid, role, duty, name part) and show
the same workers; a dispatcher changes a full-time worker's role to 下沉干部 and the API has it."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.helpers import assert_no_traceback, auth, goto, login
from tests.browser.test_planner_edit import _pick

pytestmark = pytest.mark.browser


def _shown(page, n_ids: str | None = None) -> list[int]:
    loc = page.locator('[data-testid="workers-count"]')
    if n_ids is not None:
        page.wait_for_function("(ids) => { const e = document.querySelector('[data-testid=\"workers-count\"]');"
                               " return e && e.dataset.ids === ids; }", arg=n_ids, timeout=60_000)
    ids = loc.first.get_attribute("data-ids") or ""
    return [int(i) for i in ids.split(",") if i]


def test_filters_and_role_change(stack, page):
    api = stack.api_url
    h = auth(api, "dispatcher")
    js = httpx.get(f"{api}/v1/jurisdictions", headers=h, timeout=10).json()
    comm = next(j for j in js if j["level"] == "community")
    everyone = httpx.get(f"{api}/v1/workers", headers=h, timeout=30).json()
    in_comm = httpx.get(f"{api}/v1/workers", headers=h, params={"jurisdiction": comm["code"]}, timeout=30).json()
    assert in_comm and len(in_comm) < len(everyone)
    # full-time workers (not chiefs: other tests publish plans of this street, which needs every chief)
    staff = httpx.get(f"{api}/v1/workers", headers=h, params={"jurisdiction": comm["code"], "role": "full_time"},
                      timeout=30).json()
    name_part = staff[0]["name"][:1]  # a surname: several workers may share it
    want = httpx.get(f"{api}/v1/workers", headers=h, timeout=30,
                     params={"jurisdiction": comm["code"], "role": "full_time", "name": name_part}).json()

    login(page, stack.dash_url, "dispatcher")
    goto(page, "workers")
    page.locator('[data-testid="workers-count"]').wait_for(state="attached", timeout=60_000)
    assert _shown(page) == [w["id"] for w in everyone]
    _pick(page, "社区/街道", comm["code"])
    assert _shown(page, ",".join(str(w["id"]) for w in in_comm)) == [w["id"] for w in in_comm]
    _pick(page, "岗位", "专职网格员")
    _shown(page, ",".join(str(w["id"]) for w in staff))
    page.get_by_label("姓名包含").fill(name_part)
    page.get_by_label("姓名包含").press("Enter")
    assert _shown(page, ",".join(str(w["id"]) for w in want)) == [w["id"] for w in want]
    # a bad grid code is ignored with a warning, not sent
    page.get_by_role("textbox", name="网格", exact=True).fill("123")
    page.get_by_role("textbox", name="网格", exact=True).press("Enter")
    page.get_by_text("网格编码应为 15 位数字").wait_for()
    page.get_by_role("textbox", name="网格", exact=True).fill("")
    page.get_by_role("textbox", name="网格", exact=True).press("Enter")
    # change the worker's role to 下沉干部 through the assign form
    target = want[0]
    page.get_by_text("网格编码应为 15 位数字").wait_for(state="detached")  # the rerun of the cleared filter is over
    for _ in range(3):  # open the expander (a rerun still running can close it again)
        if page.get_by_role("combobox", name="调整岗位").count() and \
                page.get_by_role("combobox", name="调整岗位").is_visible():
            break
        page.get_by_text("调整负责网格与在岗状态").click()
        page.wait_for_timeout(1500)
    _pick(page, "#", target["name"])
    _pick(page, "调整岗位", "兼职(下沉干部)")
    page.get_by_role("button", name="保存").click()
    page.get_by_text("已保存").wait_for(timeout=60_000)
    try:
        w = httpx.get(f"{api}/v1/workers", headers=h, params={"name": target["name"]}, timeout=30).json()
        assert next(x for x in w if x["id"] == target["id"])["role"] == "part_time"
        assert_no_traceback(page)
    finally:  # the stack is shared by the session's browser tests
        httpx.patch(f"{api}/v1/workers/{target['id']}", headers=h, json={"role": "full_time"}, timeout=30)
