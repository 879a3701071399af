"""Status back to the 12345 hotline by webhook: a real HTTP receiver (started here, on a free local port) checks
every POST's HMAC-SHA256 signature over the raw body and its timestamp, answers 500 when told to, and records
what arrived; a real ``geo worker`` process delivers off the procrastinate queue.

What must hold: each status change of an order the hotline's key took in (并单, accepted, dispatched, in
progress, resolved, closed, 回访) arrives once as a 2xx, signed, in ``seq`` order per order; a 500 is retried
with the same delivery id (the receiver can drop duplicates) and holds the order's later changes back until
it is through; the delivery log shows the attempts, the last status code and the error; attempts are bounded
(then ``failed``); orders taken in by a login (not a hotline key) send nothing; payloads carry no personal data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import text

from tests.api.conftest import COMM_A, centre, token
from tests.api.test_jobs import start_worker

SECRET = "test-webhook-secret-0123456789"
CALLER_NAME, CALLER_PHONE = "张三丰", "13912345678"


class Receiver:
    """A hotline's webhook endpoint: verifies, records, and answers 500 to the first *fail_first* requests (or to
    every request of the order numbers in *always_fail*)."""

    def __init__(self, secret: str, fail_first: int = 0, always_fail: frozenset = frozenset()):
        self.secret, self.fail_first, self.always_fail = secret, fail_first, always_fail
        self.got: list[dict] = []
        self.lock = threading.Lock()
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 — http.server's naming
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                ts = self.headers["X-Geo-Timestamp"]
                want = "sha256=" + hmac.new(rec.secret.encode(), f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()
                body = json.loads(raw)
                with rec.lock:
                    n = len(rec.got)
                    fail = n < rec.fail_first or body["order"]["order_no"] in rec.always_fail
                    rec.got.append({"delivery": self.headers["X-Geo-Delivery"], "event": self.headers["X-Geo-Event"],
                                    "attempt": int(self.headers["X-Geo-Attempt"]), "ts": int(ts),
                                    "signed": hmac.compare_digest(want, self.headers["X-Geo-Signature"]),
                                    "body": body, "raw": raw.decode(), "answered": 500 if fail else 204})
                self.send_response(500 if fail else 204)
                self.end_headers()

            def log_message(self, *a):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/geo/12345"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self, order_no: str) -> list[dict]:
        with self.lock:
            return [g for g in self.got if g["body"]["order"]["order_no"] == order_no and g["answered"] < 300]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def queue_worker(client, tmp_path, monkeypatch):
    """A real ``geo worker`` with short retry waits (1 s, 2 s …) and 3 attempts at most."""
    from geo.supervise import stop

    monkeypatch.setenv("GEO_HOTLINE_BACKOFF_S", "1")
    monkeypatch.setenv("GEO_HOTLINE_MAX_ATTEMPTS", "3")
    p = start_worker(tmp_path / "worker.log")
    yield tmp_path / "worker.log"
    stop(p)


def _key_id(engine, name="12345热线") -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT id FROM api_keys WHERE name = :n"), {"n": name}).scalar_one()


def _order(no, lon, lat, **kw):
    return {"order_no": no, "called_at": datetime.now(timezone.utc).isoformat(), "appeal_type": "投诉",
            "category": "incident", "subtype": "garbage", "content": "小区门口垃圾堆了三天没人清运", "lon": lon,
            "lat": lat, "caller_name": CALLER_NAME, "caller_phone": CALLER_PHONE, **kw}


def _move(client, h, eid, to, **kw):
    r = client.post(f"/v1/events/{eid}/transitions", json={"to": to, **kw}, headers=h)
    assert r.status_code == 200, r.text


def _log(client, ha, order_no) -> list[dict]:
    r = client.get("/v1/hotline/deliveries", params={"order_no": order_no}, headers=ha)
    assert r.status_code == 200, r.text
    return sorted(r.json()["items"], key=lambda d: d["seq"])


def _story(rx, client, ha, orders, worker_log) -> str:
    """What arrived, what the log says and the worker's last words (for a failure message)."""
    got = [(g["body"]["order"]["order_no"], g["event"], g["attempt"], g["answered"]) for g in rx.got]
    log = [(d["order_no"], d["type"], d["state"], d["attempts"], d["last_error"]) for no in orders
           for d in _log(client, ha, no)]
    return f"received {got}\nlog {log}\nworker: {worker_log.read_text(errors='replace')[-3000:]}"


def _wait(fn, timeout=90.0):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.3)


def test_status_changes_reach_the_hotline_signed_in_order_with_a_retry(client, world, engine, queue_worker):
    rx = Receiver(SECRET, fail_first=1)
    try:
        ha = token(client, "admin")
        kid = _key_id(engine)
        r = client.put(f"/v1/hotline/webhooks/{kid}", json={"url": rx.url, "secret": SECRET}, headers=ha)
        assert r.status_code == 200, r.text
        assert r.json()["url"] == rx.url and r.json()["active"] and "secret" not in r.json()

        key = {"X-API-Key": world["hotline_key"]}
        lon, lat = centre(COMM_A, 6)
        a = client.post("/v1/work-orders", json=_order("WH-A", lon, lat), headers=key)
        assert a.status_code == 201, a.text
        b = client.post("/v1/work-orders", json=_order("WH-B", lon + 0.0002, lat, appeal_type="求助"), headers=key)
        assert b.status_code == 201 and b.json()["merged"] is True, b.text  # 并单 onto A's event
        eid = a.json()["event_id"]
        # an order a dispatcher types in (a login, not the hotline's key) has no webhook to hear of it
        hd = token(client, "dispatcher")
        c = client.post("/v1/work-orders", json=_order("WH-C", *centre(COMM_A, 11), subtype="noise"), headers=hd)
        assert c.status_code == 201, c.text

        _move(client, hd, eid, "accepted")
        _move(client, hd, eid, "dispatched", assignee_worker_id=world["worker_a"])
        hw = token(client, "worker")
        _move(client, hw, eid, "in_progress")
        _move(client, hw, eid, "resolved", note="已清运")
        _move(client, hd, eid, "closed", satisfaction=5)
        r = client.post("/v1/work-orders/WH-A/callback", json={"satisfaction": 4, "reached": True}, headers=key)
        assert r.status_code == 200, r.text
        _move(client, hd, c.json()["event_id"], "accepted")

        states = ["accepted", "dispatched", "in_progress", "resolved", "closed"]
        want = {"WH-A": [f"order.{s}" for s in states] + ["order.callback"],
                "WH-B": ["order.merged"] + [f"order.{s}" for s in states]}
        done = _wait(lambda: all(len(rx.delivered(no)) == len(kinds) for no, kinds in want.items()))
        assert done, _story(rx, client, ha, ["WH-A", "WH-B"], queue_worker)

        with rx.lock:
            got = list(rx.got)
        assert all(g["signed"] for g in got), [g for g in got if not g["signed"]]
        assert all(abs(g["ts"] - time.time()) < 300 for g in got)
        for no, kinds in want.items():
            ok = rx.delivered(no)
            assert [g["event"] for g in ok] == kinds, (no, [g["event"] for g in ok])
            assert [g["body"]["seq"] for g in ok] == list(range(1, len(kinds) + 1))
            assert len({g["delivery"] for g in ok}) == len(kinds)  # one delivery id per change
            # in order on the wire too: a retried change held the later ones of its order back
            arrived = [g["body"]["seq"] for g in got if g["body"]["order"]["order_no"] == no]
            assert arrived == sorted(arrived), (no, arrived)
        assert not [g for g in got if g["body"]["order"]["order_no"] == "WH-C"]
        assert not any(CALLER_NAME in g["raw"] or CALLER_PHONE in g["raw"] for g in got)  # no personal data

        # the first POST got a 500: re-sent with the same delivery id, as attempt 2, with a fresh signature
        first = got[0]
        assert first["answered"] == 500 and first["attempt"] == 1
        again = [g for g in got if g["delivery"] == first["delivery"]]
        assert [(g["attempt"], g["answered"]) for g in again] == [(1, 500), (2, 204)]
        assert again[1]["raw"] == first["raw"]  # the same bytes (and so the same delivery id and seq)

        # what the payloads say
        merged = rx.delivered("WH-B")[0]["body"]
        assert merged["linked_orders"] == ["WH-A"] and merged["order"]["event_id"] == eid and merged["order"]["merged"]
        closed = rx.delivered("WH-A")[4]["body"]
        assert closed["order"]["status"] == "closed" and closed["order"]["status_name"] == "已结案"
        assert closed["change"] == {"from": "resolved", "to": "closed", "reason": None, "note": None}
        assert rx.delivered("WH-A")[3]["body"]["change"]["note"] == "已清运"
        assert rx.delivered("WH-A")[5]["body"]["callback"]["satisfaction"] == 4
        assert closed["order"]["expected_datetime"] == a.json()["expected_datetime"]

        # the delivery log, for the admin: attempts, status codes, the error of the failed attempt
        log = _log(client, ha, first["body"]["order"]["order_no"])
        retried = next(d for d in log if d["delivery_id"] == first["delivery"])
        assert retried["state"] == "delivered" and retried["attempts"] == 2 and retried["last_status_code"] == 204
        assert [h["status_code"] for h in retried["history"]] == [500, 204]
        assert "HTTP 500" in retried["history"][0]["error"]
        assert all(d["state"] == "delivered" and d["attempts"] == 1 for d in log if d is not retried)
        assert _log(client, ha, "WH-C") == []
        # the dispatcher may not read the log
        assert client.get("/v1/hotline/deliveries", headers=hd).status_code == 403
    finally:
        rx.close()


def test_a_receiver_that_keeps_failing_gets_bounded_attempts_then_the_next_change(client, world, engine,
                                                                                   queue_worker):
    rx = Receiver(SECRET, always_fail=frozenset({"WH-F"}))
    try:
        ha = token(client, "admin")
        kid = _key_id(engine)
        assert client.put(f"/v1/hotline/webhooks/{kid}", json={"url": rx.url, "secret": SECRET},
                          headers=ha).status_code == 200
        key = {"X-API-Key": world["hotline_key"]}
        f = client.post("/v1/work-orders", json=_order("WH-F", *centre(COMM_A, 3)), headers=key).json()
        hd = token(client, "dispatcher")
        _move(client, hd, f["event_id"], "accepted")
        _move(client, hd, f["event_id"], "rejected", reason="不属于受理范围")
        log = _wait(lambda: (lambda x: x if len(x) == 2 and all(d["state"] == "failed" for d in x) else None)(
            _log(client, ha, "WH-F")), 120)
        assert log, _story(rx, client, ha, ["WH-F"], queue_worker)
        for d in log:  # GEO_HOTLINE_MAX_ATTEMPTS=3, then given up
            assert d["attempts"] == 3 and d["last_status_code"] == 500 and "HTTP 500" in d["last_error"]
            assert d["next_attempt_at"] is None and len(d["history"]) == 3
        assert [g["attempt"] for g in rx.got] == [1, 2, 3, 1, 2, 3]  # the second change only after the first gave up
        assert rx.got[3]["body"]["change"]["reason"] == "不属于受理范围"

        # switched off: the next change is cancelled, never sent
        assert client.delete(f"/v1/hotline/webhooks/{kid}", headers=ha).json()["active"] is False
        n = len(rx.got)
        g = client.post("/v1/work-orders", json=_order("WH-G", *centre(COMM_A, 4), subtype="noise"), headers=key)
        _move(client, hd, g.json()["event_id"], "accepted")
        time.sleep(2)
        assert len(rx.got) == n and _log(client, ha, "WH-G") == []  # an inactive webhook gets no delivery rows
    finally:
        rx.close()


def test_webhook_settings_are_checked(client, world, engine):
    ha = token(client, "admin")
    kid = _key_id(engine)
    r = client.put(f"/v1/hotline/webhooks/{kid}", json={"url": "ftp://12345.example/x"}, headers=ha)
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "url" and "回调地址" in r.json()["message"]
    r = client.put(f"/v1/hotline/webhooks/{kid}", json={"url": "https://u:p@12345.example/x"}, headers=ha)
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "url"
    r = client.put(f"/v1/hotline/webhooks/{kid}", json={"url": "https://12345.example/x", "secret": "short"},
                   headers=ha)
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "secret"
    # a sensor key (role worker) takes no work orders in: no webhook for it
    r = client.put(f"/v1/hotline/webhooks/{_key_id(engine, 'B村传感器')}", json={"url": "https://12345.example/x"},
                   headers=ha)
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "key_id", r.text
    assert client.put("/v1/hotline/webhooks/999999", json={"url": "https://12345.example/x"},
                      headers=ha).status_code == 404
    # no secret given: one is generated and shown once; a later edit without a secret keeps it
    r = client.put(f"/v1/hotline/webhooks/{kid}", json={"url": "https://12345.example/x"}, headers=ha)
    assert r.status_code == 200 and r.json()["secret"].startswith("whsec_")
    secret = r.json()["secret"]
    r = client.put(f"/v1/hotline/webhooks/{kid}", json={"url": "https://12345.example/y"}, headers=ha)
    assert r.status_code == 200 and "secret" not in r.json()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT secret FROM hotline_webhooks WHERE api_key_id = :k"),
                            {"k": kid}).scalar_one() == secret
    listed = client.get("/v1/hotline/webhooks", headers=ha).json()
    assert [w["url"] for w in listed] == ["https://12345.example/y"] and "secret" not in listed[0]
    assert secret not in client.get("/v1/hotline/webhooks", headers=ha).text
    # writes are audited
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'hotline.webhook.set' "
                                 "AND outcome = 'ok'")).scalar_one() == 2
