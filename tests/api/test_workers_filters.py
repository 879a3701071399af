"""GET /v1/workers filters (grid, community/street, role, duty, name part) inside the caller's jurisdiction,
4xx on bad values; PATCH changes a worker's role (audited)."""

from __future__ import annotations

from sqlalchemy import text

from tests.api.conftest import COMM_A, COMM_B, DISTRICT, STREET, token


def _names(client, h, **params):
    r = client.get("/v1/workers", headers=h, params=params)
    assert r.status_code == 200, r.text
    return sorted(w["name"] for w in r.json())


def test_filters_combine_inside_the_jurisdiction(client, world):
    h = token(client, "planner_street")  # the street: both communities
    assert _names(client, h) == ["李网格员", "王网格长", "赵辅助", "陈网格员"]
    assert _names(client, h, jurisdiction=COMM_A) == ["李网格员", "王网格长", "赵辅助"]
    assert _names(client, h, jurisdiction=COMM_B) == ["陈网格员"]
    assert _names(client, h, jurisdiction=STREET) == _names(client, h)
    assert _names(client, h, role="full_time") == ["李网格员", "陈网格员"]
    assert _names(client, h, role="full_time", jurisdiction=COMM_B) == ["陈网格员"]
    assert _names(client, h, on_duty=False) == ["赵辅助"]
    assert _names(client, h, grid=f"{COMM_A}001") == ["李网格员", "王网格长", "赵辅助"]
    assert _names(client, h, grid=f"{COMM_A}002", role="chief") == ["王网格长"]
    assert _names(client, h, grid=f"{COMM_A}002", role="auxiliary") == []
    assert _names(client, h, name="网格") == ["李网格员", "王网格长", "陈网格员"]
    assert _names(client, h, name=" 网格长 ") == ["王网格长"]
    assert _names(client, h, name="%") == [] and _names(client, h, name="_") == []  # literal, not a LIKE pattern
    one = client.get("/v1/workers", headers=h, params={"name": "陈"}).json()[0]
    assert one["jurisdiction_code"] == COMM_B and one["jurisdiction_name"] == "李家村"


def test_a_community_sees_only_its_own_and_no_other_jurisdiction(client, world):
    h = token(client, "planner")  # community A
    assert _names(client, h) == ["李网格员", "王网格长", "赵辅助"]
    assert _names(client, h, name="陈") == []
    assert _names(client, h, grid=f"{COMM_B}001") == []  # B's grid: its workers are outside the subtree
    # a sibling community, the street above and an unknown code are all "not found" (existence does not leak)
    for code in (COMM_B, STREET, DISTRICT, "429901009009"):
        r = client.get("/v1/workers", headers=h, params={"jurisdiction": code})
        assert r.status_code == 404 and r.json()["error"] == "not_found", (code, r.text)


def test_bad_filter_values_are_refused_naming_the_field(client, world):
    h = token(client, "planner_street")
    for params, field in (({"role": "boss"}, "role"), ({"grid": "123"}, "grid"), ({"jurisdiction": "4299"}, "jurisdiction"),
                          ({"on_duty": "maybe"}, "on_duty"), ({"name": ""}, "name"), ({"name": "   "}, "name"),
                          ({"name": "x" * 51}, "name")):
        r = client.get("/v1/workers", headers=h, params=params)
        assert r.status_code == 422, (params, r.status_code, r.text)
        body = r.json()
        assert field in body["message"] or any(field in str(d.get("field")) for d in body.get("details") or []), body


def test_patch_changes_the_role_with_an_audit_row(client, world, engine):
    h = token(client, "dispatcher")
    r = client.patch(f"/v1/workers/{world['offduty_a']}", headers=h, json={"role": "part_time"})
    assert r.status_code == 200 and r.json()["role"] == "part_time", r.text
    assert _names(client, h, role="part_time") == ["赵辅助"]
    assert client.patch(f"/v1/workers/{world['offduty_a']}", headers=h, json={"role": "boss"}).status_code == 422
    # a worker may change its own duty, not its role
    w = token(client, "worker")
    assert client.patch(f"/v1/workers/{world['worker_a']}", headers=w, json={"role": "chief"}).status_code == 403
    with engine.connect() as conn:
        d = conn.execute(text("SELECT actor, detail FROM audit_log WHERE action = 'worker.update' AND outcome = 'ok' "
                              "AND entity_id = :w"), {"w": str(world["offduty_a"])}).one()
    assert d.actor == "user:dispatcher" and d.detail == {"role": "part_time"}
