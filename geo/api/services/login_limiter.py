"""Failed-login limit shared by every API process (PostgreSQL ``login_attempts``), and the client's address.

Rule, per (username, client address):

* at most ``limit`` password checks per ``window`` seconds. A slot is *reserved* under a row lock before the
  password is checked, so 60 concurrent wrong passwords check at most ``limit`` of them, in any number of
  processes; the rest answer 429 without touching argon2;
* when a window's last slot fails, the pair is blocked (back-off): ``backoff`` seconds the first time,
  doubling with every further blocked window, capped at ``backoff_max`` — a user is never locked out for
  good: once the back-off is over the correct password works and clears the record;
* keys are per client, so an attacker elsewhere cannot lock a user out of their own machine.

The client is the TCP peer; ``X-Forwarded-For`` is believed only when the peer is one of the configured
proxies (``GEO_TRUSTED_PROXIES``), and then read from the right, skipping trusted hops — entries a client
wrote itself are never reached.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

from sqlalchemy import Engine, text

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    """Parse ``"10.0.0.1, 192.168.0.0/16"``; raises ValueError naming the bad entry."""
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"GEO_TRUSTED_PROXIES: {part!r} is not an IP address or CIDR network") from None
    return tuple(out)


def _trusted(addr: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in n for n in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The client's address: the TCP *peer*, or (only when the peer is a trusted proxy) the right-most
    ``X-Forwarded-For`` hop that is not itself a trusted proxy."""
    if not peer:
        return "?"
    if not forwarded_for or not trusted or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",")]
    for hop in reversed(hops):
        if hop and not _trusted(hop, trusted):
            return hop[:64]
    return (hops[0] or peer)[:64]


@dataclass
class LoginLimiter:
    """The shared failed-login counter (see the module docstring)."""

    engine: Engine
    limit: int = 10
    window: float = 60.0
    backoff: float = 60.0
    backoff_max: float = 900.0

    @staticmethod
    def key(username: str, client: str) -> str:
        return f"{username[:200]}\x1f{client}"

    def reserve(self, key: str) -> float | None:
        """Take one password check for *key*; None when granted, else the seconds to wait (answer 429)."""
        with self.engine.begin() as conn:
            if random.random() < 0.01:  # forget pairs quiet for long (bounded table under a flood of names)
                conn.execute(text("""
                    DELETE FROM login_attempts WHERE updated_at < now() - make_interval(secs => :keep)
                    AND (blocked_until IS NULL OR blocked_until < now())
                """), {"keep": 2 * (self.window + self.backoff_max)})
            conn.execute(text("INSERT INTO login_attempts (key) VALUES (:k) ON CONFLICT (key) DO NOTHING"),
                         {"k": key})
            r = conn.execute(text("""
                SELECT attempts, window_start, strikes, blocked_until, now() AS now
                FROM login_attempts WHERE key = :k FOR UPDATE
            """), {"k": key}).one()
            now, attempts, start, strikes = r.now, r.attempts, r.window_start, r.strikes
            if r.blocked_until is not None:
                if r.blocked_until > now:
                    return (r.blocked_until - now).total_seconds()
                attempts, start = 0, now  # back-off over: a fresh window (strikes kept for the next one)
            elif (now - start).total_seconds() >= self.window:
                if (now - start).total_seconds() >= self.window + self.backoff_max:
                    strikes = 0  # quiet for long: forgive earlier back-offs
                attempts, start = 0, now
            if attempts >= self.limit:  # the window's slots are taken (checks still running)
                return max(0.0, self.window - (now - start).total_seconds())
            conn.execute(text("""
                UPDATE login_attempts SET attempts = :a, window_start = :s, strikes = :st, blocked_until = NULL,
                    updated_at = now() WHERE key = :k
            """), {"a": attempts + 1, "s": start, "st": strikes, "k": key})
        return None

    def failed(self, key: str) -> None:
        """A reserved check failed: when it was the window's last slot, start the back-off."""
        with self.engine.begin() as conn:
            conn.execute(text("""
                UPDATE login_attempts SET strikes = strikes + 1, updated_at = now(),
                    blocked_until = now() + make_interval(secs => LEAST(:max, :b * power(2, strikes)))
                WHERE key = :k AND attempts >= :limit AND (blocked_until IS NULL OR blocked_until <= now())
            """), {"k": key, "max": self.backoff_max, "b": self.backoff, "limit": self.limit})

    def succeeded(self, key: str) -> None:
        """The correct password: forget the pair's failures and back-offs."""
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM login_attempts WHERE key = :k"), {"k": key})
