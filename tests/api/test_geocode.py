"""Standard-address search: fuzzy Chinese matching, ranking, scope (a sibling sees only its own addresses)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from geo.api.services.geocode import GeocodeIndex, normalise, tokens
from tests.api.conftest import COMM_A, COMM_B, centre, token


def seed_addresses(engine) -> None:
    """Address points: an estate of 6 buildings in A's grid 5, village houses and a look-alike estate in B."""
    rows = []
    lon, lat = centre(COMM_A, 5)
    for k in range(1, 7):
        rows.append((f"A-{k}", f"中山大道{100 + k}号锦绣华府{k}栋", lon + (k - 2) * 0.001, lat))
    rows.append(("A-15", "中山大道115号锦绣华府15栋", lon + 0.004, lat + 0.001))
    lon_b, lat_b = centre(COMM_B, 5)
    for k in range(1, 4):
        rows.append((f"B-{k}", f"李家湾村王家湾{k}号", lon_b + k * 0.001, lat_b))
    rows.append(("B-9", "中山大道200号锦绣华府3栋", lon_b, lat_b + 0.002))
    with engine.begin() as conn:
        lid = conn.execute(text("INSERT INTO loads (kind, dataset, source, rows_read, rows_loaded, created_by) "
                                "VALUES ('population', 'addr', 'test', :n, :n, 'test') RETURNING id"),
                           {"n": len(rows)}).scalar_one()
        for sid, addr, x, y in rows:
            conn.execute(text("""
                INSERT INTO population_units (dataset, source_id, people, households, building, address, geom, load_id)
                VALUES ('addr', :s, 30, 10, :s, :a, ST_SetSRID(ST_MakePoint(:x, :y), 4326), :l)
            """), {"s": sid, "a": addr, "x": x, "y": y, "l": lid})


def test_normalise_numbers_and_units():
    assert normalise("锦绣华府 五 栋") == "锦绣华府5栋"
    assert normalise("中山大道十二号３号楼") == "中山大道12号3栋"
    assert normalise("二十一幢") == "21栋"
    assert "#5栋" in tokens(normalise("5栋")) and "#5栋" not in tokens(normalise("15栋"))


@pytest.mark.parametrize("q,expected", [
    ("桂园社区锦绣华府5栋", "中山大道105号锦绣华府5栋"),       # community + estate + building
    ("锦秀华府5栋", "中山大道105号锦绣华府5栋"),             # misspelt estate (绣 → 秀)
    ("锦绣华府五栋", "中山大道105号锦绣华府5栋"),            # Chinese numeral
    ("中山大道105号", "中山大道105号锦绣华府5栋"),           # road and number only
    ("锦绣华府15栋", "中山大道115号锦绣华府15栋"),           # 15 is not 5
])
def test_ranked_candidates(client, engine, q, expected):
    seed_addresses(engine)
    r = client.get("/v1/geocode", params={"q": q}, headers=token(client, "dispatcher"))
    assert r.status_code == 200, r.text
    c = r.json()["candidates"]
    assert c and c[0]["address"] == expected
    assert c[0]["grid_code"] == f"{COMM_A}005" and c[0]["community_code"] == COMM_A
    assert c[0]["community_name"] == "桂园社区" and c[0]["grid_name"]
    assert [x["score"] for x in c] == sorted((x["score"] for x in c), reverse=True)


def test_scope_sibling_sees_only_its_addresses(client, engine):
    seed_addresses(engine)
    hb = token(client, "dispatcher_b")
    c = client.get("/v1/geocode", params={"q": "锦绣华府3栋"}, headers=hb).json()["candidates"]
    assert [x["address"] for x in c] == ["中山大道200号锦绣华府3栋"]
    assert client.get("/v1/geocode", params={"q": "王家湾", "jurisdiction": COMM_A}, headers=hb).status_code == 404
    ha = token(client, "admin")  # the district sees both communities
    both = client.get("/v1/geocode", params={"q": "锦绣华府3栋", "limit": 5}, headers=ha).json()["candidates"]
    assert {x["community_code"] for x in both} == {COMM_A, COMM_B}
    only_b = client.get("/v1/geocode", params={"q": "锦绣华府3栋", "jurisdiction": COMM_B}, headers=ha).json()
    assert {x["community_code"] for x in only_b["candidates"]} == {COMM_B}


def test_bad_and_empty_queries(client, engine):
    seed_addresses(engine)
    h = token(client, "dispatcher")
    r = client.get("/v1/geocode", params={"q": ""}, headers=h)
    assert r.status_code == 422 and r.json()["details"][0]["label"] == "地址"
    r = client.get("/v1/geocode", params={"q": "   "}, headers=h)
    assert r.status_code == 422
    r = client.get("/v1/geocode", params={"q": "完全不存在的地方"}, headers=h)
    assert r.status_code == 200 and r.json()["candidates"] == []
    assert client.get("/v1/geocode", params={"q": "锦绣"}).status_code == 401


def test_index_follows_a_new_load(client, engine, monkeypatch):
    from geo.api.services import geocode

    monkeypatch.setattr(geocode, "CHECK_SECONDS", 0.0)
    h = token(client, "dispatcher")
    assert client.get("/v1/geocode", params={"q": "锦绣华府5栋"}, headers=h).json()["candidates"] == []
    seed_addresses(engine)
    assert client.get("/v1/geocode", params={"q": "锦绣华府5栋"}, headers=h).json()["candidates"]


def test_index_unit_common_bigrams_do_not_drown_rare_ones():
    n = 500
    rows = {"id": list(range(n)), "address": [f"幸福路{i}号" for i in range(n)], "building": [None] * n,
            "lon": [0.0] * n, "lat": [0.0] * n, "path": ["/1/"] * n, "community_code": [None] * n,
            "community_name": ["幸福社区"] * n}
    rows["address"][123] = "幸福路123号锦绣华府"
    idx = GeocodeIndex(rows)
    best = idx.search_rows("幸福社区锦绣华府", "/1/", limit=3)
    assert best[0].row == 123
    assert idx.search_rows("幸福路7号", "/1/", limit=1)[0].row == 7
    assert idx.search_rows("幸福路7号", "/2/", limit=1) == []
