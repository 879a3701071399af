"""Dependencies: application state, the calling principal, permission and scope checks."""

from __future__ import annotations

from dataclasses import dataclass, field

import jwt
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, text

from geo.api.core.config import Catalogue
from geo.api.core.security import Principal, decode_token, hash_api_key
from geo.api.errors import APIError
from geo.access import audit, policy
from geo.api.services.lookup_index import IndexHolder
from geo.api.services.credentials import PasswordChecker
from geo.api.services.login_limiter import LoginLimiter
from geo.api.services.patrol import CoverageCache
from geo.api.services.principals import PrincipalCache
from geo.config import Settings


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    holder: IndexHolder
    catalogue: Catalogue
    secret: str
    #: resolved tokens and API keys, dropped on every ``NOTIFY geo_auth`` (see services.principals)
    principals: PrincipalCache = field(default_factory=lambda: PrincipalCache(view=policy.lookup_view))
    limiter: LoginLimiter | None = None  # the shared failed-login limit
    passwords: PasswordChecker | None = None  # bounded argon2 checks
    trusted_proxies: tuple = ()  # networks whose X-Forwarded-For is believed
    #: patrol coverage per grid, recomputed only when a grid's fixes change (see services.patrol)
    patrol: CoverageCache = field(default_factory=CoverageCache)

    def forget(self) -> None:
        """Drop every cached principal (this process only; other processes learn it through NOTIFY)."""
        self.principals.invalidate()


def get_state(request: Request) -> AppState:
    return request.app.state.geo


def _load_user(engine: Engine, username: str, version: int) -> Principal | None:
    """The active user *username* if its token_version is still *version* (else None: revoked)."""
    with engine.connect() as conn:
        r = conn.execute(text("""
            SELECT u.id, u.username, u.role, u.jurisdiction_id, j.path, u.active, u.token_version,
                   (SELECT w.id FROM workers w WHERE w.user_id = u.id ORDER BY w.id LIMIT 1) AS worker_id
            FROM users u JOIN jurisdictions j ON j.id = u.jurisdiction_id WHERE u.username = :u
        """), {"u": username}).first()
    if r is None or not r.active or r.token_version != version:
        return None
    return Principal("user", r.id, r.username, r.role, r.jurisdiction_id, r.path, r.worker_id)


def _load_key(engine: Engine, key_hash: str) -> Principal | None:
    with engine.connect() as conn:
        r = conn.execute(text("""
            SELECT k.id, k.name, k.role, k.jurisdiction_id, j.path, k.active
            FROM api_keys k JOIN jurisdictions j ON j.id = k.jurisdiction_id WHERE k.key_hash = :h
        """), {"h": key_hash}).first()
    if r is None or not r.active:
        return None
    return Principal("api_key", r.id, r.name, r.role, r.jurisdiction_id, r.path)


def _unauthorized(code: str, message: str) -> APIError:
    return APIError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


async def resolve_principal(state: AppState, token: str | None, key: str | None) -> Principal | None:
    """The principal of a Bearer token or an API key (None when neither is given; 401 when invalid).

    Cached per process until the next auth change notice (:mod:`geo.api.services.principals`): a revoked key,
    a disabled user or a token older than the user's ``token_version`` is refused as soon as the notice
    arrives, in every process.
    """
    cache = state.principals
    if key:
        h = hash_api_key(key)
        p = cache.key(h)
        if p is None:
            gen = cache.generation
            p = await run_in_threadpool(_load_key, state.engine, h)
            if p is None:
                raise _unauthorized("unauthorized", "invalid or revoked API key (X-API-Key)")
            cache.put_key(gen, h, p)
        return p
    if token:
        p = cache.token(token)
        if p is not None:
            return p
        try:
            claims = decode_token(state.secret, token)
        except jwt.ExpiredSignatureError:
            raise _unauthorized("token_expired", "the access token has expired; log in again") from None
        except jwt.PyJWTError:
            raise _unauthorized("unauthorized", "invalid access token") from None
        gen = cache.generation
        p = await run_in_threadpool(_load_user, state.engine, claims["sub"], claims["ver"])
        if p is None:
            raise _unauthorized("unauthorized", "user unknown, deactivated, or token revoked (password changed); "
                                                "log in again")
        cache.put_token(gen, token, p, float(claims["exp"]))
        return p
    return None


def _credentials(request: Request) -> tuple[str | None, str | None]:
    """(bearer token, API key) from the headers — read directly: cheaper than two security dependencies."""
    h = request.headers
    auth = h.get("authorization")
    token = auth[7:].strip() if auth and auth[:7].lower() == "bearer " else None
    return token, h.get("x-api-key")


async def current_principal(request: Request) -> Principal:
    """The authenticated caller (Bearer JWT or X-API-Key); 401 otherwise."""
    p = await resolve_principal(get_state(request), *_credentials(request))
    if p is None:
        raise APIError(401, "unauthorized", "authentication required: Bearer token (POST /v1/auth/token) or X-API-Key",
                       headers={"WWW-Authenticate": "Bearer"})
    return p


def require(action: str):
    """Dependency: an authenticated caller whose role allows *action* (:mod:`geo.access.policy`); a refusal
    is audited.

    The OpenAPI security requirement of routes using it is added by :func:`geo.api.main.custom_openapi`.
    """

    async def dep(request: Request) -> Principal:
        p = await current_principal(request)
        if not policy.may(p, action):
            state = get_state(request)
            await run_in_threadpool(audit.record_denied, state.engine, p, action, request.url.path,
                                    reason=f"role {p.role}")
            raise APIError(403, "forbidden", f"role '{p.role}' may not {action.replace('.', ' ')}")
        return p

    dep.__geo_secured__ = True
    return dep


def authorize(state: AppState, p: Principal, kind: str, path: str | None, *, entity_id=None,
              jurisdiction_id: int | None = None, write: bool = False, worker_id: int | None = None,
              action: str | None = None, must_see: bool = True) -> None:
    """Apply the policy to one object named in the URL; refusals are audited.

    Parameters
    ----------
    kind : str
        A key of :data:`geo.access.policy.RULES`.
    path : str or None
        The object's jurisdiction path.
    write : bool
        Also check the caller may change it (the rule's write action, subtree, own-worker rule).
    worker_id : int, optional
        The worker the object belongs to (for the rule's ``self_only`` roles).
    must_see : bool
        False for objects whose existence is public anyway (creating an event at a grid's location).

    Raises
    ------
    APIError
        404 when the caller may not see the object (no existence leak), 403 when it may see but not change it.
    """
    label = f"{kind.replace('_', ' ')} {entity_id if entity_id is not None else ''}".strip()
    act = action or (policy.RULES[kind].write if write else "read") or "read"
    if must_see and not policy.can_read(p, kind, path):
        audit.record_denied(state.engine, p, act, kind, entity_id, jurisdiction_id=jurisdiction_id,
                            reason="not visible: outside the caller's jurisdiction")
        raise APIError(404, "not_found", f"{label} not found")
    if write:
        why = policy.write_refusal(p, kind, path, worker_id=worker_id)
        if why:
            audit.record_denied(state.engine, p, act, kind, entity_id, jurisdiction_id=jurisdiction_id, reason=why)
            raise APIError(403, "forbidden", f"{label}: {why}")


def refuse_reference(state: AppState, p: Principal, field: str, value, kind: str, action: str,
                     jurisdiction_id: int | None = None) -> None:
    """A request body names an object the caller may not use (unknown, or outside its subtree — the two
    are answered alike): audit it and raise 422 naming the field."""
    audit.record_denied(state.engine, p, action, kind, value, jurisdiction_id=jurisdiction_id,
                        reason=f"{field}={value!r} unknown or outside the caller's jurisdiction")
    raise APIError(422, "validation_error", f"{field}: {value!r} not found in your jurisdiction",
                   details=[{"field": field, "message": "unknown or outside your jurisdiction", "input": str(value)}])


def jurisdiction_path(engine: Engine, jid: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT path FROM jurisdictions WHERE id = :j"), {"j": jid}).scalar_one_or_none()
