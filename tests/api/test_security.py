"""Security review: no default secrets outside --demo, demo passwords refused, CORS only where configured."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from geo.api.core.config import DEMO_PASSWORD, DEMO_SECRET
from geo.api.main import ConfigError, resolve_secret
from geo.cli import app
from geo.config import Settings, reset_settings


def test_secret_is_required_outside_demo():
    with pytest.raises(ConfigError, match="GEO_SECRET_KEY is not set"):
        resolve_secret(Settings(GEO_DEMO=False))
    with pytest.raises(ConfigError, match="public demo secret"):
        resolve_secret(Settings(GEO_DEMO=False, GEO_SECRET_KEY=DEMO_SECRET))
    assert resolve_secret(Settings(GEO_DEMO=True)) == DEMO_SECRET
    assert resolve_secret(Settings(GEO_DEMO=False, GEO_SECRET_KEY="x" * 48)) == "x" * 48


def test_serve_refuses_demo_credentials_without_demo_flag(world, engine, geo_env, monkeypatch):
    from geo.db.users import add_user

    monkeypatch.setenv("GEO_SECRET_KEY", "a-real-secret-" + "y" * 40)
    monkeypatch.delenv("GEO_DEMO", raising=False)
    reset_settings()
    add_user(engine, "leftover", DEMO_PASSWORD, "leader", "429901000000", actor="test")
    r = CliRunner().invoke(app, ["serve"])
    assert r.exit_code == 2 and "demo password" in r.output and "leftover" in r.output
    monkeypatch.delenv("GEO_SECRET_KEY")
    reset_settings()
    r = CliRunner().invoke(app, ["serve"])
    assert r.exit_code == 2 and "GEO_SECRET_KEY" in r.output


def test_cors_only_for_configured_origins(world, geo_env, monkeypatch):
    from fastapi.testclient import TestClient

    from geo.api.main import create_app

    monkeypatch.setenv("GEO_DEMO", "1")
    monkeypatch.setenv("GEO_CORS_ORIGINS", "https://dash.example.gov.cn")
    reset_settings()
    with TestClient(create_app(listen=False)) as c:
        ok = c.options("/v1/lookup", headers={"Origin": "https://dash.example.gov.cn",
                                              "Access-Control-Request-Method": "GET"})
        bad = c.options("/v1/lookup", headers={"Origin": "https://evil.example.com",
                                               "Access-Control-Request-Method": "GET"})
        # a real lookup (answered by the fast path, which sits inside CORS) carries the header too
        get = c.get("/v1/lookup", params={"lon": 0, "lat": 0}, headers={"Origin": "https://dash.example.gov.cn"})
    assert ok.headers.get("access-control-allow-origin") == "https://dash.example.gov.cn"
    assert "access-control-allow-origin" not in bad.headers
    assert get.status_code == 401 and get.headers.get("access-control-allow-origin") == "https://dash.example.gov.cn"
