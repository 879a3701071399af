"""Browser tests: a real stack driven by headless Chromium (Playwright, sync API).

PostGIS (the session cluster of ``tests/conftest.py``, in a database of its own so other tests' truncation
cannot touch it) → ``geo demo --no-serve --scale 0.2 --events 2000`` → ``geo partition CODE --from-scratch``
(a draft for the publish test) → ``geo serve --demo`` and ``streamlit run dashboard/app.py`` as subprocesses
on free ports, with a 3-second big-screen refresh. Everything is torn down at the end of the session.

Chromium: ``/usr/bin/chromium`` (``GEO_CHROMIUM`` to override); the tests skip when it is missing.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.browser.helpers import (APP, CHROMIUM, CHROMIUM_ARGS, REFRESH_S, Proc, Stack, auth, free_port, run_cli,
                                   wait_http)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        why = f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium, or set GEO_CHROMIUM)"
        if os.environ.get("CI"):  # `make test` installs it: on CI a missing browser is a broken install
            pytest.fail(why)
        pytest.skip(why)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser_db_url(pg_env, db_url) -> str:
    """A database of its own on the test cluster (other tests truncate the main one)."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    name = f"geo_browser_{os.getpid()}"
    import psycopg

    conninfo = dict(host=url.host, port=url.port, user=url.username, password=url.password, dbname="postgres")
    try:
        with psycopg.connect(autocommit=True, **conninfo) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        # sharing the main test database would let other tests' truncation empty the stack under its feet
        pytest.fail(f"browser tests need a database of their own on the test server (CREATE DATABASE {name}): {exc}")
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def stack(chromium_path, browser_db_url, tmp_path_factory) -> Stack:
    work = tmp_path_factory.mktemp("browser-stack")
    work.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEO_", "STREAMLIT_")) and k != "DATABASE_URL"}
    env.update({"DATABASE_URL": browser_db_url, "GEO_DATA_DIR": str(work / ".geo"), "GEO_DEMO": "1",
                "PYTHONUNBUFFERED": "1", "GEO_ACTOR": "test:browser"})
    run_cli(["demo", "--no-serve", "--scale", "0.2", "--events", "2000"], env, work)
    api_port, dash_port = free_port(), free_port()
    api_url, dash_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dash_port}"
    procs = []
    try:
        # the maps fetch the basemap's vector tiles from the API themselves: it must allow the dashboard's origin
        aenv = env | {"GEO_CORS_ORIGINS": dash_url}
        api = Proc("api", [sys.executable, "-m", "geo.cli", "serve", "--demo", "--port", str(api_port)], aenv, work,
                   work)
        procs.append(api)
        wait_http(f"{api_url}/readyz", api, 90, ok=lambda r: r.status_code == 200 and r.json()["grids_indexed"] > 0)
        # partition jobs started from the planner page run in a worker, never in the API
        worker = Proc("worker", [sys.executable, "-m", "geo.cli", "worker"], env, work, work)
        procs.append(worker)
        deadline = time.monotonic() + 60
        while "waiting for jobs" not in worker.tail():
            assert worker.alive() and time.monotonic() < deadline, worker.tail()
            time.sleep(0.2)
        # a draft to publish from the planner page: the first street with a published plan
        js = httpx.get(f"{api_url}/v1/jurisdictions", headers=auth(api_url, "admin"), timeout=10).json()
        code = next(j["code"] for j in js if j["level"] == "street" and j["published_plan_id"])
        out = run_cli(["partition", code, "--from-scratch", "--seed", "7"], env, work)
        draft = int(re.search(r"draft plan (\d+)", out).group(1))
        denv = env | {"GEO_API_URL": api_url, "GEO_DASHBOARD_REFRESH_S": str(REFRESH_S)}
        dash = Proc("dashboard", [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(dash_port),
                                  "--server.address", "127.0.0.1", "--server.headless", "true",
                                  "--browser.gatherUsageStats", "false"], denv, work, work)
        procs.append(dash)
        wait_http(f"{dash_url}/_stcore/health", dash, 90)
        yield Stack(api_url, dash_url, browser_db_url, env, work, draft, code, procs)
    finally:
        for p in reversed(procs):
            p.stop()


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def page(browser, request, tmp_path_factory):
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.js_errors = errors  # type: ignore[attr-defined]
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:  # keep what the browser showed, for the failure report
        shot = tmp_path_factory.getbasetemp() / f"{request.node.name}.png"
        try:
            pg.screenshot(path=str(shot))
            print(f"screenshot of the failure: {shot}")
        except Exception:  # noqa: BLE001
            pass
    ctx.close()


