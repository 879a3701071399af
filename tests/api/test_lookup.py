"""Lookup: single points, CRS, edges, outside, ?at= history, batch in three formats, agreement with PostGIS."""

from __future__ import annotations

import io
import time

import geopandas as gpd
import numpy as np
import pytest
from sqlalchemy import text

from geo.crs import wgs84_to_gcj02
from tests.api.conftest import COMM_A, COMM_B, DX, DY, X0, Y0, centre, token


def test_lookup_returns_grid_community_and_staff(client):
    h = token(client, "dispatcher")
    lon, lat = centre(COMM_A, 1)
    r = client.get("/v1/lookup", params={"lon": lon, "lat": lat}, headers=h)
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["code"] == f"{COMM_A}001" and b["name"] == "桂园社区第1网格"
    assert b["community"] == {"code": COMM_A, "name": "桂园社区"}
    assert b["street"]["code"] == "429901001000" and b["district"]["code"] == "429901000000"
    assert b["chief"]["name"] == "王网格长"
    assert sorted(w["name"] for w in b["workers_on_duty"]) == ["李网格员", "王网格长"]  # off-duty 赵辅助 left out
    assert b["plan"]["version"] == 1


def test_lookup_needs_auth(client):
    r = client.get("/v1/lookup", params={"lon": 114.21, "lat": 30.51})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"


def test_gcj02_input_is_converted(client):
    h = token(client, "leader")
    lon, lat = centre(COMM_B, 6)
    lon += DX / 2 - 0.002  # 200 m inside the east edge: the ~500 m GCJ-02 shift crosses it
    glon, glat = wgs84_to_gcj02(lon, lat)
    r = client.get("/v1/lookup", params={"lon": float(glon), "lat": float(glat), "crs": "gcj02"}, headers=h)
    assert r.json()["code"] == f"{COMM_B}006"
    assert r.json()["point"]["lon"] == pytest.approx(lon, abs=1e-7)
    # the same numbers read as WGS84 land ~500 m east, in the next grid
    r2 = client.get("/v1/lookup", params={"lon": float(glon), "lat": float(glat)}, headers=h)
    assert r2.json()["code"] == f"{COMM_B}007"


def test_shared_edge_goes_to_the_smaller_code(client):
    h = token(client, "leader")
    # the vertical edge between grid 1 and 2 of community A, and the corner of 1, 2, 5, 6
    for lon, lat, expect in ((X0 + DX, Y0 + DY / 2, "001"), (X0 + DX, Y0 + DY, "001"),
                             (X0 + 0.1, Y0 + DY / 2, None)):
        r = client.get("/v1/lookup", params={"lon": lon, "lat": lat}, headers=h)
        code = r.json()["code"]
        if expect:
            assert code == f"{COMM_A}{expect}"
        else:  # edge between the two communities: A's grid 4 (smaller code) wins over B's grid 1
            assert code == f"{COMM_A}004"


def test_fast_path_answers_exactly_as_the_route(client, world, geo_env, monkeypatch):
    """GET /v1/lookup is answered before routing (GeoAPI + lookup.fast_answer): same status, body and headers
    as the FastAPI route of an app without the fast path, for every kind of caller and input."""
    from fastapi.testclient import TestClient

    from geo.api import _fastlookup
    from geo.api.main import create_app
    from geo.api.routes import lookup as lookup_module

    answered, compiled = [], []  # per request: answered before routing? by the compiled step?
    real, real_c = lookup_module.fast_answer, _fastlookup.answer

    def counting(state, scope, cors=False):
        body = real(state, scope, cors)
        answered[-1] = body is not None
        return body

    def counting_c(*args):
        hit = real_c(*args)
        answered.append(hit is not None)
        compiled.append(hit is not None)
        return hit

    monkeypatch.setattr(lookup_module, "fast_answer", counting)
    monkeypatch.setattr(_fastlookup, "answer", counting_c)
    a1 = centre(COMM_A, 1)
    cases = [({"lon": a1[0], "lat": a1[1]}, "leader"),
             ({"lon": X0 + DX, "lat": Y0 + DY}, "dispatcher"),  # a corner of four grids
             ({"lon": X0 + 0.1, "lat": Y0 + 0.3 * DY}, "worker"),  # the edge between the two communities
             ({"lon": a1[0], "lat": a1[1], "crs": "gcj02"}, "planner"),
             ({"lon": centre(COMM_B, 3)[0], "lat": centre(COMM_B, 3)[1], "crs": "cgcs2000"}, "worker"),
             ({"lon": f"{a1[0]:.12f}", "lat": f"{a1[1]:.3f}"}, "hotline_key"),
             ({"lon": a1[0], "lat": a1[1]}, "sensor_key_b"),
             ({"lat": a1[1], "lon": a1[0]}, "dispatcher"),  # the other order: the general query parser
             ({"lon": X0 - 0.01, "lat": Y0 + DY / 2}, "leader"),  # outside: 404 with the nearest grid
             ({"lon": "abc", "lat": 30.5}, "leader"), ({"lat": 30.5}, "leader"), ({"lon": 1, "lat": 91}, "leader"),
             ({"lon": "nan", "lat": 30.5}, "leader"), ({"lon": 114.2, "lat": 30.5, "crs": "baidu"}, "leader"),
             ({"lon": a1[0], "lat": a1[1], "at": "2020-01-01T00:00:00Z"}, "leader"),
             ({"lon": a1[0], "lat": a1[1]}, "bogus_token"), ({"lon": a1[0], "lat": a1[1]}, "bogus_key"),
             ({"lon": 114.2, "lat": 30.5}, None)]  # no credentials: 401

    def creds(c, who):
        if who is None:
            return {}
        if who in ("hotline_key", "sensor_key_b", "bogus_key"):
            return {"X-API-Key": world.get(who, "geo_not-a-key")}
        if who == "bogus_token":
            return {"Authorization": "Bearer not.a.token"}
        return token(c, who)

    cache = client.app.state.geo.principals
    end = time.monotonic() + 20
    while not cache.live:  # principals are cached (and the fast path used) once the auth listener is connected
        assert time.monotonic() < end, "the auth listener did not connect"
        time.sleep(0.05)
    with TestClient(create_app(listen=False, fast_lookup=False)) as route:
        fast_headers, n_fast = {}, 0
        for params, who in cases:
            fh = fast_headers.setdefault(who, creds(client, who))
            slow = route.get("/v1/lookup", params=params, headers=creds(route, who))
            sb = slow.json()
            sb.pop("request_id", None)
            for attempt in range(3):  # the first use of a token resolves it; the second is served from cache,
                # the third compiled (geo.api._fastlookup) where the point's cell lies inside one grid
                fast = client.get("/v1/lookup", params=params, headers={**fh, "X-Request-ID": f"req-{attempt}"})
                fb = fast.json()
                fb.pop("request_id", None)
                assert (fast.status_code, fb) == (slow.status_code, sb), (params, who)
                assert fast.headers["content-type"] == slow.headers["content-type"]
                assert fast.headers["content-length"] == str(len(fast.content))
                assert fast.headers["x-request-id"] == f"req-{attempt}"
                by_fast = answered.pop()
                # the fast path answers successes and points outside every grid, every one once the caller is
                # cached, and nothing else
                plain = fast.status_code == 200 or fb.get("error") == "not_in_any_grid"
                assert by_fast == (plain and (attempt >= 1 or by_fast)), (params, who, attempt)
                n_fast += by_fast
    assert n_fast >= 8 and sum(compiled) >= 3  # the three plain successes inside a grid, at their third call
    # and the fast path really does the work: with the route removed, lookups are still answered
    bare = create_app(listen=False)
    bare.router.routes = [r for r in bare.router.routes if getattr(r, "path", None) != "/v1/lookup"]
    with TestClient(bare) as only_fast:
        params = {"lon": a1[0], "lat": a1[1]}
        h = token(only_fast, "leader")
        only_fast.get("/v1/auth/me", headers=h)  # resolves (and caches) the token
        end = time.monotonic() + 20  # the cache is trusted once the auth listener is connected
        while (r := only_fast.get("/v1/lookup", params=params, headers=h)).status_code != 200:
            assert time.monotonic() < end, r.text
            only_fast.get("/v1/auth/me", headers=h)
        assert r.json()["code"] == f"{COMM_A}001" and r.headers.get("x-request-id")


def test_fast_path_404_is_access_logged_like_the_route(client, monkeypatch, caplog):
    """A point outside every grid answered by the fast path still leaves its access-log line (every 4xx is
    logged by default), with the request id the caller sent."""
    import logging

    from geo.api.errors import APIError
    from geo.api.routes import lookup as lookup_module

    kinds = []
    real = lookup_module.fast_answer
    monkeypatch.setattr(lookup_module, "fast_answer", lambda st, sc, cors=False: kinds.append(type((r := real(st, sc, cors)) and r[0])) or r)
    h = token(client, "leader")
    cache = client.app.state.geo.principals
    end = time.monotonic() + 20
    while cache.token(h["Authorization"][7:]) is None:  # resolved by the route once the listener is live
        assert time.monotonic() < end, "the principal was never cached"
        client.get("/v1/auth/me", headers=h)
    caplog.set_level(logging.INFO, logger="geo.api")
    r = client.get("/v1/lookup", params={"lon": X0 - 0.01, "lat": Y0 + DY / 2}, headers={**h, "X-Request-ID": "rid-404"})
    assert r.status_code == 404 and r.json()["request_id"] == "rid-404" and r.headers["x-request-id"] == "rid-404"
    assert kinds[-1] is APIError  # answered by the fast path
    lines = [x for x in caplog.records if x.getMessage() == "request" and getattr(x, "request_id", None) == "rid-404"]
    assert len(lines) == 1 and lines[0].status == 404 and lines[0].path == "/v1/lookup"


def test_outside_every_grid_names_the_nearest(client):
    h = token(client, "leader")
    r = client.get("/v1/lookup", params={"lon": X0 - 0.01, "lat": Y0 + DY / 2}, headers=h)
    assert r.status_code == 404
    b = r.json()
    assert b["error"] == "not_in_any_grid"
    assert b["nearest"]["code"] == f"{COMM_A}001"
    assert 900 < b["nearest"]["distance_m"] < 1000  # 0.01° of longitude at 30.5°N ≈ 958 m


@pytest.mark.parametrize("params,field", [({"lon": 200, "lat": 30}, "lon"), ({"lon": "x", "lat": 30}, "lon"),
                                           ({"lat": 30}, "lon"), ({"lon": 114, "lat": 30, "crs": "bd09"}, "crs")])
def test_bad_lookup_input_is_a_422_naming_the_field(client, params, field):
    r = client.get("/v1/lookup", params=params, headers=token(client, "leader"))
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == field


def test_lookup_at_date_uses_the_plan_in_force_then(client, engine, world):
    from datetime import datetime, timezone

    from geo.db import plans
    from tests.api.conftest import lattice

    h = token(client, "planner_street")
    before = datetime.now(timezone.utc)
    # a new plan: community A's lattice renumbered so grid 001 moves
    g = lattice(COMM_A, X0, "桂园社区")
    g["code"] = list(reversed(list(g["code"])))
    import pandas as pd

    new = gpd.GeoDataFrame(pd.concat([g, lattice(COMM_B, X0 + 0.1, "李家村")], ignore_index=True), crs=4326)
    pid = plans.write_plan(engine, "429901001000", new, actor="test", params={}, quality={})
    r = client.post(f"/v1/plans/{pid}/publish", headers=h, json={"override_unstaffed": True, "reason": "test"})
    assert r.status_code == 200, r.text
    lon, lat = centre(COMM_A, 1)
    effective = datetime.fromisoformat(r.json()["effective_at"])
    assert effective > datetime.now(timezone.utc)  # GEO_PUBLISH_SWITCH_SECONDS ahead: the old plan still answers
    assert client.get("/v1/lookup", params={"lon": lon, "lat": lat}, headers=h).json()["plan"]["id"] == world["plan"]
    import time

    time.sleep(max(0.0, (effective - datetime.now(timezone.utc)).total_seconds()) + 0.05)
    now = client.get("/v1/lookup", params={"lon": lon, "lat": lat}, headers=h).json()
    assert now["code"] == f"{COMM_A}016" and now["plan"]["id"] == pid
    old = client.get("/v1/lookup", params={"lon": lon, "lat": lat, "at": before.isoformat()}, headers=h).json()
    assert old["code"] == f"{COMM_A}001" and old["plan"]["id"] == world["plan"]
    r = client.get("/v1/lookup", params={"lon": lon, "lat": lat, "at": "2001-01-01T00:00:00Z"}, headers=h)
    assert r.status_code == 404 and r.json()["error"] == "no_plan_at_date"


def _random_points(n, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(X0 - 0.02, X0 + 0.22, n)
    y = rng.uniform(Y0 - 0.02, Y0 + 0.22, n)
    # a tenth exactly on grid edges and vertices (the hard cases)
    k = n // 10
    x[:k] = X0 + rng.integers(0, 9, k) * DX
    y[k:2 * k] = Y0 + rng.integers(0, 5, k) * DY
    return x, y


def test_batch_json_agrees_with_postgis_st_covers_on_100k_points(client, engine, world):
    x, y = _random_points(100_000)
    r = client.post("/v1/lookup/batch", json={"points": np.column_stack([x, y]).tolist()},
                    headers=token(client, "leader"))
    assert r.status_code == 200
    codes = r.json()["codes"]
    assert len(codes) == 100_000
    with engine.connect() as conn:
        sql = conn.execute(text("""
            SELECT (SELECT g.code FROM grids g WHERE g.plan_id = :p AND
                    ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(t.x, t.y), 4326)) ORDER BY g.code LIMIT 1)
            FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS t(x, y, i) ORDER BY t.i
        """), {"p": world["plan"], "xs": x.tolist(), "ys": y.tolist()}).scalars().all()
    assert codes == sql
    assert sum(c is None for c in codes) > 1000  # some points really are outside
    on_edges = [c for c in codes[:20_000] if c]
    assert len(on_edges) > 10_000


def test_batch_csv_and_parquet_with_bad_rows(client):
    h = token(client, "leader")
    lon, lat = centre(COMM_A, 3)
    csv = f"id,lon,lat\n1,{lon},{lat}\n2,abc,30.5\n3,{X0 - 1},{Y0}\n4,{lon},\n"
    r = client.post("/v1/lookup/batch", content=csv, headers=h | {"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["codes"] == [f"{COMM_A}003", None, None, None]
    assert [e["row"] for e in b["errors"]] == [1, 2, 3]
    g = gpd.GeoDataFrame(geometry=gpd.points_from_xy([lon, lon], [lat, Y0 + 0.3]), crs=4326)
    buf = io.BytesIO()
    g.to_parquet(buf)
    r = client.post("/v1/lookup/batch", content=buf.getvalue(),
                    headers=h | {"Content-Type": "application/vnd.apache.parquet"})
    assert r.json()["codes"] == [f"{COMM_A}003", None]
    r = client.post("/v1/lookup/batch?format=csv", json={"points": [[lon, lat], {"lon": lon, "lat": lat}, "bad"]},
                    headers=h)
    assert r.text.splitlines() == ["row,code", f"0,{COMM_A}003", f"1,{COMM_A}003", "2,"]


@pytest.mark.parametrize("body,ctype,status", [(b"{not json", "application/json", 400),
                                                (b'{"points": 5}', "application/json", 422),
                                                (b"a,b\n1,2\n", "text/csv", 422),
                                                (b"PAR1garbage", "application/vnd.apache.parquet", 400),
                                                (b"x", "image/png", 415)])
def test_batch_malformed_bodies_are_4xx(client, body, ctype, status):
    r = client.post("/v1/lookup/batch", content=body, headers=token(client, "leader") | {"Content-Type": ctype})
    assert r.status_code == status, r.text
    assert r.json()["message"]


def test_index_refreshes_on_notify(world, geo_env, monkeypatch, engine):
    """Another process publishes a plan: this process's index switches by itself (LISTEN/NOTIFY)."""
    import time

    from fastapi.testclient import TestClient

    from geo.api.main import create_app
    from geo.config import reset_settings
    from geo.db import plans
    from tests.api.conftest import lattice

    monkeypatch.setenv("GEO_DEMO", "1")
    reset_settings()
    with TestClient(create_app(listen=True)) as c:
        holder = c.app.state.geo.holder
        time.sleep(0.5)
        gen = holder.generation
        pid = plans.write_plan(engine, "429901001001", lattice(COMM_A, X0, "桂园社区"), actor="other-process",
                               params={}, quality={})
        plans.publish(engine, pid, "other-process")  # not through this app: only NOTIFY can tell it
        deadline = time.time() + 10
        while time.time() < deadline and pid not in holder.index.plan_ids:
            time.sleep(0.1)
        assert pid in holder.index.plan_ids and holder.generation > gen
