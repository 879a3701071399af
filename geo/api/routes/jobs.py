"""Partition jobs: a planner starts a partition of a jurisdiction, polls its progress, may cancel it.

The API only records the job (``partition_jobs``) and puts it on the procrastinate queue; a separate
``geo worker`` process runs it (:mod:`geo.jobs.tasks`), so a partition never competes with lookups in an API
process and survives API restarts. The result is a *draft* plan.
"""

from __future__ import annotations

import json
import logging
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
            "attempts": r["attempts"], "cancelled_by": r["cancelled_by"],
            "created_at": r["created_at"].isoformat(),
            "started_at": r["started_at"].isoformat() if r["started_at"] else None,
            "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None}


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
    from geo.jobs import queue

    try:
        qid = queue.defer("partition", str(st.engine.url.render_as_string(hide_password=False)), job_id=job_id)
    except Exception as exc:  # noqa: BLE001 — the queue is down: say so, leave no job that never runs
        log.exception("could not queue partition job %s", job_id)
        with st.engine.begin() as conn:
            conn.execute(text("UPDATE partition_jobs SET state = 'failed', error = :e, finished_at = now() "
                              "WHERE id = :id"), {"e": f"could not queue: {type(exc).__name__}", "id": job_id})
        raise APIError(503, "queue_unavailable", "the job queue is unavailable; try again later") from exc
    with st.engine.begin() as conn:
        conn.execute(text("UPDATE partition_jobs SET queue_job_id = :q WHERE id = :id"), {"q": qid, "id": job_id})
    return {"job_id": job_id, "state": "queued"}


def _load(st, job_id: int):
    with st.engine.connect() as conn:
        r = conn.execute(text("""
            SELECT pj.*, j.path FROM partition_jobs pj JOIN jurisdictions j ON j.id = pj.jurisdiction_id
            WHERE pj.id = :id
        """), {"id": job_id}).mappings().first()
    if r is None:
        raise APIError(404, "not_found", f"job {job_id} not found")
    return r


@router.get("/jobs/{job_id}", summary="State and progress of a partition job")
def get_job(request: Request, job_id: int, p: Principal = Depends(require("read"))):
    st = get_state(request)
    r = _load(st, job_id)
    authorize(st, p, "job", r["path"], entity_id=job_id, jurisdiction_id=r["jurisdiction_id"])
    return _job_json(r)


@router.post("/jobs/{job_id}/cancel", summary="Cancel a queued partition job, or stop a running one (planner)")
def cancel_job(request: Request, job_id: int, p: Principal = Depends(require("plan.write"))):
    """A queued job is cancelled at once; a running one stops at its next progress step (state ``cancelled``).

    A finished job cannot be cancelled (409)."""
    from geo.jobs import queue

    st = get_state(request)
    r = _load(st, job_id)
    authorize(st, p, "job", r["path"], entity_id=job_id, jurisdiction_id=r["jurisdiction_id"], write=True)
    if r["state"] in ("done", "failed", "cancelled"):
        raise APIError(409, "conflict", f"job {job_id} is already {r['state']}")
    url = str(st.engine.url.render_as_string(hide_password=False))
    stopped = queue.cancel(r["queue_job_id"], url) if r["queue_job_id"] else False
    status = queue.status(r["queue_job_id"], url) if r["queue_job_id"] else None
    with st.engine.begin() as conn:
        if status in ("cancelled", None):  # it had not started: cancelled for good
            conn.execute(text("UPDATE partition_jobs SET state = 'cancelled', stage = 'cancelled', cancelled_by = :a, "
                              "finished_at = now() WHERE id = :id AND state NOT IN ('done', 'failed')"),
                         {"a": p.actor, "id": job_id})
        elif status == "doing":  # its worker stops it at the next progress step and marks it cancelled
            conn.execute(text("UPDATE partition_jobs SET cancelled_by = :a, stage = 'cancel requested' "
                              "WHERE id = :id"), {"a": p.actor, "id": job_id})
        audit.record(conn, p, "plan.partition.cancel", "partition_jobs", job_id, jurisdiction_id=r["jurisdiction_id"],
                     detail={"queue_status": status, "requested": stopped})
    return _job_json(_load(st, job_id))
