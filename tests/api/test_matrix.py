"""The access matrix, generated from the OpenAPI: every route × every role × {own subtree, sibling, parent,
child} × {login, API key}, against the one policy (geo/access/policy.py).

The city: district 429901000000 with two sibling streets, 429901001000 (S1) and 429901002000 (S2), each
with two communities cut into 4×4 grids, a published plan per street, workers and events in each.

The target objects (events, workers, fixes, jobs, plans) all belong to S1 (community S1C1 = 429901001001,
or S1 itself); what varies is where the caller sits:

========  ===============================  =======================================
relation  caller's jurisdiction            what it should see of S1C1 / S1
========  ===============================  =======================================
own       S1 (the target's street)         everything (the target is in its subtree)
parent    the district                     everything (the city centre sees all)
sibling   S2                               nothing but the public face of grids
child     S1C2 (the other community of S1) S1's plan map, nothing of S1C1
========  ===============================  =======================================

Every (role, relation) exists as a login and as an API key, and the two must get the same answer in
every cell — there is one expected column for both.

**Adding a route**: add one row to :data:`TABLE` (method, path, the roles its gate lets in, the roles that
succeed, the outcome per relation for those, a content check) and one request builder to
:data:`REQUESTS`; until then :func:`test_every_route_has_a_row` fails.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box
from sqlalchemy import text

from geo.access import policy
from tests.api.conftest import DX, DY, PASSWORD, Y0, lattice
from tests.conftest import password_hashed_once

DISTRICT, S1, S2 = "429901000000", "429901001000", "429901002000"
S1C1, S1C2, S2C1, S2C2 = "429901001001", "429901001002", "429901002001", "429901002002"
X = {S1C1: 114.20, S1C2: 114.30, S2C1: 114.40, S2C2: 114.50}  # west edge of each community (0.1° wide)
CALLER_AT = {"own": S1, "parent": DISTRICT, "sibling": S2, "child": S1C2}
RELATIONS = tuple(CALLER_AT)
KINDS = ("login", "key")
ROLES = policy.ROLES
READ = frozenset(ROLES)
STAFF = frozenset({"admin", "dispatcher"})
FIELD = frozenset({"admin", "dispatcher", "worker"})
PLANNERS = frozenset({"admin", "planner"})
ADMIN = frozenset({"admin"})
SUPERVISORS = frozenset({"admin", "dispatcher", "leader"})  # 督办
WALL = frozenset({"admin", "leader"})  # 平急转换, kiosk tokens
REPORTER_PHONE, SHORT_PHONE, WORKER_PHONE = "13912345678", "12345", "13800001234"

#: who sees what in clear (the issue's rule, written out here rather than read from the policy)
SEE_STAFF_PHONES = {"admin", "dispatcher", "worker"}
SEE_REPORTERS = {"admin", "dispatcher"}

#: POST routes that change nothing
READ_ONLY_POSTS = {"/v1/lookup/batch", "/v1/auth/token"}
#: writes whose only object is the caller's own jurisdiction (its emergency mode, a kiosk key for it): a
#: sibling succeeds on its own street — asserted in test_access_matrix to have touched nothing of S1
OWN_JURISDICTION_WRITES = {"/v1/emergency", "/v1/kiosk-tokens"}
CALLER_NAME = "赵六"
#: personal data that exists only in S1C1 (its staff, its 12345 callers): never in a sibling's or child's answer
PII_MARKERS = ("王网格长", "李网格员", CALLER_NAME)

# Outcome of a cell: an HTTP status; OK/HID are 2xx with the target object shown / not shown.
OK, HID = "ok", "hidden"

#: ONE table of expected outcomes.
#: gate: roles the route's role check lets in (others get 403 everywhere);
#: ok: roles that succeed — their outcome per relation is given; a role in gate but not in ok gets 403 where
#:     the ok roles succeed (or get 403) and the same 404/422 as them elsewhere;
#: check: what is asserted of a successful body besides the target's presence ("staff": staff names and
#:     phones only inside the subtree, phones masked per role; "reporter": reporters' names and phones
#:     masked per role, short phones too; None: nothing more).
TABLE: list[tuple] = [
    # method  path                                      gate     ok       own  parent sibling child  check
    ("GET",   "/v1/auth/me",                            READ,    READ,    200, 200,   200,    200,   None),
    ("GET",   "/v1/lookup",                             READ,    READ,    OK,  OK,    HID,    HID,   "staff"),
    ("POST",  "/v1/lookup/batch",                       READ,    READ,    200, 200,   200,    200,   None),
    ("GET",   "/v1/jurisdictions",                      READ,    READ,    OK,  OK,    HID,    HID,   None),
    ("GET",   "/v1/jurisdictions/{code}",               READ,    READ,    200, 200,   404,    404,   None),
    ("GET",   "/v1/jurisdictions/{code}/plans",         READ,    READ,    200, 200,   404,    200,   None),
    ("GET",   "/v1/plans/{plan_id}",                    READ,    READ,    200, 200,   404,    200,   None),
    ("GET",   "/v1/plans/{a}/diff/{b}",                 READ,    READ,    200, 200,   404,    200,   None),
    ("POST",  "/v1/plans/{plan_id}/publish",            PLANNERS, PLANNERS, 200, 200, 404,    403,   None),
    ("GET",   "/v1/plans/{plan_id}/grids",              READ,    READ,    OK,  OK,    404,    HID,   None),
    ("GET",   "/v1/grids",                              READ,    READ,    OK,  OK,    HID,    HID,   None),
    ("GET",   "/v1/grids/{code}",                       READ,    READ,    OK,  OK,    HID,    HID,   "staff"),
    ("GET",   "/v1/tiles/{z}/{x}/{y}.mvt",              READ,    READ,    200, 200,   200,    200,   None),
    ("POST",  "/v1/jurisdictions/{code}/partition",     PLANNERS, PLANNERS, 202, 202, 404,    404,   None),
    ("GET",   "/v1/jobs/{job_id}",                      READ,    READ,    200, 200,   404,    404,   None),
    ("POST",  "/v1/jobs/{job_id}/cancel",               PLANNERS, PLANNERS, 200, 200, 404,    404,   None),
    ("POST",  "/v1/events",                             FIELD,   FIELD,   201, 201,   403,    403,   "reporter"),
    ("GET",   "/v1/events",                             READ,    READ,    OK,  OK,    HID,    HID,   "reporter"),
    ("GET",   "/v1/events/{event_id}",                  READ,    READ,    200, 200,   404,    404,   "reporter"),
    ("POST",  "/v1/events/{event_id}/transitions",      FIELD,   STAFF,   200, 200,   404,    404,   "reporter"),
    ("GET",   "/v1/workers",                            READ,    READ,    OK,  OK,    HID,    HID,   "staff"),
    ("POST",  "/v1/workers",                            STAFF,   STAFF,   201, 201,   422,    422,   "staff"),
    ("PATCH", "/v1/workers/{worker_id}",                READ,    STAFF,   200, 200,   404,    404,   "staff"),
    ("POST",  "/v1/workers/{worker_id}/positions",      FIELD,   STAFF,   200, 200,   404,    404,   None),
    ("GET",   "/v1/workers/positions/latest",           READ,    READ,    OK,  OK,    HID,    HID,   None),
    ("GET",   "/v1/workers/{worker_id}/track",          READ,    READ,    200, 200,   404,    404,   None),
    ("GET",   "/v1/grids/{code}/workers",               READ,    READ,    OK,  OK,    HID,    HID,   "staff"),
    ("GET",   "/v1/stats/kpis",                         READ,    READ,    200, 200,   200,    200,   None),
    ("GET",   "/v1/stats/heatmap",                      READ,    READ,    200, 200,   200,    200,   None),
    ("GET",   "/v1/stats/trend",                        READ,    READ,    200, 200,   200,    200,   None),
    ("GET",   "/v1/stats/top-grids",                    READ,    READ,    OK,  OK,    HID,    HID,   None),
    ("GET",   "/v1/stats/open-by-grid",                 READ,    READ,    OK,  OK,    HID,    HID,   None),
    ("GET",   "/open311/v2/requests.json",              READ,    READ,    OK,  OK,    HID,    HID,   None),
    ("POST",  "/open311/v2/requests.json",              FIELD,   FIELD,   200, 200,   403,    403,   None),
    ("GET",   "/open311/v2/requests/{request_id}.json", READ,    READ,    200, 200,   404,    404,   None),
    # dispatch: 12345 work orders, closed loop, big screen
    ("GET",   "/v1/feed",                               READ,    READ,    OK,  OK,    HID,    HID,   None),
    ("GET",   "/v1/stats/ranking",                      READ,    READ,    OK,  OK,    HID,    HID,   None),
    ("POST",  "/v1/work-orders",                        STAFF,   STAFF,   201, 201,   403,    403,   "caller"),
    ("GET",   "/v1/work-orders",                        READ,    READ,    OK,  OK,    HID,    HID,   "caller"),
    ("GET",   "/v1/work-orders/{order_no}",             READ,    READ,    200, 200,   404,    404,   "caller"),
    ("POST",  "/v1/work-orders/{order_no}/callback",    STAFF,   STAFF,   200, 200,   404,    404,   "caller"),
    ("GET",   "/v1/geocode",                            READ,    READ,    200, 200,   404,    404,   None),
    ("POST",  "/v1/events/{event_id}/supervise",        SUPERVISORS, SUPERVISORS, 201, 201, 404, 404, None),
    ("GET",   "/v1/events/{event_id}/supervisions",     READ,    READ,    200, 200,   404,    404,   None),
    ("POST",  "/v1/events/{event_id}/reopen",           STAFF,   STAFF,   200, 200,   404,    404,   "reporter"),
    ("GET",   "/v1/events/{event_id}/suggestions",      STAFF,   STAFF,   200, 200,   404,    404,   "staff"),
    ("GET",   "/v1/calendar",                           READ,    READ,    200, 200,   200,    200,   None),
    # one calendar for the deployment: only the root's admin (the "parent" district here) changes it
    ("PUT",   "/v1/calendar/{day}",                     ADMIN,   ADMIN,   403, 200,   403,    403,   None),
    ("GET",   "/v1/emergency",                          READ,    READ,    200, 200,   200,    200,   None),
    ("POST",  "/v1/emergency",                          WALL,    WALL,    200, 200,   200,    200,   None),
    ("GET",   "/v1/emergency/grids",                    READ,    READ,    200, 200,   200,    200,   None),
    ("GET",   "/v1/grids/{code}/panel",                 READ,    READ,    200, 200,   404,    404,   None),
    ("GET",   "/v1/stats/patrol-coverage",              READ,    READ,    200, 200,   404,    404,   None),
    ("POST",  "/v1/kiosk-tokens",                       WALL,    WALL,    201, 201,   201,    201,   None),
    ("GET",   "/v1/kiosk-tokens",                       WALL,    WALL,    OK,  OK,    HID,    HID,   None),
    ("DELETE", "/v1/kiosk-tokens/{token_id}",           WALL,    WALL,    200, 200,   404,    404,   None),
    ("GET",   "/v1/tiles/basemap/{z}/{x}/{y}.mvt",      READ,    READ,    200, 200,   200,    200,   None),
    # status back to the hotline: the webhook of an S1C1 hotline key, the delivery log of its orders (admin only)
    ("PUT",   "/v1/hotline/webhooks/{key_id}",          ADMIN,   ADMIN,   200, 200,   404,    404,   None),
    ("GET",   "/v1/hotline/webhooks",                   ADMIN,   ADMIN,   OK,  OK,    HID,    HID,   None),
    ("DELETE", "/v1/hotline/webhooks/{key_id}",         ADMIN,   ADMIN,   200, 200,   404,    404,   None),
    ("GET",   "/v1/hotline/deliveries",                 ADMIN,   ADMIN,   OK,  OK,    HID,    HID,   None),
    # planner: import, hand edits, staffing, rollback, export, the printed 网格图 (a plan of the street above is
    # readable by its community, its staff names are not: "plan_staff")
    ("POST",  "/v1/jurisdictions/{code}/grid-imports",  PLANNERS, PLANNERS, 201, 201, 404,    404,   None),
    ("POST",  "/v1/plans/{plan_id}/edits",              PLANNERS, PLANNERS, 201, 201, 404,    403,   None),
    ("POST",  "/v1/plans/{plan_id}/undo",               PLANNERS, PLANNERS, 201, 201, 404,    403,   None),
    ("GET",   "/v1/plans/{plan_id}/edits",              READ,    READ,    200, 200,   404,    200,   None),
    ("GET",   "/v1/plans/{plan_id}/move-options",       READ,    READ,    200, 200,   404,    200,   None),
    ("GET",   "/v1/plans/{plan_id}/staffing",           READ,    READ,    200, 200,   404,    200,   "plan_staff"),
    ("GET",   "/v1/plans/{plan_id}/publish-check",      READ,    READ,    200, 200,   404,    200,   None),
    ("GET",   "/v1/plans/{plan_id}/export",             READ,    READ,    200, 200,   404,    200,   "plan_staff"),
    ("GET",   "/v1/plans/{plan_id}/print/{community}",  READ,    READ,    200, 200,   404,    404,   None),
    ("POST",  "/v1/plans/{plan_id}/rollback",           PLANNERS, PLANNERS, 200, 200, 404,    403,   None),
    # public routes: the same answer with any credential or none
    ("GET",   "/healthz",                               None,    None,    200, 200,   200,    200,   None),
    ("GET",   "/readyz",                                None,    None,    200, 200,   200,    200,   None),
    ("GET",   "/v1/catalogue",                          None,    None,    200, 200,   200,    200,   None),
    ("GET",   "/open311/v2/services.json",              None,    None,    200, 200,   200,    200,   None),
    ("POST",  "/v1/auth/token",                         None,    None,    200, 200,   200,    200,   None),
]


def expected(row: tuple, role: str, relation: str):
    """The outcome a cell must have, read off its row."""
    _, _, gate, ok, *outcomes, _ = row
    out = dict(zip(RELATIONS, outcomes))[relation]
    if gate is None or role in ok:
        return out
    if role not in gate:
        return 403
    return 403 if out in (OK, HID) or (isinstance(out, int) and out < 300) or out == 403 else out


# --------------------------------------------------------------------------- the city


def centre(community: str, k: int) -> tuple[float, float]:
    i, j = (k - 1) % 4, (k - 1) // 4
    return X[community] + (i + 0.5) * DX, Y0 + (j + 0.5) * DY


def _jur(conn, code, name, level, geom, parent=None):
    conn.execute(text("""
        INSERT INTO jurisdictions (code, name, level, urban, parent_id, geom, created_by)
        VALUES (:c, :n, :l, true, (SELECT id FROM jurisdictions WHERE code = :p), ST_Multi(ST_GeomFromText(:g, 4326)),
                'test')
    """), {"c": code, "n": name, "l": level, "p": parent, "g": geom.wkt})


def _street_grids(street: str) -> gpd.GeoDataFrame:
    c1, c2 = (S1C1, S1C2) if street == S1 else (S2C1, S2C2)
    return gpd.GeoDataFrame(pd.concat([lattice(c1, X[c1], f"{c1}社区"), lattice(c2, X[c2], f"{c2}社区")],
                                      ignore_index=True), crs=4326)


def _event(conn, community: str, k: int, phone: str = REPORTER_PHONE, state: str = "reported") -> int:
    lon, lat = centre(community, k)
    return conn.execute(text("""
        INSERT INTO events (category, subtype, priority, source, state, description, reporter_name, reporter_phone,
            grid_code, plan_id, jurisdiction_id, jurisdiction_path, department, h3_7, h3_8, h3_9, h3_10,
            created_by, due_at, geom)
        SELECT 'incident', 'noise', 'normal', 'patrol', :st, '噪音扰民', '张三丰', :ph, CAST(:g AS text),
               (SELECT plan_id FROM grids WHERE code = CAST(:g AS text) ORDER BY plan_id DESC LIMIT 1), j.id, j.path, '城管',
               0, 0, 0, 0, 'test', now() + interval '1 day', ST_SetSRID(ST_MakePoint(:x, :y), 4326)
        FROM jurisdictions j WHERE j.code = :c RETURNING id
    """), {"st": state, "ph": phone, "g": f"{community}{k:03d}", "c": community, "x": lon, "y": lat}).scalar_one()


def _worker(conn, name, community, grids, role="full_time", on_duty=True) -> int:
    wid = conn.execute(text("""
        INSERT INTO workers (name, phone, role, jurisdiction_id, on_duty, created_by)
        VALUES (:n, :ph, :r, (SELECT id FROM jurisdictions WHERE code = :c), :d, 'test') RETURNING id
    """), {"n": name, "ph": WORKER_PHONE, "r": role, "c": community, "d": on_duty}).scalar_one()
    for g in grids:
        conn.execute(text("INSERT INTO worker_grids VALUES (:w, :g)"), {"w": wid, "g": g})
    conn.execute(text("INSERT INTO worker_positions (worker_id, ts, grid_code, geom) "
                      "VALUES (:w, now() - interval '5 minutes', :g, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
                 {"w": wid, "g": grids[0], "x": centre(grids[0][:12], int(grids[0][12:]))[0],
                  "y": centre(grids[0][:12], int(grids[0][12:]))[1]})
    return wid


@pytest.fixture
def city(engine, geo_env, monkeypatch):
    """The two-street city, a login and an API key for every role at every relation, and a client."""
    from fastapi.testclient import TestClient

    from geo.api.main import create_app
    from geo.config import reset_settings
    from geo.db import plans
    from geo.db.loads import rebuild_paths
    from geo.db.users import add_api_key, add_user

    with engine.begin() as conn:
        _jur(conn, DISTRICT, "示范区", "district", box(114.2, Y0, 114.6, Y0 + 0.2))
        for street, c1, c2 in ((S1, S1C1, S1C2), (S2, S2C1, S2C2)):
            _jur(conn, street, f"{street}街道", "street", box(X[c1], Y0, X[c2] + 0.1, Y0 + 0.2), DISTRICT)
            for c in (c1, c2):
                _jur(conn, c, f"{c}社区", "community", box(X[c], Y0, X[c] + 0.1, Y0 + 0.2), street)
        rebuild_paths(conn)
    ctx = {"plan": {}}
    for street in (S1, S2):
        pid = plans.write_plan(engine, street, _street_grids(street), actor="test", params={}, quality={})
        plans.publish(engine, pid, "test")
        ctx["plan"][street] = pid
    ctx["draft"] = plans.write_plan(engine, S1, _street_grids(S1), actor="test", params={}, quality={})
    add_user(engine, "linkable", PASSWORD, "worker", S1C1, actor="test")
    with engine.begin() as conn:
        ctx["chief"] = _worker(conn, "王网格长", S1C1, [f"{S1C1}001", f"{S1C1}002"], role="chief")
        ctx["worker"] = _worker(conn, "李网格员", S1C1, [f"{S1C1}001"])
        _worker(conn, "陈网格员", S2C1, [f"{S2C1}001"])
        ctx["event"] = _event(conn, S1C1, 6)
        ctx["short_event"] = _event(conn, S1C1, 7, phone=SHORT_PHONE)
        _event(conn, S2C1, 6)
        ctx["job"] = conn.execute(text("INSERT INTO partition_jobs (jurisdiction_id, params, created_by) "
                                       "SELECT id, '{}'::jsonb, 'test' FROM jurisdictions WHERE code = :c RETURNING id"),
                                  {"c": S1}).scalar_one()
    ctx["kiosk"] = _kiosk(engine)
    creds = {}
    for role, rel in itertools.product(ROLES, RELATIONS):
        with password_hashed_once():
            add_user(engine, f"{role}_{rel}", PASSWORD, role, CALLER_AT[rel], actor="test")
        creds[(role, rel, "key")] = {"X-API-Key": add_api_key(engine, f"{role}_{rel}", role, CALLER_AT[rel],
                                                              actor="test")}
    monkeypatch.setenv("GEO_DEMO", "1")
    monkeypatch.setenv("GEO_PUBLISH_SWITCH_SECONDS", "0")
    reset_settings()
    with TestClient(create_app(listen=False)) as client:
        for role, rel in itertools.product(ROLES, RELATIONS):
            r = client.post("/v1/auth/token", data={"username": f"{role}_{rel}", "password": PASSWORD})
            assert r.status_code == 200, r.text
            creds[(role, rel, "login")] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        ctx.update(client=client, engine=engine, creds=creds)
        ctx["order"] = _fresh_order(ctx)
        ctx["hook_key"], ctx["delivery"] = _hotline_delivery(ctx)
        yield ctx


# --------------------------------------------------------------------------- one request per route


def _fresh_event(ctx) -> int:
    with ctx["engine"].begin() as conn:
        return _event(conn, S1C1, 10)


def _fresh_job(engine) -> int:
    """A queued partition job of S1 (not yet on the queue: cancelling it is immediate)."""
    with engine.begin() as conn:
        return conn.execute(text("INSERT INTO partition_jobs (jurisdiction_id, params, created_by) "
                                 "SELECT id, '{}'::jsonb, 'test' FROM jurisdictions WHERE code = :c RETURNING id"),
                            {"c": S1}).scalar_one()


def _import_file() -> bytes:
    g = _street_grids(S1).drop(columns=["kind"])
    return g.to_json().encode()


def _edited_draft(ctx) -> int:
    """A draft of S1 with one hand edit (a rename), for undo."""
    from geo.db.edits import apply_edit

    return apply_edit(ctx["engine"], _fresh_draft(ctx), {"op": "rename", "code": G1, "name": "改名网格"},
                      "test")["plan_id"]


def _retired_plan(ctx) -> int:
    """Publish a fresh draft of S1, so that the plan in force before it is retired: the one to roll back to."""
    from geo.db import plans

    with ctx["engine"].connect() as conn:
        old = conn.execute(text("SELECT p.id FROM grid_plans p JOIN jurisdictions j ON j.id = p.jurisdiction_id "
                                "WHERE j.code = :c AND p.status = 'published'"), {"c": S1}).scalar_one()
    plans.publish(ctx["engine"], _fresh_draft(ctx), "test")
    return old


def _fresh_draft(ctx) -> int:
    from geo.db import plans

    return plans.write_plan(ctx["engine"], S1, _street_grids(S1), actor="test", params={}, quality={})


def _kiosk(engine) -> int:
    from geo.db.users import add_api_key

    name = f"kiosk:S1C1-wall-{next(_n)}"
    add_api_key(engine, name, "leader", S1C1, actor="test")
    with engine.connect() as conn:
        return conn.execute(text("SELECT max(id) FROM api_keys WHERE name = :n"), {"n": name}).scalar_one()


def _fresh_order(ctx, resolved: bool = False) -> str:
    """A 12345 order in S1C1 taken in by the city's dispatcher (optionally with its event resolved)."""
    lon, lat = centre(S1C1, 14)
    r = ctx["client"].post("/v1/work-orders", headers=ctx["creds"][("dispatcher", "parent", "login")],
                           json=_order_body(lon, lat))
    assert r.status_code == 201, r.text
    if resolved:
        with ctx["engine"].begin() as conn:
            conn.execute(text("UPDATE events SET state = 'resolved', resolved_at = now() WHERE id = :e"),
                         {"e": r.json()["event_id"]})
    return r.json()["order_no"]


def _hotline_key(ctx) -> tuple[str, int]:
    """A dispatcher API key of S1C1 (a hotline's) with a webhook: (the key, its id)."""
    from geo.db.users import add_api_key

    key = add_api_key(ctx["engine"], f"S1C1热线{next(_n)}", "dispatcher", S1C1, actor="test")
    with ctx["engine"].begin() as conn:
        kid = conn.execute(text("SELECT id FROM api_keys WHERE prefix = :p ORDER BY id DESC LIMIT 1"),
                           {"p": key[:8]}).scalar_one()
        conn.execute(text("INSERT INTO hotline_webhooks (api_key_id, url, secret, created_by, updated_by) "
                          "VALUES (:k, 'http://127.0.0.1:9/none', 'matrix-secret-0123456789', 'test', 'test')"),
                     {"k": kid})
    return key, kid


def _fresh_hook(ctx) -> int:
    return _hotline_key(ctx)[1]


def _hotline_delivery(ctx) -> tuple[int, int]:
    """An S1C1 order taken in by a hotline key with a webhook, and the delivery of its first status change:
    (the key's id, the delivery's id)."""
    key, kid = _hotline_key(ctx)
    r = ctx["client"].post("/v1/work-orders", headers={"X-API-Key": key}, json=_order_body(*centre(S1C1, 13)))
    assert r.status_code == 201, r.text
    r = ctx["client"].post(f"/v1/events/{r.json()['event_id']}/transitions", json={"to": "accepted"},
                           headers=ctx["creds"][("dispatcher", "own", "login")])
    assert r.status_code == 200, r.text
    with ctx["engine"].connect() as conn:
        did = conn.execute(text("SELECT d.id FROM hotline_deliveries d JOIN hotline_webhooks h ON h.id = d.webhook_id "
                                "WHERE h.api_key_id = :k"), {"k": kid}).scalar_one()
    return kid, did


def _order_body(lon, lat) -> dict:
    return {"order_no": f"M-{next(_n)}", "called_at": datetime.now(timezone.utc).isoformat(), "appeal_type": "投诉",
            "category": "incident", "subtype": "noise", "content": "楼下噪音", "lon": lon, "lat": lat,
            "caller_name": CALLER_NAME, "caller_phone": REPORTER_PHONE}


def _fresh_event_in(ctx, state: str = "reported", overdue: bool = False) -> int:
    with ctx["engine"].begin() as conn:
        eid = _event(conn, S1C1, 9, state=state)
        if overdue:
            conn.execute(text("UPDATE events SET due_at = now() - interval '1 hour' WHERE id = :e"), {"e": eid})
    return eid


def _no_emergency(ctx) -> None:
    """POST /v1/emergency switches on: start every cell from no mode at all."""
    with ctx["engine"].begin() as conn:
        conn.execute(text("DELETE FROM emergency_modes"))


_n = itertools.count()
G1 = f"{S1C1}001"
LON, LAT = centre(S1C1, 1)


def _event_body():
    lon, lat = centre(S1C1, 11)
    return {"category": "incident", "subtype": "noise", "source": "patrol", "lon": lon, "lat": lat,
            "reporter_name": "李四光", "reporter_phone": REPORTER_PHONE}


#: (method, path) → ctx → (url, keyword arguments of the request)
REQUESTS = {
    ("GET", "/v1/auth/me"): lambda c: ("/v1/auth/me", {}),
    ("GET", "/v1/lookup"): lambda c: ("/v1/lookup", {"params": {"lon": LON, "lat": LAT}}),
    ("POST", "/v1/lookup/batch"): lambda c: ("/v1/lookup/batch", {"json": {"points": [[LON, LAT]]}}),
    ("GET", "/v1/jurisdictions"): lambda c: ("/v1/jurisdictions", {}),
    ("GET", "/v1/jurisdictions/{code}"): lambda c: (f"/v1/jurisdictions/{S1C1}", {}),
    ("GET", "/v1/jurisdictions/{code}/plans"): lambda c: (f"/v1/jurisdictions/{S1}/plans", {}),
    ("GET", "/v1/plans/{plan_id}"): lambda c: (f"/v1/plans/{c['plan'][S1]}", {}),
    ("GET", "/v1/plans/{a}/diff/{b}"): lambda c: (f"/v1/plans/{c['plan'][S1]}/diff/{c['draft']}", {}),
    ("POST", "/v1/plans/{plan_id}/publish"): lambda c: (f"/v1/plans/{_fresh_draft(c)}/publish", {
        "json": {"override_unstaffed": True, "reason": "矩阵测试"}}),
    ("GET", "/v1/plans/{plan_id}/grids"): lambda c: (f"/v1/plans/{c['plan'][S1]}/grids", {}),
    ("GET", "/v1/grids"): lambda c: ("/v1/grids", {}),
    ("GET", "/v1/grids/{code}"): lambda c: (f"/v1/grids/{G1}", {}),
    ("GET", "/v1/tiles/{z}/{x}/{y}.mvt"): lambda c: ("/v1/tiles/10/836/424.mvt", {}),
    ("POST", "/v1/jurisdictions/{code}/partition"): lambda c: (f"/v1/jurisdictions/{S1}/partition", {"json": {}}),
    ("GET", "/v1/jobs/{job_id}"): lambda c: (f"/v1/jobs/{c['job']}", {}),
    ("POST", "/v1/jobs/{job_id}/cancel"): lambda c: (f"/v1/jobs/{_fresh_job(c['engine'])}/cancel", {}),
    ("POST", "/v1/events"): lambda c: ("/v1/events", {"json": _event_body()}),
    ("GET", "/v1/events"): lambda c: ("/v1/events", {"params": {"limit": 5000}}),
    ("GET", "/v1/events/{event_id}"): lambda c: (f"/v1/events/{c['event']}", {}),
    ("POST", "/v1/events/{event_id}/transitions"): lambda c: (f"/v1/events/{_fresh_event(c)}/transitions",
                                                              {"json": {"to": "accepted"}}),
    ("GET", "/v1/workers"): lambda c: ("/v1/workers", {}),
    ("POST", "/v1/workers"): lambda c: ("/v1/workers", {"json": {
        "name": f"新网格员{next(_n)}", "phone": WORKER_PHONE, "role": "auxiliary", "jurisdiction_code": S1C1,
        "grid_codes": [f"{S1C1}003"], "username": "linkable"}}),
    ("PATCH", "/v1/workers/{worker_id}"): lambda c: (f"/v1/workers/{c['chief']}", {"json": {"on_duty": True}}),
    ("POST", "/v1/workers/{worker_id}/positions"): lambda c: (f"/v1/workers/{c['worker']}/positions", {"json": {
        "fixes": [{"ts": datetime.now(timezone.utc).isoformat(), "lon": LON, "lat": LAT}]}}),
    ("GET", "/v1/workers/positions/latest"): lambda c: ("/v1/workers/positions/latest", {}),
    ("GET", "/v1/workers/{worker_id}/track"): lambda c: (f"/v1/workers/{c['worker']}/track",
                                                         {"params": {"day": datetime.now(timezone.utc).date()
                                                                     .isoformat()}}),
    ("GET", "/v1/grids/{code}/workers"): lambda c: (f"/v1/grids/{G1}/workers", {}),
    ("GET", "/v1/stats/kpis"): lambda c: ("/v1/stats/kpis", {}),
    ("GET", "/v1/stats/heatmap"): lambda c: ("/v1/stats/heatmap", {}),
    ("GET", "/v1/stats/trend"): lambda c: ("/v1/stats/trend", {}),
    ("GET", "/v1/stats/top-grids"): lambda c: ("/v1/stats/top-grids", {"params": {"n": 100}}),
    ("GET", "/v1/stats/open-by-grid"): lambda c: ("/v1/stats/open-by-grid", {}),
    ("GET", "/open311/v2/requests.json"): lambda c: ("/open311/v2/requests.json", {}),
    ("POST", "/open311/v2/requests.json"): lambda c: ("/open311/v2/requests.json", {"data": {
        "service_code": "incident.noise", "long": centre(S1C1, 12)[0], "lat": centre(S1C1, 12)[1]}}),
    ("GET", "/open311/v2/requests/{request_id}.json"): lambda c: (f"/open311/v2/requests/{c['event']}.json", {}),
    ("GET", "/v1/feed"): lambda c: ("/v1/feed", {"params": {"limit": 500}}),
    ("GET", "/v1/stats/ranking"): lambda c: ("/v1/stats/ranking", {"params": {"by": "community"}}),
    ("POST", "/v1/work-orders"): lambda c: ("/v1/work-orders", {"json": _order_body(*centre(S1C1, 15))}),
    ("GET", "/v1/work-orders"): lambda c: ("/v1/work-orders", {"params": {"limit": 1000}}),
    ("GET", "/v1/work-orders/{order_no}"): lambda c: (f"/v1/work-orders/{c['order']}", {}),
    ("POST", "/v1/work-orders/{order_no}/callback"): lambda c: (
        f"/v1/work-orders/{_fresh_order(c, resolved=True)}/callback", {"json": {"satisfaction": 4}}),
    ("GET", "/v1/geocode"): lambda c: ("/v1/geocode", {"params": {"q": "路", "jurisdiction": S1C1}}),
    ("POST", "/v1/events/{event_id}/supervise"): lambda c: (
        f"/v1/events/{_fresh_event_in(c, overdue=True)}/supervise", {"json": {"kind": "overdue"}}),
    ("GET", "/v1/events/{event_id}/supervisions"): lambda c: (f"/v1/events/{c['event']}/supervisions", {}),
    ("POST", "/v1/events/{event_id}/reopen"): lambda c: (
        f"/v1/events/{_fresh_event_in(c, state='resolved')}/reopen", {"json": {"reason": "复查未改"}}),
    ("GET", "/v1/events/{event_id}/suggestions"): lambda c: (f"/v1/events/{c['event']}/suggestions", {}),
    ("GET", "/v1/calendar"): lambda c: ("/v1/calendar", {"params": {"from": "2026-10-01", "to": "2026-10-07"}}),
    ("PUT", "/v1/calendar/{day}"): lambda c: ("/v1/calendar/2026-10-10", {"json": {"workday": True, "name": "调休"}}),
    ("GET", "/v1/emergency"): lambda c: ("/v1/emergency", {}),
    ("POST", "/v1/emergency"): lambda c: (_no_emergency(c) or "/v1/emergency",
                                          {"json": {"active": True, "reason": "防汛"}}),
    ("GET", "/v1/emergency/grids"): lambda c: ("/v1/emergency/grids", {}),
    ("GET", "/v1/grids/{code}/panel"): lambda c: (f"/v1/grids/{G1}/panel", {}),
    ("GET", "/v1/stats/patrol-coverage"): lambda c: ("/v1/stats/patrol-coverage", {"params": {"grid": G1}}),
    ("POST", "/v1/kiosk-tokens"): lambda c: ("/v1/kiosk-tokens", {"json": {"name": f"大屏{next(_n)}"}}),
    ("GET", "/v1/kiosk-tokens"): lambda c: ("/v1/kiosk-tokens", {}),
    ("DELETE", "/v1/kiosk-tokens/{token_id}"): lambda c: (f"/v1/kiosk-tokens/{_kiosk(c['engine'])}", {}),
    ("GET", "/v1/tiles/basemap/{z}/{x}/{y}.mvt"): lambda c: ("/v1/tiles/basemap/10/836/424.mvt", {}),
    ("PUT", "/v1/hotline/webhooks/{key_id}"): lambda c: (f"/v1/hotline/webhooks/{c['hook_key']}", {
        "json": {"url": "http://127.0.0.1:9/hotline"}}),
    ("GET", "/v1/hotline/webhooks"): lambda c: ("/v1/hotline/webhooks", {}),
    ("DELETE", "/v1/hotline/webhooks/{key_id}"): lambda c: (f"/v1/hotline/webhooks/{_fresh_hook(c)}", {}),
    ("GET", "/v1/hotline/deliveries"): lambda c: ("/v1/hotline/deliveries", {"params": {"limit": 1000}}),
    ("POST", "/v1/jurisdictions/{code}/grid-imports"): lambda c: (f"/v1/jurisdictions/{S1}/grid-imports", {
        "files": {"file": ("grids.geojson", _import_file(), "application/geo+json")}, "data": {"dry_run": "true"}}),
    ("POST", "/v1/plans/{plan_id}/edits"): lambda c: (f"/v1/plans/{_fresh_draft(c)}/edits", {
        "json": {"op": "rename", "code": G1, "name": "新名网格"}}),
    ("POST", "/v1/plans/{plan_id}/undo"): lambda c: (f"/v1/plans/{_edited_draft(c)}/undo", {}),
    ("GET", "/v1/plans/{plan_id}/edits"): lambda c: (f"/v1/plans/{c['plan'][S1]}/edits", {}),
    ("GET", "/v1/plans/{plan_id}/move-options"): lambda c: (f"/v1/plans/{c['plan'][S1]}/move-options", {
        "params": {"grid": G1}}),
    ("GET", "/v1/plans/{plan_id}/staffing"): lambda c: (f"/v1/plans/{c['plan'][S1]}/staffing", {}),
    ("GET", "/v1/plans/{plan_id}/publish-check"): lambda c: (f"/v1/plans/{c['draft']}/publish-check", {}),
    ("GET", "/v1/plans/{plan_id}/export"): lambda c: (f"/v1/plans/{c['plan'][S1]}/export", {
        "params": {"format": "csv"}}),
    ("GET", "/v1/plans/{plan_id}/print/{community}"): lambda c: (f"/v1/plans/{c['plan'][S1]}/print/{S1C1}", {}),
    ("POST", "/v1/plans/{plan_id}/rollback"): lambda c: (f"/v1/plans/{_retired_plan(c)}/rollback", {
        "json": {"override_unstaffed": True, "reason": "矩阵测试回退"}}),
    ("GET", "/healthz"): lambda c: ("/healthz", {}),
    ("GET", "/readyz"): lambda c: ("/readyz", {}),
    ("GET", "/v1/catalogue"): lambda c: ("/v1/catalogue", {}),
    ("GET", "/open311/v2/services.json"): lambda c: ("/open311/v2/services.json", {}),
    ("POST", "/v1/auth/token"): lambda c: ("/v1/auth/token", {"data": {"username": "linkable", "password": PASSWORD}}),
}


# --------------------------------------------------------------------------- what a body shows


def target_shown(path: str, body, ctx) -> bool:
    """Is the S1C1 target of a listing route in its answer?"""
    if path == "/v1/lookup" or path == "/v1/grids/{code}":
        return body["chief"] is not None
    if path == "/v1/jurisdictions":
        return any(j["code"] == S1C1 for j in body)
    if path in ("/v1/grids", "/v1/plans/{plan_id}/grids"):
        return any(f["id"] == G1 for f in body["features"])
    if path == "/v1/events":
        return any(e["id"] == ctx["event"] for e in body["items"])
    if path in ("/v1/workers", "/v1/grids/{code}/workers", "/v1/workers/positions/latest"):
        return any(w["id"] == ctx["chief"] for w in body)
    if path == "/v1/stats/top-grids":
        return any(g["grid_code"].startswith(S1C1) for g in body)
    if path == "/v1/stats/open-by-grid":
        return any(k.startswith(S1C1) for k in body)
    if path == "/open311/v2/requests.json":
        return any(r["service_request_id"] == str(ctx["event"]) for r in body)
    if path == "/v1/feed":
        return any(i["event_id"] == ctx["event"] for i in body["items"])
    if path == "/v1/stats/ranking":
        return any(i["code"] == S1C1 for i in body["items"])
    if path == "/v1/work-orders":
        return any(o["order_no"] == ctx["order"] for o in body["items"])
    if path == "/v1/kiosk-tokens":
        return any(k["id"] == ctx["kiosk"] for k in body)
    if path == "/v1/hotline/webhooks":
        return any(w["api_key_id"] == ctx["hook_key"] for w in body)
    if path == "/v1/hotline/deliveries":
        return any(d["id"] == ctx["delivery"] for d in body["items"])
    raise AssertionError(f"no presence check for {path}")


def _masked(value: str, original: str) -> bool:
    return value != original and len(value) == len(original) and "*" in value


def check_pii(check: str | None, path: str, body, role: str, relation: str, ctx) -> None:
    """Personal data in a successful body: staff only inside the subtree; masking per role."""
    if check == "staff":
        if path in ("/v1/lookup", "/v1/grids/{code}"):
            people = ([body["chief"]] if body["chief"] else []) + (body["workers_on_duty"] or [])
        elif path == "/v1/events/{event_id}/suggestions":
            people = body["items"]
        elif isinstance(body, list):  # GET /v1/workers, /v1/grids/{code}/workers
            people = body
        else:  # one worker
            people = [body]
        if relation in ("sibling", "child"):
            assert not any(w.get("name") in ("王网格长", "李网格员") for w in people), (path, role, relation, people)
            if path in ("/v1/lookup", "/v1/grids/{code}"):
                assert body["chief"] is None and body["workers_on_duty"] is None and body.get("workers") is None
        for w in people:
            if role in SEE_STAFF_PHONES:
                assert w["phone"] == WORKER_PHONE, (path, role, w)
            else:
                assert _masked(w["phone"], WORKER_PHONE), (path, role, w)
    elif check == "plan_staff":  # a plan's staff (staffing JSON, export CSV): names only inside the subtree
        shown = "王网格长" in (body if isinstance(body, str) else json.dumps(body, ensure_ascii=False))
        assert shown == (relation in ("own", "parent")), (path, role, relation)
    elif check == "caller":  # 12345 callers: the reporters' rule
        items = body["items"] if "items" in body else [body]
        assert items or relation in ("sibling", "child"), (path, role, relation)
        for o in items:
            if role in SEE_REPORTERS:
                assert (o["caller_name"], o["caller_phone"]) == (CALLER_NAME, REPORTER_PHONE), (path, role, o)
            else:
                assert _masked(o["caller_phone"], REPORTER_PHONE) and o["caller_name"] == "赵*", (path, role, o)
    elif check == "reporter":
        items = body["items"] if "items" in body else [body]
        clear = role in SEE_REPORTERS
        for e in items:
            original = SHORT_PHONE if e["id"] == ctx["short_event"] else REPORTER_PHONE
            if e["reporter_phone"] is None:
                continue
            if clear:
                assert e["reporter_phone"] == original, (path, role, e["reporter_phone"])
            else:
                assert _masked(e["reporter_phone"], original), (path, role, e["reporter_phone"])
                name = e["reporter_name"]  # 张三丰 → 张**, a 12345 caller's 赵六 → 赵*
                assert name[0] in "张李赵" and set(name[1:]) == {"*"}, (path, role, e)


# --------------------------------------------------------------------------- the tests


def _routes(app) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}


def test_every_route_has_a_row():
    """A new route (in the OpenAPI) fails here until it has a row in TABLE and a request in REQUESTS."""
    from geo.api.main import create_app
    from geo.config import Settings

    app = create_app(Settings(GEO_DEMO=True), listen=False)
    rows = {(r[0], r[1]) for r in TABLE}
    assert len(rows) == len(TABLE), "a route has two rows"
    assert _routes(app) - rows == set(), "routes without a row in the access matrix"
    assert rows - _routes(app) == set(), "rows for routes that no longer exist"
    assert set(REQUESTS) == rows


def test_access_matrix(city, capsys):
    client, creds = city["client"], city["creds"]
    assert {(r[0], r[1]) for r in TABLE} == _routes(client.app)
    cells, failures, tally = 0, [], Counter()
    cross_pii, cross_writes = Counter({k: 0 for k in KINDS}), Counter({k: 0 for k in KINDS})
    for row in TABLE:
        method, path, gate, *_, check = row
        combos = list(itertools.product(ROLES, RELATIONS, KINDS))
        for role, rel, kind in combos:
            url, kw = REQUESTS[(method, path)](city)
            want = expected(row, role, rel)
            r = client.request(method, url, headers=creds[(role, rel, kind)], **kw)
            cells += 1
            got = r.status_code
            # counted on every answer, whatever the table expects (a wrong row cannot hide a leak)
            writes = method != "GET" and path not in READ_ONLY_POSTS and gate is not None
            cross = rel in ("sibling", "child")  # the S1C1 targets lie outside the caller's subtree
            if cross and writes and got < 300 and path not in OWN_JURISDICTION_WRITES:
                cross_writes[kind] += 1
                failures.append((method, path, role, rel, kind, "no cross-jurisdiction write", got, ""))
            if cross and got < 300 and any(m in r.text for m in PII_MARKERS):
                cross_pii[kind] += 1
                failures.append((method, path, role, rel, kind, "no cross-jurisdiction PII", got, r.text[:200]))
            if want in (OK, HID):
                if got >= 300:
                    failures.append((method, path, role, rel, kind, want, got, r.text[:200]))
                    continue
                shown = target_shown(path, r.json(), city)
                if shown != (want == OK):
                    failures.append((method, path, role, rel, kind, want, "shown" if shown else "hidden", ""))
                    continue
            elif got != want:
                failures.append((method, path, role, rel, kind, want, got, r.text[:200]))
                continue
            if got < 300 and check:
                try:
                    body = r.json() if "json" in r.headers.get("content-type", "") else r.text
                    check_pii(check, path, body, role, rel, city)
                except (AssertionError, KeyError, TypeError) as exc:
                    failures.append((method, path, role, rel, kind, "pii", repr(exc)[:300], ""))
                    continue
            tally[(kind, "2xx" if got < 300 else str(got))] += 1
    with capsys.disabled():
        print(f"\naccess matrix: {cells} cells ({len(TABLE)} routes × {len(ROLES)} roles × {len(RELATIONS)} "
              f"relations × {len(KINDS)} credential kinds); outcomes {dict(sorted(tally.items()))}; "
              f"cross-jurisdiction PII reads {dict(cross_pii)}, cross-jurisdiction writes {dict(cross_writes)}; "
              f"{len(failures)} failures")
    assert not failures, "\n".join(map(str, failures[:40]))
    # login and key columns are the same table entry: their tallies must agree exactly
    assert {k[1]: v for k, v in tally.items() if k[0] == "login"} == \
        {k[1]: v for k, v in tally.items() if k[0] == "key"}
    # and nothing leaked across streets through writes
    with city["engine"].connect() as conn:
        n = conn.execute(text("""
            SELECT count(*) FROM audit_log a WHERE a.outcome = 'ok' AND (a.actor LIKE '%\\_sibling' OR a.actor LIKE
            '%\\_child') AND a.action NOT IN ('login', 'emergency.on', 'apikey.add')""")).scalar_one()
        # the writes on the caller's own jurisdiction stayed there
        own = conn.execute(text("""
            SELECT count(*) FROM audit_log a JOIN jurisdictions j ON j.id = a.jurisdiction_id
            WHERE a.outcome = 'ok' AND a.action IN ('emergency.on', 'apikey.add')
              AND (a.actor LIKE '%\\_sibling' OR a.actor LIKE '%\\_child') AND j.code NOT IN (:s2, :c2)
        """), {"s2": S2, "c2": S1C2}).scalar_one()
        assert own == 0
        assert conn.execute(text("""SELECT count(*) FROM api_keys k JOIN jurisdictions j ON j.id = k.jurisdiction_id
            WHERE (k.created_by LIKE '%\\_sibling' OR k.created_by LIKE '%\\_child') AND j.code NOT IN (:s2, :c2)"""),
            {"s2": S2, "c2": S1C2}).scalar_one() == 0
        created = conn.execute(text("SELECT count(*) FROM events e WHERE e.created_by LIKE '%\\_sibling' OR "
                                    "e.created_by LIKE '%\\_child'")).scalar_one()
    assert (n, created) == (0, 0)


def test_worker_credentials_act_only_for_their_own_worker(city):
    """A worker login linked to a worker sends its own GPS and moves events assigned to it; an API key of
    the worker role (linked to no worker) can do neither — for any worker, including that one."""
    client, engine = city["client"], city["engine"]
    from geo.db.users import add_api_key

    with engine.begin() as conn:
        conn.execute(text("UPDATE workers SET user_id = (SELECT id FROM users WHERE username = 'linkable') "
                          "WHERE id = :w"), {"w": city["worker"]})
        eid = _event(conn, S1C1, 1, state="dispatched")
        conn.execute(text("UPDATE events SET assignee_worker_id = :w WHERE id = :e"), {"w": city["worker"], "e": eid})
        unassigned = _event(conn, S1C1, 2, state="dispatched")
    r = client.post("/v1/auth/token", data={"username": "linkable", "password": PASSWORD})
    login = {"Authorization": f"Bearer {r.json()['access_token']}"}
    key = {"X-API-Key": add_api_key(engine, "worker-device", "worker", S1C1, actor="test")}
    fix = {"fixes": [{"ts": datetime.now(timezone.utc).isoformat(), "lon": LON, "lat": LAT}]}
    assert client.post(f"/v1/workers/{city['worker']}/positions", json=fix, headers=login).status_code == 200
    for h in (login, key):
        assert client.post(f"/v1/workers/{city['chief']}/positions", json=fix, headers=h).status_code == 403
        r = client.post(f"/v1/events/{unassigned}/transitions", json={"to": "in_progress"}, headers=h)
        assert r.status_code == 403, r.text
    assert client.post(f"/v1/workers/{city['worker']}/positions", json=fix, headers=key).status_code == 403
    assert client.post(f"/v1/events/{eid}/transitions", json={"to": "in_progress"}, headers=key).status_code == 403
    assert client.post(f"/v1/events/{eid}/transitions", json={"to": "in_progress"}, headers=login).status_code == 200
    assert client.patch(f"/v1/workers/{city['worker']}", json={"on_duty": False}, headers=login).status_code == 200
    assert client.patch(f"/v1/workers/{city['worker']}", json={"phone": "1"}, headers=login).status_code == 403


def test_worker_writes_check_every_referenced_object(city):
    """A street's dispatcher cannot register staff on the neighbour's grids or link the neighbour's login."""
    client, creds, engine = city["client"], city["creds"], city["engine"]
    from geo.db.users import add_user

    add_user(engine, "s2_login", PASSWORD, "worker", S2C1, actor="test")
    for kind in KINDS:
        h = creds[("dispatcher", "own", kind)]
        base = {"name": "假网格员", "role": "auxiliary", "jurisdiction_code": S1C1, "on_duty": True}
        for extra, field in (({"grid_codes": [f"{S1C1}004", f"{S2C1}001"]}, "grid_codes"),
                             ({"username": "s2_login"}, "username"),
                             ({"jurisdiction_code": S2C1}, "jurisdiction_code")):
            r = client.post("/v1/workers", json={**base, **extra}, headers=h)
            assert r.status_code == 422 and r.json()["details"][0]["field"] == field, r.text
        r = client.patch(f"/v1/workers/{city['chief']}", json={"grid_codes": [f"{S2C1}002"]}, headers=h)
        assert r.status_code == 422, r.text
        r = client.post(f"/v1/events/{_fresh_event(city)}/transitions", headers=h, json={"to": "accepted"})
        assert r.status_code == 200
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM worker_grids WHERE grid_code LIKE :p || '%' AND worker_id IN "
                                 "(SELECT id FROM workers WHERE created_by <> 'test')"), {"p": S2C1}).scalar() == 0
        denied = conn.execute(text("SELECT count(*) FROM audit_log WHERE outcome = 'denied' AND "
                                   "actor LIKE '%dispatcher_own'")).scalar()
    assert denied >= 8


def test_duplicate_suggestions_from_another_street_are_not_shown(city):
    client, creds, engine = city["client"], city["creds"], city["engine"]
    with engine.begin() as conn:
        mine, theirs = _event(conn, S1C1, 16), _event(conn, S2C1, 13)
        conn.execute(text("UPDATE events SET duplicate_of = CAST(:d AS jsonb) WHERE id = :e"),
                     {"d": json.dumps([theirs, city["event"]]), "e": mine})
    for kind in KINDS:
        body = client.get(f"/v1/events/{mine}", headers=creds[("dispatcher", "own", kind)]).json()
        assert [d["id"] for d in body["possible_duplicates"]] == [city["event"]]
        body = client.get(f"/v1/events/{mine}", headers=creds[("dispatcher", "parent", kind)]).json()
        assert [d["id"] for d in body["possible_duplicates"]] == sorted([theirs, city["event"]])


@pytest.mark.parametrize("phone,masked", [("13912345678", "139****5678"), ("12345", "****5"), ("110", "***"),
                                          ("0271234567", "*******567"), ("+86 139 1234 5678", "+86**********5678")])
def test_phone_masking_never_shows_a_short_number_whole(phone, masked):
    assert policy.mask_phone(phone) == masked


def test_kiosk_token_reads_like_a_leader_login(city):
    """A kiosk token (made by a leader through POST /v1/kiosk-tokens) is an API key of the leader role: on
    every read route and at every relation it gets what a leader login gets, and it writes nothing."""
    client, creds = city["client"], city["creds"]
    compared = 0
    for rel in RELATIONS:
        r = client.post("/v1/kiosk-tokens", json={"name": f"墙{rel}"}, headers=creds[("leader", rel, "login")])
        assert r.status_code == 201 and r.json()["role"] == "leader", r.text
        kiosk = {"X-API-Key": r.json()["token"]}
        for row in TABLE:
            method, path, gate = row[0], row[1], row[2]
            if gate is None or (method != "GET" and path not in READ_ONLY_POSTS):
                continue
            url, kw = REQUESTS[(method, path)](city)
            a = client.request(method, url, headers=creds[("leader", rel, "login")], **kw)
            b = client.request(method, url, headers=kiosk, **kw)
            assert a.status_code == b.status_code, (path, rel, a.status_code, b.status_code, b.text[:200])
            if expected(row, "leader", rel) in (OK, HID):
                assert target_shown(path, a.json(), city) == target_shown(path, b.json(), city), (path, rel)
            compared += 1
        # and a leader's rights only: no event, no worker, no 12345 order
        assert client.post("/v1/events", json=_event_body(), headers=kiosk).status_code == 403
        assert client.post("/v1/work-orders", json=_order_body(*centre(S1C1, 15)), headers=kiosk).status_code == 403
    assert compared > 4 * 30
