"""Checking a login's password with bounded cost.

* At most ``concurrency`` argon2 checks run at once per API process, on a small pool of their own threads:
  each check holds 19 MiB, so a flood of logins costs ``concurrency × 19 MiB`` however many arrive (the
  rest wait their turn). Keeping the checks on a few dedicated threads also keeps the allocator from
  retaining a 19 MiB block in each of the request thread pool's 40 arenas.
* An unknown user is checked against a dummy hash of the same parameters: it costs what a wrong password
  costs, so the answer time does not tell which usernames exist.
* A hash made with older parameters is re-hashed after a successful check.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine, text

from geo.db.users import hash_password, needs_rehash, verify_password


@dataclass(frozen=True)
class Account:
    """What a login needs from the users table."""

    id: int
    username: str
    password_hash: str
    role: str
    jurisdiction_id: int
    active: bool
    token_version: int
    jurisdiction_code: str
    jurisdiction_name: str


def load_account(engine: Engine, username: str) -> Account | None:
    with engine.connect() as conn:
        r = conn.execute(text("""
            SELECT u.id, u.username, u.password_hash, u.role, u.jurisdiction_id, u.active, u.token_version,
                   j.code, j.name FROM users u JOIN jurisdictions j ON j.id = u.jurisdiction_id WHERE u.username = :u
        """), {"u": username}).first()
    return Account(*r) if r is not None else None


class PasswordChecker:
    """argon2 checks on a bounded pool (see the module docstring)."""

    def __init__(self, concurrency: int = 2):
        self.concurrency = concurrency
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="geo-argon2")

    async def check(self, engine: Engine, account: Account | None, password: str) -> bool:
        """True when *account* exists, is active and *password* is its password (same cost when it is not)."""
        loop = asyncio.get_running_loop()
        hashed = account.password_hash if account is not None else None
        ok = await loop.run_in_executor(self._pool, verify_password, password, hashed)
        if ok and account.active and needs_rehash(hashed):
            new = await loop.run_in_executor(self._pool, hash_password, password)
            await loop.run_in_executor(None, _store_rehash, engine, account.id, hashed, new)
        return ok and account.active

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _store_rehash(engine: Engine, uid: int, old: str, new: str) -> None:
    with engine.begin() as conn:  # only if nobody changed the password meanwhile
        conn.execute(text("UPDATE users SET password_hash = :n WHERE id = :i AND password_hash = :o"),
                     {"n": new, "i": uid, "o": old})
