"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from geo.api.core.responses import JSON
from sqlalchemy import text

from geo.api.deps import get_state

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz():
    return {"status": "ok"}


@router.get("/v1/ping", summary="Constant answer (the HTTP ceiling in benchmarks)", include_in_schema=False)
async def ping():
    return {"pong": True}


def _db_ok(state) -> str | None:
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 — any failure means not ready
        return str(exc).splitlines()[0]


@router.get("/readyz", summary="Database reachable and lookup index loaded")
async def readyz(request: Request):
    state = get_state(request)
    problem = await run_in_threadpool(_db_ok, state)
    idx = state.holder.index
    body = {"database": "ok" if problem is None else f"unavailable: {problem}",
            "grids_indexed": len(idx), "published_plans": list(idx.plan_ids)}
    return JSON(body, status_code=200 if problem is None else 503)
