"""RBAC: each role × own / sibling jurisdiction × read / write. Cross-jurisdiction writes are all refused
(404 for objects the caller may not see, 403 for a location it may see but not write to, 422 for a body
naming an object outside its subtree), and every refusal is in the audit log. The full route × role ×
jurisdiction matrix is tests/api/test_matrix.py."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from geo.db.users import add_user
from tests.api.conftest import COMM_A, COMM_B, PASSWORD, X0, centre, lattice, token

ROLES = ["admin", "planner", "dispatcher", "worker", "leader"]
# what a write by each role is, and the status it gets in its own community
OWN_WRITE = {"admin": 201, "planner": 200, "dispatcher": 201, "worker": 201, "leader": 403}


@pytest.fixture
def matrix(world, engine, client):
    from geo.db import plans

    for role in ROLES:
        add_user(engine, f"{role}_a", PASSWORD, role, COMM_A, actor="test")
    drafts = {c: plans.write_plan(engine, c, lattice(c, X0 if c == COMM_A else X0 + 0.1, "x"), actor="test",
                                  params={}, quality={}) for c in (COMM_A, COMM_B)}
    return drafts


def _write(client, role, h, community, drafts):
    if role == "planner":
        return client.post(f"/v1/plans/{drafts[community]}/publish", headers=h,
                           json={"override_unstaffed": True, "reason": "rbac test: nobody staffed"})
    lon, lat = centre(community, 6)
    return client.post("/v1/events", json={"category": "incident", "subtype": "noise", "source": "patrol",
                                           "lon": lon, "lat": lat}, headers=h)


def _denied(engine):
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM audit_log WHERE outcome = 'denied'")).scalar()


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(role, matrix, client, engine):
    h = token(client, f"{role}_a")
    own = client.get(f"/v1/jurisdictions/{COMM_A}", headers=h)
    sib = client.get(f"/v1/jurisdictions/{COMM_B}", headers=h)
    assert (own.status_code, sib.status_code) == (200, 404)  # no existence leak
    assert {j["code"] for j in client.get("/v1/jurisdictions", headers=h).json()} == {COMM_A}

    before = _denied(engine)
    r = _write(client, role, h, COMM_A, matrix)
    assert r.status_code == OWN_WRITE[role], r.text
    own_denied = _denied(engine) - before
    assert own_denied == (1 if OWN_WRITE[role] == 403 else 0)

    before = _denied(engine)
    r = _write(client, role, h, COMM_B, matrix)
    # B's draft plan does not exist for A's planner; B's grids are public, so reporting there is forbidden
    assert r.status_code == (404 if role == "planner" else 403), r.text
    assert _denied(engine) - before == 1  # the refusal is audited
    with engine.connect() as c:
        last = c.execute(text("SELECT actor, outcome FROM audit_log ORDER BY id DESC LIMIT 1")).one()
    assert tuple(last) == (f"user:{role}_a", "denied")


def test_cross_jurisdiction_writes_of_every_kind_are_refused_and_audited(world, client, engine):
    """Dispatcher of A against B's worker, event and duty; API key of B's sensor against A."""
    h = token(client, "dispatcher")
    lon, lat = centre(COMM_B, 1)
    eb = client.post("/v1/events", json={"category": "incident", "subtype": "noise", "source": "patrol",
                                         "lon": lon, "lat": lat}, headers=token(client, "dispatcher_b")).json()
    before = _denied(engine)
    attempts = [
        client.post(f"/v1/events/{eb['id']}/transitions", json={"to": "accepted"}, headers=h),
        client.patch(f"/v1/workers/{world['worker_b']}", json={"on_duty": False}, headers=h),
        client.post(f"/v1/workers/{world['worker_b']}/positions",
                    json={"fixes": [{"ts": "2026-11-26T08:00:00Z", "lon": lon, "lat": lat}]}, headers=h),
        client.post("/v1/workers", json={"name": "x", "role": "auxiliary", "jurisdiction_code": COMM_B}, headers=h),
        client.post(f"/v1/workers/{world['worker_a']}/positions",
                    json={"fixes": [{"ts": "2026-11-26T08:00:00Z", "lon": lon, "lat": lat}]},
                    headers={"X-API-Key": world["sensor_key_b"]}),
    ]
    assert [r.status_code for r in attempts] == [404, 404, 404, 422, 404], [r.text for r in attempts]
    assert _denied(engine) - before == 5
    # reads are scoped too, and answer as if the event did not exist
    assert client.get(f"/v1/events/{eb['id']}", headers=h).status_code == 404
    ids = [e["id"] for e in client.get("/v1/events", headers=h).json()["items"]]
    assert eb["id"] not in ids


def test_every_successful_write_is_attributed(world, client, engine):
    h = token(client, "dispatcher")
    lon, lat = centre(COMM_A, 2)
    e = client.post("/v1/events", json={"category": "incident", "subtype": "noise", "source": "patrol",
                                        "lon": lon, "lat": lat}, headers=h).json()
    client.post(f"/v1/events/{e['id']}/transitions", json={"to": "accepted"}, headers=h)
    client.patch(f"/v1/workers/{world['worker_a']}", json={"on_duty": False}, headers=h)
    with engine.connect() as c:
        rows = c.execute(text("SELECT actor, action, request_id FROM audit_log WHERE outcome = 'ok' "
                              "AND actor = 'user:dispatcher' ORDER BY id")).all()
    assert [r.action for r in rows] == ["event.create", "event.accepted", "worker.update"]
    assert all(r.request_id for r in rows)


def test_login_rate_limit_and_bad_tokens(world, client):
    for _ in range(10):
        assert client.post("/v1/auth/token", data={"username": "leader", "password": "nope"}).status_code == 401
    r = client.post("/v1/auth/token", data={"username": "leader", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert client.get("/v1/auth/me", headers={"Authorization": "Bearer abc"}).status_code == 401
    assert client.get("/v1/auth/me", headers={"X-API-Key": "geo_nope"}).status_code == 401
    me = client.get("/v1/auth/me", headers={"X-API-Key": world["hotline_key"]}).json()
    assert me["kind"] == "api_key" and me["role"] == "dispatcher"
