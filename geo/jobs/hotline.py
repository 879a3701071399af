"""Delivering work-order status to the 12345 hotline's webhook: one signed JSON POST per status change.

A delivery row (``hotline_deliveries``) is written, and its job deferred, in the transaction of the change
itself (:mod:`geo.api.services.hotline`); ``geo worker`` runs the job (:func:`geo.jobs.tasks.hotline_deliver`),
which calls :func:`deliver` here.

The request
-----------
``POST <url>`` with the body (UTF-8 JSON, the same bytes on every attempt) and the headers

* ``X-Geo-Delivery``: the delivery id (a UUID) — the same on every attempt: the receiver drops a delivery id it
  has already processed (delivery is *at least once*: a worker that dies after the POST but before recording
  it sends it again);
* ``X-Geo-Event``: the change (``order.accepted`` …), ``X-Geo-Attempt``: 1, 2, …;
* ``X-Geo-Timestamp``: Unix seconds of this attempt, and
* ``X-Geo-Signature``: ``sha256=`` + hex HMAC-SHA256 of ``<timestamp>.<body>`` with the webhook's secret
  (:func:`signature`). The receiver recomputes it over the raw body, compares in constant time and refuses
  a timestamp more than a few minutes old (a replayed request).

Any 2xx answer delivers it. Anything else (another status, a timeout, a refused connection) is recorded
(``attempts``, ``last_status_code``, ``last_error``, ``history``) and retried after
``GEO_HOTLINE_BACKOFF_S`` × 2^(attempt−1) seconds (at most ``GEO_HOTLINE_BACKOFF_MAX_S``), up to
``GEO_HOTLINE_MAX_ATTEMPTS`` attempts; then the delivery is ``failed``. Deliveries of one order run one at a
time, in order (a procrastinate lock per webhook and order): a later change waits while an earlier one is
being retried, so the receiver sees each order's changes in ``seq`` order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine, text

log = logging.getLogger("geo.jobs")

HISTORY_KEPT = 20  # attempts kept in a delivery's history (the count is kept in full)


class DeliveryFailed(Exception):
    """An attempt did not deliver; *retry_in* seconds until the next one (None: no attempt left)."""

    def __init__(self, message: str, retry_in: float | None):
        super().__init__(message)
        self.retry_in = retry_in


@dataclass(frozen=True)
class Policy:
    """Retry and timeout settings of deliveries (``GEO_HOTLINE_*``)."""

    max_attempts: int
    backoff_s: float
    backoff_max_s: float
    timeout_s: float

    @classmethod
    def from_settings(cls) -> "Policy":
        from geo.config import get_settings

        s = get_settings()
        return cls(s.hotline_max_attempts, s.hotline_backoff_s, s.hotline_backoff_max_s, s.hotline_timeout_s)

    def wait_after(self, attempt: int) -> float:
        """Seconds between attempt *attempt* (1-based) and the next one."""
        return min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))


def body_bytes(payload: dict) -> bytes:
    """The exact bytes POSTed (and signed): compact JSON with sorted keys, UTF-8."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.`` followed by the raw body, keyed by the secret."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _record(engine: Engine, did: int, *, state: str, code: int | None, error: str | None, entry: dict,
            next_in: float | None) -> None:
    with engine.begin() as conn:
        conn.execute(text("""
            UPDATE hotline_deliveries SET state = CAST(:state AS varchar), attempts = attempts + 1, last_status_code = :code,
                last_error = :err, last_attempt_at = now(),
                next_attempt_at = CASE WHEN CAST(:next_in AS float8) IS NULL THEN NULL
                                       ELSE now() + make_interval(secs => CAST(:next_in AS float8)) END,
                delivered_at = CASE WHEN CAST(:state AS varchar) = 'delivered' THEN now() ELSE delivered_at END,
                history = (SELECT coalesce(jsonb_agg(h ORDER BY n), '[]'::jsonb) FROM (
                    SELECT h, n FROM jsonb_array_elements(history || jsonb_build_array(CAST(:entry AS jsonb)))
                        WITH ORDINALITY AS x(h, n)
                    ORDER BY n DESC LIMIT :kept) t)
            WHERE id = :id
        """), {"state": state, "code": code, "err": error, "next_in": next_in, "entry": json.dumps(entry),
               "kept": HISTORY_KEPT, "id": did})


def deliver(engine: Engine, delivery_row_id: int, policy: Policy | None = None,
            client: httpx.Client | None = None) -> str:
    """Make one attempt at delivery *delivery_row_id* (``hotline_deliveries.id``).

    Returns
    -------
    str : the delivery's state afterwards: ``delivered``, or ``cancelled`` (its webhook or key was switched
        off), or the state it already had (a job run twice sends nothing twice once delivered).

    Raises
    ------
    DeliveryFailed : the attempt failed; ``retry_in`` says when to try again (None once the attempts are used up,
        the delivery is then ``failed``).
    """
    policy = policy or Policy.from_settings()
    with engine.connect() as conn:
        r = conn.execute(text("""
            SELECT d.id, d.delivery_id, d.kind, d.payload, d.state, d.attempts, h.url, h.secret,
                   h.active AND k.active AS enabled
            FROM hotline_deliveries d JOIN hotline_webhooks h ON h.id = d.webhook_id
            JOIN api_keys k ON k.id = h.api_key_id WHERE d.id = :id
        """), {"id": delivery_row_id}).mappings().first()
    if r is None:
        log.warning("hotline delivery %s: no such row (deleted?)", delivery_row_id)
        return "missing"
    if r["state"] != "pending":
        return r["state"]
    attempt = r["attempts"] + 1
    if not r["enabled"]:
        _record(engine, r["id"], state="cancelled", code=None, error="webhook or its API key switched off",
                entry={"attempt": attempt, "at": time.time(), "error": "disabled"}, next_in=None)
        return "cancelled"
    body = body_bytes(r["payload"])
    ts = int(time.time())
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "geo-hotline-webhook/1",
               "X-Geo-Delivery": str(r["delivery_id"]), "X-Geo-Event": r["kind"], "X-Geo-Attempt": str(attempt),
               "X-Geo-Timestamp": str(ts), "X-Geo-Signature": signature(r["secret"], ts, body)}
    t0 = time.monotonic()
    code, error = None, None
    own = client is None
    c = client or httpx.Client(timeout=policy.timeout_s, follow_redirects=False)
    try:
        resp = c.post(r["url"], content=body, headers=headers)
        code = resp.status_code
        if not 200 <= code < 300:
            error = f"HTTP {code}: {resp.text[:300]}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        if own:
            c.close()
    entry = {"attempt": attempt, "at": time.time(), "status_code": code, "ms": round(1000 * (time.monotonic() - t0)),
             "url": r["url"]}
    if error is None:
        _record(engine, r["id"], state="delivered", code=code, error=None, entry=entry, next_in=None)
        return "delivered"
    entry["error"] = error[:200]
    retry_in = policy.wait_after(attempt) if attempt < policy.max_attempts else None
    _record(engine, r["id"], state="pending" if retry_in is not None else "failed", code=code, error=error,
            entry=entry, next_in=retry_in)
    log.warning("hotline delivery %s (%s) attempt %s failed: %s%s", r["delivery_id"], r["kind"], attempt, error,
                f"; next in {retry_in:g} s" if retry_in is not None else "; giving up")
    raise DeliveryFailed(error, retry_in)
