"""A planner runs a partition as a background job from the planner page and gets a draft to inspect."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.helpers import assert_no_traceback, auth, goto, login
from tests.browser.test_publish import choose

pytestmark = pytest.mark.browser


def test_partition_job_makes_a_draft(stack, page):
    doc = httpx.get(f"{stack.api_url}/openapi.json", timeout=10).json()
    assert "/v1/jurisdictions/{code}/partition" in doc["paths"], "the API must offer partition jobs"
    h = auth(stack.api_url, "planner")
    js = httpx.get(f"{stack.api_url}/v1/jurisdictions", headers=h, timeout=10).json()
    # not the street of the publish test, whose newest draft must stay the one made by the CLI
    code = next(j["code"] for j in js if j["level"] == "street" and j["published_plan_id"]
                and j["code"] != stack.draft_code)
    before = {p["id"] for p in httpx.get(f"{stack.api_url}/v1/jurisdictions/{code}/plans", headers=h).json()}

    login(page, stack.dash_url, "planner")
    goto(page, "planner")
    page.locator('[data-testid="plan-quality"]').wait_for()
    choose(page, "选择辖区", code)
    # the page has re-run for that jurisdiction (it shows one of its plans) before the form is used
    page.wait_for_function("ids => { const e = document.querySelector('[data-testid=\"plan-quality\"]');"
                           " return e && ids.includes(Number(e.dataset.planId)); }", arg=sorted(before))
    page.get_by_text("新建划分方案").click()
    page.get_by_label("随机种子").fill("11")
    page.get_by_role("button", name="运行划分（后台任务）").click()
    # the page shows the outcome, whichever it is; if it shows none, say what the API knows about the job
    outcome = page.get_by_text("划分完成：草案方案").or_(page.get_by_text("划分失败")).or_(
        page.locator('[data-testid="stAlertContentError"]'))
    try:
        outcome.first.wait_for(timeout=150_000)
    except Exception as exc:
        jobs = _jobs(stack, code)
        api_log = next((p.tail(3000) for p in stack.procs if p.name == "api"), "")
        raise AssertionError(f"the planner page showed no outcome of the job; jobs of {code}: {jobs}\n"
                             f"API log tail:\n{api_log}") from exc
    assert page.get_by_text("划分完成：草案方案").count() == 1, \
        f"the job did not finish: {outcome.first.inner_text()!r}; jobs of {code}: {_jobs(stack, code)}"
    after = httpx.get(f"{stack.api_url}/v1/jurisdictions/{code}/plans", headers=h).json()
    new = [p for p in after if p["id"] not in before]
    assert len(new) == 1 and new[0]["status"] == "draft" and new[0]["params"]["seed"] == 11
    page.locator(f'[data-testid="plan-quality"][data-plan-id="{new[0]["id"]}"]').wait_for()
    assert_no_traceback(page)


def _jobs(stack, code: str) -> list[dict]:
    """The partition jobs of a jurisdiction, straight from the database (for failure messages)."""
    import sqlalchemy as sa

    eng = sa.create_engine(stack.db_url)
    try:
        with eng.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT pj.id, pj.state, pj.stage, pj.progress, pj.error, pj.created_at, pj.finished_at "
                "FROM partition_jobs pj JOIN jurisdictions j ON j.id = pj.jurisdiction_id WHERE j.code = :c"),
                {"c": code}).mappings().all()
        return [dict(r) for r in rows]
    finally:
        eng.dispose()
