"""Webhooks of the 12345 hotline's API keys, and their delivery log (admin only).

``PUT /v1/hotline/webhooks/{key_id}`` sets the callback URL and secret of an API key that takes work orders
in (role dispatcher or admin); ``GET`` lists them (never the secret); ``DELETE`` switches one off (its pending
deliveries are then cancelled, the log stays). ``GET /v1/hotline/deliveries`` is the log: one row per status
change and webhook, with its attempts. What is sent and how: :mod:`geo.api.services.hotline`,
:mod:`geo.jobs.hotline`.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import text

from geo.access import policy
from geo.api.core.security import Principal
from geo.api.deps import AppState, authorize, get_state, require
from geo.api.errors import APIError
from geo.api.schemas import HotlineWebhookIn
from geo.api.services import audit
from geo.api.services import hotline as svc
from geo.api.services.scope import field_error

router = APIRouter(prefix="/v1/hotline", tags=["12345"])

#: roles of a key that may take work orders in (only such a key's orders can have status to send back)
INTAKE_ROLES = policy.ACTIONS["work_order.write"]


def _key_in_scope(state: AppState, p: Principal, key_id: int, *, write: bool):
    """The API key row, after the policy (404 outside the subtree, whether it exists or not)."""
    with state.engine.connect() as conn:
        k = conn.execute(text("SELECT k.id, k.name, k.role, k.active, k.jurisdiction_id, j.path, j.code "
                              "FROM api_keys k JOIN jurisdictions j ON j.id = k.jurisdiction_id WHERE k.id = :i"),
                         {"i": key_id}).mappings().first()
    authorize(state, p, "hotline_webhook", k["path"] if k else None, entity_id=key_id,
              jurisdiction_id=k["jurisdiction_id"] if k else None, write=write)
    if k is None:  # a root admin's subtree covers every path, but the key does not exist
        raise APIError(404, "not_found", f"API 密钥 {key_id} 不存在")
    return k


def _check_url(url: str) -> str:
    u = url.strip()
    try:
        parts = urlsplit(u)
        parts.port  # noqa: B018 — raises ValueError for a bad port
    except ValueError:
        raise field_error("url", "回调地址", "不是有效的网址") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise field_error("url", "回调地址", "须是 http:// 或 https:// 开头的完整网址，例如 https://12345.example.gov.cn/geo")
    if parts.username or parts.password:
        raise field_error("url", "回调地址", "网址中不能带用户名或密码（签名密钥用于鉴权）")
    return u


@router.put("/webhooks/{key_id}", summary="Set the webhook (callback URL, signing secret) of a hotline API key")
def put_webhook(request: Request, key_id: int, body: HotlineWebhookIn, p: Principal = Depends(require("hotline.manage"))):
    """200 with the webhook; ``secret`` is in the answer only when it was generated here (store it: it is never
    shown again). Without ``secret`` an existing webhook keeps its secret."""
    state = get_state(request)
    k = _key_in_scope(state, p, key_id, write=True)
    if k["role"] not in INTAKE_ROLES or k["name"].startswith("kiosk:"):
        raise field_error("key_id", "API 密钥", f"密钥“{k['name']}”（角色 {k['role']}）不能受理 12345 工单，"
                                              f"回调只能配置在 dispatcher 或 admin 角色的热线密钥上")
    url = _check_url(body.url)
    generated = None
    with state.engine.begin() as conn:
        prev = conn.execute(text("SELECT id, secret FROM hotline_webhooks WHERE api_key_id = :k FOR UPDATE"),
                            {"k": key_id}).first()
        secret = body.secret or (prev.secret if prev else None)
        if secret is None:
            secret = generated = "whsec_" + secrets.token_urlsafe(32)
        conn.execute(text("""
            INSERT INTO hotline_webhooks (api_key_id, url, secret, active, created_by, updated_by)
            VALUES (:k, :u, :s, :a, :who, :who)
            ON CONFLICT (api_key_id) DO UPDATE SET url = :u, secret = :s, active = :a, updated_at = now(),
                updated_by = :who
        """), {"k": key_id, "u": url, "s": secret, "a": body.active, "who": p.actor})
        r = conn.execute(text(svc.WEBHOOKS_SQL + " WHERE h.api_key_id = :k"), {"k": key_id}).mappings().one()
        audit.record(conn, p, "hotline.webhook.set", "hotline_webhooks", r["id"], jurisdiction_id=k["jurisdiction_id"],
                     detail={"api_key": k["name"], "url": url, "active": body.active,
                             "secret": "generated" if generated else ("given" if body.secret else "kept")})
    out = svc.webhook_json(r)
    if generated:
        out["secret"] = generated
    return out


@router.get("/webhooks", summary="Webhooks of the hotline keys in the caller's subtree (no secrets)")
def list_webhooks(request: Request, p: Principal = Depends(require("hotline.manage"))):
    state = get_state(request)
    with state.engine.connect() as conn:
        rows = conn.execute(text(svc.WEBHOOKS_SQL + " WHERE j.path LIKE :path || '%' ORDER BY h.id"),
                            {"path": p.jurisdiction_path}).mappings().all()
    return [svc.webhook_json(r) for r in rows if policy.can_read(p, "hotline_webhook", r["path"])]


@router.delete("/webhooks/{key_id}", summary="Switch a hotline key's webhook off (pending deliveries are cancelled)")
def delete_webhook(request: Request, key_id: int, p: Principal = Depends(require("hotline.manage"))):
    state = get_state(request)
    k = _key_in_scope(state, p, key_id, write=True)
    with state.engine.begin() as conn:
        hid = conn.execute(text("UPDATE hotline_webhooks SET active = false, updated_at = now(), updated_by = :who "
                                "WHERE api_key_id = :k RETURNING id"), {"k": key_id, "who": p.actor}).scalar()
        if hid is None:
            raise APIError(404, "not_found", f"API 密钥“{k['name']}”没有配置回调")
        n = conn.execute(text("UPDATE hotline_deliveries SET state = 'cancelled', next_attempt_at = NULL, "
                              "last_error = coalesce(last_error || '; ', '') || 'webhook switched off' "
                              "WHERE webhook_id = :h AND state = 'pending'"), {"h": hid}).rowcount
        audit.record(conn, p, "hotline.webhook.off", "hotline_webhooks", hid, jurisdiction_id=k["jurisdiction_id"],
                     detail={"api_key": k["name"], "cancelled_deliveries": n})
        r = conn.execute(text(svc.WEBHOOKS_SQL + " WHERE h.id = :h"), {"h": hid}).mappings().one()
    return svc.webhook_json(r)


@router.get("/deliveries", summary="The webhook delivery log: each status change sent, its attempts and errors")
def list_deliveries(request: Request, order_no: str | None = Query(None, max_length=64),
                    state: str | None = Query(None, pattern="^(pending|delivered|failed|cancelled)$"),
                    limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=1_000_000),
                    p: Principal = Depends(require("hotline.manage"))):
    st = get_state(request)
    with st.engine.connect() as conn:
        total, rows = svc.deliveries(conn, p.jurisdiction_path, order_no=order_no, state=state, limit=limit,
                                     offset=offset)
    items = [svc.delivery_json(r) for r in rows if policy.can_read(p, "hotline_delivery", r["jurisdiction_path"])]
    return {"total": total, "limit": limit, "offset": offset, "items": items}
