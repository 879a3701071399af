"""Users and API keys in the database (the CLI's `geo user add` / `geo apikey add`)."""

from __future__ import annotations

import hashlib
import json
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, text

ROLES = ("admin", "planner", "dispatcher", "worker", "leader")
_ph = PasswordHasher()


class UserError(ValueError):
    pass


def hash_password(password: str) -> str:
    """argon2id hash of *password*."""
    return _ph.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    try:
        return _ph.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


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
                jurisdiction_id = EXCLUDED.jurisdiction_id, full_name = EXCLUDED.full_name, active = true
            RETURNING id
        """), {"u": username, "f": full_name, "h": hash_password(password), "r": role, "j": jid,
               "a": actor}).scalar_one()
        conn.execute(text("""
            INSERT INTO audit_log (actor, action, entity, entity_id, jurisdiction_id, detail)
            VALUES (:a, 'user.add', 'users', :id, :j, CAST(:d AS jsonb))
        """), {"a": actor, "id": str(uid), "j": jid,
               "d": json.dumps({"username": username, "role": role, "replace": bool(exists)}, ensure_ascii=False)})
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
        conn.execute(text("""
            INSERT INTO audit_log (actor, action, entity, entity_id, jurisdiction_id, detail)
            VALUES (:a, 'apikey.add', 'api_keys', :id, :j, CAST(:d AS jsonb))
        """), {"a": actor, "id": str(kid), "j": jid,
               "d": json.dumps({"name": name, "role": role}, ensure_ascii=False)})
    return key
