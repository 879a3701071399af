"""The supervised demo and clean stops: fail fast with the reason, restart a killed service, stop everything on
SIGTERM, and servers started by a test run die with it even when pytest is killed."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import psutil
import pytest

from geo.supervise import Service, StartError, Supervisor, http_ok, spawn, stop
from tests.conftest import REPO, free_port


def gone(pid: int) -> bool:
    """The process no longer runs (exited; a zombie nobody reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if not gone(p)]
        if not alive:
            return []
        time.sleep(0.2)
    return alive


def http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


def _env(**extra) -> dict:
    return os.environ | {"PYTHONPATH": str(REPO)} | extra


def test_a_service_that_cannot_start_is_named_and_the_started_ones_are_stopped(tmp_path):
    p1, p2 = free_port(), free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", p2))
    holder.listen()
    try:
        first = Service("first", http_server(p1), http_ok(f"http://127.0.0.1:{p1}/"), port=("127.0.0.1", p1))
        second = Service("second", http_server(p2), http_ok(f"http://127.0.0.1:{p2}/"), port=("127.0.0.1", p2))
        sup = Supervisor([first, second], tmp_path)
        with pytest.raises(StartError, match=rf"second cannot start: port {p2} on 127.0.0.1 is already in use"):
            sup.start()
        assert first.proc is not None and wait_gone([first.proc.pid]) == []
        assert second.proc is None  # never started: nothing to leave behind
    finally:
        holder.close()


def test_a_service_exiting_while_starting_shows_its_log(tmp_path):
    bad = Service("bad", [sys.executable, "-c", "import sys; print('cannot read config: x.toml'); sys.exit(3)"],
                  lambda: False)
    with pytest.raises(StartError, match=r"(?s)bad exited with code 3 while starting.*cannot read config"):
        Supervisor([bad], tmp_path).start()


def test_a_dead_service_is_restarted_then_everything_stops_past_the_limit(tmp_path):
    p1, p2 = free_port(), free_port()
    a = Service("a", http_server(p1), http_ok(f"http://127.0.0.1:{p1}/"), port=("127.0.0.1", p1))
    b = Service("b", http_server(p2), http_ok(f"http://127.0.0.1:{p2}/"), port=("127.0.0.1", p2))
    said = []
    sup = Supervisor([a, b], tmp_path, max_restarts=1, say=said.append)
    sup.start()
    try:
        first = a.proc.pid
        os.killpg(first, signal.SIGKILL)
        a.proc.wait(5)
        assert sup.watch_once() is True
        assert a.proc.pid != first and httpx.get(f"http://127.0.0.1:{p1}/").status_code == 200
        assert int((tmp_path / "a.pid").read_text()) == a.proc.pid
        assert any("a died" in m and "restarting (1/1)" in m for m in said), said
        os.killpg(a.proc.pid, signal.SIGKILL)
        a.proc.wait(5)
        assert sup.watch_once() is False  # second death within the window: give up
        assert any("stopping everything" in m for m in said), said
    finally:
        sup.stop()
    assert wait_gone([a.proc.pid, b.proc.pid]) == []


def test_servers_die_with_a_killed_test_run(tmp_path):
    """A pytest killed like `timeout -s KILL` would (no teardown runs) leaves none of its servers behind."""
    port = free_port()
    pidfile = tmp_path / "child.pid"
    test = tmp_path / "test_inner.py"
    test.write_text(textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from tests.browser.helpers import Proc

        def test_hangs(tmp_path):
            p = Proc("server", [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1"],
                     dict(__import__("os").environ), tmp_path, tmp_path)
            Path({str(pidfile)!r}).write_text(str(p.p.pid))
            time.sleep(600)
    """))
    inner = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test),
                              "--rootdir", str(tmp_path)], cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (pidfile.exists() and pidfile.read_text()):
            assert inner.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        child = int(pidfile.read_text())
        while True:  # the server is up
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        inner.kill()
        inner.wait(10)
        assert wait_gone([child]) == [], f"server {child} outlived the killed test run"
    finally:
        if inner.poll() is None:
            inner.kill()


def _demo_env(tmp: Path, api_port: int, dash_port: int) -> dict:
    return _env(GEO_DATA_DIR=str(tmp), GEO_PG_PORT=str(free_port()), GEO_API_PORT=str(api_port),
                GEO_DASHBOARD_PORT=str(dash_port), GEO_API_URL=f"http://127.0.0.1:{api_port}")


def _demo_processes(data_dir: Path) -> list[psutil.Process]:
    """Every process whose command line mentions the demo's private data dir (PostgreSQL among them)."""
    out = []
    for p in psutil.process_iter(["cmdline", "environ"]):
        try:
            if str(data_dir) in " ".join(p.info["cmdline"] or []) or \
                    (p.info["environ"] or {}).get("GEO_DATA_DIR") == str(data_dir):
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return [p for p in out if p.pid != os.getpid() and not gone(p.pid)]


def test_demo_with_the_api_port_taken_fails_fast_and_leaves_nothing():
    tmp = Path(tempfile.mkdtemp(prefix="geo-demo-port-"))
    tmp.chmod(0o755)
    api_port, dash_port = free_port(), free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", api_port))
    holder.listen()
    try:
        r = subprocess.run([sys.executable, "-m", "geo.cli", "demo", "--scale", "0.1"], cwd=REPO,
                           env=_demo_env(tmp, api_port, dash_port), capture_output=True, text=True, timeout=120)
    finally:
        holder.close()
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert f"API cannot start: port {api_port}" in out and "already in use" in out, out
    assert "Login:" not in out and "Dashboard:" not in out
    assert _demo_processes(tmp) == []
    assert not (tmp / "pg" / "postmaster.pid").exists()


@pytest.mark.slow
def test_demo_restarts_a_killed_api_and_sigterm_stops_everything():
    tmp = Path(tempfile.mkdtemp(prefix="geo-demo-kill-"))
    tmp.chmod(0o755)
    api_port, dash_port = free_port(), free_port()
    log = open(tmp / "demo.out", "w+")
    demo = spawn([sys.executable, "-m", "geo.cli", "demo", "--scale", "0.1", "--events", "100"], cwd=REPO,
                 env=_demo_env(tmp, api_port, dash_port), stdout=log, stderr=subprocess.STDOUT)
    logs = tmp / "logs"
    try:
        deadline = time.monotonic() + 600
        while "Login:" not in (tmp / "demo.out").read_text():
            assert demo.poll() is None, (tmp / "demo.out").read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.5)
        out = (tmp / "demo.out").read_text()
        # the URLs come only after the health checks answered
        assert re.search(rf"API: http://127.0.0.1:{api_port}/docs\nDashboard: http://127.0.0.1:{dash_port}\n", out)
        assert httpx.get(f"http://127.0.0.1:{api_port}/readyz").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{dash_port}/_stcore/health").status_code == 200
        pids = {n: int((logs / f"{n}.pid").read_text()) for n in ("api", "worker", "dashboard")}
        os.killpg(pids["api"], signal.SIGKILL)
        while "API is back" not in (tmp / "demo.out").read_text():
            assert demo.poll() is None and time.monotonic() < deadline, (tmp / "demo.out").read_text()[-3000:]
            time.sleep(0.3)
        new_api = int((logs / "api.pid").read_text())
        assert new_api != pids["api"]
        assert httpx.get(f"http://127.0.0.1:{api_port}/readyz").status_code == 200
        children = [new_api, pids["worker"], pids["dashboard"]]
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(60) == 0
        assert wait_gone(children) == []
        assert "embedded PostgreSQL stopped" in (tmp / "demo.out").read_text()
        assert wait_gone([p.pid for p in _demo_processes(tmp)]) == []
    finally:
        if demo.poll() is None:
            stop(demo)
        log.close()
