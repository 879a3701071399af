"""Shared test fixtures.

Real-data tests read ``../shared/data`` beside the checkout (override with
``GEO_SHARED_DATA``) and skip with a reason when it is absent.
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GEO_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """Path of a file under ../shared/data, or skip the test saying what is missing."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real-data test needs {p} (../shared/data beside the checkout); not present here")
    return p


# --------------------------------------------------------------------------- PostGIS

import shutil
import socket
import tempfile


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_env():
    """A real PostgreSQL 15 + PostGIS cluster for the whole test session.

    Started by the project's own embedded-cluster code in a fresh temporary
    data dir (world-traversable so the ``postgres`` user can enter it when the
    tests run as root). With ``GEO_TEST_DATABASE_URL`` set, that database is
    used instead (it must be empty: tests truncate tables).
    Yields a dict of environment variables (GEO_DATA_DIR, GEO_PG_PORT or DATABASE_URL).
    """
    from geo.config import Settings, reset_settings
    from geo.db.cluster import Cluster

    external = os.environ.get("GEO_TEST_DATABASE_URL")
    if external:
        yield {"DATABASE_URL": external}
        return
    d = Path(tempfile.mkdtemp(prefix="geo-test-"))
    d.chmod(0o755)
    env = {"GEO_DATA_DIR": str(d), "GEO_PG_PORT": str(free_port())}
    settings = Settings(GEO_DATA_DIR=d, GEO_PG_PORT=int(env["GEO_PG_PORT"]))
    cluster = Cluster(settings)
    cluster.up()
    env["__url"] = cluster.url()
    _no_durability(cluster.url("postgresql"))
    try:
        yield env
    finally:
        from geo.db.session import dispose_engines

        dispose_engines()
        cluster.destroy()
        shutil.rmtree(d, ignore_errors=True)
        reset_settings()


def _no_durability(dsn: str) -> None:
    """A throw-away test cluster need not survive a power cut: no fsync, no full-page writes, commits that do not
    wait for the WAL flush. Every test empties the tables (TRUNCATE: ~0.12 s with fsync, ~0.03 s without) and
    most write in many small transactions. A clean stop or restart (``pg_ctl stop -m fast``, as the fault tests
    do) still writes everything out, so no acknowledged commit is lost there."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for setting in ("fsync = off", "full_page_writes = off", "synchronous_commit = off"):
            conn.execute(f"ALTER SYSTEM SET {setting}")
        conn.execute("SELECT pg_reload_conf()")


@pytest.fixture(scope="session")
def db_url(pg_env) -> str:
    """URL of the migrated test database."""
    from geo.db import migrate

    url = pg_env.get("DATABASE_URL") or pg_env["__url"]
    migrate.upgrade(url)
    return url


@pytest.fixture
def geo_env(pg_env, db_url, monkeypatch):
    """Point geo's settings (env vars) at the test database for in-process CLI/API calls."""
    from geo.config import reset_settings

    for k, v in pg_env.items():
        if not k.startswith("__"):
            monkeypatch.setenv(k, v)
    if "DATABASE_URL" not in pg_env:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    reset_settings()
    yield pg_env
    reset_settings()


@pytest.fixture
def engine(db_url):
    """Engine on the test database, with every table emptied first."""
    from sqlalchemy import text

    from geo.db.session import get_engine

    eng = get_engine(db_url)
    with eng.begin() as conn:
        tables = conn.execute(text(
            "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename NOT IN ('spatial_ref_sys', 'alembic_version')"
        )).scalar_one()
        if tables:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return eng


@contextmanager
def password_hashed_once():
    """Within the block, ``geo.db.users.add_user`` hashes each distinct password once per test session.

    The test worlds create 6 to 21 users with the same password before every test; each argon2id hash costs
    ~20 ms of CPU by design (the product's parameters), ~0.16 s per test for the API world alone. The stored
    hash is still a real argon2id hash with those parameters (every user's with the same salt), and logins
    still verify it for real; hashing outside the block (password changes, re-hash on login) is untouched."""
    from geo.db import users

    real = users.hash_password
    users.hash_password = lambda password: _hash_once(password, real)
    try:
        yield
    finally:
        users.hash_password = real


@functools.lru_cache(maxsize=8)
def _hash_once(password: str, hash_password) -> str:
    return hash_password(password)


# --------------------------------------------------------------------------- parallel runs (pytest-xdist)

#: Rough cost (seconds on one worker) of the groups that take far longer than their number of tests suggests;
#: any other group counts :data:`SECONDS_PER_TEST` per test. Only the order of the groups depends on it (a stale
#: figure costs balance, never a test).
GROUP_SECONDS = {  # measured with -n 1 on a shared 2-core machine, 2026-12-02
    "browser": 285,
    "tests/api/test_jobs.py": 70,
    "tests/api/test_no_500.py": 50,
    "tests/api/test_matrix.py": 50,
    "tests/test_wheel.py": 45,
    "tests/api/test_schemathesis.py": 35,
    "tests/api/test_processes.py": 30,
    "tests/api/test_auth.py": 28,
    "tests/test_supervise.py": 26,
    "tests/api/test_faults.py": 21,
    "tests/api/test_lookup.py": 20,
    "tests/partition/test_verify.py": 20,
    "tests/api/test_geocode.py": 18,
    "tests/test_notebooks.py::test_notebook_runs[04_api_client]": 18,
    "tests/partition/test_tight_range.py": 16,
    "tests/partition/test_plan.py": 16,
    "tests/api/test_ops.py": 15,
    "tests/partition/test_redraw.py": 14,
    "tests/api/test_planner_export.py": 12,
    "tests/test_scaleout.py": 12,
    "tests/api/test_rbac.py": 11,
    "tests/test_load.py": 10,
}
SECONDS_PER_TEST = 0.4


def xdist_group(nodeid: str) -> str:
    """The ``--dist loadgroup`` unit of a test: its module (its module fixtures are built once); all browser
    tests together (one demo stack); each notebook on its own."""
    path = nodeid.split("::", 1)[0]
    if path.startswith("tests/browser/"):
        return "browser"
    if path == "tests/test_notebooks.py":
        return nodeid
    return path


def pytest_collection_modifyitems(config, items):
    for item in items:
        group = xdist_group(item.nodeid)
        if group == "browser":
            # a Streamlit page re-runs under the test's feet (refresh timers, widget reruns): a browser test gets
            # one re-run, reported as such in the summary ("R"), so a race is visible but does not sink the suite
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with the groups of :func:`xdist_group`, the longest group handed out first.

    xdist 3.8 passes a test's group to its scheduler as a suffix it writes into the test id (``…@browser``);
    pytest 9.2 keeps test ids elsewhere, so the suffix is lost and every test became a group of its own
    (pytest-xdist#1386): modules and the browser tests were spread over both workers, with a demo stack
    each. This scheduler reads the group off the test id itself. And it picks the costliest remaining group
    (:data:`GROUP_SECONDS`) each time a worker asks, instead of the next one in collection order: the long
    groups run while there is short work left to even out the end."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class GroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.rfind("@") > nodeid.rfind("]"):  # an xdist that still writes the suffix
                return nodeid.rsplit("@", 1)[-1]
            return xdist_group(nodeid)

        def _assign_work_unit(self, node) -> None:
            def seconds(scope: str) -> float:
                return GROUP_SECONDS.get(scope, SECONDS_PER_TEST * len(self.workqueue[scope]))

            self.workqueue.move_to_end(max(self.workqueue, key=seconds), last=False)
            super()._assign_work_unit(node)

    return GroupScheduling(config, log)
