"""A small world for API tests: a district with one street and two sibling communities, each cut into a
4×4 lattice of grids; a published plan; a user of every role; workers; an API key."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import box
from sqlalchemy import text

from tests.conftest import password_hashed_once

PASSWORD = "test-password-1"
DISTRICT, STREET, COMM_A, COMM_B = "429901000000", "429901001000", "429901001001", "429901001002"
X0, Y0, DX, DY = 114.20, 30.50, 0.025, 0.05  # each community 0.1° wide, 4 × 4 cells


def lattice(community: str, x0: float, name: str, shift: float = 0.0) -> gpd.GeoDataFrame:
    cells, codes, names = [], [], []
    k = 0
    for j in range(4):
        for i in range(4):
            k += 1
            cells.append(box(x0 + i * DX, Y0 + j * DY, x0 + (i + 1) * DX, Y0 + (j + 1) * DY + (shift if j == 3 else 0)))
            codes.append(f"{community}{k:03d}")
            names.append(f"{name}第{k}网格")
    return gpd.GeoDataFrame({"code": codes, "name": names, "kind": "standard", "people": [1500] * 16,
                             "households": [500] * 16, "community": community}, geometry=cells, crs=4326)


def plan_grids():
    return gpd.GeoDataFrame(pd_concat([lattice(COMM_A, X0, "桂园社区"), lattice(COMM_B, X0 + 0.1, "李家村")]), crs=4326)


def pd_concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def world(engine):
    """Jurisdictions, a published plan, users of every role, workers, an API key. Returns a dict of ids."""
    from geo.db import plans
    from geo.db.loads import rebuild_paths
    from geo.db.users import add_api_key, add_user

    with engine.begin() as conn:
        def j(code, name, level, geom, parent=None, urban=True):
            return conn.execute(text("""
                INSERT INTO jurisdictions (code, name, level, urban, parent_id, geom, created_by)
                VALUES (:c, :n, :l, :u, (SELECT id FROM jurisdictions WHERE code = :p),
                        ST_Multi(ST_GeomFromText(:g, 4326)), 'test') RETURNING id
            """), {"c": code, "n": name, "l": level, "u": urban, "p": parent, "g": geom.wkt}).scalar_one()

        full = box(X0, Y0, X0 + 0.2, Y0 + 0.2)
        ids = {"district": j(DISTRICT, "示范区", "district", full),
               "street": j(STREET, "东湖街道", "street", full, DISTRICT),
               "A": j(COMM_A, "桂园社区", "community", box(X0, Y0, X0 + 0.1, Y0 + 0.2), STREET),
               "B": j(COMM_B, "李家村", "community", box(X0 + 0.1, Y0, X0 + 0.2, Y0 + 0.2), STREET, urban=False)}
        rebuild_paths(conn)
        from geo.db.workcal import seed

        seed(conn, "test")  # the table is truncated between tests; the migration seeded it
    plan_id = plans.write_plan(engine, STREET, plan_grids(), actor="test", params={"min_pop": 1000}, quality={})
    plans.publish(engine, plan_id, "test")
    ids["plan"] = plan_id
    users = {"admin": ("admin", DISTRICT), "planner": ("planner", COMM_A), "dispatcher": ("dispatcher", COMM_A),
             "worker": ("worker", COMM_A), "leader": ("leader", COMM_A), "dispatcher_b": ("dispatcher", COMM_B),
             "planner_street": ("planner", STREET), "worker_b": ("worker", COMM_B)}
    with password_hashed_once():
        for u, (role, code) in users.items():
            add_user(engine, u, PASSWORD, role, code, actor="test")
    with engine.begin() as conn:
        def worker(name, role, comm, grids, on_duty=True, user=None):
            wid = conn.execute(text("""
                INSERT INTO workers (name, phone, role, jurisdiction_id, user_id, on_duty, created_by)
                VALUES (:n, '13800001234', :r, (SELECT id FROM jurisdictions WHERE code = :c),
                        (SELECT id FROM users WHERE username = :u), :d, 'test') RETURNING id
            """), {"n": name, "r": role, "c": comm, "u": user, "d": on_duty}).scalar_one()
            for g in grids:
                conn.execute(text("INSERT INTO worker_grids VALUES (:w, :g)"), {"w": wid, "g": g})
            return wid

        ids["chief_a"] = worker("王网格长", "chief", COMM_A, [f"{COMM_A}001", f"{COMM_A}002"])
        ids["worker_a"] = worker("李网格员", "full_time", COMM_A, [f"{COMM_A}001"], user="worker")
        ids["offduty_a"] = worker("赵辅助", "auxiliary", COMM_A, [f"{COMM_A}001"], on_duty=False)
        ids["worker_b"] = worker("陈网格员", "full_time", COMM_B, [f"{COMM_B}001"], user="worker_b")
    ids["hotline_key"] = add_api_key(engine, "12345热线", "dispatcher", DISTRICT, actor="test")
    ids["sensor_key_b"] = add_api_key(engine, "B村传感器", "worker", COMM_B, actor="test")
    return ids


@pytest.fixture
def client(world, geo_env, monkeypatch):
    """A TestClient on a fresh app (demo secret; lookup index loaded at start-up)."""
    from fastapi.testclient import TestClient

    from geo.api.main import create_app
    from geo.config import reset_settings

    monkeypatch.setenv("GEO_DEMO", "1")
    reset_settings()
    with TestClient(create_app(listen=False)) as c:
        yield c


def small_demo_client(engine, tmp_path, monkeypatch, users: tuple[str, ...], **env: str):
    """The synthetic district at scale 0.1 loaded by ``geo demo-data``, a user per role in *users* (named as
    the role, at the district) and a TestClient of the API in demo mode with the settings *env*: a generator
    for a fixture to ``yield from``."""
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from geo.api.main import create_app
    from geo.cli import app
    from geo.config import reset_settings
    from geo.db.users import add_user
    from geo.demo.synthetic import DISTRICT_CODE

    res = CliRunner().invoke(app, ["demo-data", "--scale", "0.1", "--out", str(tmp_path / "demo")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    for role in users:
        add_user(engine, role, PASSWORD, role, DISTRICT_CODE, actor="test")
    monkeypatch.setenv("GEO_DEMO", "1")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    reset_settings()
    with TestClient(create_app(listen=False)) as c:
        yield c


def token(client, username: str) -> dict:
    r = client.post("/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def centre(community: str, k: int) -> tuple[float, float]:
    """Centre of grid number k (1..16) of a community."""
    x0 = X0 if community == COMM_A else X0 + 0.1
    i, j = (k - 1) % 4, (k - 1) // 4
    return x0 + (i + 0.5) * DX, Y0 + (j + 0.5) * DY
