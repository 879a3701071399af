"""Open311 GeoReport v2 compatibility: services list, request submission and status.

``service_code`` is ``category.subtype`` from the catalogue. Submissions need an
API key (``api_key`` form/query field, or ``X-API-Key``) of a role that may
create events; they go through the same routing, idempotency and audit as
``POST /v1/events``. Errors use GeoReport's ``[{"code": …, "description": …}]`` body.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from geo.api.core.responses import JSON
from pydantic import ValidationError
from sqlalchemy import text

from geo.access import policy
from geo.api.core.security import Principal
from geo.api.deps import get_state, resolve_principal
from geo.api.errors import APIError
from geo.api.routes.events import _create
from geo.api.schemas import EventIn
from geo.api.services import events as svc

router = APIRouter(prefix="/open311/v2", tags=["open311"])


def _err(status: int, description: str) -> JSON:
    return JSON([{"code": status, "description": description}], status_code=status)


def _service_json(s) -> dict:
    return {"service_code": f"{s.category}.{s.code}", "service_name": s.name,
            "description": f"{s.category_name} / {s.name} — {s.department}", "metadata": False,
            "type": "realtime", "keywords": s.category_name, "group": s.category_name}


@router.get("/services.json", summary="GeoReport v2: service list")
async def services(request: Request):
    return [_service_json(s) for s in get_state(request).catalogue.services()]


async def _principal(request: Request, form: dict | None = None) -> Principal | None:
    key = request.headers.get("x-api-key") or request.query_params.get("api_key") or (form or {}).get("api_key")
    auth = request.headers.get("authorization", "")
    token = auth[7:] if auth.lower().startswith("bearer ") else None
    return await resolve_principal(get_state(request), token, key)


def _status(state: str) -> str:
    return "closed" if state in svc.TERMINAL else "open"


def _request_json(r, catalogue) -> dict:
    sub = catalogue.get(r["category"], r["subtype"])
    return {"service_request_id": str(r["id"]), "status": _status(r["state"]), "status_notes": r["state"],
            "service_name": sub.name if sub else r["subtype"], "service_code": f"{r['category']}.{r['subtype']}",
            "description": r["description"], "agency_responsible": r["department"], "service_notice": "",
            "requested_datetime": r["created_at"].isoformat(), "updated_datetime": r["updated_at"].isoformat(),
            "expected_datetime": r["due_at"].isoformat(), "address": r["address"] or "", "address_id": "",
            "zipcode": "", "lat": r["lat"], "long": r["lon"], "media_url": ""}


@router.post("/requests.json", summary="GeoReport v2: submit a service request (form-encoded)")
async def submit(request: Request):
    form = dict(await request.form())
    try:
        p = await _principal(request, form)
    except APIError as exc:
        return _err(403, exc.message)
    if p is None or not policy.may(p, "event.create"):
        return _err(403, "api_key missing or not allowed to submit requests")
    code = form.get("service_code") or ""
    if "." not in code:
        return _err(400, "service_code is required (see services.json)")
    category, subtype = code.split(".", 1)
    name = " ".join(x for x in (form.get("first_name"), form.get("last_name")) if x) or None
    try:
        body = EventIn(category=category, subtype=subtype, source="resident", lon=form.get("long"),
                       lat=form.get("lat"), crs="wgs84", description=form.get("description") or "",
                       address=form.get("address_string"), reporter_name=name, reporter_phone=form.get("phone"),
                       anonymous=name is None and not form.get("phone"))
    except ValidationError as exc:
        e = exc.errors()[0]
        field = {"lon": "long"}.get(str(e["loc"][0]), str(e["loc"][0]))
        return _err(400, f"{field}: {e['msg']}")
    try:
        ev, _ = await run_in_threadpool(_create, get_state(request), p, body, request.headers.get("idempotency-key"))
    except APIError as exc:
        return _err(400 if exc.status in (404, 409, 422) else exc.status, exc.message)
    return [{"service_request_id": str(ev["id"]), "service_notice": f"routed to grid {ev['grid_code']}",
             "account_id": None}]


def _query(state, p: Principal, ids: list[int] | None, service_code: str | None, status: str | None,
           start: datetime | None, end: datetime | None):
    where, params = ["e.jurisdiction_path LIKE :path || '%'"], {"path": p.jurisdiction_path}
    if ids:
        where.append("e.id = ANY(:ids)")
        params["ids"] = ids
    if service_code and "." in service_code:
        c, s = service_code.split(".", 1)
        where.append("e.category = :c AND e.subtype = :s")
        params.update(c=c, s=s)
    if status == "open":
        where.append("e.state NOT IN ('closed', 'rejected')")
    elif status == "closed":
        where.append("e.state IN ('closed', 'rejected')")
    if start:
        where.append("e.created_at >= :start")
        params["start"] = start
    if end:
        where.append("e.created_at < :end")
        params["end"] = end
    with state.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {svc.EVENT_COLUMNS} FROM events e WHERE {' AND '.join(where)} "
                                 "ORDER BY e.created_at DESC LIMIT 1000"), params).mappings().all()
    return [_request_json(r, state.catalogue) for r in rows]


def _id(v: str) -> int:
    v = v.strip()
    if not (v.isascii() and v.isdigit()) or len(v) > 18:
        raise ValueError(v)
    return int(v)


def _dt(v: str | None, name: str):
    if not v:
        return None
    try:
        return datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise APIError(400, "bad_date", f"{name}: expected an ISO 8601 date-time, got {v!r}") from None


@router.get("/requests.json", summary="GeoReport v2: service requests (api_key required; personal data never shown)")
async def requests(request: Request):
    q = request.query_params
    try:
        p = await _principal(request)
        if p is None:
            return _err(403, "api_key required")
        ids = [_id(x) for x in q["service_request_id"].split(",")] if q.get("service_request_id") else None
        start, end = _dt(q.get("start_date"), "start_date"), _dt(q.get("end_date"), "end_date")
    except ValueError:
        return _err(400, "service_request_id must be a comma-separated list of numbers")
    except APIError as exc:
        return _err(400 if exc.status >= 400 and exc.status < 500 and exc.status != 401 else 403, exc.message)
    return await run_in_threadpool(_query, get_state(request), p, ids, q.get("service_code"), q.get("status"),
                                   start, end)


@router.get("/requests/{request_id}.json", summary="GeoReport v2: one service request")
async def one_request(request: Request, request_id: str):
    try:
        p = await _principal(request)
    except APIError as exc:
        return _err(403, exc.message)
    if p is None:
        return _err(403, "api_key required")
    if not (request_id.isascii() and request_id.isdigit()) or len(request_id) > 18:
        return _err(400, "service_request_id must be a number")
    rows = await run_in_threadpool(_query, get_state(request), p, [int(request_id)], None, None, None, None)
    if not rows:
        return _err(404, f"service request {request_id} not found")
    return rows
