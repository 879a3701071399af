"""The FastAPI application: ``create_app()``; ``geo serve`` runs it with uvicorn."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from geo.api.core.responses import JSON

import geo
from geo.api import _fastlookup, errors
from geo.api.core.config import DEMO_SECRET, get_catalogue
from geo.api.core.context import request_id
from geo.api.core.limits import BodyLimit
from geo.api.deps import AppState
from geo.api.routes import (auth, basemap, bigscreen, events, health, hotline, jobs, lookup, loop, open311, planner,
                            plans, stats, workers, workorders)
from geo.api.services.credentials import PasswordChecker
from geo.api.services.login_limiter import LoginLimiter, parse_networks
from geo.api.services.lookup_index import IndexHolder
from geo.config import Settings, get_settings

log = logging.getLogger("geo.api")


ROUTERS = (health.router, auth.router, lookup.router, plans.router, jobs.router, events.router, workers.router,
           stats.router, open311.router, workorders.router, workorders.geo_router, loop.router,
           bigscreen.router, basemap.router, planner.router, hotline.router)


class ConfigError(RuntimeError):
    """The service is not configured safely enough to start."""


def resolve_secret(settings: Settings) -> str:
    if settings.secret_key:
        if settings.secret_key == DEMO_SECRET and not settings.demo:
            raise ConfigError("GEO_SECRET_KEY is the public demo secret; set a real one (or run with --demo)")
        return settings.secret_key
    if settings.demo:
        return DEMO_SECRET
    raise ConfigError("GEO_SECRET_KEY is not set; generate one (python -c 'import secrets; "
                      "print(secrets.token_urlsafe(48))') or run with --demo")


SLOW_MS = 500.0

#: A request id unique across processes: 8 random hex digits per process, then a counter (16 in all), as
#: bytes — made by the lookup's compiled step, which puts it in its answers' headers itself.
_new_request_id_bytes = _fastlookup.request_id


def new_request_id() -> str:
    """:func:`_new_request_id_bytes` as text."""
    return _new_request_id_bytes().decode()


#: How ``geo serve`` runs uvicorn (benchmarks run their baselines with exactly these). No proxy headers:
#: ``X-Forwarded-For`` is believed only from GEO_TRUSTED_PROXIES (services.login_limiter.client_address).
UVICORN_OPTIONS = {"log_level": "info", "access_log": False, "log_config": None, "proxy_headers": False}


class RequestContext:
    """Pure-ASGI middleware: request id (``X-Request-ID`` in and out), access log, last-resort 500 body.

    Access log (``GEO_ACCESS_LOG``): ``all`` requests, ``default`` — every write, every 4xx/5xx and every
    request slower than 500 ms (successful reads such as lookups are not logged one by one), or ``off``.

    (Starlette's ``BaseHTTPMiddleware`` costs tens of microseconds per request; this costs almost nothing.)
    """

    def __init__(self, app, mode: str = "default"):
        self.app = app
        self.mode = mode  # all | default (writes, errors, slow requests) | off

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = None
        for k, v in scope.get("headers", ()):
            if k == b"x-request-id":
                rid = v.decode("latin-1")[:64]
                break
        rid = rid or new_request_id()
        token = request_id.set(rid)
        t0 = time.perf_counter()
        state = {"status": 500, "started": False}

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"request_id": rid, "path": scope.get("path")})
            if not state["started"]:
                await JSON(errors.body("internal_error", "internal error; quote the request id"),
                           status_code=500, headers={"x-request-id": rid})(scope, receive, send)
        finally:
            request_id.reset(token)
            access_log(self.mode, rid, scope, state["status"], t0)


def access_log(mode: str, rid: str, scope, status: int, t0: float) -> None:
    """Log one request per the ``GEO_ACCESS_LOG`` *mode* (see :class:`RequestContext`); *t0* its perf_counter."""
    ms = (time.perf_counter() - t0) * 1000
    if mode == "all" or (mode == "default" and (scope.get("method") != "GET" or status >= 400 or ms > SLOW_MS)):
        log.info("request", extra={"request_id": rid, "method": scope.get("method"), "path": scope.get("path"),
                                   "status": status, "ms": round(ms, 2)})


_JSON_TYPE = (b"content-type", b"application/json")


class GeoAPI(FastAPI):
    """FastAPI with the lookup fast path in front of everything (middleware, routing, dependencies).

    ``GET /v1/lookup`` is dispatch's hot path: FastAPI's stack costs about three times the lookup itself.
    Its common case (a plain query by a cached caller, a point whose cell gives its grid without the exact
    test, an answer cached for the caller's view) is answered by the compiled step
    :func:`geo.api._fastlookup.answer`, which returns None for every other request; then
    :func:`geo.api.routes.lookup.fast_answer` answers the plain successful case from the memory index and
    the per-process principal cache (same authentication and revocation rules, same body as the route),
    and the 404 of a point outside every grid (same body, same access-log line as :class:`RequestContext`);
    everything else — other errors, ``?at=``, first use of a token, CORS requests, ``GEO_ACCESS_LOG=all``
    — goes through the normal stack and the route. Every answer carries an ``X-Request-ID``.
    """

    _geo_fast = None  # (AppState, CORS on?, access-log mode, its principals, its index holder) once started

    async def __call__(self, scope, receive, send):
        fast = self._geo_fast
        if fast is not None:
            hit = _fastlookup.answer(scope, fast[1], fast[3], fast[4])
            if hit is not None:  # the common lookup, compiled (see lookup.fast_answer)
                await send({"type": "http.response.start", "status": 200, "headers": hit[0]})
                await send({"type": "http.response.body", "body": hit[1]})
                return
        if fast is not None and scope["type"] == "http" and scope["path"] == "/v1/lookup" \
                and scope["method"] == "GET":
            t0 = time.perf_counter()
            res = lookup.fast_answer(fast[0], scope, fast[1])
            if res is not None:
                out, rid = res
                if type(out) is bytes:
                    await send({"type": "http.response.start", "status": 200, "headers": [
                        (b"content-length", b"%d" % len(out)), _JSON_TYPE,
                        (b"x-request-id", rid or _new_request_id_bytes())]})
                    await send({"type": "http.response.body", "body": out})
                    return
                rid = rid.decode("latin-1") if rid else new_request_id()  # a 4xx the route would give: same body, same log line
                content = errors.body(out.code, out.message, out.details, **out.extra)
                content["request_id"] = rid
                await JSON(content, status_code=out.status, headers={"x-request-id": rid})(scope, receive, send)
                access_log(fast[2], rid, scope, out.status, t0)
                return
        await super().__call__(scope, receive, send)


def custom_openapi(app: FastAPI) -> dict:
    """OpenAPI with the two security schemes, required on every route that depends on ``require()``."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schema.setdefault("components", {})["securitySchemes"] = {
        "OAuth2Password": {"type": "oauth2", "flows": {"password": {"tokenUrl": "/v1/auth/token", "scopes": {}}}},
        "APIKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    for route in (r for router in ROUTERS for r in router.routes):
        deps = getattr(getattr(route, "dependant", None), "dependencies", [])
        if any(getattr(d.call, "__geo_secured__", False) for d in deps):
            for method in route.methods:
                op = schema["paths"].get(route.path_format, {}).get(method.lower())
                if op is not None:
                    op["security"] = [{"OAuth2Password": []}, {"APIKey": []}]
    from geo.api.response_models import document

    app.openapi_schema = document(schema)
    return app.openapi_schema


def create_app(settings: Settings | None = None, *, listen: bool = True, fast_lookup: bool = True) -> FastAPI:
    """Build the app.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to the environment's.
    listen : bool
        Start the LISTEN/NOTIFY thread that refreshes the lookup index.
    fast_lookup : bool
        Answer plain ``GET /v1/lookup`` before routing (:class:`GeoAPI`); off, the route answers all.
    """
    settings = settings or get_settings()
    secret = resolve_secret(settings)
    try:
        trusted = parse_networks(settings.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    from geo import logs

    logs.configure()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from geo.db.cluster import database_url
        from geo.db.session import get_engine, psycopg_dsn

        url = database_url(settings)
        engine = get_engine(url, pool_size=20)
        holder = IndexHolder(engine, psycopg_dsn(url))
        if listen:
            holder.start_listener()
        state = AppState(settings=settings, engine=engine, holder=holder, catalogue=get_catalogue(settings),
                         secret=secret, trusted_proxies=trusted,
                         limiter=LoginLimiter(engine, settings.login_rate_per_minute, settings.login_window_seconds,
                                              settings.login_backoff_seconds, settings.login_backoff_max_seconds),
                         passwords=PasswordChecker(settings.hash_concurrency))
        state.principals.start_listener(psycopg_dsn(url))  # principals are cached only while it listens
        app.state.geo = state
        if fast_lookup and settings.access_log != "all":
            app._geo_fast = (state, bool(origins), settings.access_log, state.principals, state.holder)
        yield
        app._geo_fast = None
        holder.stop()
        state.principals.stop()
        state.passwords.shutdown()

    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    app = GeoAPI(
        title="geo — grid division service (网格化管理)",
        version=geo.__version__,
        description="Point-in-grid lookup, grid plans, closed-loop events, grid workers and KPIs. "
                    "Log in with POST /v1/auth/token (OAuth2 password flow) or send X-API-Key.",
        default_response_class=JSON,
        lifespan=lifespan,
    )
    errors.install(app)
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "PATCH"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Key", "Idempotency-Key"])

    app.add_middleware(BodyLimit, default=settings.max_body_bytes, batch=settings.max_batch_body_bytes,
                       batch_paths=tuple(x.strip() for x in settings.batch_body_paths.split(",") if x.strip()))
    app.add_middleware(RequestContext, mode=settings.access_log)

    app.openapi = lambda: custom_openapi(app)
    for r in ROUTERS:
        app.include_router(r)
    return app
