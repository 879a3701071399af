"""12345 work orders end to end: intake → 并单 → dispatch → 督办 → close → 回访, deadlines on working time
across 国庆 2026 (10-01..07 off, 09-20 and 10-10 make-up workdays), and the scope rule (a sibling's
dispatcher gets 404)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import text

from tests.api.conftest import COMM_A, centre, token

CST = ZoneInfo("Asia/Shanghai")


def _order(no, lon, lat, called, **kw):
    body = {"order_no": no, "called_at": called, "appeal_type": "投诉", "category": "incident",
            "subtype": "garbage", "content": "小区门口垃圾堆了三天没人清运", "lon": lon, "lat": lat,
            "caller_name": "张三丰", "caller_phone": "13912345678"}
    body.update(kw)
    return body


def _metres_east(lon, lat, m):
    import math

    return lon + m / (111_320 * math.cos(math.radians(lat))), lat


def test_intake_merge_dispatch_supervise_close_callback(client, world, engine):
    key = {"X-API-Key": world["hotline_key"]}
    lon, lat = centre(COMM_A, 6)
    # Wednesday 30 Sep 2026 16:00: 4 working hours = 1.5 h that day, then 国庆 (1–7 Oct) is skipped → 8 Oct 11:30
    first = client.post("/v1/work-orders", json=_order("12345-20260930-0001", lon, lat, "2026-09-30T16:00:00+08:00"),
                        headers=key)
    assert first.status_code == 201, first.text
    o1 = first.json()
    assert o1["merged"] is False and o1["status"] == "reported" and o1["code"] == "0102"
    assert datetime.fromisoformat(o1["due_at"]).astimezone(CST) == datetime(2026, 10, 8, 11, 30, tzinfo=CST)
    assert o1["expected_datetime"] == o1["due_at"] and o1["grid_code"] == f"{COMM_A}006"
    # Open311 shows the same working-time deadline as expected_datetime
    op = client.get(f"/open311/v2/requests/{o1['event_id']}.json", params={"api_key": world["hotline_key"]}).json()[0]
    assert op["expected_datetime"] == o1["due_at"] and op["service_code"] == "incident.garbage"

    # the same order again is a replay; the same number with another body is refused
    again = client.post("/v1/work-orders", json=_order("12345-20260930-0001", lon, lat, "2026-09-30T16:00:00+08:00"),
                        headers=key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["event_id"] == o1["event_id"]
    clash = client.post("/v1/work-orders", json=_order("12345-20260930-0001", lon, lat, "2026-09-30T16:00:00+08:00",
                                                       content="别的事"), headers=key)
    assert clash.status_code == 409 and clash.json()["details"][0]["label"] == "工单号"

    # 并单: same sub-type 40 m away on 1 Oct → linked to the open event; 400 m away → a new event;
    # another sub-type on the same spot → a new event
    near = _metres_east(lon, lat, 40)
    o2 = client.post("/v1/work-orders", json=_order("12345-20261001-0007", *near, "2026-10-01T10:00:00+08:00",
                                                     appeal_type="求助"), headers=key).json()
    assert o2["merged"] is True and o2["event_id"] == o1["event_id"]
    far = _metres_east(lon, lat, 400)
    o3 = client.post("/v1/work-orders", json=_order("12345-20261001-0008", *far, "2026-10-01T10:05:00+08:00"),
                     headers=key).json()
    assert o3["merged"] is False and o3["event_id"] != o1["event_id"]
    o4 = client.post("/v1/work-orders", json=_order("12345-20261001-0009", lon, lat, "2026-10-01T10:06:00+08:00",
                                                     subtype="noise"), headers=key).json()
    assert o4["merged"] is False and o4["event_id"] not in (o1["event_id"], o3["event_id"])
    # noise: 1 working day → the end of the first workday after 1 Oct = Thursday 8 Oct 17:30
    assert datetime.fromisoformat(o4["due_at"]).astimezone(CST) == datetime(2026, 10, 8, 17, 30, tzinfo=CST)

    # shown on both: the event lists its orders
    hd = token(client, "dispatcher")
    ev = client.get(f"/v1/events/{o1['event_id']}", headers=hd).json()
    assert [w["order_no"] for w in ev["work_orders"]] == ["12345-20260930-0001", "12345-20261001-0007"]
    assert ev["merged_orders"] == 1 and ev["work_order_count"] == 2 and ev["source"] == "hotline_12345"
    assert any("并单" in (t["note"] or "") for t in ev["transitions"])

    # the leader sees the caller masked
    hl = token(client, "leader")
    masked = client.get("/v1/work-orders/12345-20260930-0001", headers=hl).json()
    assert masked["caller_phone"] == "139****5678" and masked["caller_name"].startswith("张*")

    # dispatch
    eid = o1["event_id"]
    assert client.post(f"/v1/events/{eid}/transitions", json={"to": "accepted"}, headers=hd).status_code == 200
    r = client.post(f"/v1/events/{eid}/transitions", json={"to": "dispatched", "assignee_worker_id": world["worker_a"]},
                    headers=hd)
    assert r.status_code == 200, r.text
    # overdue on working time (due 8 Oct; today is later) → 督办 escalates 社区 → 街道
    s1 = client.post(f"/v1/events/{eid}/supervise", json={"kind": "overdue"}, headers=hl)
    assert s1.status_code == 201, s1.text
    s2 = client.post(f"/v1/events/{eid}/supervise", json={"kind": "overdue", "reason": "再次催办"}, headers=hd)
    assert (s1.json()["level_name"], s2.json()["level_name"]) == ("社区", "街道")
    # disputed needs a reason and a dispute
    r = client.post(f"/v1/events/{eid}/supervise", json={"kind": "disputed"}, headers=hl)
    assert r.status_code == 422 and r.json()["details"][0]["label"] == "原因"
    r = client.post(f"/v1/events/{eid}/supervise", json={"kind": "disputed", "reason": "居民不认可"}, headers=hl)
    assert r.status_code == 409

    hw = token(client, "worker")
    for to in ("in_progress", "resolved"):
        assert client.post(f"/v1/events/{eid}/transitions", json={"to": to}, headers=hw).status_code == 200
    # call-back before closing is allowed once resolved; the status poll shows the change
    since = (datetime.now(timezone.utc) - timedelta(seconds=30)).isoformat()
    polled = client.get("/v1/work-orders", params={"updated_since": since}, headers=key).json()
    assert {"12345-20260930-0001", "12345-20261001-0007"} <= {i["order_no"] for i in polled["items"]}
    assert all(i["status"] == "resolved" for i in polled["items"] if i["event_id"] == eid)
    r = client.post(f"/v1/events/{eid}/transitions", json={"to": "closed", "satisfaction": 4}, headers=hd)
    assert r.status_code == 200
    cb = client.post("/v1/work-orders/12345-20260930-0001/callback", json={"satisfaction": 5, "note": "已清理"},
                     headers=key)
    assert cb.status_code == 200, cb.text
    assert cb.json()["callback"]["satisfaction"] == 5 and cb.json()["status"] == "closed"
    assert client.post("/v1/work-orders/12345-20260930-0001/callback", json={"satisfaction": 5},
                       headers=key).status_code == 409
    # an order whose event is still open cannot be called back
    r = client.post("/v1/work-orders/12345-20261001-0008/callback", json={"satisfaction": 3}, headers=key)
    assert r.status_code == 409
    # reached without satisfaction is refused, naming the field in Chinese
    r = client.post("/v1/work-orders/12345-20261001-0007/callback", json={"reached": True}, headers=key)
    assert r.status_code == 422 and r.json()["details"][0]["label"] == "满意度"

    # reopen (返工) needs a reason; afterwards the event is disputed and can be supervised as such
    r = client.post(f"/v1/events/{eid}/reopen", json={"reason": " "}, headers=hd)
    assert r.status_code == 422
    r = client.post(f"/v1/events/{eid}/reopen", json={"reason": "回访不满意，垃圾又堆起来了"}, headers=hd)
    assert r.status_code == 200 and r.json()["state"] == "dispatched" and r.json()["reopen_count"] == 1
    r = client.post(f"/v1/events/{eid}/supervise", json={"kind": "disputed", "reason": "反复投诉"}, headers=hl)
    assert r.status_code == 201 and r.json()["level"] == 3
    with engine.connect() as c:
        acts = set(c.execute(text("SELECT action FROM audit_log WHERE outcome = 'ok'")).scalars())
    assert {"work_order.create", "work_order.callback", "event.supervise", "event.reopen"} <= acts


def test_make_up_workday_counts(client, world):
    key = {"X-API-Key": world["hotline_key"]}
    lon, lat = centre(COMM_A, 3)
    # Friday 9 Oct 17:00 + 4 working hours: 0.5 h that day, Saturday 10 Oct is a make-up workday → 14:00
    o = client.post("/v1/work-orders", json=_order("W-1009", lon, lat, "2026-10-09T17:00:00+08:00"), headers=key).json()
    assert datetime.fromisoformat(o["due_at"]).astimezone(CST) == datetime(2026, 10, 10, 14, 0, tzinfo=CST)
    # the city makes 10 Oct a day off after all → new orders skip it to Monday 12 Oct
    ha = token(client, "admin")
    assert client.put("/v1/calendar/2026-10-10", json={"workday": False, "name": "台风停工"}, headers=ha).status_code == 200
    o = client.post("/v1/work-orders", json=_order("W-1009b", lon, lat, "2026-10-09T17:00:00+08:00", subtype="street_vendor"),
                    headers=key).json()
    # street_vendor: 2 working hours → 0.5 h Friday, 1.5 h Monday from 09:00
    assert datetime.fromisoformat(o["due_at"]).astimezone(CST) == datetime(2026, 10, 12, 10, 30, tzinfo=CST)
    cal = client.get("/v1/calendar", params={"from": "2026-09-19", "to": "2026-10-11"}, headers=ha).json()
    kinds = {d["date"]: d["kind"] for d in cal["days"]}
    assert kinds["2026-09-20"] == "makeup_workday" and kinds["2026-10-01"] == "holiday"
    assert kinds["2026-10-10"] == "weekend" and kinds["2026-10-09"] == "workday"


def test_scope_and_roles(client, world):
    key = {"X-API-Key": world["hotline_key"]}
    lon, lat = centre(COMM_A, 2)
    o = client.post("/v1/work-orders", json=_order("S-1", lon, lat, "2026-11-02T09:30:00+08:00"), headers=key).json()
    hb = token(client, "dispatcher_b")
    assert client.get("/v1/work-orders/S-1", headers=hb).status_code == 404
    assert client.post("/v1/work-orders/S-1/callback", json={"satisfaction": 3}, headers=hb).status_code == 404
    assert client.post(f"/v1/events/{o['event_id']}/supervise", json={"kind": "overdue"}, headers=hb).status_code == 404
    assert client.post(f"/v1/events/{o['event_id']}/reopen", json={"reason": "x"}, headers=hb).status_code == 404
    assert client.get(f"/v1/events/{o['event_id']}/supervisions", headers=hb).status_code == 404
    assert "S-1" not in {i["order_no"] for i in client.get("/v1/work-orders", headers=hb).json()["items"]}
    # B's dispatcher cannot take in an order located in A
    r = client.post("/v1/work-orders", json=_order("S-2", lon, lat, "2026-11-02T09:30:00+08:00"), headers=hb)
    assert r.status_code == 403
    # a worker may not take in orders; a leader may not reopen
    assert client.post("/v1/work-orders", json=_order("S-3", lon, lat, "2026-11-02T09:30:00+08:00"),
                       headers=token(client, "worker")).status_code == 403
    assert client.post(f"/v1/events/{o['event_id']}/reopen", json={"reason": "x"},
                       headers=token(client, "leader")).status_code == 403


def test_bad_input_names_fields_in_chinese(client, world):
    key = {"X-API-Key": world["hotline_key"]}
    lon, lat = centre(COMM_A, 2)
    r = client.post("/v1/work-orders", json=_order("B-1", lon, lat, "2026-11-02T09:30:00+08:00", appeal_type="表扬"),
                    headers=key)
    assert r.status_code == 422 and "诉求类型" in r.json()["message"]
    r = client.post("/v1/work-orders", json=_order("B-2", lon, None, "2026-11-02T09:30:00+08:00"), headers=key)
    assert r.status_code == 422 and r.json()["details"][0]["label"] == "纬度"
    r = client.post("/v1/work-orders", json=_order("B-3", None, None, "2026-11-02T09:30:00+08:00"), headers=key)
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "address"
    r = client.post("/v1/work-orders", json=_order("B-4", lon, lat, "2026-11-02T09:30:00", subtype="ufo"), headers=key)
    assert r.status_code == 422 and r.json()["details"][0]["label"] == "小类"
    r = client.post("/v1/work-orders", json=_order("B-5", lon, lat, "2999-01-01T09:30:00+08:00"), headers=key)
    assert r.status_code == 422 and r.json()["details"][0]["label"] == "来电时间"
    r = client.post("/v1/work-orders", json=_order("B 6", lon, lat, "2026-11-02T09:30:00+08:00"), headers=key)
    assert r.status_code == 422 and "工单号" in r.json()["message"]
    r = client.post("/v1/events/999999/supervise", json={"kind": "overdue"}, headers=token(client, "leader"))
    assert r.status_code == 404


def test_order_by_address_uses_the_standard_address(client, world, engine):
    from tests.api.test_geocode import seed_addresses

    seed_addresses(engine)
    key = {"X-API-Key": world["hotline_key"]}
    o = client.post("/v1/work-orders", json=_order("A-1", None, None, "2026-11-02T09:30:00+08:00",
                                                    address="桂园社区锦秀华府3栋"), headers=key)
    assert o.status_code == 201, o.text
    lon, lat = centre(COMM_A, 5)
    assert abs(o.json()["lon"] - (lon + 0.001)) < 1e-6 and o.json()["grid_code"] == f"{COMM_A}005"
    r = client.post("/v1/work-orders", json=_order("A-2", None, None, "2026-11-02T09:30:00+08:00",
                                                    address="火星基地"), headers=key)
    assert r.status_code == 422 and r.json()["details"][0]["label"] == "地址"
