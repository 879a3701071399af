"""Move options: the street blocks and building groups of a grid on its boundary with each neighbour, with
whether the move is allowed and the figures after; moves by those units (a building never cut); refusals."""

from __future__ import annotations

import math

import pytest
import shapely
from shapely.geometry import shape
from sqlalchemy import text

from tests.api.planner_world import C1, C2, centre_of, drawn_grids, hdr, pclient, pworld, upload  # noqa: F401

G1, G2, G3 = f"{C1}001", f"{C1}002", f"{C1}003"


@pytest.fixture
def published(pclient, tmp_path, engine):
    """The clean drawn grids published; one building with two entrances in the bottom two rows of C1-001."""
    c, h = pclient, hdr(pclient, "planner")
    with engine.begin() as conn:  # the two points nearest the first column of rows 0 and 1 of cell (0, 0)
        ids = conn.execute(text("""
            SELECT id FROM population_units ORDER BY ST_Distance(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326))
            LIMIT 2"""), {"x": 114.300 + 0.0025 / 16, "y": 30.600 + 0.0025 / 8}).scalars().all()
        conn.execute(text("UPDATE population_units SET building = 'B1' WHERE id = ANY(:i)"), {"i": ids})
    r = upload(c, h, drawn_grids(faults=False), tmp_path)
    assert r.status_code == 201, r.text
    pid = r.json()["plan_id"]
    r = c.post(f"/v1/plans/{pid}/publish", headers=h, json={"override_unstaffed": True, "reason": "test"})
    assert r.status_code == 200, r.text
    return pid


def _opts(c, h, pid, **params):
    r = c.get(f"/v1/plans/{pid}/move-options", headers=h, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _b1(engine):
    with engine.connect() as conn:
        return [shapely.Point(x, y) for x, y in conn.execute(text(
            "SELECT ST_X(geom), ST_Y(geom) FROM population_units WHERE building = 'B1'")).all()]


def test_options_list_blocks_and_building_groups_with_figures(pclient, published, engine):
    c, h = pclient, hdr(pclient, "planner")
    body = _opts(c, h, published, grid=G1, to=G2)
    opts = body["options"]
    assert {o["to"] for o in opts} == {G2} and body["movable"] == sum(o["ok"] for o in opts)
    blocks = [o for o in opts if o["unit"] == "block"]
    # C1-001 is two street blocks (cells) of 512 people, both on C1-002's side; either one can go
    assert len(blocks) == 2 and all(o["ok"] and o["people"] == 512 for o in blocks)
    assert all(o["after"] == {G1: 512, G2: 1536} for o in blocks)
    # building groups: bands across each block between its address points (each point a building of its own,
    # B1's two entrances one building), tiling each block; only the two at the grid's ends can go
    groups = [o for o in opts if o["unit"] == "buildings"]
    pieces = [shape(o["geometry"]) for o in groups]
    for blk in blocks:
        inside = [p for p in pieces if p.representative_point().within(shape(blk["geometry"]))]
        assert sum(o["people"] for o, p in zip(groups, pieces) if p in inside) == 512
        assert shapely.union_all(inside).area == pytest.approx(shape(blk["geometry"]).area, rel=1e-6)  # cm²
    # no overlap but the ~1 mm fringe each piece takes along its cuts (~6 km of cuts here; a band is ~8000 m²)
    m2_per_deg2 = 111_320 ** 2 * math.cos(math.radians(30.605))
    assert (sum(p.area for p in pieces) - shapely.union_all(pieces).area) * m2_per_deg2 < 50
    b1 = [o for o, p in zip(groups, pieces) if any(p.covers(q) for q in _b1(engine))]
    assert len(b1) == 1 and all(shape(b1[0]["geometry"]).covers(q) for q in _b1(engine))  # never cut
    ok = [o for o in groups if o["ok"]]
    assert len(ok) == 2 and b1[0] in ok  # the bottom group (with B1) and the top one
    assert all(o["after"] == {G1: 1024 - o["people"], G2: 1024 + o["people"]} for o in ok)
    assert {o["reason"] for o in groups if not o["ok"]} == {"breaks_contiguity"}  # a middle band cuts C1-001
    # without `to`: every neighbour of the community (C1-003 north), none across the community line
    every = _opts(c, h, published, grid=G1)["options"]
    assert {o["to"] for o in every} == {G2, G3}
    n = sum(o["ok"] for o in every)
    assert [o["ok"] for o in every] == [True] * n + [False] * (len(every) - n)  # allowed moves first


def test_moves_by_offered_units_give_the_offered_figures(pclient, published, engine):
    c, h = pclient, hdr(pclient, "planner")
    opts = _opts(c, h, published, grid=G1, to=G2)["options"]
    b1 = next(o for o in opts if o["unit"] == "buildings" and o["ok"]
              and all(shape(o["geometry"]).covers(q) for q in _b1(engine)))
    r = c.post(f"/v1/plans/{published}/edits", headers=h,
               json={"op": "move", "lon": b1["lon"], "lat": b1["lat"], "to": G2, "unit": "buildings"})
    assert r.status_code == 201, r.text
    m = r.json()
    assert {g["code"]: g["people"] for g in m["grids"]} == b1["after"]
    assert all(g["contiguous"] for g in m["grids"]) and m["coverage"]["covered_share"] > 0.999999
    assert m["coverage"]["gap_m2"] < 1 and m["coverage"]["overlap_m2"] < 1
    assert m["edit"]["unit"] == "buildings" and m["edit"]["from"] == G1
    with engine.connect() as conn:  # both entrances of B1 now in C1-002
        owners = conn.execute(text("""
            SELECT DISTINCT g.code FROM population_units u JOIN grids g ON g.plan_id = :p AND ST_Covers(g.geom, u.geom)
            WHERE u.building = 'B1'"""), {"p": m["plan_id"]}).scalars().all()
    assert owners == [G2]
    # a middle row is offered as not movable, and the edit is refused with the same reason
    bad = next(o for o in opts if o["reason"] == "breaks_contiguity")
    r = c.post(f"/v1/plans/{published}/edits", headers=h,
               json={"op": "move", "lon": bad["lon"], "lat": bad["lat"], "to": G2, "unit": "buildings"})
    assert r.status_code == 409 and r.json()["reason"] == "breaks_contiguity", r.text
    # a block by its offered point
    blk = next(o for o in opts if o["unit"] == "block")
    r = c.post(f"/v1/plans/{published}/edits", headers=h,
               json={"op": "move", "lon": blk["lon"], "lat": blk["lat"], "to": G2})
    assert r.status_code == 201 and r.json()["edit"]["unit"] == "block"
    assert {g["code"]: g["people"] for g in r.json()["grids"]} == blk["after"]


def test_locked_and_bad_requests(pclient, published):
    c, h = pclient, hdr(pclient, "planner")
    r = c.post(f"/v1/plans/{published}/edits", headers=h, json={"op": "lock", "codes": [G2]})
    assert r.status_code == 201
    locked = r.json()["plan_id"]
    opts = _opts(c, h, locked, grid=G1, to=G2)["options"]
    assert opts and {o["reason"] for o in opts} == {"locked"}
    for params, status in (({"grid": f"{C1}009"}, 404), ({"grid": G1, "to": f"{C2}009"}, 404),
                           ({"grid": G1, "to": G1}, 422), ({"grid": "123"}, 422), ({}, 422)):
        r = c.get(f"/v1/plans/{published}/move-options", headers=h, params=params)
        assert r.status_code == status, (params, r.text)
    assert c.get("/v1/plans/999999/move-options", headers=h, params={"grid": G1}).status_code == 404
    # across the community line nothing is offered; the sibling street's planner does not see the plan
    assert _opts(c, h, published, grid=G2, to=f"{C2}001")["options"] == []
    assert c.get(f"/v1/plans/{published}/move-options", headers=hdr(c, "planner_sib"),
                 params={"grid": G1}).status_code == 404
    r = c.post(f"/v1/plans/{published}/edits", headers=h,
               json={"op": "move", "lon": centre_of(0, 0)[0], "lat": centre_of(0, 0)[1], "to": G2, "unit": "house"})
    assert r.status_code == 422
