"""OAuth2 password flow (JWT) and the caller's identity."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import text

from geo.api.core.security import Principal, create_token, verify_password
from geo.api.deps import get_state, require
from geo.api.errors import APIError
from geo.api.services import audit

router = APIRouter(prefix="/v1/auth", tags=["auth"])

WINDOW = 60.0


def _throttle(state, key: tuple[str, str]) -> None:
    now = time.monotonic()
    fails = [t for t in state.login_failures.get(key, []) if now - t < WINDOW]
    state.login_failures[key] = fails
    if len(fails) >= state.settings.login_rate_per_minute:
        retry = int(WINDOW - (now - fails[0])) + 1
        raise APIError(429, "too_many_attempts", f"too many failed logins for this user; retry in {retry} s",
                       headers={"Retry-After": str(retry)})


def _login(state, username: str, password: str):
    with state.engine.connect() as conn:
        r = conn.execute(text("""
            SELECT u.password_hash, u.role, u.jurisdiction_id, u.active, j.code, j.name FROM users u
            JOIN jurisdictions j ON j.id = u.jurisdiction_id WHERE u.username = :u
        """), {"u": username}).first()
    ok = r is not None and r.active and verify_password(password, r.password_hash)
    if not ok:
        audit.record_denied(state.engine, f"user:{username}", "login", "users", username, reason="bad credentials")
    return ok, r


@router.post("/token", summary="Log in (OAuth2 password flow); returns a JWT access token")
async def token(request: Request, form: OAuth2PasswordRequestForm = Depends()):
    state = get_state(request)
    client = request.client.host if request.client else "?"
    key = (form.username, client)
    _throttle(state, key)
    ok, r = await run_in_threadpool(_login, state, form.username, form.password)
    if not ok:
        state.login_failures.setdefault(key, []).append(time.monotonic())
        raise APIError(401, "bad_credentials", "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    state.login_failures.pop(key, None)
    tok = create_token(state.secret, subject=form.username, role=r.role, jurisdiction_id=r.jurisdiction_id,
                       ttl_minutes=state.settings.token_ttl_minutes)
    return {"access_token": tok, "token_type": "bearer", "role": r.role,
            "jurisdiction": {"id": r.jurisdiction_id, "code": r.code, "name": r.name},
            "expires_in": state.settings.token_ttl_minutes * 60}


@router.get("/me", summary="Who am I: role and jurisdiction")
async def me(p: Principal = Depends(require("read"))):
    return {"kind": p.kind, "name": p.name, "role": p.role, "jurisdiction_id": p.jurisdiction_id,
            "worker_id": p.worker_id, "sees_personal_data": p.sees_pii}
