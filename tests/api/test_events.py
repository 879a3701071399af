"""Events: routing, idempotency, duplicates, the state machine, SLA/overdue, masking, Open311."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from tests.api.conftest import COMM_A, COMM_B, centre, token


def _event(lon, lat, **kw):
    return {"category": "incident", "subtype": "garbage", "source": "worker_app", "lon": lon, "lat": lat,
            "description": "垃圾堆放", "reporter_name": "张三丰", "reporter_phone": "13912345678", **kw}


def test_create_routes_to_grid_department_and_sla(client, engine):
    h = token(client, "dispatcher")
    lon, lat = centre(COMM_A, 7)
    r = client.post("/v1/events", json=_event(lon, lat), headers=h)
    assert r.status_code == 201, r.text
    e = r.json()
    assert e["grid_code"] == f"{COMM_A}007" and e["department"] == "环卫所" and e["priority"] == "routine"
    assert e["state"] == "reported" and e["reporter_phone"] == "13912345678"
    from datetime import datetime

    from geo.api.services.workcal import DayInfo, WorkCalendar
    from geo.db.workcal import calendar_rows

    # 垃圾乱堆乱放: 4 working hours on the city calendar (not 4 clock hours, not the old 72 h)
    cal = WorkCalendar({r["day"]: DayInfo(**r) for r in calendar_rows()}, [("09:00", "12:00"), ("13:30", "17:30")],
                       "Asia/Shanghai")
    created, due = datetime.fromisoformat(e["created_at"]), datetime.fromisoformat(e["due_at"])
    assert abs(cal.working_seconds(created, due) - 4 * 3600) < 1 and due > created
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM audit_log WHERE action='event.create' AND outcome='ok'")).scalar() == 1
        assert c.execute(text("SELECT to_state FROM event_transitions WHERE event_id=:e"), {"e": e["id"]}).scalar() == "reported"


def test_unknown_subtype_and_outside_location_are_422(client):
    h = token(client, "dispatcher")
    lon, lat = centre(COMM_A, 1)
    r = client.post("/v1/events", json=_event(lon, lat, subtype="ufo"), headers=h)
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "subtype"
    r = client.post("/v1/events", json=_event(100.0, 20.0), headers=h)
    assert r.status_code == 422 and r.json()["error"] == "outside_all_grids" and "nearest grid" in r.json()["message"]
    r = client.post("/v1/events", json=_event(lon, lat, reporter_phone="call me"), headers=h)
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "reporter_phone"
    r = client.post("/v1/events", content=b"{", headers=h | {"Content-Type": "application/json"})
    assert r.status_code == 422


def test_idempotency_key_under_concurrent_retries(client, engine):
    h = token(client, "dispatcher")
    lon, lat = centre(COMM_A, 2)
    body = _event(lon, lat, subtype="noise", category="incident")

    def post(_):
        return client.post("/v1/events", json=body, headers=h | {"Idempotency-Key": "hotline-20261126-0001"})

    with ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(post, range(24)))
    assert {r.status_code for r in rs} <= {200, 201}
    assert sum(r.status_code == 201 for r in rs) == 1
    assert len({r.json()["id"] for r in rs}) == 1
    assert all(r.headers.get("Idempotent-Replayed") == "true" for r in rs if r.status_code == 200)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM events")).scalar() == 1
    other = client.post("/v1/events", json=body | {"description": "different"},
                        headers=h | {"Idempotency-Key": "hotline-20261126-0001"})
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"


def test_possible_duplicates_are_linked(client):
    h = token(client, "dispatcher")
    lon, lat = centre(COMM_A, 5)
    first = client.post("/v1/events", json=_event(lon, lat), headers=h).json()
    near = client.post("/v1/events", json=_event(lon + 0.0003, lat), headers=h).json()  # ~29 m east
    far = client.post("/v1/events", json=_event(lon + 0.001, lat), headers=h).json()  # ~96 m
    other_cat = client.post("/v1/events", json=_event(lon, lat, category="component", subtype="street_light"),
                            headers=h).json()
    assert first["duplicate_of"] == [] and near["duplicate_of"] == [first["id"]]
    assert far["duplicate_of"] == [] and other_cat["duplicate_of"] == []
    detail = client.get(f"/v1/events/{near['id']}", headers=h).json()
    assert [d["id"] for d in detail["possible_duplicates"]] == [first["id"]]


def test_closed_loop_with_worker_and_invalid_transitions(client, world, engine):
    d = token(client, "dispatcher")
    w = token(client, "worker")
    lon, lat = centre(COMM_A, 1)
    e = client.post("/v1/events", json=_event(lon, lat), headers=d).json()
    eid = e["id"]

    def move(h, to, **kw):
        return client.post(f"/v1/events/{eid}/transitions", json={"to": to, **kw}, headers=h)

    r = move(d, "resolved")
    assert r.status_code == 409 and r.json()["allowed"] == ["accepted", "rejected"]
    assert move(w, "accepted").status_code == 403  # workers do not accept
    assert move(d, "accepted").status_code == 200
    assert move(d, "dispatched", assignee_worker_id=world["offduty_a"]).status_code == 200
    assert move(w, "in_progress").status_code == 403  # not assigned to this worker
    assert move(d, "returned").status_code == 422  # reason needed
    assert move(d, "returned", reason="派错人").status_code == 200
    assert move(d, "dispatched", assignee_worker_id=world["worker_a"]).status_code == 200
    assert move(w, "in_progress", note="到场").status_code == 200
    assert move(w, "resolved").status_code == 200
    assert move(d, "in_progress", reason="复核未清理干净").status_code == 200  # 督办: back to work
    assert move(w, "resolved").status_code == 200
    assert move(d, "closed", satisfaction=9).status_code == 422
    r = move(d, "closed", satisfaction=5)
    assert r.status_code == 200 and r.json()["state"] == "closed" and r.json()["satisfaction"] == 5
    assert move(d, "in_progress", reason="x").status_code == 409
    log = client.get(f"/v1/events/{eid}", headers=d).json()["transitions"]
    assert [t["to_state"] for t in log] == ["reported", "accepted", "dispatched", "returned", "dispatched",
                                             "in_progress", "resolved", "in_progress", "resolved", "closed"]
    assert log[3]["note"] == "派错人" and log[5]["actor"] == "user:worker"
    with engine.connect() as c:
        denied = c.execute(text("SELECT count(*) FROM audit_log WHERE outcome='denied' AND entity='events'")).scalar()
    assert denied == 2


def test_overdue_filter(client, engine):
    h = token(client, "dispatcher")
    lon, lat = centre(COMM_A, 9)
    late = client.post("/v1/events", json=_event(lon, lat, subtype="fire", category="incident"), headers=h).json()
    ok = client.post("/v1/events", json=_event(lon, lat + 0.01), headers=h).json()
    with engine.begin() as c:
        c.execute(text("UPDATE events SET due_at = now() - interval '1 hour' WHERE id = :i"), {"i": late["id"]})
    ids = [e["id"] for e in client.get("/v1/events", params={"overdue": "true"}, headers=h).json()["items"]]
    assert ids == [late["id"]]
    ids = [e["id"] for e in client.get("/v1/events", params={"overdue": "false"}, headers=h).json()["items"]]
    assert ids == [ok["id"]]
    assert late["priority"] == "urgent"


def test_personal_data_is_masked_for_roles_that_do_not_need_it(client):
    lon, lat = centre(COMM_A, 3)
    eid = client.post("/v1/events", json=_event(lon, lat), headers=token(client, "dispatcher")).json()["id"]
    seen = {}
    for user in ("admin", "dispatcher", "planner", "worker", "leader"):
        e = client.get(f"/v1/events/{eid}", headers=token(client, user)).json()
        seen[user] = (e["reporter_name"], e["reporter_phone"])
    assert seen["admin"] == seen["dispatcher"] == ("张三丰", "13912345678")
    for user in ("planner", "worker", "leader"):
        assert seen[user] == ("张**", "139****5678")


def test_anonymous_reporter_is_not_stored(client, engine):
    lon, lat = centre(COMM_A, 4)
    e = client.post("/v1/events", json=_event(lon, lat, anonymous=True), headers=token(client, "dispatcher")).json()
    with engine.connect() as c:
        row = c.execute(text("SELECT reporter_name, reporter_phone FROM events WHERE id=:i"), {"i": e["id"]}).one()
    assert tuple(row) == (None, None)


def test_open311_services_submit_and_read(client, world):
    s = client.get("/open311/v2/services.json").json()
    assert {"service_code": "incident.garbage", "group": "事件"}.items() <= next(
        x for x in s if x["service_code"] == "incident.garbage").items()
    lon, lat = centre(COMM_B, 2)
    r = client.post("/open311/v2/requests.json", data={
        "api_key": world["hotline_key"], "service_code": "component.manhole_cover", "lat": lat, "long": lon,
        "description": "井盖缺失", "first_name": "李", "last_name": "四", "phone": "13700001111"})
    assert r.status_code == 200, r.text
    rid = r.json()[0]["service_request_id"]
    got = client.get(f"/open311/v2/requests/{rid}.json", params={"api_key": world["hotline_key"]}).json()[0]
    assert got["service_code"] == "component.manhole_cover" and got["status"] == "open"
    assert got["lat"] == pytest.approx(lat) and got["agency_responsible"] == "市政设施管理处"
    assert "phone" not in got and "first_name" not in got
    lst = client.get("/open311/v2/requests.json", params={"api_key": world["hotline_key"], "status": "open"}).json()
    assert [x["service_request_id"] for x in lst] == [rid]
    bad = client.post("/open311/v2/requests.json", data={"api_key": world["hotline_key"],
                                                          "service_code": "component.manhole_cover", "lat": "x",
                                                          "long": lon})
    assert bad.status_code == 400 and bad.json()[0]["description"].startswith("lat")
    assert client.post("/open311/v2/requests.json", data={"service_code": "x.y"}).status_code == 403
