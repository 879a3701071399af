"""Authentication that holds: a login limit shared by processes, revocation within a second everywhere,
no demo secret without --demo, bounded password hashing, the same cost for unknown users."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from typer.testing import CliRunner

from tests.api.conftest import COMM_A, PASSWORD, token
from tests.conftest import free_port


def start_api(pg_env: dict, workers: int = 2, **settings: str) -> tuple[subprocess.Popen, str, str]:
    """``geo serve --demo --workers N`` on a free port; returns (process, base URL, log file)."""
    port = free_port()
    env = os.environ | {k: v for k, v in pg_env.items() if not k.startswith("__")} | {
        "GEO_API_PORT": str(port), "GEO_LOG_LEVEL": "WARNING"} | settings
    log = tempfile.NamedTemporaryFile(prefix=f"geo-auth-{port}-", suffix=".log", delete=False)
    p = subprocess.Popen([sys.executable, "-m", "geo.cli", "serve", "--demo", "--workers", str(workers)], env=env,
                         stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return p, base, log.name
        except httpx.HTTPError:
            if p.poll() is not None:
                raise RuntimeError(open(log.name).read()[-3000:])
        time.sleep(0.2)
    p.kill()
    raise RuntimeError("API did not start")


@pytest.fixture
def server(world, pg_env, request):
    """Two API worker processes behind one port (settings from the test's ``server_settings`` mark)."""
    mark = request.node.get_closest_marker("server_settings")
    p, base, log = start_api(pg_env, **(mark.kwargs if mark else {}))
    yield base
    p.terminate()
    try:
        p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
    os.unlink(log)


#: one TLS context for every client of this module: each new httpx client would otherwise load the CA bundle
#: (~25 ms of CPU; the revocation tests open hundreds of fresh connections). The API is plain HTTP anyway.
_TLS = ssl.create_default_context()


def _login(base, username, password, xff=None):
    h = {"X-Forwarded-For": xff} if xff else {}
    with httpx.Client(timeout=60, verify=_TLS) as c:
        return c.post(f"{base}/v1/auth/token", data={"username": username, "password": password}, headers=h)


def _me(base, headers) -> int:
    """Status of GET /v1/auth/me on a fresh connection (so both worker processes get asked)."""
    with httpx.Client(timeout=10, verify=_TLS) as c:
        return c.get(f"{base}/v1/auth/me", headers=headers).status_code


def _refused_everywhere(base, headers, n=30, deadline_s=20.0) -> bool:
    """Poll until *n* consecutive requests (fresh connections, any process) are refused; False at the deadline
    (a generous bound for a loaded machine; the delay itself is measured in benchmarks/login_flood.py)."""
    end = time.monotonic() + deadline_s
    streak = 0
    while time.monotonic() < end:
        streak = streak + 1 if _me(base, headers) == 401 else 0
        if streak >= n:
            return True
    return False


# --------------------------------------------------------------------------- revocation across processes

def test_disable_revoke_and_password_change_reach_every_process(server, world, geo_env):
    from geo.cli import app

    tok = {"Authorization": f"Bearer {_login(server, 'leader', PASSWORD).json()['access_token']}"}
    key = {"X-API-Key": world["hotline_key"]}
    disp = {"Authorization": f"Bearer {_login(server, 'dispatcher', PASSWORD).json()['access_token']}"}
    for h in (tok, key, disp):  # warm the principal caches of both processes
        assert all(_me(server, h) == 200 for _ in range(30))

    r = CliRunner().invoke(app, ["user", "disable", "leader"])
    assert r.exit_code == 0, r.output
    assert _refused_everywhere(server, tok), "a disabled user's token kept working"
    assert _login(server, "leader", PASSWORD).status_code == 401  # and it cannot log in again

    r = CliRunner().invoke(app, ["user", "apikey", "--revoke", "12345热线"])
    assert r.exit_code == 0, r.output
    assert _refused_everywhere(server, key), "a revoked API key kept working"
    r = CliRunner().invoke(app, ["user", "apikey", "--revoke", "12345热线"])
    assert r.exit_code == 2 and "no active API key" in r.output

    # a password reset (`geo user add --replace`) invalidates every token issued before it
    r = CliRunner().invoke(app, ["user", "add", "dispatcher", "--role", "dispatcher", "--jurisdiction", COMM_A,
                                 "--password", "a-new-password-2", "--replace"])
    assert r.exit_code == 0, r.output
    assert _refused_everywhere(server, disp), "a token from before the password change kept working"
    new = _login(server, "dispatcher", "a-new-password-2")
    assert new.status_code == 200
    assert _me(server, {"Authorization": f"Bearer {new.json()['access_token']}"}) == 200
    assert _me(server, {"X-API-Key": world["sensor_key_b"]}) == 200  # other principals untouched


def test_apikey_revoke_by_id_and_ambiguous_names(world, engine, geo_env):
    from sqlalchemy import text

    from geo.cli import app
    from geo.db.users import add_api_key

    add_api_key(engine, "同名", "worker", COMM_A, actor="test")
    add_api_key(engine, "同名", "worker", COMM_A, actor="test")
    r = CliRunner().invoke(app, ["user", "apikey", "--revoke", "同名"])
    assert r.exit_code == 2 and "revoke one by its id" in r.output
    kid = engine.connect().execute(text("SELECT max(id) FROM api_keys WHERE name = '同名'")).scalar()
    r = CliRunner().invoke(app, ["user", "apikey", "--revoke", str(kid)])
    assert r.exit_code == 0, r.output
    with engine.connect() as c:
        assert c.execute(text("SELECT active FROM api_keys WHERE id = :i"), {"i": kid}).scalar() is False
        assert c.execute(text("SELECT count(*) FROM api_keys WHERE name = '同名' AND active")).scalar() == 1
        assert c.execute(text("SELECT count(*) FROM audit_log WHERE action = 'apikey.revoke'")).scalar() == 1
    r = CliRunner().invoke(app, ["user", "disable", "nobody"])
    assert r.exit_code == 2 and "not found" in r.output


def test_token_of_an_older_version_is_refused_in_process(client, engine):
    from geo.db.users import add_user

    h = token(client, "planner")
    assert client.get("/v1/auth/me", headers=h).status_code == 200
    add_user(engine, "planner", "another-password", "planner", COMM_A, actor="test", replace=True)
    end = time.monotonic() + 20
    while client.get("/v1/auth/me", headers=h).status_code != 401:
        assert time.monotonic() < end, "old token still accepted after the password reset"
    r = client.get("/v1/auth/me", headers=h)
    assert r.status_code == 401 and "revoked" in r.json()["message"]


def test_tokens_without_a_version_are_refused(client):
    import jwt

    from geo.api.core.config import DEMO_SECRET

    forged = jwt.encode({"sub": "admin", "exp": time.time() + 600}, DEMO_SECRET, algorithm="HS256")
    assert client.get("/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


# --------------------------------------------------------------------------- the login limiter

@pytest.mark.server_settings(GEO_LOGIN_RATE_PER_MINUTE="10")
def test_60_concurrent_wrong_passwords_check_at_most_the_limit(server, engine):
    from sqlalchemy import text

    with ThreadPoolExecutor(60) as ex:
        codes = list(ex.map(lambda i: _login(server, "leader", f"wrong-{i}").status_code, range(60)))
    assert codes.count(401) == 10 and codes.count(429) == 50, codes
    with engine.connect() as c:  # exactly the checked ones were audited as bad credentials
        n = c.execute(text("SELECT count(*) FROM audit_log WHERE action = 'login' AND outcome = 'denied'")).scalar()
    assert n == 10
    r = _login(server, "leader", PASSWORD)  # the limit holds for the right password too, with Retry-After
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


@pytest.mark.server_settings(GEO_LOGIN_RATE_PER_MINUTE="3", GEO_LOGIN_BACKOFF_SECONDS="8",
                             GEO_TRUSTED_PROXIES="127.0.0.1")
def test_back_off_ends_and_is_per_client_behind_a_trusted_proxy(server):
    attacker, user = "203.0.113.7", "198.51.100.20"
    for i in range(3):
        assert _login(server, "worker", f"wrong-{i}", xff=attacker).status_code == 401
    r = _login(server, "worker", PASSWORD, xff=attacker)
    assert r.status_code == 429 and attacker in r.json()["message"]
    # the proxy's own hop is skipped, a spoofed left-most entry is not believed
    assert _login(server, "worker", PASSWORD, xff=f"10.9.9.9, {attacker}").status_code == 429
    # the real user, elsewhere, is not locked out by the attacker
    assert _login(server, "worker", PASSWORD, xff=user).status_code == 200
    # after the back-off the correct password works again (never locked out for good)
    end = time.monotonic() + 30
    while (r := _login(server, "worker", PASSWORD, xff=attacker)).status_code == 429:
        assert time.monotonic() < end, "still refused long after the back-off"
        time.sleep(min(float(r.headers["Retry-After"]), 1.0))
    assert r.status_code == 200


def test_forwarded_for_from_an_untrusted_peer_is_ignored(client, monkeypatch):
    codes = [client.post("/v1/auth/token", data={"username": "leader", "password": "nope"},
                         headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(14)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429] * 4


def test_client_address_rules():
    from geo.api.services.login_limiter import client_address, parse_networks

    trusted = parse_networks("127.0.0.1, 10.0.0.0/8")
    assert client_address("1.2.3.4", "9.9.9.9", trusted) == "1.2.3.4"  # peer not a proxy: header ignored
    assert client_address("127.0.0.1", "9.9.9.9", ()) == "127.0.0.1"  # no proxies configured
    assert client_address("127.0.0.1", "6.6.6.6, 9.9.9.9, 10.1.1.1", trusted) == "9.9.9.9"
    assert client_address("127.0.0.1", "10.2.2.2", trusted) == "10.2.2.2"  # every hop trusted: left-most
    with pytest.raises(ValueError, match="not-an-ip"):
        parse_networks("127.0.0.1, not-an-ip")


# --------------------------------------------------------------------------- password hashing

def test_password_checks_are_bounded_and_unknown_users_cost_a_real_check(client, monkeypatch):
    from geo.api.services import credentials
    from geo.db import users

    active, peak, calls, lock = [0], [0], [], threading.Lock()
    real = credentials.verify_password

    def counting(password, hashed):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            calls.append(hashed)
        try:
            return real(password, hashed)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(credentials, "verify_password", counting)
    names = [f"ghost{i}" for i in range(12)] + ["leader", "planner", "worker", "dispatcher_b"] * 3
    with ThreadPoolExecutor(24) as ex:
        codes = list(ex.map(lambda u: client.post("/v1/auth/token",
                                                  data={"username": u, "password": "wrong-password"}).status_code,
                            names))
    assert codes == [401] * len(names)
    limit = client.app.state.geo.settings.hash_concurrency
    assert len(calls) == len(names) and 1 <= peak[0] <= limit
    assert calls.count(None) == 12  # unknown users: checked against the dummy hash ...
    assert users._DUMMY and not users.needs_rehash(users._DUMMY[0])  # ... made with today's parameters


def test_old_parameter_hashes_are_upgraded_at_login(client, engine):
    from argon2 import PasswordHasher
    from sqlalchemy import text

    from geo.db.users import needs_rehash

    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(PASSWORD)
    with engine.begin() as c:
        c.execute(text("UPDATE users SET password_hash = :h WHERE username = 'leader'"), {"h": old})
    token(client, "leader")
    with engine.connect() as c:
        new = c.execute(text("SELECT password_hash FROM users WHERE username = 'leader'")).scalar()
    assert new != old and not needs_rehash(new)
    token(client, "leader")  # and the new hash verifies


# --------------------------------------------------------------------------- demo mode only from --demo

def test_geo_demo_in_the_environment_does_not_enable_the_demo_secret(world, geo_env, monkeypatch):
    from geo.api.core.config import DEMO_SECRET
    from geo.cli import app
    from geo.config import reset_settings

    monkeypatch.setenv("GEO_DEMO", "1")
    monkeypatch.delenv("GEO_SECRET_KEY", raising=False)
    reset_settings()
    r = CliRunner().invoke(app, ["serve"])
    assert r.exit_code == 2 and "GEO_SECRET_KEY is not set" in r.output and "ignored" in r.output
    monkeypatch.setenv("GEO_DEMO", "1")
    monkeypatch.setenv("GEO_SECRET_KEY", DEMO_SECRET)
    reset_settings()
    r = CliRunner().invoke(app, ["serve"])
    assert r.exit_code == 2 and "public demo secret" in r.output

