"""OAuth2 password flow (JWT) and the caller's identity."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm

from geo.api.core.security import Principal, create_token
from geo.api.deps import get_state, require
from geo.api.errors import APIError
from geo.api.services import audit
from geo.api.services.credentials import load_account
from geo.api.services.login_limiter import client_address

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post("/token", summary="Log in (OAuth2 password flow); returns a JWT access token")
async def token(request: Request, form: OAuth2PasswordRequestForm = Depends()):
    """Failed logins are limited per (username, client) across all API processes
    (:mod:`geo.api.services.login_limiter`); a 429 says when to retry."""
    state = get_state(request)
    client = client_address(request.client.host if request.client else None,
                            request.headers.get("x-forwarded-for"), state.trusted_proxies)
    key = state.limiter.key(form.username, client)
    retry = await run_in_threadpool(state.limiter.reserve, key)
    if retry is not None:
        wait = int(retry) + 1
        raise APIError(429, "too_many_attempts", f"too many failed logins for this user from {client}; "
                                                 f"retry in {wait} s", headers={"Retry-After": str(wait)})
    account = await run_in_threadpool(load_account, state.engine, form.username)
    if not await state.passwords.check(state.engine, account, form.password):
        await run_in_threadpool(state.limiter.failed, key)
        await run_in_threadpool(audit.record_denied, state.engine, f"user:{form.username}", "login", "users",
                                form.username, reason=f"bad credentials from {client}")
        raise APIError(401, "bad_credentials", "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    await run_in_threadpool(state.limiter.succeeded, key)
    tok = create_token(state.secret, subject=account.username, role=account.role,
                       jurisdiction_id=account.jurisdiction_id, ttl_minutes=state.settings.token_ttl_minutes,
                       version=account.token_version)
    return {"access_token": tok, "token_type": "bearer", "role": account.role,
            "jurisdiction": {"id": account.jurisdiction_id, "code": account.jurisdiction_code,
                             "name": account.jurisdiction_name},
            "expires_in": state.settings.token_ttl_minutes * 60}


@router.get("/me", summary="Who am I: role and jurisdiction")
async def me(p: Principal = Depends(require("read"))):
    return {"kind": p.kind, "name": p.name, "role": p.role, "jurisdiction_id": p.jurisdiction_id,
            "worker_id": p.worker_id, "sees_personal_data": p.sees_pii}
