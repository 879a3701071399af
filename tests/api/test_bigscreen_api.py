"""Big-screen API: KPIs with filters and 考评 definitions, ranking, emergency mode, patrol coverage, feed,
grid panel, basemap tiles, kiosk tokens — each with its scope rule."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString
from sqlalchemy import text

from tests.api.conftest import COMM_A, COMM_B, DX, DY, X0, Y0, centre, token


def _event(client, h, comm, k, **kw):
    lon, lat = centre(comm, k)
    body = {"category": "incident", "subtype": "garbage", "source": "patrol", "lon": lon, "lat": lat, **kw}
    r = client.post("/v1/events", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _move(client, h, eid, *steps):
    for s in steps:
        body = s if isinstance(s, dict) else {"to": s}
        r = client.post(f"/v1/events/{eid}/transitions", json=body, headers=h)
        assert r.status_code == 200, r.text


def test_kpis_follow_filters_and_define_rates_over_due(client, world, engine):
    hd, ha = token(client, "dispatcher"), token(client, "admin")
    hb = token(client, "dispatcher_b")
    closed_on_time = _event(client, hd, COMM_A, 1)
    closed_late = _event(client, hd, COMM_A, 2)
    open_overdue = _event(client, hd, COMM_A, 3)
    open_not_due = _event(client, hd, COMM_A, 4, subtype="noise")
    returned = _event(client, hd, COMM_A, 5, category="component", subtype="street_light")
    b_event = _event(client, hb, COMM_B, 1)
    w = world["worker_a"]
    for e in (closed_on_time, closed_late):
        _move(client, hd, e, "accepted", {"to": "dispatched", "assignee_worker_id": w}, "in_progress", "resolved",
              {"to": "closed", "satisfaction": 5 if e == closed_on_time else 2})
    _move(client, hd, open_overdue, "accepted")
    _move(client, hd, open_not_due, "accepted")
    _move(client, hd, returned, "accepted", {"to": "dispatched", "assignee_worker_id": w},
          {"to": "returned", "reason": "不属于本网格"})
    _move(client, hb, b_event, "accepted")
    with engine.begin() as c:
        c.execute(text("UPDATE events SET due_at = closed_at - interval '1 minute' WHERE id = :i"), {"i": closed_late})
        c.execute(text("UPDATE events SET due_at = now() - interval '1 hour' WHERE id = ANY(:i)"),
                  {"i": [open_overdue, b_event]})
        c.execute(text("UPDATE events SET due_at = now() + interval '2 days' WHERE id = ANY(:i)"),
                  {"i": [closed_on_time, open_not_due, returned]})
    k = client.get("/v1/stats/kpis", headers=hd).json()
    ev = k["evaluation"]
    # 应结案 = 2 closed + 1 overdue open (not the one still within its limit, not B's)
    assert (ev["due"], ev["closed"], ev["closed_on_time"]) == (3, 2, 1)
    assert ev["closing_rate"] == round(2 / 3, 4) and ev["on_time_closing_rate"] == round(1 / 3, 4)
    assert ev["dispatch_accuracy"] == round(2 / 3, 4)  # 3 dispatched, one returned
    assert ev["satisfaction_rate"] == 0.5 and ev["rework_rate"] == 0.0
    assert k["counts"] == {"reported": 2, "in_progress": 1, "resolved": 0, "closed": 2}
    assert k["grids"]["total"] == 16 and k["grids"]["comprehensive"] == 16 and k["grids"]["exclusive"] == 0
    assert k["workers"] == {"online": 2, "total": 3}
    # the category filter changes the numbers
    kc = client.get("/v1/stats/kpis", params={"category": "component"}, headers=hd).json()
    assert kc["events"] == 1 and kc["evaluation"]["due"] == 0 and kc["counts"]["in_progress"] == 1
    ks = client.get("/v1/stats/kpis", params={"subtype": "noise"}, headers=hd).json()
    assert ks["events"] == 1
    # a window before today has nothing
    old = client.get("/v1/stats/kpis", params={"from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z"},
                     headers=hd).json()
    assert old["events"] == 0 and old["evaluation"]["closing_rate"] is None
    # the district sees both communities; trend follows the sub-type filter
    assert client.get("/v1/stats/kpis", headers=ha).json()["events"] == 6
    tr = client.get("/v1/stats/trend", params={"days": 2, "subtype": "noise"}, headers=hd).json()
    assert sum(d["created"] for d in tr) == 1

    # ranking by community (admin) and by worker; a bad month names the field in Chinese
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    rk = client.get("/v1/stats/ranking", params={"by": "community", "month": month}, headers=ha).json()
    names = [i["name"] for i in rk["items"]]
    assert set(names) == {"桂园社区", "李家村"} and [i["rank"] for i in rk["items"]] == [1, 2]
    a = next(i for i in rk["items"] if i["code"] == COMM_A)
    assert a["due"] == 3 and a["score"] == round(60 * (1 / 3) + 20 + 20 * 0.5, 2)
    rw = client.get("/v1/stats/ranking", params={"by": "worker"}, headers=hd).json()
    assert [i["name"] for i in rw["items"]] == ["李网格员"]
    r = client.get("/v1/stats/ranking", params={"month": "2026-13"}, headers=hd)
    assert r.status_code == 422 and r.json()["details"][0]["label"] == "月份"
    # a sibling's ranking only has its own community
    rb = client.get("/v1/stats/ranking", params={"by": "community"}, headers=hb).json()
    assert [i["code"] for i in rb["items"]] == [COMM_B]


def _part_time(engine, grid, name="孙下沉"):
    with engine.begin() as c:
        wid = c.execute(text("""
            INSERT INTO workers (name, role, jurisdiction_id, on_duty, created_by)
            VALUES (:n, 'part_time', (SELECT id FROM jurisdictions WHERE code = :c), false, 'test') RETURNING id
        """), {"n": name, "c": grid[:12]}).scalar_one()
        c.execute(text("INSERT INTO worker_grids VALUES (:w, :g)"), {"w": wid, "g": grid})
    return wid


def test_emergency_mode_mobilises_and_dispatch_prefers(client, world, engine):
    pt = _part_time(engine, f"{COMM_A}001")
    pt_b = _part_time(engine, f"{COMM_B}001", "钱下沉")
    hl, hd, hw = token(client, "leader"), token(client, "dispatcher"), token(client, "worker")
    assert client.post("/v1/emergency", json={"active": True, "reason": "x"}, headers=hw).status_code == 403
    r = client.post("/v1/emergency", json={"active": True}, headers=hl)
    assert r.status_code == 422 and r.json()["details"][0]["label"] == "原因"
    r = client.post("/v1/emergency", json={"active": True, "reason": "暴雨红色预警"}, headers=hl)
    assert r.status_code == 200 and r.json()["active"] and r.json()["mobilised"] == 1
    assert client.post("/v1/emergency", json={"active": True, "reason": "again"}, headers=hl).status_code == 409
    assert client.get("/v1/emergency", headers=hd).json()["reason"] == "暴雨红色预警"
    assert client.get("/v1/emergency", headers=token(client, "dispatcher_b")).json() == {"active": False}
    grids = client.get("/v1/emergency/grids", headers=hd).json()
    assert grids["active"] and grids["grids"] == [{"grid_code": f"{COMM_A}001", "assigned": 1, "mobilised": 1,
                                                   "grid_name": "桂园社区第1网格"}]
    with engine.connect() as c:
        assert c.execute(text("SELECT on_duty FROM workers WHERE id = :w"), {"w": pt_b}).scalar() is False
    ws = client.get(f"/v1/grids/{COMM_A}001/workers", headers=hd).json()
    assert ws[0]["id"] == pt and ws[0]["mobilised"] is True
    eid = _event(client, hd, COMM_A, 1)
    sg = client.get(f"/v1/events/{eid}/suggestions", headers=hd).json()
    assert sg["emergency"] and sg["items"][0]["worker_id"] == pt and "下沉" in sg["items"][0]["reason"]
    assert client.get(f"/v1/events/{eid}/suggestions", headers=token(client, "dispatcher_b")).status_code == 404
    r = client.post("/v1/emergency", json={"active": False}, headers=hl)
    assert r.status_code == 200 and r.json() == {"active": False}
    ws = client.get(f"/v1/grids/{COMM_A}001/workers", headers=hd).json()
    assert ws[-1]["id"] == pt and not ws[-1]["on_duty"]  # stood down again
    with engine.connect() as c:
        acts = c.execute(text("SELECT action, outcome FROM audit_log WHERE action LIKE 'emergency.%' ORDER BY id")).all()
    assert [tuple(a) for a in acts] == [("emergency.switch", "denied"), ("emergency.on", "ok"), ("emergency.off", "ok")]


def _utm(lon, lat):
    zone = int((lon + 180) // 6) + 1
    return Transformer.from_crs(4326, 32600 + zone, always_xy=True)


@pytest.mark.parametrize("seed", [1, 2])
def test_patrol_coverage_matches_an_independent_computation(client, world, engine, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    g1 = f"{COMM_A}001"
    # two streets across grid 1 (one sticks out into grid 2), and a worker who walks part of one today
    x0, y0 = X0, Y0
    s1 = LineString([(x0 + 0.002, y0 + 0.01), (x0 + DX + 0.01, y0 + 0.01)])
    s2 = LineString([(x0 + 0.01, y0 + 0.002), (x0 + 0.01, y0 + DY - 0.002)])
    with engine.begin() as c:
        lid = c.execute(text("INSERT INTO loads (kind, dataset, source, rows_read, rows_loaded, created_by) "
                             "VALUES ('streets', 's', 't', 2, 2, 't') RETURNING id")).scalar_one()
        for i, s in enumerate((s1, s2)):
            c.execute(text("INSERT INTO streets (dataset, source_id, name, klass, geom, load_id) VALUES "
                           "('s', :i, :n, 'residential', ST_Multi(ST_GeomFromText(:g, 4326)), :l)"),
                      {"i": str(i), "n": f"路{i}", "g": s.wkt, "l": lid})
    frac = rng.uniform(0.3, 0.7)
    n = 20
    walk = [(x0 + 0.002 + (DX - 0.002) * frac * t / (n - 1), y0 + 0.01 + rng.normal(0, 0.00005)) for t in range(n)]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    gap = 400  # seconds: more than the 5-minute GPS gap that is not drawn as a walked line
    day0 = datetime.now(ZoneInfo("Asia/Shanghai")).replace(hour=0, minute=1, second=0,
                                                            microsecond=0).astimezone(timezone.utc)
    # every fix today (GEO_TZ) and none in the future (the API refuses fixes more than 5 minutes ahead)
    step = 30.0
    start = now - timedelta(seconds=step * n + gap + 60)
    if start < day0:
        start, step = day0, max(1.0, ((now - day0).total_seconds() - gap - 60) / n)
    fixes = [{"ts": (start + timedelta(seconds=step * i)).isoformat(), "lon": x, "lat": y} for i, (x, y) in enumerate(walk)]
    # a jump after a GPS gap must not cover the street in between
    fixes.append({"ts": (start + timedelta(seconds=step * n + gap)).isoformat(), "lon": x0 + DX - 0.001, "lat": y0 + 0.01})
    hw = token(client, "worker")
    r = client.post(f"/v1/workers/{world['worker_a']}/positions", json={"fixes": fixes}, headers=hw)
    assert r.status_code in (200, 201), r.text
    # independent: the same rule in shapely, in UTM
    tr = _utm(x0, y0)
    grid = shapely.box(x0, y0, x0 + DX, y0 + DY)

    def proj(geom):
        return shapely.ops.transform(tr.transform, geom)

    streets = proj(shapely.union_all([s1.intersection(grid), s2.intersection(grid)]))
    pts = [(f["lon"], f["lat"]) for f in fixes]
    parts = [LineString(pts[:n])] + [shapely.Point(pts[-1])]
    cover = shapely.union_all([proj(g).buffer(30, 4) for g in parts])
    expected = streets.intersection(cover).length / streets.length
    hd = token(client, "dispatcher")
    got = client.get("/v1/stats/patrol-coverage", params={"grid": g1}, headers=hd).json()["items"][0]
    assert got["workers"] == 1 and got["street_m"] == pytest.approx(streets.length, rel=1e-3)
    assert got["coverage"] == pytest.approx(expected, abs=0.01) and 0.05 < got["coverage"] < 0.9
    allg = client.get("/v1/stats/patrol-coverage", headers=hd).json()["items"]
    assert len(allg) == 16 and next(i for i in allg if i["grid_code"] == f"{COMM_A}016")["coverage"] is None
    # the panel shows the same figure; a sibling gets 404
    panel = client.get(f"/v1/grids/{g1}/panel", headers=hd).json()
    assert panel["patrol_coverage_today"] == got["coverage"] and panel["population"] == 1500
    assert panel["staff"] == {"total": 3, "on_duty": 2, "chief": "王网格长", "part_time": 0}
    assert client.get(f"/v1/grids/{g1}/panel", headers=token(client, "dispatcher_b")).status_code == 404
    assert client.get("/v1/stats/patrol-coverage", params={"grid": g1},
                      headers=token(client, "dispatcher_b")).status_code == 404
    assert client.get("/v1/grids/999999999999999/panel", headers=hd).status_code == 404
    # basemap tile over the street: the three layers are there for A, the street is not in B's tile
    import math

    z = 14
    xt = int((x0 + 0.01 + 180) / 360 * 2 ** z)
    yt = int((1 - math.asinh(math.tan(math.radians(y0 + 0.01))) / math.pi) / 2 * 2 ** z)
    tile = client.get(f"/v1/tiles/basemap/{z}/{xt}/{yt}.mvt", headers=hd)
    assert tile.status_code == 200 and b"streets" in tile.content and "路0".encode() in tile.content
    assert b"communities" in tile.content and "桂园社区".encode() in tile.content
    tb = client.get(f"/v1/tiles/basemap/{z}/{xt}/{yt}.mvt", headers=token(client, "dispatcher_b")).content
    assert "路0".encode() not in tb and "桂园社区".encode() not in tb
    assert client.get("/v1/tiles/basemap/2/9/0.mvt", headers=hd).status_code == 422


def test_feed_new_urgent_and_overdue(client, world, engine):
    hd = token(client, "dispatcher")
    since = (datetime.now(timezone.utc) - timedelta(seconds=5)).isoformat()
    e1 = _event(client, hd, COMM_A, 1)
    e2 = _event(client, hd, COMM_A, 2, category="incident", subtype="fire")
    with engine.begin() as c:
        c.execute(text("UPDATE events SET due_at = now() - interval '1 second' WHERE id = :i"), {"i": e1})
    items = client.get("/v1/feed", params={"since": since}, headers=hd).json()["items"]
    kinds = {(i["event_id"], i["kind"]) for i in items}
    assert {(e1, "new"), (e2, "urgent"), (e1, "overdue")} <= kinds
    assert any("火情" in i["title"] for i in items if i["event_id"] == e2)
    assert client.get("/v1/feed", params={"since": since}, headers=token(client, "dispatcher_b")).json()["items"] == []


def test_kiosk_token_is_read_only_and_revocable(client, world, engine):
    hl = token(client, "leader")
    assert client.post("/v1/kiosk-tokens", json={"name": "大屏1"}, headers=token(client, "dispatcher")).status_code == 403
    r = client.post("/v1/kiosk-tokens", json={"name": "大屏1"}, headers=hl)
    assert r.status_code == 201, r.text
    tok, tid = r.json()["token"], r.json()["id"]
    kh = {"X-API-Key": tok}
    assert client.get("/v1/stats/kpis", headers=kh).status_code == 200
    lon, lat = centre(COMM_A, 1)
    assert client.post("/v1/events", json={"category": "incident", "subtype": "garbage", "source": "patrol",
                                           "lon": lon, "lat": lat}, headers=kh).status_code == 403
    assert [t["name"] for t in client.get("/v1/kiosk-tokens", headers=hl).json()] == ["大屏1"]
    assert "token" not in client.get("/v1/kiosk-tokens", headers=hl).json()[0]
    # another community's leader cannot see or revoke it
    from geo.db.users import add_user
    from tests.api.conftest import PASSWORD

    add_user(engine, "leader_b", PASSWORD, "leader", COMM_B, actor="test")
    hlb = token(client, "leader_b")
    assert client.get("/v1/kiosk-tokens", headers=hlb).json() == []
    assert client.delete(f"/v1/kiosk-tokens/{tid}", headers=hlb).status_code == 404
    assert client.delete(f"/v1/kiosk-tokens/{tid}", headers=hl).status_code == 200
    assert client.get("/v1/stats/kpis", headers=kh).status_code == 401


def test_grid_outlines_simplified_as_one_coverage_have_no_gaps_or_overlaps(client, world):
    ha = token(client, "admin")
    for zoom in (8, 11, 14, None):
        params = {"zoom": zoom} if zoom is not None else {}
        fc = client.get("/v1/grids", params=params, headers=ha).json()
        geoms = [shapely.geometry.shape(f["geometry"]) for f in fc["features"]]
        assert len(geoms) == 32
        union = shapely.union_all(geoms)
        assert sum(g.area for g in geoms) == pytest.approx(union.area, rel=1e-9)  # no overlaps
        assert union.area == pytest.approx(shapely.box(X0, Y0, X0 + 0.2, Y0 + 0.2).area, rel=1e-6)  # no gaps
    one = client.get("/v1/grids", params={"zoom": 12, "bbox": f"{X0},{Y0},{X0 + 0.01},{Y0 + 0.01}"}, headers=ha).json()
    assert [f["id"] for f in one["features"]] == [f"{COMM_A}001"]


def test_patrol_coverage_cache_recomputes_only_the_grids_whose_fixes_changed(client, world, engine):
    """The API keeps each grid's coverage with a fingerprint of its inputs: a repeat costs no recomputation, a
    new fix recomputes its grid only, and the answers equal a fresh computation every time."""
    from geo.api.services import patrol

    street = LineString([(X0 + 0.001, Y0 + 0.02), (X0 + DX - 0.001, Y0 + 0.021)])
    with engine.begin() as c:
        lid = c.execute(text("INSERT INTO loads (kind, dataset, source, rows_read, rows_loaded, created_by) "
                             "VALUES ('streets', 's', 't', 1, 1, 't') RETURNING id")).scalar_one()
        c.execute(text("INSERT INTO streets (dataset, source_id, name, geom, load_id) VALUES "
                       "('s', '1', '缓存路', ST_Multi(ST_GeomFromText(:g, 4326)), :l)"), {"g": street.wkt, "l": lid})
    cache = client.app.state.geo.patrol
    hd = token(client, "dispatcher")

    def fresh():
        with engine.connect() as c:
            plans = c.execute(text("SELECT id FROM grid_plans WHERE status = 'published'")).scalars().all()
            codes = [i["grid_code"] for i in client.get("/v1/stats/patrol-coverage", headers=hd).json()["items"]]
            return patrol.coverage(c, plan_ids=plans, codes=codes, day=datetime.now(ZoneInfo("Asia/Shanghai")).date(),
                                   tz="Asia/Shanghai")

    first = client.get("/v1/stats/patrol-coverage", headers=hd).json()["items"]
    n0 = cache.computed
    assert n0 == len(first) == 16  # the dispatcher's community: its 16 grids, computed once
    assert client.get("/v1/stats/patrol-coverage", headers=hd).json()["items"] == first == fresh()
    assert cache.computed == n0  # nothing changed: nothing recomputed
    g1 = next(i for i in first if i["grid_code"] == f"{COMM_A}001")
    assert g1["covered_m"] == 0
    # the worker of grid 001 walks the street: that grid, and only it, is computed again, and shows the walk
    now = datetime.now(timezone.utc).replace(microsecond=0)
    fixes = [{"ts": (now - timedelta(seconds=60 - 10 * i)).isoformat(), "lon": X0 + 0.002 + 0.001 * i,
              "lat": Y0 + 0.0201} for i in range(5)]
    r = client.post(f"/v1/workers/{world['worker_a']}/positions", json={"fixes": fixes}, headers=token(client, "worker"))
    assert r.status_code in (200, 201), r.text
    after = client.get("/v1/stats/patrol-coverage", headers=hd).json()["items"]
    assert after == fresh()
    assert cache.computed == n0 + 1
    assert next(i for i in after if i["grid_code"] == f"{COMM_A}001")["covered_m"] > 0


def test_demo_seed_walks_streets_so_replay_and_coverage_have_data(client, world, engine):
    from geo.db.seed import seed_workers

    street = LineString([(X0 + 0.001, Y0 + 0.02), (X0 + DX - 0.001, Y0 + 0.021)])
    with engine.begin() as c:
        lid = c.execute(text("INSERT INTO loads (kind, dataset, source, rows_read, rows_loaded, created_by) "
                             "VALUES ('streets', 's', 't', 1, 1, 't') RETURNING id")).scalar_one()
        c.execute(text("INSERT INTO streets (dataset, source_id, name, geom, load_id) VALUES "
                       "('s', '1', 'demo路', ST_Multi(ST_GeomFromText(:g, 4326)), :l)"), {"g": street.wkt, "l": lid})
    seed_workers(engine, [world["plan"]], seed=3)
    hd = token(client, "admin")
    cov = client.get("/v1/stats/patrol-coverage", params={"grid": f"{COMM_A}001"}, headers=hd).json()["items"][0]
    assert cov["workers"] >= 1 and 0.2 < cov["coverage"] <= 1.0
    with engine.connect() as c:
        wid = c.execute(text("SELECT wp.worker_id FROM worker_positions wp JOIN workers w ON w.id = wp.worker_id "
                             "WHERE w.synthetic GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")).scalar_one()
    track = client.get(f"/v1/workers/{wid}/track", headers=hd).json()
    pts = track["fixes"] if isinstance(track, dict) else track
    assert len(pts) > 50


def test_out_of_range_dates_are_4xx_with_chinese_labels(client, world):
    hd = token(client, "dispatcher")
    cases = [("/v1/stats/patrol-coverage", {"day": "9999-12-31"}, "日期"),
             (f"/v1/workers/{world['worker_a']}/track", {"day": "9999-12-31"}, "日期"),
             ("/v1/stats/ranking", {"month": "9999-12"}, "月份"),
             ("/v1/feed", {"since": "0001-01-01T00:00:00Z"}, "起始时间"),
             ("/v1/calendar", {"from": "0001-01-01", "to": "0001-02-01"}, "开始时间")]
    for path, params, label in cases:
        r = client.get(path, params=params, headers=hd)
        assert r.status_code == 422 and r.json()["details"][0]["label"] == label, (path, r.text)
    lon, lat = centre(COMM_A, 1)
    r = client.post("/v1/work-orders", headers={"X-API-Key": world["hotline_key"]}, json={
        "order_no": "OLD-1", "called_at": "0001-01-01T00:00:00+08:00", "appeal_type": "咨询", "category": "incident",
        "subtype": "garbage", "content": "x", "lon": lon, "lat": lat})
    assert r.status_code == 422 and r.json()["details"][0]["label"] == "来电时间"
