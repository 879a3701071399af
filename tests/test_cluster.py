"""The embedded cluster: idempotent up, data kept across down/up, stale pid, clear errors."""

import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from geo.config import Settings
from geo.db import cluster as C
from tests.conftest import free_port


@pytest.fixture(scope="module")
def own_cluster():
    d = Path(tempfile.mkdtemp(prefix="geo-cluster-test-"))
    d.chmod(0o755)
    c = C.Cluster(Settings(GEO_DATA_DIR=d, GEO_PG_PORT=free_port()))
    yield c
    c.destroy()
    shutil.rmtree(d, ignore_errors=True)


def _dsn(c):
    return c.url("postgresql")


def test_up_twice_then_down_up_keeps_data(own_cluster):
    c = own_cluster
    first = c.up()
    assert first["created"] and first["started"]
    second = c.up()
    assert not second["created"] and not second["started"]
    with psycopg.connect(_dsn(c), autocommit=True) as conn:
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname='postgis'").fetchone()
        conn.execute("CREATE TABLE IF NOT EXISTS keepme (x int)")
        conn.execute("INSERT INTO keepme VALUES (42)")
    assert c.down() is True
    assert c.status().running is False
    assert c.down() is False
    c.up()
    with psycopg.connect(_dsn(c)) as conn:
        assert conn.execute("SELECT x FROM keepme").fetchone() == (42,)


def test_listens_on_loopback_only_with_password(own_cluster):
    c = own_cluster
    c.up()
    with psycopg.connect(_dsn(c)) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://geo:wrong@127.0.0.1:{c.port}/geo")
    assert oct(c.password_file.stat().st_mode)[-3:] == "600"


def test_stale_pid_file_is_handled(own_cluster):
    c = own_cluster
    c.up()
    c.down()
    # A crash leaves postmaster.pid behind, with a PID that is not a postgres process any more.
    pidfile = c.pgdata / "postmaster.pid"
    pidfile.write_text(f"{os.getpid()}\n{c.pgdata}\n")
    if os.geteuid() == 0:
        shutil.chown(pidfile, "postgres", "postgres")
    assert c.status().running is False
    info = c.up()
    assert info["started"]
    assert c.status().running


def test_missing_binaries_name_the_debian_package(monkeypatch):
    # Probe a PostgreSQL major that is not installed, with no pg_config on PATH.
    monkeypatch.setattr(C, "PG_MAJOR", 99)
    monkeypatch.setattr(C.shutil, "which", lambda name: None)
    with pytest.raises(C.ClusterError, match="apt-get install postgresql-15"):
        C.bindir()


def test_missing_postgis_names_the_debian_package(monkeypatch):
    monkeypatch.setattr(C, "postgis_available", lambda: False)
    with pytest.raises(C.ClusterError, match="apt-get install postgresql-15-postgis-3"):
        C.require_postgis()


def test_port_taken_is_a_clear_error(own_cluster, tmp_path):
    d = Path(tempfile.mkdtemp(prefix="geo-cluster-port-"))
    d.chmod(0o755)
    busy = C.Cluster(Settings(GEO_DATA_DIR=d, GEO_PG_PORT=own_cluster.port))
    own_cluster.up()
    try:
        with pytest.raises(C.ClusterError, match="GEO_PG_PORT"):
            busy.up()
    finally:
        busy.destroy()
        shutil.rmtree(d, ignore_errors=True)
