"""Partition jobs through the API on the (small) synthetic district: start, poll, draft, diff, publish, cancel.

Jobs run in a real ``geo worker`` process off the procrastinate queue (never in the API)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from geo.demo.synthetic import DISTRICT_CODE
from tests.api.conftest import PASSWORD, small_demo_client, token


@pytest.fixture
def small_demo(engine, geo_env, tmp_path, monkeypatch):
    yield from small_demo_client(engine, tmp_path, monkeypatch, ("planner", "leader"))


def start_worker(log_path) -> subprocess.Popen:
    """A real ``geo worker`` on the test database (its own process group, dies with the test session)."""
    from geo.supervise import spawn

    fh = open(log_path, "ab")
    p = spawn([sys.executable, "-m", "geo.cli", "worker"], env=dict(os.environ), stdout=fh, stderr=subprocess.STDOUT)
    fh.close()
    deadline = time.time() + 60
    while "waiting for jobs" not in log_path.read_text(errors="replace"):
        assert p.poll() is None and time.time() < deadline, log_path.read_text(errors="replace")[-3000:]
        time.sleep(0.2)
    return p


@pytest.fixture
def worker(small_demo, tmp_path):
    from geo.supervise import stop

    p = start_worker(tmp_path / "worker.log")
    yield p
    stop(p)


def token(c, user):
    r = c.post("/v1/auth/token", data={"username": user, "password": PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _wait(c, h, job_id, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = c.get(f"/v1/jobs/{job_id}", headers=h).json()
        if j["state"] in ("done", "failed", "cancelled"):
            return j
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {j}")


def test_partition_job_draft_then_publish_then_stable_redraw(small_demo, worker, engine):
    c = small_demo
    h = token(c, "planner")
    street = c.get("/v1/jurisdictions", headers=h).json()
    code = next(j["code"] for j in street if j["level"] == "street")
    r = c.post(f"/v1/jurisdictions/{code}/partition", json={"min_pop": 1000, "max_pop": 2000}, headers=h)
    assert r.status_code == 202, r.text
    job = _wait(c, h, r.json()["job_id"])
    assert job["state"] == "done" and job["progress"] == 1 and job["plan_id"], job
    plan = c.get(f"/v1/plans/{job['plan_id']}", headers=h).json()
    assert plan["status"] == "draft" and plan["quality"]["n_grids"] == plan["grids"] > 0
    assert plan["quality"]["coverage"]["covered_share"] > 0.9999
    assert c.post(f"/v1/plans/{job['plan_id']}/publish", headers=token(c, "leader")).status_code == 403
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
    h = token(c, "planner")
    r = c.post("/v1/jurisdictions/999999999999/partition", json={}, headers=h)
    assert r.status_code == 404
    r = c.post(f"/v1/jurisdictions/{DISTRICT_CODE}/partition", json={"min_pop": 3000, "max_pop": 2000}, headers=h)
    assert r.status_code == 422 and "min_pop" in r.text
    assert c.post(f"/v1/jurisdictions/{DISTRICT_CODE}/partition", json={}, headers=token(c, "leader")).status_code == 403
    assert c.get("/v1/jobs/424242", headers=h).status_code == 404


def _queue_status(engine, job_id):
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT q.status::text FROM partition_jobs j JOIN procrastinate_jobs q "
                                 "ON q.id = j.queue_job_id WHERE j.id = :id"), {"id": job_id}).scalar_one()


def test_queued_job_is_not_run_by_the_api_and_cancel_stops_it(small_demo, engine, tmp_path):
    """Without a worker nothing runs (the API never partitions); a queued job cancelled stays cancelled."""
    from geo.supervise import stop

    c = small_demo
    h = token(c, "planner")
    code = next(j["code"] for j in c.get("/v1/jurisdictions", headers=h).json() if j["level"] == "street")
    jid = c.post(f"/v1/jurisdictions/{code}/partition", json={}, headers=h).json()["job_id"]
    keep = c.post(f"/v1/jurisdictions/{code}/partition", json={"seed": 3}, headers=h).json()["job_id"]
    time.sleep(1.5)
    j = c.get(f"/v1/jobs/{jid}", headers=h).json()
    assert j["state"] == "queued" and j["progress"] == 0 and j["started_at"] is None, j
    assert c.post(f"/v1/jobs/{jid}/cancel", headers=token(c, "leader")).status_code == 403
    r = c.post(f"/v1/jobs/{jid}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["state"] == "cancelled" and r.json()["cancelled_by"] == "user:planner", r.text
    assert _queue_status(engine, jid) == "cancelled"
    assert c.post(f"/v1/jobs/{jid}/cancel", headers=h).status_code == 409
    w = start_worker(tmp_path / "w.log")
    try:
        assert _wait(c, h, keep)["state"] == "done"
    finally:
        stop(w)
    j = c.get(f"/v1/jobs/{jid}", headers=h).json()
    assert j["state"] == "cancelled" and j["plan_id"] is None and j["attempts"] == 0, j


def test_running_job_cancelled_stops_at_next_step(small_demo, worker, engine):
    c = small_demo
    h = token(c, "planner")
    jid = c.post(f"/v1/jurisdictions/{DISTRICT_CODE}/partition", json={}, headers=h).json()["job_id"]
    deadline = time.time() + 120
    while c.get(f"/v1/jobs/{jid}", headers=h).json()["state"] != "running":
        assert time.time() < deadline
        time.sleep(0.05)
    r = c.post(f"/v1/jobs/{jid}/cancel", headers=h)
    assert r.status_code in (200, 409), r.text
    j = _wait(c, h, jid)
    if r.status_code == 409:  # it finished between our two requests: nothing to cancel
        assert j["state"] == "done"
        pytest.skip("the job finished before the cancel arrived")
    assert j["state"] == "cancelled" and j["plan_id"] is None, j
    # the task writes its row before it raises JobAborted; the queue records "aborted" just after
    deadline = time.time() + 60
    while (status := _queue_status(engine, jid)) == "doing" and time.time() < deadline:
        time.sleep(0.1)
    assert status in ("aborted", "failed")


@pytest.mark.slow
def test_job_survives_api_restart_and_completes(small_demo, engine, pg_env, tmp_path):
    """Queued through one API process, that process stopped, a new one started: a worker still runs the job."""
    from geo.supervise import stop
    from tests.api.test_processes import start_api

    api, base = start_api(pg_env)
    import httpx

    tok = httpx.post(f"{base}/v1/auth/token", data={"username": "planner", "password": PASSWORD}).json()
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    code = next(j["code"] for j in httpx.get(f"{base}/v1/jurisdictions", headers=h).json() if j["level"] == "street")
    r = httpx.post(f"{base}/v1/jurisdictions/{code}/partition", json={}, headers=h)
    assert r.status_code == 202, r.text
    jid = r.json()["job_id"]
    api.send_signal(signal.SIGTERM)
    api.wait(30)
    api2, base2 = start_api(pg_env)
    w = start_worker(tmp_path / "w.log")
    try:
        deadline = time.time() + 180
        while (j := httpx.get(f"{base2}/v1/jobs/{jid}", headers=h).json())["state"] not in ("done", "failed"):
            assert time.time() < deadline, j
            time.sleep(0.3)
        assert j["state"] == "done" and j["plan_id"] and j["attempts"] == 1, j
        plan = httpx.get(f"{base2}/v1/plans/{j['plan_id']}", headers=h).json()
        assert plan["status"] == "draft" and plan["grids"] > 0
    finally:
        stop(w)
        api2.terminate()
        api2.wait(30)


@pytest.mark.slow
def test_job_whose_worker_is_killed_is_retried_by_another_worker(small_demo, engine, tmp_path):
    """SIGKILL the worker mid-partition: its heartbeat stops, a second worker retries the job, which completes."""
    from geo.supervise import stop

    c = small_demo
    h = token(c, "planner")
    w1 = start_worker(tmp_path / "w1.log")
    jid = c.post(f"/v1/jurisdictions/{DISTRICT_CODE}/partition", json={}, headers=h).json()["job_id"]
    deadline = time.time() + 120
    while (j := c.get(f"/v1/jobs/{jid}", headers=h).json())["state"] != "running":
        assert time.time() < deadline and j["state"] == "queued", j
        time.sleep(0.05)
    os.killpg(w1.pid, signal.SIGKILL)
    w1.wait(10)
    assert c.get(f"/v1/jobs/{jid}", headers=h).json()["state"] == "running"  # nobody has noticed yet
    w2 = start_worker(tmp_path / "w2.log")
    try:
        seen_requeued = False
        deadline = time.time() + 240  # generous bound used only as a timeout: detection takes ~20-30 s
        while (j := c.get(f"/v1/jobs/{jid}", headers=h).json())["state"] not in ("done", "failed"):
            seen_requeued |= j["state"] == "queued" and "worker lost" in (j["stage"] or "")
            assert time.time() < deadline, j
            time.sleep(0.2)
    finally:
        stop(w2)
    assert j["state"] == "done" and j["attempts"] == 2 and j["plan_id"], j
    assert _queue_status(engine, jid) == "succeeded"
