"""Staff across a re-partition of the synthetic demo district (what ``geo demo`` loads): a street's plan is
published through the API (refused while nobody is staffed, then with an override and a reason), chiefs and
workers are assigned to its grids through the API — all but one grid — and the street is re-partitioned with
another range. Every successor grid must be proposed the staff of the published grid it shares most
residents with, counted here independently (address point by address point, in Python); publishing is
refused without an override, an override needs a reason, and the audit log has who, when and why."""

from __future__ import annotations

import time
from collections import Counter, defaultdict

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from geo.demo.synthetic import DISTRICT_CODE
from tests.api.conftest import small_demo_client, token


@pytest.fixture
def demo(engine, geo_env, tmp_path, monkeypatch):
    yield from small_demo_client(engine, tmp_path, monkeypatch, ("planner", "dispatcher"),
                                 GEO_PUBLISH_SWITCH_SECONDS="0")


def _street(engine) -> str:
    """The demo street with the most residents (several communities, so grids of several communities)."""
    with engine.connect() as conn:
        return conn.execute(text("""
            SELECT j.code FROM jurisdictions j JOIN population_units u ON ST_Intersects(u.geom, j.geom)
            WHERE j.level = 'street' GROUP BY j.code ORDER BY sum(u.people) DESC, j.code LIMIT 1
        """)).scalar_one()


def _grids(engine, plan_id):
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code, ST_AsBinary(geom) FROM grids WHERE plan_id = :p ORDER BY code"),
                            {"p": plan_id}).all()
    return [r[0] for r in rows], np.array([shapely.from_wkb(bytes(r[1])) for r in rows], dtype=object)


def _owner(codes, geoms, pts) -> np.ndarray:
    """Index of the grid covering each point, the first by code on a shared edge (the lookup's rule); -1 if none."""
    tree = shapely.STRtree(geoms)
    pi, gi = tree.query(pts, predicate="covered_by")
    out = np.full(len(pts), -1)
    for p, g in sorted(zip(pi, gi), key=lambda t: (t[0], codes[t[1]]), reverse=True):
        out[p] = g  # reversed: the smallest code is written last
    return out


def _wait_published(c, h, code):
    """The API's lookup index is refreshed in the background after a publish: wait until it has *code*."""
    deadline = time.monotonic() + 120
    while c.get(f"/v1/grids/{code}", headers=h).status_code != 200:
        assert time.monotonic() < deadline, f"grid {code} never appeared in the published index"
        time.sleep(0.2)


def test_demo_repartition_carries_staff_by_residents_and_publish_needs_a_reasoned_override(demo, engine):
    from geo.db.partitioning import run_partition

    c = demo
    hp, hd = token(c, "planner"), token(c, "dispatcher")
    street = _street(engine)
    # 1. the street's first plan, published through the API: refused while no grid has a chief
    base, _ = run_partition(engine, street, actor="test", min_pop=1000, max_pop=2000, population_dataset="demo",
                            streets_dataset="demo")
    r = c.post(f"/v1/plans/{base}/publish", headers=hp)
    assert r.status_code == 409 and r.json()["error"] == "unstaffed", r.text
    r = c.post(f"/v1/plans/{base}/publish", headers=hp, json={"override_unstaffed": True, "reason": "首次发布，待配人员"})
    assert r.status_code == 200, r.text
    old_codes, old_geoms = _grids(engine, base)
    assert len(old_codes) >= 6
    _wait_published(c, hp, old_codes[0])

    # 2. staff through the API: a chief and a full-time worker on every published grid but one
    unstaffed_old = old_codes[len(old_codes) // 2]
    with engine.connect() as conn:
        community = dict(conn.execute(text("SELECT code, community_code FROM grids WHERE plan_id = :p"),
                                      {"p": base}).all())
    staff_of: dict[str, set[str]] = defaultdict(set)
    for k, code in enumerate(old_codes):
        roles = ["full_time"] if code == unstaffed_old else ["chief", "full_time"]
        for role in roles:
            name = f"{'长' if role == 'chief' else '员'}{k:03d}"
            r = c.post("/v1/workers", headers=hd, json={"name": name, "role": role, "grid_codes": [code],
                                                         "jurisdiction_code": community.get(code) or street,
                                                         "on_duty": True})
            assert r.status_code == 201, r.text
            staff_of[code].add(name)

    # 3. re-partition from scratch with another range: smaller grids, new codes
    draft, _ = run_partition(engine, street, actor="test", min_pop=500, max_pop=1000, population_dataset="demo",
                             streets_dataset="demo", stable=False)
    new_codes, new_geoms = _grids(engine, draft)
    assert len(new_codes) > len(old_codes)
    prop = c.get(f"/v1/plans/{draft}/staffing", headers=hp).json()
    assert prop["published_plan_id"] == base and len(prop["grids"]) == len(new_codes)

    # the predecessor of each new grid, by residents, counted here point by point
    with engine.connect() as conn:
        units = conn.execute(text("""
            SELECT u.people, ST_AsBinary(ST_PointOnSurface(u.geom)) FROM population_units u, jurisdictions j
            WHERE j.code = :s AND u.dataset = 'demo' AND ST_Intersects(u.geom, j.geom)
        """), {"s": street}).all()
    people = np.array([u[0] for u in units])
    pts = np.array([shapely.from_wkb(bytes(u[1])) for u in units], dtype=object)
    on_new, on_old = _owner(new_codes, new_geoms, pts), _owner(old_codes, old_geoms, pts)
    shared: dict[str, Counter] = defaultdict(Counter)
    for n, o, pp in zip(on_new, on_old, people):
        if n >= 0 and o >= 0:
            shared[new_codes[n]][old_codes[o]] += int(pp)
    by_area = {}
    for i, code in enumerate(new_codes):
        ov = [shapely.intersection(new_geoms[i], g).area for g in old_geoms]
        by_area[code] = old_codes[int(np.argmax(ov))]
    differ = 0
    for g in prop["grids"]:
        counts = shared.get(g["code"])
        if not counts:  # nobody lives there: the area rule
            assert g["source_code"] == by_area[g["code"]], g
            continue
        best = max(counts.values())
        want = min(o for o, n in counts.items() if n == best)  # a tie goes to the smaller code
        assert g["source_code"] == want and g["shared_residents"] == best, (g, counts.most_common(3))
        assert {s["name"] for s in g["staff"]} == staff_of[want], g
        assert g["has_chief"] == (want != unstaffed_old), g
        differ += by_area[g["code"]] != want
    print(f"\n{len(new_codes)} successor grids of {len(old_codes)}; {differ} whose largest overlap by area is another "
          f"published grid than by residents")
    missing = {m["code"] for m in prop["without_chief"]}
    assert missing == {g["code"] for g in prop["grids"] if g["source_code"] == unstaffed_old} != set()

    # 4. publishing: refused without an override, and with an override but no reason; then allowed and audited
    chk = c.get(f"/v1/plans/{draft}/publish-check", headers=hp).json()
    assert {w["code"] for w in chk["warnings"]} >= {"unstaffed", "different_range"}
    r = c.post(f"/v1/plans/{draft}/publish", headers=hp)
    assert r.status_code == 409 and {m["code"] for m in r.json()["without_chief"]} == missing, r.text
    r = c.post(f"/v1/plans/{draft}/publish", headers=hp, json={"override_unstaffed": True})
    assert r.status_code == 409 and r.json()["error"] == "unstaffed", r.text
    r = c.post(f"/v1/plans/{draft}/publish", headers=hp, json={"override_unstaffed": True, "reason": " "})
    assert r.status_code == 409
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM grid_plans WHERE id = :p"), {"p": draft}).scalar() == "draft"
        denied = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'plan.publish' "
                                   "AND outcome = 'denied' AND entity_id = :p"), {"p": str(draft)}).scalar()
    assert denied == 3
    reason = f"网格 {unstaffed_old} 的网格长待定"
    r = c.post(f"/v1/plans/{draft}/publish", headers=hp, json={"override_unstaffed": True, "reason": reason})
    assert r.status_code == 200, r.text
    with engine.connect() as conn:
        a = conn.execute(text("SELECT actor, at, detail FROM audit_log WHERE action = 'plan.publish' "
                              "AND outcome = 'ok' AND entity_id = :p"), {"p": str(draft)}).one()
        links = conn.execute(text("""SELECT wg.grid_code, w.name FROM worker_grids wg JOIN workers w
                                     ON w.id = wg.worker_id""")).all()
    assert a.actor == "user:planner" and a.at is not None
    assert a.detail["override_unstaffed"] is True and a.detail["reason"] == reason
    assert set(a.detail["without_chief"]) == missing
    # the staff now serve the successor grids (a worker of a split grid serves each of its successors)
    now = defaultdict(set)
    for code, name in links:
        now[code].add(name)
    assert set(now) <= set(new_codes)
    for g in prop["grids"]:
        assert now.get(g["code"], set()) == staff_of[g["source_code"]], g["code"]
