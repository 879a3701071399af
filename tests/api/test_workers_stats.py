"""Workers (positions, latest, tracks, flags) and stats (KPIs, heatmap, trend) against known events."""

from __future__ import annotations

import h3
import pytest
from sqlalchemy import text

from geo.crs import wgs84_to_gcj02
from tests.api.conftest import COMM_A, centre, token


def test_positions_idempotent_gcj02_and_outside_flag(client, world, engine):
    h = token(client, "worker")
    wid = world["worker_a"]  # serves grid 001 only
    in_own = centre(COMM_A, 1)
    elsewhere = centre(COMM_A, 2)
    g = wgs84_to_gcj02(*elsewhere)
    fixes = [{"ts": "2026-11-26T08:00:00+08:00", "lon": in_own[0], "lat": in_own[1], "accuracy_m": 5},
             {"ts": "2026-11-26T08:05:00+08:00", "lon": float(g[0]), "lat": float(g[1])}]
    r = client.post(f"/v1/workers/{wid}/positions", json={"fixes": fixes[:1]}, headers=h)
    assert r.json() == {"received": 1, "inserted": 1, "duplicates": 0, "outside_own_grids": 0,
                        "latest": {"ts": "2026-11-26T00:00:00+00:00", "grid_code": f"{COMM_A}001"}}
    r = client.post(f"/v1/workers/{wid}/positions", json={"crs": "gcj02", "fixes": fixes[:1] + [
        {**fixes[1]}]}, headers=h)
    # first fix re-sent: not stored twice; second given in GCJ-02 and outside the worker's grid
    b = r.json()
    assert (b["inserted"], b["duplicates"], b["outside_own_grids"]) == (1, 1, 1)
    with engine.connect() as c:
        rows = c.execute(text("SELECT grid_code, outside_own_grids, ST_X(geom) FROM worker_positions "
                              "WHERE worker_id = :w ORDER BY ts"), {"w": wid}).all()
    assert [(r[0], r[1]) for r in rows] == [(f"{COMM_A}001", False), (f"{COMM_A}002", True)]
    assert rows[1][2] == pytest.approx(elsewhere[0], abs=1e-7)
    # someone else's positions: refused
    assert client.post(f"/v1/workers/{world['chief_a']}/positions", json={"fixes": fixes[:1]},
                       headers=h).status_code == 403
    track = client.get(f"/v1/workers/{wid}/track", params={"day": "2026-11-26"}, headers=h).json()
    assert len(track["fixes"]) == 2 and track["geometry"]["type"] == "LineString"


def test_latest_positions_and_nearest_workers(client, world):
    from datetime import datetime, timedelta, timezone

    d = token(client, "dispatcher")
    now = datetime.now(timezone.utc)
    lon, lat = centre(COMM_A, 1)
    for wid, dx in ((world["chief_a"], 0.01), (world["worker_a"], 0.001)):
        for k in range(3):
            ts = (now - timedelta(minutes=10 - k)).isoformat()
            assert client.post(f"/v1/workers/{wid}/positions",
                               json={"fixes": [{"ts": ts, "lon": lon + dx + k * 1e-4, "lat": lat}]},
                               headers=d).status_code == 200
    latest = client.get("/v1/workers/positions/latest", headers=d).json()
    assert {p["id"] for p in latest} == {world["chief_a"], world["worker_a"]}
    assert all(p["lon"] == pytest.approx(lon + (0.01 if p["id"] == world["chief_a"] else 0.001) + 2e-4)
               for p in latest)
    near = client.get(f"/v1/grids/{COMM_A}001/workers", params={"lon": lon, "lat": lat}, headers=d).json()
    assert [w["id"] for w in near] == [world["worker_a"], world["chief_a"], world["offduty_a"]]
    assert near[0]["distance_m"] < near[1]["distance_m"] and near[2]["distance_m"] is None


def _mk(client, h, k, **kw):
    lon, lat = centre(COMM_A, k)
    body = {"category": "incident", "subtype": "garbage", "source": "patrol", "lon": lon, "lat": lat, **kw}
    r = client.post("/v1/events", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_kpis_heatmap_trend_on_known_events(client, world, engine):
    d = token(client, "dispatcher")
    e = [_mk(client, d, k) for k in (1, 1, 2, 3, 4)]  # 5 events in 4 grids of 32

    def mv(i, to, **kw):
        r = client.post(f"/v1/events/{i}/transitions", json={"to": to, **kw}, headers=d)
        assert r.status_code == 200, r.text

    for i in e[:3]:
        mv(i, "accepted")
        mv(i, "dispatched", assignee_worker_id=world["worker_a"])
    mv(e[0], "in_progress"), mv(e[0], "resolved"), mv(e[0], "closed", satisfaction=5)
    mv(e[1], "in_progress"), mv(e[1], "resolved"), mv(e[1], "closed", satisfaction=3)
    mv(e[4], "rejected", reason="重复上报")
    with engine.begin() as c:  # e[1] was resolved after its deadline; e[3] is overdue and open
        c.execute(text("UPDATE events SET due_at = resolved_at - interval '1 minute' WHERE id = :i"), {"i": e[1]})
        c.execute(text("UPDATE events SET due_at = now() - interval '1 minute' WHERE id = :i"), {"i": e[3]})
    k = client.get("/v1/stats/kpis", headers=token(client, "leader")).json()
    assert k["events"] == 5 and k["events_today"] == 5
    assert k["dispatch_rate"] == 0.75  # 3 of the 4 not rejected
    assert k["resolution_rate"] == 0.5  # 2 of 4
    assert k["on_time_rate"] == 0.5  # e[0] on time, e[1] late
    assert k["satisfaction"] == 4.0 and k["satisfied_share"] == 0.5
    assert k["overdue"] == 1
    assert k["grids_with_reports"] == 4 and k["grids_total"] == 16  # the leader sees community A's 16 grids
    assert k["report_coverage"] == 0.25
    assert k["workers_on_duty"] == 2
    per_grid = client.get("/v1/stats/kpis", params={"by": "grid"}, headers=d).json()["groups"]
    assert per_grid[0] == {**per_grid[0], "grid_code": f"{COMM_A}001", "events": 2}
    hm = client.get("/v1/stats/heatmap", params={"res": 8}, headers=d).json()
    assert hm["total"] == 5
    expect = {}
    for kk in (1, 1, 2, 3, 4):
        lon, lat = centre(COMM_A, kk)
        c = h3.latlng_to_cell(lat, lon, 8)
        expect[c] = expect.get(c, 0) + 1
    assert {c["cell"]: c["count"] for c in hm["cells"]} == expect
    tr = client.get("/v1/stats/trend", params={"days": 3}, headers=d).json()
    assert [t["created"] for t in tr] == [0, 0, 5] and tr[-1]["resolved"] == 2
    top = client.get("/v1/stats/top-grids", params={"n": 2}, headers=d).json()
    assert top[0]["grid_code"] == f"{COMM_A}001" and top[0]["events"] == 2 and top[0]["open"] == 0
    assert client.get("/v1/stats/open-by-grid", headers=d).json() == {f"{COMM_A}002": 1, f"{COMM_A}003": 1}


def test_grids_geojson_tiles_and_diff(client, world, engine):
    h = token(client, "leader")
    fc = client.get("/v1/grids", params={"bbox": "114.19,30.49,114.26,30.56", "zoom": 12}, headers=h).json()
    assert fc["type"] == "FeatureCollection"
    assert {f["properties"]["code"] for f in fc["features"]} == {f"{COMM_A}00{i}" for i in (1, 2, 3, 5, 6, 7)}
    assert client.get("/v1/grids", params={"bbox": "1,2,3"}, headers=h).status_code == 422
    t = client.get("/v1/tiles/12/3395/1684.mvt", headers=h)
    assert t.status_code == 200 and t.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert client.get("/v1/tiles/2/9/0.mvt", headers=h).status_code == 422
    # diff of the plan with itself: nothing changes
    same = client.get(f"/v1/plans/{world['plan']}/diff/{world['plan']}", headers=token(client, "admin")).json()
    assert same["added"] == same["removed"] == same["changed"] == [] and same["unchanged"] == 32
