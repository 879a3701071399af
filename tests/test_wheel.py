"""The wheel: built from the repository, installed into a fresh virtualenv (not the checkout), it carries the
migrations, the catalogue, the Streamlit config and the vendored map assets, and serves the dashboard with its
offline Leaflet from there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, Proc
from tests.conftest import REPO, free_port

pytestmark = pytest.mark.slow

PACKAGED = ["dashboard/static/vendor/leaflet/leaflet.js", "dashboard/static/vendor/leaflet/leaflet.css",
            "dashboard/static/vendor/leaflet/images/marker-icon.png", "dashboard/static/vendor/leaflet/LICENSE",
            "dashboard/static/vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js",
            "dashboard/static/vendor/vectorgrid/LICENSE", "dashboard/.streamlit/config.toml",
            "dashboard/app.py", "geo/data/catalogue.json", "geo/db/migrations/env.py",
            "geo/db/migrations/versions/0001_foundation.py"]


def _clean_env() -> dict:
    """This environment without the checkout on the path (so nothing is imported from the repository)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # build from a copy: setuptools writes build/ and *.egg-info into the source tree
    src = tmp_path_factory.mktemp("src") / "geo"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", ".geo", "build", "*.egg-info",
                                                             "__pycache__", ".pytest_cache", "notebooks", "*.so"))
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(src)], check=True,
                   capture_output=True, text=True, timeout=600, env=_clean_env())
    (whl,) = out.glob("geo_grids-*.whl")
    return whl


def test_wheel_has_the_package_data_and_the_free_name(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [p for p in PACKAGED if p not in names]
    assert missing == []
    # the lookup's compiled step, built from geo/api/_fastlookup.c for this Python
    assert any(n.startswith("geo/api/_fastlookup.") and n.endswith((".so", ".pyd")) for n in names), names
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert "Name: geo-grids" in text
    for dep in ("procrastinate", "starlette", "fastapi"):
        assert f"Requires-Dist: {dep}" in text
    for extra_dep in ("streamlit", "altair", "jinja2", "dask"):  # not core: only with their extra
        line = next(line for line in text.splitlines() if line.startswith(f"Requires-Dist: {extra_dep}"))
        assert "extra ==" in line, line
    assert "psycopg-pool" not in text.replace("psycopg[binary]", "")


def test_installed_wheel_serves_the_dashboard_with_offline_maps(wheel):
    venv = Path(tempfile.mkdtemp(prefix="geo-wheel-venv-"))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    # --no-compile: pip byte-compiles every installed file by default (about 1 GB here: 2/3 of the install's
    # time); the dashboard compiles what it imports when it starts, as any venv would
    r = subprocess.run([str(py), "-m", "pip", "install", "--no-compile", "-c", str(REPO / "constraints.txt"),
                        f"{wheel}[dashboard]"], capture_output=True, text=True, timeout=1800, env=_clean_env(), cwd=venv)
    if r.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
    assert r.returncode == 0, r.stderr[-3000:]
    work = Path(tempfile.mkdtemp(prefix="geo-wheel-run-"))
    env = _clean_env()
    env |= {"GEO_DATA_DIR": str(work), "GEO_API_URL": "http://127.0.0.1:9", "PATH": f"{venv / 'bin'}:{env['PATH']}"}
    # the code comes from the venv, not from the checkout
    w = subprocess.run([str(py), "-c", "import geo, dashboard, geo.api._fastlookup as f; "
                                       "print(geo.__file__, dashboard.__file__, f.__file__)"],
                       cwd=work, env=env, capture_output=True, text=True)
    assert w.returncode == 0 and str(REPO) not in w.stdout and str(venv) in w.stdout, (w.stdout, w.stderr,
                                                                                      r.stdout[-2000:])
    port = free_port()
    dash = Proc("wheel-dashboard", [str(venv / "bin" / "geo"), "dashboard", "--port", str(port)], env, work, work)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert dash.alive(), dash.tail()
            try:
                if httpx.get(f"{base}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, dash.tail()
            time.sleep(0.5)
        # a browser session runs the app, which declares the map-asset component; then its files are served
        # (in a process of its own: this test's worker may already hold the browser tests' Playwright session,
        # and a second sync Playwright in one process fails inside the first one's asyncio loop)
        script = (
            "import sys\n"
            "from playwright.sync_api import sync_playwright\n"
            "with sync_playwright() as pw:\n"
            f"    b = pw.chromium.launch(executable_path={CHROMIUM!r}, args={list(CHROMIUM_ARGS)!r})\n"
            "    page = b.new_page()\n"
            f"    page.goto({base!r})\n"
            "    page.get_by_text('登录').first.wait_for(timeout=60_000)\n"
            "    b.close()\n")
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stderr[-3000:]
        for asset in ("vendor/leaflet/leaflet.js", "vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js"):
            r = httpx.get(f"{base}/component/dashboard.maps.geo_map_assets/{asset}", timeout=10)
            assert r.status_code == 200, (asset, r.status_code)
            assert r.content == (REPO / "dashboard" / "static" / asset).read_bytes()
            assert "javascript" in r.headers["content-type"]
    finally:
        dash.stop()
        shutil.rmtree(venv, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
