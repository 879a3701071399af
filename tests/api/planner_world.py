"""A small street for planner tests: two communities side by side, address points of 8 people on a lattice,
streets along the cell edges; a sibling street; users; and a hand-drawn grid file with deliberate faults.

Street 429902001000 spans lon [114.300, 114.310] × lat [30.600, 30.610]; community C1 the west half, C2 the
east half. A grid cell is 0.0025° × 0.005° (about 240 m × 555 m) holding 8 × 8 points (64 × 8 = 512 people)
so the drawn grids use 1×2 cells (1024 people), in the range [800, 1300] of the tests.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString, box
from sqlalchemy import text

from tests.conftest import password_hashed_once

PASSWORD = "test-password-1"
DIST, STREET, C1, C2 = "429902000000", "429902001000", "429902001001", "429902001002"
SIB, SIB_C = "429902002000", "429902002001"
X0, Y0 = 114.300, 30.600
W, H = 0.010, 0.010
CW, CH = 0.0025, 0.0025  # a cell: 8 × 8 points of 8 people = 512 people
MIN, MAX = 800, 1300


def cell(i: int, j: int, dx0=0.0, dy0=0.0, dx1=0.0, dy1=0.0):
    return box(X0 + i * CW + dx0, Y0 + j * CH + dy0, X0 + (i + 1) * CW + dx1, Y0 + (j + 1) * CH + dy1)


def points(rng_seed: int = 0):
    """8 × 8 points per cell (4 × 4 cells), a little jitter; 8 people and 3 households each."""
    rng = np.random.default_rng(rng_seed)
    xs, ys = [], []
    step = CW / 8
    for i in range(32):
        for j in range(32):
            xs.append(X0 + (i + 0.5) * step + rng.uniform(-0.2, 0.2) * step)
            ys.append(Y0 + (j + 0.5) * step + rng.uniform(-0.2, 0.2) * step)
    return np.array(xs), np.array(ys)


@pytest.fixture
def pworld(engine):
    """Jurisdictions, population (points), streets, users and a worker; returns a dict of ids."""
    from geo.db.loads import rebuild_paths
    from geo.db.users import add_user

    with engine.begin() as conn:
        def j(code, name, level, geom, parent=None, urban=True):
            return conn.execute(text("""
                INSERT INTO jurisdictions (code, name, level, urban, parent_id, geom, created_by)
                VALUES (:c, :n, :l, :u, (SELECT id FROM jurisdictions WHERE code = :p),
                        ST_Multi(ST_GeomFromText(:g, 4326)), 'test') RETURNING id
            """), {"c": code, "n": name, "l": level, "u": urban, "p": parent, "g": geom.wkt}).scalar_one()

        ids = {"district": j(DIST, "测试区", "district", box(X0, Y0, X0 + 2 * W, Y0 + H)),
               "street": j(STREET, "东湖街道", "street", box(X0, Y0, X0 + W, Y0 + H), DIST),
               "C1": j(C1, "桂园社区", "community", box(X0, Y0, X0 + W / 2, Y0 + H), STREET),
               "C2": j(C2, "梅园社区", "community", box(X0 + W / 2, Y0, X0 + W, Y0 + H), STREET),
               "sib": j(SIB, "西湖街道", "street", box(X0 + W, Y0, X0 + 2 * W, Y0 + H), DIST),
               "sib_c": j(SIB_C, "柳园社区", "community", box(X0 + W, Y0, X0 + 2 * W, Y0 + H), SIB)}
        rebuild_paths(conn)
        load = conn.execute(text("""INSERT INTO loads (kind, dataset, source, rows_read, rows_loaded, created_by)
            VALUES ('population', 'pts', 'test', 1024, 1024, 'test') RETURNING id""")).scalar_one()
        xs, ys = points()
        conn.execute(text("""
            INSERT INTO population_units (dataset, source_id, people, households, geom, load_id)
            SELECT 'pts', 'p' || t.k, 8, 3, ST_SetSRID(ST_MakePoint(t.x, t.y), 4326), :l
            FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS t(x, y, k)
        """), {"xs": xs.tolist(), "ys": ys.tolist(), "l": load})
        sl = conn.execute(text("""INSERT INTO loads (kind, dataset, source, rows_read, rows_loaded, created_by)
            VALUES ('streets', 'st', 'test', 10, 10, 'test') RETURNING id""")).scalar_one()
        lines = [LineString([(X0 + i * CW, Y0 - 0.0005), (X0 + i * CW, Y0 + H + 0.0005)]) for i in range(5)]
        lines += [LineString([(X0 - 0.0005, Y0 + j * CH), (X0 + W + 0.0005, Y0 + j * CH)]) for j in range(5)]
        for k, ln in enumerate(lines):
            conn.execute(text("""INSERT INTO streets (dataset, source_id, name, klass, geom, load_id)
                VALUES ('st', :s, :n, 'residential', ST_Multi(ST_GeomFromText(:g, 4326)), :l)"""),
                         {"s": f"s{k}", "n": f"{'经' if k < 5 else '纬'}{k % 5 + 1}路", "g": ln.wkt, "l": sl})
    with password_hashed_once():
        for u, (role, code) in {"admin": ("admin", DIST), "planner": ("planner", STREET),
                                "planner_sib": ("planner", SIB), "leader": ("leader", STREET),
                                "dispatcher": ("dispatcher", STREET), "planner_c1": ("planner", C1)}.items():
            add_user(engine, u, PASSWORD, role, code, actor="test")
    return ids


def drawn_grids(faults: bool = True) -> gpd.GeoDataFrame:
    """The 'existing' grids of the street: 2×1 cells (1024 people) per grid, 8 grids, with faults:

    * grid C1-001 stops 1 m short of its east edge (a sliver gap, repaired);
    * grid C1-003 reaches 1 m into C1-004 (a sliver overlap, repaired);
    * grid C2-001 reaches 25 m into C1 (an overlap with C1-002 beyond the tolerance, crossing the community);
    * C2's north half is drawn as one grid of 4 cells (about 1900 people: too many) that leaves a 40 m strip
      out at its south (a gap beyond the tolerance);
    * C2's south-west is two grids of one cell each (512: too few), the second with a duplicate code;
    * a malformed code (16 digits).
    """
    m = 1e-5  # ~1 m
    if not faults:
        rows = [(f"{C1}001", "桂园一网格", cell(0, 0).union(cell(0, 1))), (f"{C1}002", "桂园二网格", cell(1, 0).union(cell(1, 1))),
                (f"{C1}003", "桂园三网格", cell(0, 2).union(cell(0, 3))), (f"{C1}004", "桂园四网格", cell(1, 2).union(cell(1, 3))),
                (f"{C2}001", "梅园一网格", cell(2, 0).union(cell(2, 1))), (f"{C2}002", "梅园二网格", cell(3, 0).union(cell(3, 1))),
                (f"{C2}003", "梅园三网格", cell(2, 2).union(cell(2, 3))), (f"{C2}004", "梅园四网格", cell(3, 2).union(cell(3, 3)))]
    else:
        rows = [
            (f"{C1}001", "桂园一网格", cell(0, 0, dx1=-m).union(cell(0, 1, dx1=-m))),   # 1 m sliver gap east
            (f"{C1}002", "桂园二网格", cell(1, 0).union(cell(1, 1))),
            (f"{C1}003", "桂园三网格", cell(0, 2, dx1=m).union(cell(0, 3, dx1=m))),     # 1 m sliver overlap
            (f"{C1}004", "桂园四网格", cell(1, 2).union(cell(1, 3))),
            (f"{C2}001", "梅园一网格", cell(2, 0, dx0=-0.00026)),                      # 25 m into C1; too few
            (f"{C2}001", "梅园五网格", cell(2, 1)),                                    # duplicate code; too few
            ("4299020010020002", "梅园二网格", cell(3, 0).union(cell(3, 1))),           # malformed code
            (f"{C2}003", "梅园大网格", cell(2, 2, dy0=0.00036).union(cell(3, 2, dy0=0.00036))
             .union(cell(2, 3)).union(cell(3, 3))),                                    # too many; 40 m gap south
        ]
    return gpd.GeoDataFrame({"网格编码": [r[0] for r in rows], "网格名称": [r[1] for r in rows],
                             "网格类型": ["基础"] * len(rows), "网格长": [f"张{k}" for k in range(len(rows))]},
                            geometry=[r[2] for r in rows], crs=4326)


@pytest.fixture
def pclient(pworld, geo_env, monkeypatch):
    """A TestClient on a fresh app over :func:`pworld`."""
    from fastapi.testclient import TestClient

    from geo.api.main import create_app
    from geo.config import reset_settings

    monkeypatch.setenv("GEO_DEMO", "1")
    monkeypatch.setenv("GEO_PUBLISH_SWITCH_SECONDS", "0")
    reset_settings()
    with TestClient(create_app(listen=False)) as c:
        yield c


def hdr(client, username: str) -> dict:
    r = client.post("/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def upload(client, h, gdf, tmp_path, name="grids.geojson", **form):
    f = tmp_path / name
    gdf.to_file(f, driver="GeoJSON")
    return client.post(f"/v1/jurisdictions/{STREET}/grid-imports", headers=h,
                       files={"file": (name, f.read_bytes(), "application/geo+json")},
                       data={"min_pop": str(MIN), "max_pop": str(MAX), **{k: str(v) for k, v in form.items()}})


def centre_of(i: int, j: int) -> tuple[float, float]:
    return X0 + (i + 0.5) * CW, Y0 + (j + 0.5) * CH
