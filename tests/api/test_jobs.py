"""Partition jobs through the API on the (small) synthetic district: start, poll, draft, diff, publish."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from geo.cli import app
from geo.demo.synthetic import DISTRICT_CODE

PASSWORD = "test-password-1"


@pytest.fixture
def small_demo(engine, geo_env, tmp_path, monkeypatch):
    res = CliRunner().invoke(app, ["demo-data", "--scale", "0.1", "--out", str(tmp_path / "demo")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    from geo.db.users import add_user

    add_user(engine, "planner", PASSWORD, "planner", DISTRICT_CODE, actor="test")
    add_user(engine, "leader", PASSWORD, "leader", DISTRICT_CODE, actor="test")
    from fastapi.testclient import TestClient

    from geo.api.main import create_app
    from geo.config import reset_settings

    monkeypatch.setenv("GEO_DEMO", "1")
    reset_settings()
    with TestClient(create_app(listen=False)) as c:
        yield c


def _h(c, user):
    r = c.post("/v1/auth/token", data={"username": user, "password": PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _wait(c, h, job_id, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = c.get(f"/v1/jobs/{job_id}", headers=h).json()
        if j["state"] in ("done", "failed"):
            return j
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {j}")


def test_partition_job_draft_then_publish_then_stable_redraw(small_demo, engine):
    c = small_demo
    h = _h(c, "planner")
    street = c.get("/v1/jurisdictions", headers=h).json()
    code = next(j["code"] for j in street if j["level"] == "street")
    r = c.post(f"/v1/jurisdictions/{code}/partition", json={"min_pop": 1000, "max_pop": 2000}, headers=h)
    assert r.status_code == 202, r.text
    job = _wait(c, h, r.json()["job_id"])
    assert job["state"] == "done" and job["progress"] == 1 and job["plan_id"], job
    plan = c.get(f"/v1/plans/{job['plan_id']}", headers=h).json()
    assert plan["status"] == "draft" and plan["quality"]["n_grids"] == plan["grids"] > 0
    assert plan["quality"]["coverage"]["covered_share"] > 0.9999
    assert c.post(f"/v1/plans/{job['plan_id']}/publish", headers=_h(c, "leader")).status_code == 403
    assert c.post(f"/v1/plans/{job['plan_id']}/publish", headers=h).status_code == 409  # nobody staffed
    assert c.post(f"/v1/plans/{job['plan_id']}/publish", headers=h,
                  json={"override_unstaffed": True, "reason": "demo data has no workers"}).status_code == 200
    # a re-draw with nothing changed keeps every grid and moves nobody
    r = c.post(f"/v1/jurisdictions/{code}/partition", json={}, headers=h)
    job2 = _wait(c, h, r.json()["job_id"])
    assert job2["state"] == "done", job2
    d = c.get(f"/v1/plans/{job['plan_id']}/diff/{job2['plan_id']}", headers=h).json()
    assert d["residents_moved"] == 0 and d["added"] == d["removed"] == d["changed"] == []


def test_partition_job_errors(small_demo):
    c = small_demo
    h = _h(c, "planner")
    r = c.post("/v1/jurisdictions/999999999999/partition", json={}, headers=h)
    assert r.status_code == 404
    r = c.post(f"/v1/jurisdictions/{DISTRICT_CODE}/partition", json={"min_pop": 3000, "max_pop": 2000}, headers=h)
    assert r.status_code == 422 and "min_pop" in r.text
    assert c.post(f"/v1/jurisdictions/{DISTRICT_CODE}/partition", json={}, headers=_h(c, "leader")).status_code == 403
    assert c.get("/v1/jobs/424242", headers=h).status_code == 404
