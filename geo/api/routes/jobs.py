"""Partition jobs: a planner starts a partition of a jurisdiction and polls its progress.

The job runs in a background thread of the API process that accepted it (one
at a time per process); its state lives in ``partition_jobs`` so any API
process can answer ``GET /v1/jobs/{id}``. The result is a *draft* plan.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field, model_validator
from sqlalchemy import text

from geo.access import audit
from geo.api.core.security import Principal
from geo.api.deps import authorize, get_state, require
from geo.api.errors import APIError
from geo.api.schemas import Input

router = APIRouter(prefix="/v1", tags=["plans"])
log = logging.getLogger("geo.api.jobs")
_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geo-partition")


class PartitionIn(Input):

    min_pop: int = Field(1000, ge=1, le=100_000)
    max_pop: int = Field(2000, ge=1, le=200_000)
    by: Literal["people", "households"] = "people"
    seed: int = Field(0, ge=0, le=2**31 - 1)
    from_scratch: bool = Field(False, description="Ignore the published plan (no stable re-draw)")
    use_streets: bool = True
    population_dataset: str | None = None
    streets_dataset: str | None = None

    @model_validator(mode="after")
    def _range(self):
        if self.min_pop >= self.max_pop:
            raise ValueError("min_pop must be below max_pop")
        return self


def _job_json(r) -> dict:
    return {"id": r["id"], "state": r["state"], "progress": r["progress"], "stage": r["stage"],
            "plan_id": r["plan_id"], "error": r["error"], "params": r["params"], "created_by": r["created_by"],
            "created_at": r["created_at"].isoformat(),
            "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None}


def _run(engine, job_id: int, code: str, params: dict, actor: str) -> None:
    from geo.db.partitioning import run_partition

    def update(**kw):
        sets = ", ".join(f"{k} = :{k}" for k in kw)
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE partition_jobs SET {sets} WHERE id = :id"), kw | {"id": job_id})

    update(state="running", stage="reading inputs", progress=0.01)
    try:
        plan_id, _ = run_partition(
            engine, code, actor=actor, min_pop=params["min_pop"], max_pop=params["max_pop"], by=params["by"],
            seed=params["seed"], stable=not params["from_scratch"], use_streets=params["use_streets"],
            population_dataset=params["population_dataset"], streets_dataset=params["streets_dataset"],
            progress=lambda stage, frac: update(stage=stage, progress=round(min(max(frac, 0.0), 0.99), 3)))
        with engine.begin() as conn:
            conn.execute(text("UPDATE partition_jobs SET state = 'done', progress = 1, stage = 'done', plan_id = :p, "
                              "finished_at = now() WHERE id = :id"), {"p": plan_id, "id": job_id})
    except Exception as exc:  # noqa: BLE001 — the job reports any failure
        log.exception("partition job %s failed", job_id)
        with engine.begin() as conn:
            conn.execute(text("UPDATE partition_jobs SET state = 'failed', error = :e, finished_at = now() "
                              "WHERE id = :id"), {"e": f"{type(exc).__name__}: {exc}", "id": job_id})


@router.post("/jurisdictions/{code}/partition", status_code=202,
             summary="Start a partition of a jurisdiction (planner); poll GET /v1/jobs/{id}")
def start_partition(request: Request, code: str, body: PartitionIn, p: Principal = Depends(require("plan.write"))):
    st = get_state(request)
    with st.engine.connect() as conn:
        j = conn.execute(text("SELECT id, path FROM jurisdictions WHERE code = :c"), {"c": code}).first()
    if j is None:
        raise APIError(404, "not_found", f"jurisdiction {code!r} not found")
    authorize(st, p, "jurisdiction", j.path, entity_id=code, jurisdiction_id=j.id, write=True, action="plan.partition")
    params = body.model_dump()
    with st.engine.begin() as conn:
        job_id = conn.execute(text("""
            INSERT INTO partition_jobs (jurisdiction_id, params, created_by) VALUES (:j, CAST(:p AS jsonb), :a)
            RETURNING id
        """), {"j": j.id, "p": json.dumps(params), "a": p.actor}).scalar_one()
        audit.record(conn, p, "plan.partition", "partition_jobs", job_id, jurisdiction_id=j.id, detail=params)
    _pool.submit(_run, st.engine, job_id, code, params, p.actor)
    return {"job_id": job_id, "state": "queued"}


@router.get("/jobs/{job_id}", summary="State and progress of a partition job")
def get_job(request: Request, job_id: int, p: Principal = Depends(require("read"))):
    st = get_state(request)
    with st.engine.connect() as conn:
        r = conn.execute(text("""
            SELECT pj.*, j.path FROM partition_jobs pj JOIN jurisdictions j ON j.id = pj.jurisdiction_id
            WHERE pj.id = :id
        """), {"id": job_id}).mappings().first()
    if r is None:
        raise APIError(404, "not_found", f"job {job_id} not found")
    authorize(st, p, "job", r["path"], entity_id=job_id, jurisdiction_id=r["jurisdiction_id"])
    return _job_json(r)
