"""Users and API keys in the database (the CLI's ``geo user add|disable|apikey``).

Passwords are argon2id with the OWASP minimum parameters (19 MiB, 2 passes, 1 lane): each check holds
19 MiB for ~25 ms, so a login flood costs bounded memory (the API also caps concurrent checks). Hashes
made with other parameters still verify and are re-hashed at the next successful login.

Every change to ``users`` or ``api_keys`` fires ``NOTIFY geo_auth`` (migration 0005): API processes drop
their cached principals immediately; a password change or disable also bumps ``token_version`` so every
token issued before it is refused.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, text

from geo.access import audit

ROLES = ("admin", "planner", "dispatcher", "worker", "leader")
#: argon2id, OWASP's recommended minimum (m=19 MiB, t=2, p=1)
_ph = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
_DUMMY: list[str] = []


class UserError(ValueError):
    pass


def hash_password(password: str) -> str:
    """argon2id hash of *password*."""
    return _ph.hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    """Check *password* against *hashed*; with ``hashed=None`` (unknown user) check it against a dummy hash of
    the same parameters and return False, so an unknown user costs the same time as a wrong password."""
    if hashed is None:
        if not _DUMMY:
            _DUMMY.append(_ph.hash(secrets.token_urlsafe(16)))
        hashed = _DUMMY[0]
        try:
            _ph.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            pass
        return False
    try:
        return _ph.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(hashed: str) -> bool:
    """Was *hashed* made with other parameters than today's?"""
    try:
        return _ph.check_needs_rehash(hashed)
    except InvalidHashError:
        return True


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _jurisdiction_id(conn, code: str) -> int:
    jid = conn.execute(text("SELECT id FROM jurisdictions WHERE code = :c"), {"c": code}).scalar()
    if jid is None:
        raise UserError(f"jurisdiction {code!r} not found; load boundaries first")
    return jid


def add_user(engine: Engine, username: str, password: str, role: str, jurisdiction_code: str, *, actor: str,
             full_name: str | None = None, replace: bool = False) -> int:
    """Create (or with *replace*, reset) a user scoped to a jurisdiction subtree; returns its id."""
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {ROLES}")
    if len(password) < 8:
        raise UserError("password must have at least 8 characters")
    with engine.begin() as conn:
        jid = _jurisdiction_id(conn, jurisdiction_code)
        exists = conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar()
        if exists and not replace:
            raise UserError(f"user {username!r} exists; pass --replace to reset it")
        uid = conn.execute(text("""
            INSERT INTO users (username, full_name, password_hash, role, jurisdiction_id, created_by)
            VALUES (:u, :f, :h, :r, :j, :a)
            ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role,
                jurisdiction_id = EXCLUDED.jurisdiction_id, full_name = EXCLUDED.full_name, active = true,
                token_version = users.token_version + 1  -- a reset invalidates every earlier token
            RETURNING id
        """), {"u": username, "f": full_name, "h": hash_password(password), "r": role, "j": jid,
               "a": actor}).scalar_one()
        audit.record(conn, actor, "user.add", "users", uid, jurisdiction_id=jid,
                     detail={"username": username, "role": role, "replace": bool(exists)})
    return uid


def add_api_key(engine: Engine, name: str, role: str, jurisdiction_code: str, *, actor: str,
                key: str | None = None) -> str:
    """Create an API key for a device/integration; returns the key (shown once; only its hash is stored)."""
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {ROLES}")
    key = key or "geo_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        jid = _jurisdiction_id(conn, jurisdiction_code)
        kid = conn.execute(text("""
            INSERT INTO api_keys (name, prefix, key_hash, role, jurisdiction_id, created_by)
            VALUES (:n, :p, :h, :r, :j, :a) RETURNING id
        """), {"n": name, "p": key[:8], "h": hash_api_key(key), "r": role, "j": jid, "a": actor}).scalar_one()
        audit.record(conn, actor, "apikey.add", "api_keys", kid, jurisdiction_id=jid,
                     detail={"name": name, "role": role})
    return key


def set_user_active(engine: Engine, username: str, active: bool, *, actor: str) -> int:
    """Disable (or re-enable) a login; disabling also invalidates its tokens. Returns the user id."""
    with engine.begin() as conn:
        r = conn.execute(text("""
            UPDATE users SET active = :a, token_version = token_version + CASE WHEN :a THEN 0 ELSE 1 END
            WHERE username = :u RETURNING id, jurisdiction_id
        """), {"a": active, "u": username}).first()
        if r is None:
            raise UserError(f"user {username!r} not found")
        audit.record(conn, actor, "user.enable" if active else "user.disable", "users", r.id,
                     jurisdiction_id=r.jurisdiction_id, detail={"username": username})
    return r.id


def revoke_api_key(engine: Engine, name_or_id: str, *, actor: str) -> list[int]:
    """Revoke the active API key with this id or name; returns the revoked ids.

    A name shared by several active keys is refused (naming their ids) rather than revoking them all.
    """
    with engine.begin() as conn:
        rows = conn.execute(text("""
            SELECT id, name, jurisdiction_id FROM api_keys
            WHERE active AND (name = :n OR (:n ~ '^[0-9]{1,9}$' AND id = CAST(:n AS integer))) ORDER BY id
        """), {"n": name_or_id}).all()
        if not rows:
            raise UserError(f"no active API key with id or name {name_or_id!r}")
        if len(rows) > 1:
            raise UserError(f"{len(rows)} active API keys match {name_or_id!r} (ids {[r.id for r in rows]}); "
                            f"revoke one by its id")
        r = rows[0]
        conn.execute(text("UPDATE api_keys SET active = false WHERE id = :i"), {"i": r.id})
        audit.record(conn, actor, "apikey.revoke", "api_keys", r.id, jurisdiction_id=r.jurisdiction_id,
                     detail={"name": r.name})
    return [r.id]
