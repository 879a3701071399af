"""Every input that used to answer 500 answers a clear 4xx naming the field (issue 11, item 4): one test
per reproduction, plus body size limits (413 before the body is read) and timestamp windows (422)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from tests.api.conftest import COMM_A, centre, token


def _fields(r) -> list[str]:
    return [d.get("field") for d in r.json().get("details", [])]


def test_lone_surrogate_in_any_event_string_is_422_naming_the_field(client):
    h = token(client, "dispatcher")
    lon, lat = centre(COMM_A, 1)
    for field in ("description", "address", "reporter_name", "category"):
        body = {"category": "incident", "subtype": "noise", "source": "patrol", "lon": lon, "lat": lat,
                "description": "ok", "address": "ok", "reporter_name": "ok"}
        body[field] = "@@"
        raw = __import__("json").dumps(body).replace("@@", "x\\ud800y")
        r = client.post("/v1/events", content=raw, headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 422, (field, r.text)
        assert field in _fields(r) and ("surrogate" in r.text or "unicode" in r.text), r.text


@pytest.mark.parametrize("kind", ["json", "json_objects", "csv"])
def test_batch_lookup_in_gcj02_answers_for_every_body_kind(client, kind):
    h = token(client, "leader")
    lon, lat = centre(COMM_A, 6)
    if kind == "json":
        r = client.post("/v1/lookup/batch?crs=gcj02", json={"points": [[lon, lat], [lon + 0.01, lat]]}, headers=h)
    elif kind == "json_objects":
        r = client.post("/v1/lookup/batch?crs=gcj02", json={"points": [{"lon": lon, "lat": lat}, "bad"]}, headers=h)
    else:
        r = client.post("/v1/lookup/batch?crs=gcj02", content=f"lon,lat\n{lon},{lat}\n",
                        headers={**h, "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    body = r.json()
    # GCJ-02 input is shifted (a few hundred metres): the answer is a grid code or a per-row error, never a 500
    assert body["count"] == (2 if kind != "csv" else 1)
    assert all(c is None or c.startswith("4299") for c in body["codes"])


@pytest.mark.parametrize("route", ["kpis", "heatmap", "top-grids"])
@pytest.mark.parametrize("bad", ["0001-01-01T00:01:00Z", "9999-12-31T23:59:59Z", "0.5", "1700000000", "yesterday"])
def test_stats_dates_out_of_range_or_not_iso_are_422(client, route, bad):
    h = token(client, "leader")
    for param in ("to", "from"):
        r = client.get(f"/v1/stats/{route}", params={param: bad}, headers=h)
        assert r.status_code == 422, (param, bad, r.text)
        assert param in _fields(r)
    assert client.get(f"/v1/stats/{route}", params={"to": "2026-11-26T00:00:00Z"}, headers=h).status_code == 200


def test_event_list_dates_are_bounded_too(client):
    h = token(client, "leader")
    assert client.get("/v1/events", params={"to": "0.5"}, headers=h).status_code == 422
    assert client.get("/v1/events", params={"from": "0001-01-01"}, headers=h).status_code == 422
    assert client.get("/v1/events", params={"from": "2026-01-01"}, headers=h).status_code == 200


@pytest.mark.parametrize("day,status", [("9999-12-31", 422), ("0001-01-01", 422), ("1999-12-31", 422),
                                        ("2026-11-26", 200)])
def test_track_day_is_bounded(client, world, day, status):
    h = token(client, "dispatcher")
    r = client.get(f"/v1/workers/{world['worker_a']}/track", params={"day": day}, headers=h)
    assert r.status_code == status, r.text
    if status == 422:
        assert "day" in _fields(r)


def test_repeated_grid_code_in_worker_create_and_patch_is_422(client, world):
    h = token(client, "dispatcher")
    g = f"{COMM_A}003"
    r = client.post("/v1/workers", json={"name": "重复", "role": "auxiliary", "jurisdiction_code": COMM_A,
                                         "grid_codes": [g, g]}, headers=h)
    assert r.status_code == 422 and "grid_codes.1" in _fields(r), r.text
    r = client.patch(f"/v1/workers/{world['worker_a']}", json={"grid_codes": [g, f"{COMM_A}004", g]}, headers=h)
    assert r.status_code == 422 and "grid_codes.2" in _fields(r), r.text
    # nothing was half-written
    assert client.get(f"/v1/workers?grid={g}", headers=h).json() == []


@pytest.mark.parametrize("ts,ok", [
    ("2100-01-01T00:00:00Z", False),  # far future pinned "latest position" before
    ((datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(), False),  # beyond the clock skew
    ("1999-12-31T23:59:59Z", False),
    ("0.5", False),
    ((datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat(), True),
], ids=["year-2100", "in-one-hour", "before-2000", "not-a-date", "a-minute-ago"])  # stable ids for pytest-xdist
def test_gps_fix_timestamps_outside_the_sane_window_are_422(client, world, ts, ok):
    h = token(client, "worker")
    lon, lat = centre(COMM_A, 1)
    r = client.post(f"/v1/workers/{world['worker_a']}/positions",
                    json={"fixes": [{"ts": ts, "lon": lon, "lat": lat}]}, headers=h)
    assert r.status_code == (200 if ok else 422), r.text
    if not ok:
        assert "fixes.0.ts" in _fields(r)


@pytest.fixture
def small_limits(world, geo_env, monkeypatch):
    from fastapi.testclient import TestClient

    from geo.api.main import create_app
    from geo.config import reset_settings

    monkeypatch.setenv("GEO_DEMO", "1")
    monkeypatch.setenv("GEO_MAX_BODY_BYTES", "2000")
    monkeypatch.setenv("GEO_MAX_BATCH_BODY_BYTES", "20000")
    reset_settings()
    with TestClient(create_app(listen=False)) as c:
        yield c


def test_body_limits_413_for_ordinary_and_batch_routes(small_limits):
    c = small_limits
    h = token(c, "dispatcher")
    lon, lat = centre(COMM_A, 1)
    big = {"category": "incident", "subtype": "noise", "source": "patrol", "lon": lon, "lat": lat,
           "description": "长" * 1000}  # 3000 bytes of UTF-8: over the 2000-byte ordinary limit
    r = c.post("/v1/events", json=big, headers=h)
    assert r.status_code == 413 and r.json()["error"] == "too_large", r.text
    # the batch route takes 10× more, then refuses too
    pts = [[lon, lat]] * 300  # ~ 12 kB
    assert c.post("/v1/lookup/batch", json={"points": pts}, headers=h).status_code == 200
    r = c.post("/v1/lookup/batch", json={"points": pts * 5}, headers=h)
    assert r.status_code == 413, r.text[:300]

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(100):
            yield b"x" * 1000

    r = c.post("/v1/events", content=chunks(), headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 413, r.text


def test_oversized_declared_body_is_refused_before_a_byte_is_read(world, geo_env, monkeypatch):
    """A 200 MB Content-Length gets its 413 without the app ever calling receive()."""
    from geo.api.main import create_app
    from geo.config import reset_settings

    monkeypatch.setenv("GEO_DEMO", "1")
    reset_settings()
    app = create_app(listen=False)
    reads, sent = [], []

    async def receive():
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/lookup/batch", "raw_path": b"/v1/lookup/batch",
             "query_string": b"", "headers": [(b"content-length", str(200_000_000).encode()),
                                              (b"content-type", b"application/json")],
             "http_version": "1.1", "scheme": "http", "server": ("test", 80), "client": ("127.0.0.1", 1),
             "root_path": "", "app": app}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413 and reads == []
