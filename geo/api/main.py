"""The FastAPI application: ``create_app()``; ``geo serve`` runs it with uvicorn."""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from geo.api.core.responses import JSON

import geo
from geo.api import errors
from geo.api.core.config import DEMO_SECRET, get_catalogue
from geo.api.core.context import request_id
from geo.api.deps import AppState
from geo.api.routes import auth, events, health, jobs, lookup, open311, planner, plans, stats, workers
from geo.api.services.lookup_index import IndexHolder
from geo.config import Settings, get_settings

log = logging.getLogger("geo.api")


ROUTERS = (health.router, auth.router, lookup.router, plans.router, jobs.router, events.router, workers.router,
           stats.router, open311.router, planner.router)


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
        rid = rid or uuid.uuid4().hex[:16]
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
            ms = (time.perf_counter() - t0) * 1000
            if self.mode == "all" or (self.mode == "default" and (
                    scope.get("method") != "GET" or state["status"] >= 400 or ms > SLOW_MS)):
                log.info("request", extra={"request_id": rid, "method": scope.get("method"), "path": scope.get("path"),
                                           "status": state["status"], "ms": round(ms, 2)})


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
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings | None = None, *, listen: bool = True) -> FastAPI:
    """Build the app.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to the environment's.
    listen : bool
        Start the LISTEN/NOTIFY thread that refreshes the lookup index.
    """
    settings = settings or get_settings()
    secret = resolve_secret(settings)
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
        app.state.geo = AppState(settings=settings, engine=engine, holder=holder,
                                 catalogue=get_catalogue(settings), secret=secret)
        yield
        holder.stop()

    app = FastAPI(
        title="geo — grid division service (网格化管理)",
        version=geo.__version__,
        description="Point-in-grid lookup, grid plans, closed-loop events, grid workers and KPIs. "
                    "Log in with POST /v1/auth/token (OAuth2 password flow) or send X-API-Key.",
        default_response_class=JSON,
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(lookup.LookupFastPath)  # innermost: inside CORS and the request context
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "PATCH"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Key", "Idempotency-Key"])

    app.add_middleware(RequestContext, mode=settings.access_log)

    app.openapi = lambda: custom_openapi(app)
    for r in ROUTERS:
        app.include_router(r)
    return app
