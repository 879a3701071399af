"""HTTP client of the geo API — the dashboard's only source of data (it never touches the database).

* Base URL from ``GEO_API_URL`` (default ``http://127.0.0.1:8000``); one pooled ``httpx.Client`` per process.
* Every failure becomes an :class:`ApiError` (HTTP error with the API's ``error``/``message``) or
  :class:`ApiUnavailable` (connection refused, timeout …): pages catch those and show a friendly message.
* Read calls are cached briefly with ``st.cache_data`` (keyed by token, path and parameters): a refresh cycle
  of the big screen, or a rerun caused by panning the map, does not hit the API again within the TTL.
  Short TTL (``FAST_TTL``, below the refresh interval) for live numbers; longer for geometry and catalogues.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
import streamlit as st

DEFAULT_URL = "http://127.0.0.1:8000"
#: seconds between big-screen refreshes (``GEO_DASHBOARD_REFRESH_S``)
REFRESH_S = max(1.0, float(os.environ.get("GEO_DASHBOARD_REFRESH_S", "30") or 30))
#: live data (KPIs, heatmap, positions) is reused for a bit less than one refresh interval
FAST_TTL = max(0.5, min(REFRESH_S * 0.8, REFRESH_S - 0.5))
#: slowly changing data (catalogue, jurisdictions, plan lists)
SLOW_TTL = 120.0
#: geometry (keyed by the published plan ids as well, so a publish shows at once)
GEOM_TTL = 600.0


def base_url() -> str:
    return (os.environ.get("GEO_API_URL") or DEFAULT_URL).rstrip("/")


class ApiError(Exception):
    """The API answered with an error (or could not be reached: see :class:`ApiUnavailable`)."""

    def __init__(self, status: int | None, code: str, message: str, body: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.body = status, code, message, body or {}

    def __reduce__(self):  # picklable (st.cache_data may pickle across threads)
        return (self.__class__, (self.status, self.code, self.message, self.body))


class ApiUnavailable(ApiError):
    """Connection refused, DNS failure, timeout: the API is down or unreachable."""


@st.cache_resource(show_spinner=False)
def _client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=httpx.Timeout(30.0, connect=3.0),
                        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
                        headers={"User-Agent": "geo-dashboard"})


def call(method: str, path: str, *, token: str | None = None, params: dict | None = None, json: Any = None,
         data: dict | None = None, headers: dict | None = None, timeout: float | None = None,
         files: dict | None = None, raw: bool = False) -> Any:
    """One API request; returns parsed JSON (or text; the bytes with *raw*). Raises ApiError / ApiUnavailable."""
    h = dict(headers or {})
    h.update(auth_headers(token))
    url = base_url()
    kw: dict = {"params": _clean(params), "headers": h}
    if json is not None:
        kw["json"] = json
    if data is not None:
        kw["data"] = data
    if files is not None:
        kw["files"] = files
    if timeout is not None:
        kw["timeout"] = timeout
    try:
        r = _client(url).request(method, path, **kw)
    except httpx.TimeoutException as exc:
        raise ApiUnavailable(None, "timeout", f"{method} {path}: no answer in time ({type(exc).__name__})") from None
    except (httpx.HTTPError, OSError) as exc:
        raise ApiUnavailable(None, "unreachable", f"{method} {path}: {type(exc).__name__}: {exc}") from None
    if r.status_code >= 400:
        try:
            body = r.json()
        except ValueError:
            body = {"message": r.text[:300]}
        if not isinstance(body, dict):
            body = {"message": str(body)[:300]}
        code = body.get("error") or ("not_found" if r.status_code == 404 else f"http_{r.status_code}")
        msg = body.get("message") or body.get("detail") or r.reason_phrase
        if isinstance(msg, list):
            msg = "; ".join(str(m.get("msg", m)) if isinstance(m, dict) else str(m) for m in msg)
        if r.status_code in (502, 503, 504):
            raise ApiUnavailable(r.status_code, code, str(msg), body)
        raise ApiError(r.status_code, code, str(msg), body)
    ctype = r.headers.get("content-type", "")
    if raw:
        return r.content
    if "json" in ctype:
        return r.json()
    return r.text


#: a session token of this form is an API key (a kiosk token of a wall display), sent as ``X-API-Key``
API_KEY_PREFIX = "apikey:"


def auth_headers(token: str | None) -> dict:
    """Headers that authenticate *token*: ``Authorization: Bearer`` for a JWT, ``X-API-Key`` for a key."""
    if not token:
        return {}
    if token.startswith(API_KEY_PREFIX):
        return {"X-API-Key": token[len(API_KEY_PREFIX):]}
    return {"Authorization": f"Bearer {token}"}


def public_url() -> str:
    """The API's URL as the *browser* reaches it (map tiles are fetched by the map itself):
    ``GEO_API_PUBLIC_URL``, else ``GEO_API_URL``. The API must list the dashboard's origin in
    ``GEO_CORS_ORIGINS``."""
    return (os.environ.get("GEO_API_PUBLIC_URL") or base_url()).rstrip("/")


def _clean(params: dict | None) -> dict | None:
    if not params:
        return None
    return {k: v for k, v in params.items() if v is not None and v != "" and v != []}


def _freeze(params: dict | None) -> tuple:
    if not params:
        return ()
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))


def _thaw(frozen: tuple) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in frozen}


# --------------------------------------------------------------------------- cached reads
# The base URL is part of every cache key so two dashboards in one process never mix answers.


@st.cache_data(ttl=FAST_TTL, show_spinner=False, max_entries=1000)
def _get_fast(url: str, token: str, path: str, frozen: tuple):
    return call("GET", path, token=token, params=_thaw(frozen))


@st.cache_data(ttl=SLOW_TTL, show_spinner=False, max_entries=500)
def _get_slow(url: str, token: str, path: str, frozen: tuple):
    return call("GET", path, token=token, params=_thaw(frozen))


@st.cache_data(ttl=GEOM_TTL, show_spinner=False, max_entries=100)
def _get_geom(url: str, token: str, path: str, frozen: tuple, version: tuple):
    return call("GET", path, token=token, params=_thaw(frozen))


def get(path: str, token: str | None, params: dict | None = None, *, cache: str | None = "fast",
        version: tuple = ()) -> Any:
    """GET with a cache tier: ``fast`` (live numbers), ``slow`` (lists), ``geom`` (with *version*) or None."""
    if cache is None:
        return call("GET", path, token=token, params=params)
    frozen = _freeze(params)
    if cache == "fast":
        return _get_fast(base_url(), token or "", path, frozen)
    if cache == "slow":
        return _get_slow(base_url(), token or "", path, frozen)
    return _get_geom(base_url(), token or "", path, frozen, version)


def clear_caches(*, geometry: bool = False) -> None:
    """Forget cached answers after a change made from this dashboard (new event, transition, publish)."""
    _get_fast.clear()
    _get_slow.clear()
    if geometry:
        _get_geom.clear()


# --------------------------------------------------------------------------- endpoints


def login(username: str, password: str) -> dict:
    """``POST /v1/auth/token`` → ``{access_token, role, jurisdiction: {id, code, name}, …}``."""
    return call("POST", "/v1/auth/token", data={"username": username, "password": password})


def me(token: str) -> dict:
    return call("GET", "/v1/auth/me", token=token)


def jurisdictions(token: str) -> list[dict]:
    return get("/v1/jurisdictions", token, cache="fast")


def jurisdiction(token: str, code: str) -> dict:
    return get(f"/v1/jurisdictions/{code}", token, cache="slow")


def plans(token: str, code: str) -> list[dict]:
    return get(f"/v1/jurisdictions/{code}/plans", token, cache="fast")


def plan(token: str, plan_id: int) -> dict:
    return get(f"/v1/plans/{plan_id}", token, cache="fast")


def plan_diff(token: str, a: int, b: int) -> dict:
    return get(f"/v1/plans/{a}/diff/{b}", token, cache="slow")


def publish(token: str, plan_id: int, body: dict | None = None) -> dict:
    out = call("POST", f"/v1/plans/{plan_id}/publish", token=token, json=body, timeout=120)
    clear_caches(geometry=True)
    return out


# --------------------------------------------------------------------------- planner tools (issue 12)


def import_grids(token: str, code: str, name: str, content: bytes, form: dict) -> dict:
    out = call("POST", f"/v1/jurisdictions/{code}/grid-imports", token=token, files={"file": (name, content)},
               data={k: str(v) for k, v in form.items() if v not in (None, "")}, timeout=300)
    clear_caches()
    return out


def edit_plan(token: str, plan_id: int, body: dict) -> dict:
    out = call("POST", f"/v1/plans/{plan_id}/edits", token=token, json=body, timeout=300)
    clear_caches()
    return out


def undo_edit(token: str, plan_id: int) -> dict:
    out = call("POST", f"/v1/plans/{plan_id}/undo", token=token, timeout=120)
    clear_caches()
    return out


def plan_edits(token: str, plan_id: int) -> dict:
    return get(f"/v1/plans/{plan_id}/edits", token, cache="fast")


def staffing(token: str, plan_id: int) -> dict:
    return get(f"/v1/plans/{plan_id}/staffing", token, cache="fast")


def publish_check(token: str, plan_id: int) -> dict:
    return get(f"/v1/plans/{plan_id}/publish-check", token, cache="fast")


def rollback(token: str, plan_id: int, body: dict | None = None) -> dict:
    out = call("POST", f"/v1/plans/{plan_id}/rollback", token=token, json=body, timeout=120)
    clear_caches(geometry=True)
    return out


def export_plan(token: str, plan_id: int, fmt: str, crs: str) -> bytes:
    return call("GET", f"/v1/plans/{plan_id}/export", token=token, params={"format": fmt, "crs": crs}, raw=True,
                timeout=300)


def print_map(token: str, plan_id: int, community: str) -> bytes:
    return call("GET", f"/v1/plans/{plan_id}/print/{community}", token=token, raw=True, timeout=300)


def create_worker(token: str, body: dict) -> dict:
    out = call("POST", "/v1/workers", token=token, json=body)
    clear_caches()
    return out


def patch_worker(token: str, worker_id: int, body: dict) -> dict:
    out = call("PATCH", f"/v1/workers/{worker_id}", token=token, json=body)
    clear_caches()
    return out


def published_grids(token: str, bbox: list[float] | None, zoom: int, version: tuple) -> dict:
    params = {"zoom": zoom}
    if bbox:
        params["bbox"] = ",".join(f"{v:.6f}" for v in bbox)
    return get("/v1/grids", token, params, cache="geom", version=version)


def plan_grids(token: str, plan_id: int, zoom: int | None = None) -> dict:
    return get(f"/v1/plans/{plan_id}/grids", token, {"zoom": zoom}, cache="geom", version=(plan_id,))


def lookup(token: str, lon: float, lat: float, crs: str = "wgs84") -> dict:
    return call("GET", "/v1/lookup", token=token, params={"lon": lon, "lat": lat, "crs": crs})


def grid_workers(token: str, code: str, lon: float | None = None, lat: float | None = None) -> list[dict]:
    return get(f"/v1/grids/{code}/workers", token, {"lon": lon, "lat": lat}, cache="fast")


def catalogue(token: str | None = None) -> dict:
    return get("/v1/catalogue", token, cache="slow")


def events(token: str, **params) -> dict:
    return get("/v1/events", token, params, cache="fast")


def event(token: str, event_id: int) -> dict:
    return call("GET", f"/v1/events/{event_id}", token=token)


def create_event(token: str, body: dict, idempotency_key: str | None = None) -> tuple[dict, bool]:
    """Create an event; returns (event, created) — created is False for an idempotent replay."""
    key = idempotency_key or str(uuid.uuid4())
    h = auth_headers(token) | {"Idempotency-Key": key}
    try:
        r = _client(base_url()).post("/v1/events", json=body, headers=h)
    except httpx.TimeoutException:
        raise ApiUnavailable(None, "timeout", "POST /v1/events: no answer in time") from None
    except (httpx.HTTPError, OSError) as exc:
        raise ApiUnavailable(None, "unreachable", f"POST /v1/events: {type(exc).__name__}: {exc}") from None
    if r.status_code >= 400:
        try:
            b = r.json()
        except ValueError:
            b = {"message": r.text[:300]}
        raise ApiError(r.status_code, b.get("error", f"http_{r.status_code}"), str(b.get("message", r.text)), b)
    clear_caches()
    return r.json(), r.status_code == 201


def transition(token: str, event_id: int, body: dict) -> dict:
    out = call("POST", f"/v1/events/{event_id}/transitions", token=token, json=body)
    clear_caches()
    return out


def move_options(token: str, plan_id: int, grid: str, to: str | None = None) -> dict:
    """``GET /v1/plans/{id}/move-options``: the blocks and building groups of *grid* a move may take to each
    neighbour, allowed or with the reason (a plan never changes once stored: cached like lists)."""
    return get(f"/v1/plans/{plan_id}/move-options", token, {"grid": grid, "to": to}, cache="slow")


def workers(token: str, grid: str | None = None, on_duty: bool | None = None, *, jurisdiction: str | None = None,
            role: str | None = None, name: str | None = None) -> list[dict]:
    """``GET /v1/workers``: the caller's workers, filtered (grid code, community/street, role, duty, name part)."""
    return get("/v1/workers", token, {"grid": grid, "on_duty": on_duty, "jurisdiction": jurisdiction, "role": role,
                                      "name": name}, cache="fast")


def positions(token: str) -> list[dict]:
    return get("/v1/workers/positions/latest", token, cache="fast")


def kpis(token: str, frm: str | None = None, category: str | None = None) -> dict:
    """``GET /v1/stats/kpis`` over [frm, now) for one category (or all)."""
    return get("/v1/stats/kpis", token, {"from": frm, "category": category}, cache="fast")


def heatmap(token: str, res: int, frm: str | None, category: str | None) -> dict:
    return get("/v1/stats/heatmap", token, {"res": res, "from": frm, "category": category}, cache="fast")


def trend(token: str, days: int = 30, category: str | None = None) -> list[dict]:
    # a 30-day chart need not follow every refresh (and the endpoint is the slowest of the big screen's)
    return get("/v1/stats/trend", token, {"days": days, "category": category}, cache="slow")


def top_grids(token: str, n: int, frm: str | None, category: str | None = None) -> list[dict]:
    return get("/v1/stats/top-grids", token, {"n": n, "from": frm, "category": category}, cache="fast")


def ranking(token: str, by: str, frm: str | None, category: str | None = None) -> dict:
    """``GET /v1/stats/ranking?by=street|community|worker`` (考评) over [frm, now)."""
    return get("/v1/stats/ranking", token, {"by": by, "from": frm, "category": category}, cache="fast")


def geocode(token: str, q: str, limit: int = 10) -> dict:
    """``GET /v1/geocode``: ranked standard-address candidates for free text."""
    return get("/v1/geocode", token, {"q": q, "limit": limit}, cache="slow")


def emergency(token: str) -> dict:
    return get("/v1/emergency", token, cache="fast")


def emergency_grids(token: str) -> list[dict]:
    return get("/v1/emergency/grids", token, cache="fast")


def patrol_coverage(token: str, day: str, grid: str | None = None) -> dict:
    return get("/v1/stats/patrol-coverage", token, {"day": day, "grid": grid}, cache="fast")


def feed(token: str, since: str | None = None, limit: int = 50) -> dict:
    return get("/v1/feed", token, {"since": since, "limit": limit}, cache="fast")


def grid_panel(token: str, code: str) -> dict:
    return get(f"/v1/grids/{code}/panel", token, cache="fast")


def track(token: str, worker_id: int, day: str) -> dict:
    return get(f"/v1/workers/{worker_id}/track", token, {"day": day}, cache="fast")


def open_by_grid(token: str) -> dict:
    return get("/v1/stats/open-by-grid", token, cache="fast")


@st.cache_data(ttl=SLOW_TTL, show_spinner=False)
def _openapi_paths(url: str) -> dict:
    doc = call("GET", "/openapi.json")
    return {p: sorted(v) for p, v in doc.get("paths", {}).items()}


def has_endpoint(path: str, method: str = "post") -> bool:
    """Does the running API offer *path* (as written in its OpenAPI document) for *method*?"""
    return method.lower() in _openapi_paths(base_url()).get(path, [])


PARTITION_PATH = "/v1/jurisdictions/{code}/partition"
JOB_PATH = "/v1/jobs/{job_id}"


def start_partition(token: str, code: str, params: dict) -> dict:
    """``POST /v1/jurisdictions/{code}/partition`` → ``{job_id}`` (contract agreed with the API owner)."""
    return call("POST", f"/v1/jurisdictions/{code}/partition", token=token, json=params)


def job(token: str, job_id: str) -> dict:
    """``GET /v1/jobs/{id}`` → ``{state, progress, stage, plan_id, error}``."""
    return call("GET", f"/v1/jobs/{job_id}", token=token)


# --------------------------------------------------------------------------- parallel reads

_POOL = None


def prefetch(calls: dict) -> dict:
    """Run independent reads concurrently (the API answers them in parallel; a render waits for the slowest,
    not the sum). Returns ``{name: callable}`` whose call returns the value or raises the read's error."""
    import concurrent.futures
    import threading

    from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

    global _POOL
    if _POOL is None:
        _POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="geo-prefetch")
    ctx = get_script_run_ctx()

    def run(fn):
        if ctx is not None:
            add_script_run_ctx(threading.current_thread(), ctx)
        return fn()

    futures = {name: _POOL.submit(run, fn) for name, fn in calls.items()}
    return {name: f.result for name, f in futures.items()}
