"""Passwords (argon2), JWT access tokens, API keys, and who-may-do-what.

Roles (every one scoped to a jurisdiction subtree):

========== ==========================================================
admin      everything, including users and API keys
planner    partition, compare and publish grid plans; read the rest
dispatcher create and move events, manage workers and their duty
worker     report events, move events assigned to them, send GPS fixes
leader     read-only: maps, events (personal data masked), KPIs
========== ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import jwt

from geo.db.users import hash_api_key, hash_password, verify_password  # noqa: F401  (re-exported)

ALGORITHM = "HS256"

#: the roles that see reporters' personal data (the one copy of every access rule is geo.access.policy)
from geo.access.policy import MASKS, mask_name, mask_phone  # noqa: E402,F401  (re-exported)

PII_ROLES = MASKS["reporter"]


def create_token(secret: str, *, subject: str, role: str, jurisdiction_id: int, ttl_minutes: int,
                 version: int = 0) -> str:
    """A signed access token for *subject*.

    Parameters
    ----------
    version : int
        The user's ``token_version`` now; the token is refused once it changes (password reset, disable).
    """
    now = datetime.now(timezone.utc)
    payload = {"sub": subject, "role": role, "jid": jurisdiction_id, "ver": version, "iat": now,
               "exp": now + timedelta(minutes=ttl_minutes)}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str) -> dict:
    """Decode and verify a token (signature, expiry, subject and version present); raises jwt.PyJWTError."""
    claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "ver"]})
    if not isinstance(claims["ver"], int) or not isinstance(claims["sub"], str):
        raise jwt.InvalidTokenError("malformed claims")
    return claims


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (JWT) or a device/integration (API key)."""

    kind: str  # "user" | "api_key"
    id: int
    name: str
    role: str
    jurisdiction_id: int
    jurisdiction_path: str
    worker_id: int | None = None

    @property
    def actor(self) -> str:
        return f"{'user' if self.kind == 'user' else 'key'}:{self.name}"

    @property
    def sees_pii(self) -> bool:
        """Does this role see reporters' personal data in clear (:data:`geo.access.policy.MASKS`)?"""
        return self.role in PII_ROLES
