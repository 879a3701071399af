"""Per-process cache of resolved principals, kept honest by PostgreSQL ``NOTIFY``.

Resolving a caller (verify a JWT, read the user or API key) costs a database round trip; the cache makes
it a dict lookup. It is only trusted while this process is LISTENing: every change to ``users``,
``api_keys`` or ``jurisdictions`` fires ``NOTIFY geo_auth`` and every change to ``workers`` fires
``geo_changes`` (migrations 0002/0005), and the listener thread drops the whole cache when one arrives — a
revoked key, a disabled user or a password change is refused by every API process within milliseconds. While the listener is not
connected (start-up, database restart) nothing is cached, so a missed notice can never keep a revoked
principal alive.

Race: a request that read a user *before* a revocation committed could put the stale principal back
*after* the notice cleared the cache. :meth:`PrincipalCache.put` therefore takes the generation read
before the database query and drops the entry if a notice came in between.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Callable

from geo.api.core.security import hash_api_key

log = logging.getLogger("geo.api.auth")

#: Entries kept per map before the map is emptied (bounds memory under a flood of distinct tokens).
MAX_ENTRIES = 20_000
CHANNELS = ("geo_auth", "geo_changes")


class PrincipalCache:
    """token → (principal, expiry) and API-key hash → principal, valid until the next auth notice.

    Reads are lock-free (one dict lookup; invalidation replaces the dicts rather than clearing them).

    The lookup fast path reads the credential headers as received (:meth:`from_headers`): a second pair of
    maps, keyed by the raw header value, is filled from the first on demand and replaced with it. Their
    entries are ``(principal, expiry, view(principal))`` (an API key never expires here), so the compiled
    step of the fast path (``geo.api._fastlookup``) finds the caller's read view in the same dict lookup.

    Parameters
    ----------
    view : callable, optional
        principal → its read view, or None if it may not read (:func:`geo.access.policy.lookup_view`).
    """

    def __init__(self, view: Callable[[object], object] | None = None) -> None:
        self.tokens: dict[str, tuple[object, float]] = {}
        self.keys: dict[str, object] = {}
        self.view = view or (lambda p: None)
        self.raw_tokens: dict[bytes, tuple[object, float, object]] = {}  # Authorization value → entry
        self.raw_keys: dict[bytes, tuple[object, float, object]] = {}  # X-API-Key value → entry
        self.generation = 0
        self.live = False  # True only while the listener is connected
        self.invalidations = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ reads (the hot path)
    def token(self, token: str):
        """The cached principal of a verified, unexpired token, or None."""
        hit = self.tokens.get(token)
        if hit is not None and hit[1] > time.time():
            return hit[0]
        return None

    def key(self, key_hash: str):
        """The cached principal of an API key (by its SHA-256), or None."""
        return self.keys.get(key_hash)

    def from_headers(self, key: bytes | None, auth: bytes | None):
        """The cached principal for the raw ``X-API-Key`` / ``Authorization`` header values, or None.

        The same precedence and parsing as :func:`geo.api.deps.resolve_principal`: an API key wins over a
        token; ``Authorization`` must be ``Bearer <token>``. A miss here that hits :meth:`key` or
        :meth:`token` is remembered by raw value, so the next request costs one dict lookup (no decoding,
        no hashing). Race-free against :meth:`invalidate`: the raw map is taken *before* the principal is
        read, and :meth:`invalidate` replaces the principal maps before the raw ones, so an entry read before
        a notice can only land in a raw map that is already being dropped.
        """
        if key:
            raw = self.raw_keys
            hit = raw.get(key)
            if hit is None:
                p = self.keys.get(hash_api_key(key.decode("latin-1")))
                if p is None:
                    return None
                hit = (p, math.inf, self.view(p))
                if len(raw) < MAX_ENTRIES:
                    raw[key] = hit
            return hit[0]
        if auth is None:
            return None
        raw = self.raw_tokens
        hit = raw.get(auth)
        if hit is None:
            if auth[:7].lower() != b"bearer ":
                return None
            parsed = self.tokens.get(auth[7:].strip().decode("latin-1"))
            if parsed is None:
                return None
            hit = (parsed[0], parsed[1], self.view(parsed[0]))
            if len(raw) < MAX_ENTRIES:
                raw[auth] = hit
        return hit[0] if hit[1] > time.time() else None

    # ------------------------------------------------------------------ writes
    def put_token(self, generation: int, token: str, principal, expires: float) -> None:
        """Remember a token resolved from a database read made at *generation*."""
        if self.live and generation == self.generation:
            if len(self.tokens) >= MAX_ENTRIES:
                self.tokens = {}
            self.tokens[token] = (principal, expires)

    def put_key(self, generation: int, key_hash: str, principal) -> None:
        """Remember an API key resolved from a database read made at *generation*."""
        if self.live and generation == self.generation:
            if len(self.keys) >= MAX_ENTRIES:
                self.keys = {}
            self.keys[key_hash] = principal

    def invalidate(self) -> None:
        """Forget every cached principal (a user, key or worker link changed somewhere)."""
        self.generation += 1
        self.tokens, self.keys = {}, {}
        self.raw_tokens, self.raw_keys = {}, {}  # after the maps they are filled from (see from_headers)
        self.invalidations += 1

    # ------------------------------------------------------------------ the listener
    def start_listener(self, dsn: str) -> None:
        """LISTEN for auth changes on a thread of its own (one connection per process)."""
        self._thread = threading.Thread(target=self._listen, args=(dsn,), name="geo-auth-notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.live = False
        self.invalidate()

    def _listen(self, dsn: str) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    for ch in CHANNELS:
                        conn.execute(f"LISTEN {ch}")
                    self.invalidate()  # whatever was read before we listened may be stale
                    self.live = True
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=0.5, stop_after=1):
                            if n.channel == "geo_auth" or n.payload == "workers":
                                self.invalidate()
            except Exception as exc:  # database restarting: trust nothing until we listen again
                log.warning("auth notify listener reconnecting: %s", exc)
            finally:
                self.live = False
                self.invalidate()
            self._stop.wait(0.5)
