"""Operations: backup → restore into an empty cluster reproduces plans, events and audit exactly; doctor."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, pool, text

from geo.config import Settings
from geo.db.cluster import Cluster, ClusterError
from geo.db.ops import backup, doctor, restore
from tests.api.conftest import COMM_A, centre, token
from tests.conftest import free_port

TABLES = ["jurisdictions", "grid_plans", "grids", "users", "workers", "worker_grids", "events", "event_transitions",
          "audit_log", "loads", "alembic_version"]


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Row count and an md5 over every row (in primary-key order) of each table."""
    e = create_engine(url, poolclass=pool.NullPool)
    out = {}
    with e.connect() as c:
        for t in TABLES:
            order = "version_num" if t == "alembic_version" else ("worker_id, grid_code" if t == "worker_grids" else "id")
            out[t] = tuple(c.execute(text(
                f"SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY {order}), '')) FROM {t} x"
            )).one())
    e.dispose()
    return out


@pytest.fixture
def second_cluster():
    d = Path(tempfile.mkdtemp(prefix="geo-restore-"))
    d.chmod(0o755)
    c = Cluster(Settings(GEO_DATA_DIR=d, GEO_PG_PORT=free_port()))
    c.up()
    yield c
    c.destroy()
    shutil.rmtree(d, ignore_errors=True)


def test_backup_restore_round_trip(world, client, db_url, tmp_path, second_cluster):
    h = token(client, "dispatcher")
    for k in (1, 2, 3):
        lon, lat = centre(COMM_A, k)
        e = client.post("/v1/events", json={"category": "incident", "subtype": "noise", "source": "patrol",
                                            "lon": lon, "lat": lat}, headers=h).json()
        client.post(f"/v1/events/{e['id']}/transitions", json={"to": "accepted"}, headers=h)
    before = fingerprint(db_url)
    assert before["events"][0] == 3 and before["audit_log"][0] > 6
    dump = backup(db_url, tmp_path / "geo.dump")
    target = second_cluster.url()
    tgt_engine = create_engine(target, poolclass=pool.NullPool)
    restore(target, dump, engine=tgt_engine)
    assert fingerprint(target) == before
    # a second restore into the now non-empty database is refused, nothing changes
    with pytest.raises(ClusterError, match="not empty"):
        restore(target, dump, engine=tgt_engine)
    restore(target, dump, engine=tgt_engine, force=True)
    assert fingerprint(target) == before
    # restored database is usable: the lookup SQL answers as before
    with tgt_engine.connect() as c:
        code = c.execute(text("SELECT code FROM grids g JOIN grid_plans p ON p.id = g.plan_id AND p.status='published' "
                              "WHERE ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) ORDER BY code LIMIT 1"),
                         dict(zip("xy", centre(COMM_A, 1)))).scalar()
    tgt_engine.dispose()
    assert code == f"{COMM_A}001"


def test_restore_of_a_broken_file_changes_nothing(second_cluster, tmp_path):
    bad = tmp_path / "bad.dump"
    bad.write_bytes(b"PGDMP garbage")
    with pytest.raises(ClusterError, match="pg_restore failed"):
        restore(second_cluster.url(), bad)


def test_doctor_on_a_healthy_world(world, engine):
    checks = {c.name: c for c in doctor(engine, Settings(GEO_DEMO=True))}
    # the test world has plans but no population units, so there is nothing for "published plans" to cover
    assert checks.pop("published plans").status == "warn"
    # no `geo worker` runs in this test: queued partitions would wait, and doctor says so
    w = checks.pop("job worker")
    assert w.status == "warn" and w.detail.startswith("0 live worker(s)") and "geo worker" in w.fix
    assert all(c.status == "ok" for c in checks.values()), {k: (c.status, c.detail) for k, c in checks.items()}
    with engine.begin() as c:
        c.execute(text("DROP INDEX ix_events_path"))
    try:
        checks = {c.name: c for c in doctor(engine, Settings(GEO_DEMO=False))}
        assert checks["indexes"].status == "fail" and "ix_events_path" in checks["indexes"].detail
        assert checks["secret key"].status == "fail"
    finally:
        with engine.begin() as c:
            c.execute(text("CREATE INDEX ix_events_path ON events (jurisdiction_path text_pattern_ops)"))


def test_json_logs_carry_the_request_id(client, caplog):
    import json
    import logging

    from geo.logs import JSONFormatter

    with caplog.at_level(logging.INFO, logger="geo.api"):
        r = client.get("/healthz", headers={"X-Request-ID": "abc123"})
        missing = client.get("/v1/nope", headers={"X-Request-ID": "def456"})
    assert r.headers["x-request-id"] == "abc123"
    # default access log: quick successful reads are not logged one by one; errors and writes are
    assert not [x for x in caplog.records if getattr(x, "path", None) == "/healthz"]
    assert missing.status_code == 404
    rec = [x for x in caplog.records if getattr(x, "path", None) == "/v1/nope"][-1]
    doc = json.loads(JSONFormatter().format(rec))
    assert doc["request_id"] == "def456" and doc["status"] == 404 and doc["msg"] == "request" and "ms" in doc
    assert doc["level"] == "info" and doc["ts"].endswith("+00:00")
    assert client.get("/readyz").json()["database"] == "ok"
