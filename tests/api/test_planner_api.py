"""Planner API: import upload, hand edits with live figures (move, merge, split, lock, rename, undo; refused
edits), staffing carried by residents and the publish override, rollback, export download, scope."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.api.planner_world import (C1, C2, MAX, MIN, SIB, STREET, centre_of, drawn_grids, hdr, pclient,  # noqa: F401
                                     pworld, upload)


def test_import_upload_report_and_scope(pclient, tmp_path, engine):
    c = pclient
    r = upload(c, hdr(c, "planner"), drawn_grids(), tmp_path, repair_tol_m2=1000)
    assert r.status_code == 201, r.text
    rep = r.json()["report"]
    assert len(rep["gaps"]) == 2 and len(rep["overlaps"]) == 2 and len(rep["out_of_range"]) == 3
    assert all("geometry" in g and g["m2"] > 0 for g in rep["gaps"] + rep["overlaps"])
    plan = c.get(f"/v1/plans/{r.json()['plan_id']}", headers=hdr(c, "planner")).json()
    assert plan["status"] == "draft" and plan["grids"] == 8
    # the sibling street's planner does not see the street; a leader may not write; a bad file names the row
    assert upload(c, hdr(c, "planner_sib"), drawn_grids(), tmp_path).status_code == 404
    assert upload(c, hdr(c, "leader"), drawn_grids(), tmp_path).status_code == 403
    bad = drawn_grids()
    bad.loc[3, "网格类型"] = "奇怪"
    r = upload(c, hdr(c, "planner"), bad, tmp_path)
    assert r.status_code == 422 and r.json()["details"][0]["row"] == 4 and r.json()["details"][0]["input"] == "奇怪"
    r = c.post(f"/v1/jurisdictions/{STREET}/grid-imports", headers=hdr(c, "planner"),
               files={"file": ("x.txt", b"hello", "text/plain")})
    assert r.status_code == 422 and "unsupported" in r.json()["message"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'plan.import' "
                                 "AND actor = 'user:planner'")).scalar() == 1


@pytest.fixture
def base(pclient, tmp_path):
    """The clean drawn grids imported and published (with an override: nobody is staffed yet)."""
    c = pclient
    h = hdr(c, "planner")
    r = upload(c, h, drawn_grids(faults=False), tmp_path)
    assert r.status_code == 201, r.text
    pid = r.json()["plan_id"]
    assert c.post(f"/v1/plans/{pid}/publish", headers=h).status_code == 409  # no chief anywhere
    r = c.post(f"/v1/plans/{pid}/publish", headers=h, json={"override_unstaffed": True, "reason": "first import"})
    assert r.status_code == 200, r.text
    return pid


def _edit(c, h, pid, **body):
    return c.post(f"/v1/plans/{pid}/edits", headers=h, json=body)


def _fig(resp, code):
    return next(g for g in resp["grids"] if g["code"] == code)


def test_edits_with_live_figures_and_undo(pclient, base, engine):
    c, h = pclient, hdr(pclient, "planner")
    g1, g2, g3, g4 = (f"{C1}00{k}" for k in range(1, 5))
    # move the upper block of C1-001 to C1-002
    lon, lat = centre_of(0, 1)
    r = _edit(c, h, base, op="move", lon=lon, lat=lat, to=g2)
    assert r.status_code == 201, r.text
    m = r.json()
    assert (_fig(m, g1)["people"], _fig(m, g2)["people"]) == (512, 1536)
    assert _fig(m, g1)["in_range"] is False and _fig(m, g2)["in_range"] is False
    assert all(g["contiguous"] for g in m["grids"]) and m["coverage"]["covered_share"] > 0.999999
    p1 = m["plan_id"]
    assert c.get(f"/v1/plans/{p1}", headers=h).json()["status"] == "draft"
    # refused: moving C1-002's middle block would cut it in two (its blocks meet only at a corner)
    lon, lat = centre_of(1, 1)
    r = _edit(c, h, p1, op="move", lon=lon, lat=lat, to=g4)
    assert r.status_code == 409 and r.json()["reason"] == "breaks_contiguity", r.text
    # refused: not a neighbour; across communities
    r = _edit(c, h, p1, op="move", lon=centre_of(0, 0)[0], lat=centre_of(0, 0)[1], to=g4)
    assert r.status_code == 409 and r.json()["reason"] == "not_adjacent"
    r = _edit(c, h, p1, op="merge", codes=[g2, f"{C2}001"])
    assert r.status_code == 409 and r.json()["reason"] == "crosses_community"
    # merge C1-003 and C1-004, then split the result into 2 with the engine
    r = _edit(c, h, p1, op="merge", codes=[g3, g4])
    assert r.status_code == 201, r.text
    assert _fig(r.json(), g3)["people"] == 2048 and r.json()["grids"][-1]["code"] in (g3, g4)
    p2 = r.json()["plan_id"]
    r = _edit(c, h, p2, op="split", code=g3, k=2)
    assert r.status_code == 201, r.text
    s = r.json()
    assert len(s["grids"]) == 2 and sum(g["people"] for g in s["grids"]) == 2048
    assert all(MIN <= g["people"] <= MAX and g["contiguous"] for g in s["grids"]), s["grids"]
    p3 = s["plan_id"]
    # lock, and a locked grid refuses edits; rename
    assert _edit(c, h, p3, op="lock", codes=[g2]).status_code == 201
    p4 = c.get(f"/v1/jurisdictions/{STREET}/plans", headers=h).json()[0]["id"]
    r = _edit(c, h, p4, op="merge", codes=[g1, g2])
    assert r.status_code == 409 and r.json()["reason"] == "locked"
    r = _edit(c, h, p4, op="rename", code=g1, name="桂园新一网格")
    assert r.status_code == 201 and _fig(r.json(), g1)["name"] == "桂园新一网格"
    p5 = r.json()["plan_id"]
    edits = c.get(f"/v1/plans/{p5}/edits", headers=h).json()["edits"]
    assert [e["op"] for e in edits] == ["move", "merge", "split", "lock", "rename"]
    assert all(e["by"] == "user:planner" for e in edits)
    # undo twice: back to the lock, then to the split
    u = c.post(f"/v1/plans/{p5}/undo", headers=h).json()
    assert u["same_as"] == p4 and u["edits"] == 4
    u2 = c.post(f"/v1/plans/{u['plan_id']}/undo", headers=h).json()
    assert u2["same_as"] == p3 and u2["edits"] == 3
    with engine.connect() as conn:
        acts = conn.execute(text("SELECT action, outcome FROM audit_log WHERE actor = 'user:planner' AND "
                                 "action IN ('plan.edit', 'plan.undo') ORDER BY id")).all()
        locked = conn.execute(text("SELECT flags FROM grids WHERE plan_id = :p AND code = :c"),
                              {"p": p4, "c": g2}).scalar()
    assert [a for a, o in acts if o == "ok"] == ["plan.edit"] * 5 + ["plan.undo"] * 2
    assert sum(1 for _, o in acts if o == "denied") == 4 and locked == ["locked"]  # the four refusals
    # scope: the sibling's planner gets 404 on every route of this plan; a leader may read, not edit
    hs = hdr(c, "planner_sib")
    for method, url, kw in (("post", f"/v1/plans/{p5}/edits", {"json": {"op": "lock", "codes": [g1]}}),
                            ("post", f"/v1/plans/{p5}/undo", {}), ("get", f"/v1/plans/{p5}/edits", {}),
                            ("get", f"/v1/plans/{p5}/staffing", {}), ("get", f"/v1/plans/{p5}/publish-check", {}),
                            ("get", f"/v1/plans/{p5}/export", {}), ("get", f"/v1/plans/{p5}/print/{C1}", {}),
                            ("post", f"/v1/plans/{base}/rollback", {})):
        assert getattr(c, method)(url, headers=hs, **kw).status_code == 404, url
    assert _edit(c, hdr(c, "leader"), p5, op="lock", codes=[g1]).status_code == 403
    assert c.get(f"/v1/plans/{p5}/edits", headers=hdr(c, "leader")).status_code == 200


def _chiefs(engine, codes):
    with engine.begin() as conn:
        for k, code in enumerate(codes):
            wid = conn.execute(text("""INSERT INTO workers (name, role, jurisdiction_id, on_duty, created_by)
                VALUES (:n, 'chief', (SELECT id FROM jurisdictions WHERE code = :j), true, 'test') RETURNING id"""),
                               {"n": f"长{k}", "j": code[:12]}).scalar_one()
            conn.execute(text("INSERT INTO worker_grids VALUES (:w, :c)"), {"w": wid, "c": code})
            w2 = conn.execute(text("""INSERT INTO workers (name, role, jurisdiction_id, created_by)
                VALUES (:n, 'full_time', (SELECT id FROM jurisdictions WHERE code = :j), 'test') RETURNING id"""),
                              {"n": f"员{k}", "j": code[:12]}).scalar_one()
            conn.execute(text("INSERT INTO worker_grids VALUES (:w, :c)"), {"w": w2, "c": code})


def test_staffing_carried_by_residents_and_publish_override(pclient, base, engine):
    from geo.db.partitioning import run_partition

    c, h = pclient, hdr(pclient, "planner")
    codes = [f"{C1}00{k}" for k in range(1, 5)] + [f"{C2}00{k}" for k in range(1, 4)]  # C2-004 gets no chief
    _chiefs(engine, codes)
    # a re-partition with another range: every new grid is one cell, half of a published grid
    draft, _ = run_partition(engine, STREET, actor="test", min_pop=400, max_pop=700, stable=False)
    prop = c.get(f"/v1/plans/{draft}/staffing", headers=h).json()
    assert prop["published_plan_id"] == base and len(prop["grids"]) == 16
    with engine.connect() as conn:
        pub_owner = dict(conn.execute(text("""
            SELECT d.code, (SELECT p.code FROM grids p WHERE p.plan_id = :b
                            AND ST_Covers(p.geom, ST_PointOnSurface(d.geom)) ORDER BY p.code LIMIT 1)
            FROM grids d WHERE d.plan_id = :d"""), {"b": base, "d": draft}).all())
    for g in prop["grids"]:
        assert g["source_code"] == pub_owner[g["code"]] and g["shared_residents"] == g["people"] == 512
        assert g["has_chief"] == (g["source_code"] != f"{C2}004")
    missing = {m["code"] for m in prop["without_chief"]}
    assert len(missing) == 2 and all(pub_owner[m] == f"{C2}004" for m in missing)
    chk = c.get(f"/v1/plans/{draft}/publish-check", headers=h).json()
    assert {w["code"] for w in chk["warnings"]} == {"unstaffed", "different_range"}
    r = c.post(f"/v1/plans/{draft}/publish", headers=h)
    assert r.status_code == 409 and {m["code"] for m in r.json()["without_chief"]} == missing
    r = c.post(f"/v1/plans/{draft}/publish", headers=h, json={"override_unstaffed": True, "reason": "  "})
    assert r.status_code == 409
    r = c.post(f"/v1/plans/{draft}/publish", headers=h,
               json={"override_unstaffed": True, "reason": "梅园四网格网格长待定"})
    assert r.status_code == 200, r.text
    with engine.connect() as conn:
        a = conn.execute(text("SELECT actor, detail FROM audit_log WHERE action = 'plan.publish' AND outcome = 'ok' "
                              "AND entity_id = :p"), {"p": str(draft)}).one()
        staffed = dict(conn.execute(text("""SELECT wg.grid_code, count(*) FILTER (WHERE w.role = 'chief')
            FROM worker_grids wg JOIN workers w ON w.id = wg.worker_id GROUP BY 1""")).all())
    assert a.actor == "user:planner" and a.detail["reason"] == "梅园四网格网格长待定"
    assert set(a.detail["without_chief"]) == missing
    assert {k for k, v in staffed.items() if v} == set(pub_owner) - missing  # old codes gone, new ones staffed
    # rollback to the imported baseline (retired now), audited; the draft is refused a rollback
    assert c.post(f"/v1/plans/{draft}/rollback", headers=h).status_code == 409
    r = c.post(f"/v1/plans/{base}/rollback", headers=h, json={"override_unstaffed": True, "reason": "回退"})
    assert r.status_code == 200, r.text
    assert c.get(f"/v1/plans/{base}", headers=h).json()["status"] == "published"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'plan.rollback' AND entity_id = :p"),
                            {"p": str(base)}).scalar() == 1


def test_export_download_and_print(pclient, base):
    c, h = pclient, hdr(pclient, "leader")
    for fmt, magic in (("gpkg", b"SQLite format 3"), ("shp", b"PK"), ("geojson", b"{"), ("csv", "\ufeff网格编码".encode())):
        r = c.get(f"/v1/plans/{base}/export", headers=h, params={"format": fmt, "crs": "cgcs2000"})
        assert r.status_code == 200 and r.content.startswith(magic), fmt
        assert "attachment" in r.headers["content-disposition"]
    assert c.get(f"/v1/plans/{base}/export", headers=h, params={"format": "kml"}).status_code == 422
    r = c.get(f"/v1/plans/{base}/print/{C1}", headers=h)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert c.get(f"/v1/plans/{base}/print/429902009009", headers=h).status_code == 404
    # a planner of community C1 cannot print C2 (outside their subtree)
    assert c.get(f"/v1/plans/{base}/print/{C2}", headers=hdr(c, "planner_c1")).status_code == 404


def test_rollback_keeps_the_publication_history(pclient, base, engine):
    """A → B → back to A: A keeps both periods in force (when it was retired, by which plan, when it was
    re-published and why); ``?at=`` inside A's first period still finds A, inside B's finds B."""
    from datetime import datetime

    c, h = pclient, hdr(pclient, "planner")
    g1, g2 = f"{C1}001", f"{C1}002"
    lon, lat = centre_of(0, 1)  # the upper block of C1-001, moved to C1-002 in plan B
    r = _edit(c, h, base, op="move", lon=lon, lat=lat, to=g2)
    assert r.status_code == 201, r.text
    b = r.json()["plan_id"]
    assert c.post(f"/v1/plans/{b}/publish", headers=h, json={"override_unstaffed": True, "reason": "B"}).status_code \
        == 200
    r = c.post(f"/v1/plans/{base}/rollback", headers=h, json={"override_unstaffed": True, "reason": "回退到导入方案"})
    assert r.status_code == 200, r.text
    plans = {p["id"]: p for p in c.get(f"/v1/jurisdictions/{STREET}/plans", headers=h).json()}
    a_pubs, b_pubs = plans[base]["publications"], plans[b]["publications"]
    assert [p["action"] for p in a_pubs] == ["publish", "rollback"] and [p["action"] for p in b_pubs] == ["publish"]
    first, again = a_pubs
    assert first["retired_by_plan_id"] == b and first["retired_at"] == b_pubs[0]["published_at"]
    assert first["reason"] == "first import" and first["published_by"] == "user:planner"
    assert b_pubs[0]["retired_by_plan_id"] == base and b_pubs[0]["retired_at"] == again["published_at"]
    assert again["retired_at"] is None and again["reason"] == "回退到导入方案" and again["published_by"] == "user:planner"
    # the plan row itself shows its latest period; the single plan route has the same log
    assert plans[base]["status"] == "published" and plans[base]["published_at"] == again["published_at"]
    assert plans[base]["retired_at"] is None
    assert c.get(f"/v1/plans/{base}", headers=h).json()["publications"] == a_pubs

    def at(t0: str, t1: str) -> str:
        a, z = datetime.fromisoformat(t0), datetime.fromisoformat(t1)
        return (a + (z - a) / 2).isoformat()

    for when, plan, code in ((at(first["published_at"], first["retired_at"]), base, g1),
                             (at(b_pubs[0]["published_at"], b_pubs[0]["retired_at"]), b, g2)):
        r = c.get("/v1/lookup", params={"lon": lon, "lat": lat, "at": when}, headers=h)
        assert r.status_code == 200, r.text
        assert (r.json()["plan"]["id"], r.json()["code"]) == (plan, code), when
    with engine.connect() as conn:
        rb = conn.execute(text("SELECT actor, detail FROM audit_log WHERE action = 'plan.rollback' AND outcome = 'ok' "
                               "AND entity_id = :p"), {"p": str(base)}).one()
    assert rb.actor == "user:planner" and rb.detail["reason"] == "回退到导入方案" and rb.detail["retired"] == [b]
