"""Helpers of the browser tests: processes, readiness, API tokens, logging in, the map iframe."""


from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "dashboard" / "app.py"
CHROMIUM = os.environ.get("GEO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "demo-only-change-me"  # geo.api.core.config.DEMO_PASSWORD: the demo's users
ROLES = ["admin", "planner", "dispatcher", "worker", "leader"]
REFRESH_S = 3
NAV = {"bigscreen": "大屏", "dispatch": "调度", "planner": "规划", "events": "事件", "workers": "网格员"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process in its own session (so it and its children stop together) that dies with the test run;
    output to a log file."""

    def __init__(self, name: str, cmd: list[str], env: dict, cwd: Path, log_dir: Path):
        self.name = name
        self.log = log_dir / f"{name}.log"
        self._fh = open(self.log, "wb")
        from geo.supervise import spawn

        # own process group (stop() reaches its children) + PR_SET_PDEATHSIG: dies with the test session even
        # when pytest itself is killed (timeout, SIGKILL) and no fixture teardown runs
        self.p = spawn(cmd, env=env, cwd=cwd, stdout=self._fh, stderr=subprocess.STDOUT)

    def tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self) -> None:
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=5)
        self._fh.close()


def wait_http(url: str, proc: Proc, timeout: float, ok=lambda r: r.status_code == 200) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.p.returncode}):\n{proc.tail()}")
        try:
            r = httpx.get(url, timeout=2)
            if ok(r):
                return
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready in {timeout:.0f} s ({last}):\n{proc.tail()}")


def run_cli(args: list[str], env: dict, cwd: Path, timeout: float = 600) -> str:
    r = subprocess.run([sys.executable, "-m", "geo.cli", *args], env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"geo {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout + r.stderr


def token(api_url: str, user: str) -> str:
    r = httpx.post(f"{api_url}/v1/auth/token", data={"username": user, "password": PASSWORD}, timeout=10)
    r.raise_for_status()
    return r.json()["access_token"]


def auth(api_url: str, user: str) -> dict:
    return {"Authorization": f"Bearer {token(api_url, user)}"}


@dataclass
class Stack:
    api_url: str
    dash_url: str
    db_url: str
    env: dict
    work: Path
    draft_plan_id: int
    draft_code: str
    procs: list = field(default_factory=list)



# --------------------------------------------------------------------------- helpers used by the tests


# Streamlit's own end-to-end hook: the app root carries the script's run state ("initial", "running",
# "notRunning", "rerunRequested" …); elements of the previous run not yet redrawn carry data-stale="true"
_IDLE_JS = """() => { const app = document.querySelector('[data-testid="stApp"]');
    return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
        && !document.querySelector('[data-stale="true"]'); }"""


def is_idle(page) -> bool:
    try:
        return bool(page.evaluate(_IDLE_JS))
    except Exception:  # noqa: BLE001 — navigating
        return False


def wait_idle(page, timeout: float = 60, quiet: float = 0.5) -> None:
    """Wait until Streamlit has finished re-running: no script run and no stale element, and that for *quiet*
    seconds in a row (so a rerun the last interaction has only just asked for is not mistaken for idleness).

    A page with a refresh timer (the big screen's fragment) becomes busy again every few seconds; idle here
    means "between two runs", which is when a click is neither lost nor applied to a half-drawn page.
    """
    deadline = time.monotonic() + timeout
    since = None
    while True:
        now = time.monotonic()
        if is_idle(page):
            since = since or now
            if now - since >= quiet:
                return
        else:
            since = None
        if now > deadline:
            state = page.evaluate("() => document.querySelector('[data-testid=\"stApp\"]')"
                                  "?.getAttribute('data-test-script-state')")
            raise AssertionError(f"Streamlit did not become idle in {timeout:.0f} s (script state {state!r})")
        time.sleep(0.1)


def settled(page, read, timeout: float = 60, quiet: float = 0.5):
    """*read()* once Streamlit is idle and two reads *quiet* seconds apart (idle at both) agree; its value."""
    deadline = time.monotonic() + timeout
    while True:
        wait_idle(page, max(1.0, deadline - time.monotonic()), quiet=quiet / 2)
        a = read()
        time.sleep(quiet)
        if is_idle(page) and read() == a:
            return a
        if time.monotonic() > deadline:
            raise AssertionError(f"value did not settle in {timeout:.0f} s (last {a!r})")


def click(page, locator, **kw) -> None:
    """Click once Streamlit is idle, then wait for the rerun the click causes to finish."""
    wait_idle(page)
    locator.click(**kw)
    wait_idle(page)


def login(page, base_url: str, user: str, path: str = "bigscreen", *, expect_ok: bool = True) -> None:
    page.goto(f"{base_url}/{path}")
    page.get_by_label("用户名").fill(user)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    if expect_ok:
        page.locator('[data-testid="geo-role"]').wait_for(timeout=90_000)
        wait_idle(page)


def goto(page, name: str) -> None:
    """Open a page through the sidebar (a new URL would start a new, logged-out session)."""
    click(page, page.locator('[data-testid="stSidebarNav"]').get_by_text(NAV[name], exact=True))


def wait_painted(page, timeout: float = 120) -> None:
    """The big screen has painted real data once: KPI tiles with a number, the live badge, and the map's grid
    layer drawn (a condition with a generous limit: a cold dashboard and API on a busy machine are slow)."""
    page.locator('[data-testid="kpi-events"]:not([data-value="null"])').wait_for(timeout=timeout * 1000)
    page.locator('[data-testid="live-badge"]').wait_for(timeout=timeout * 1000)
    f = map_frame(page, timeout=timeout)
    deadline = time.monotonic() + timeout
    while not f.evaluate("() => !!(window.__geo_layers || {}).grids"):
        assert time.monotonic() < deadline, "the map's grid layer was not drawn"
        time.sleep(0.2)


def map_frame(page, index: int = 0, timeout: float = 30):
    """The st_folium iframe's Frame once its Leaflet map exists."""
    page.locator('iframe[title="streamlit_folium.st_folium"]').nth(index).wait_for()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames = [f for f in page.frames if "streamlit_folium.st_folium" in f.url]
        if len(frames) > index:
            f = frames[index]
            try:
                if f.evaluate("() => !!window.map"):
                    return f
            except Exception:  # noqa: BLE001 — the frame may be navigating
                pass
        time.sleep(0.2)
    raise AssertionError("the map did not render")


def assert_no_traceback(page) -> None:
    body = page.inner_text("body")
    assert "Traceback" not in body, body[:2000]
    assert 'File "' not in body, body[:2000]
    assert page.locator('[data-testid="stException"]').count() == 0
