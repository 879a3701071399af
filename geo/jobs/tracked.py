"""Bookkeeping every queued job needs, on the job's own table (``partition_jobs`` today; an import, export or
PDF job adds a table with the same columns and registers it in :data:`JOB_TABLES`).

Columns used: ``state`` (queued → running → done | failed | cancelled), ``progress`` (0…1), ``stage``,
``error``, ``attempts``, ``started_at``, ``finished_at``, ``queue_job_id`` (procrastinate's id).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text

log = logging.getLogger("geo.jobs")

#: task name (as deferred, ``geo:<name>``) → the table holding its state and progress
JOB_TABLES = {"geo:partition": "partition_jobs"}
FINAL = ("done", "failed", "cancelled")


class Cancelled(Exception):
    """The job was cancelled while running (raised from a progress callback)."""


class Tracker:
    """State and progress of one job row, written as the task runs.

    Parameters
    ----------
    engine : engine on the project database.
    table : the job table (a value of :data:`JOB_TABLES`).
    job_id : the row's id.
    should_abort : returns True once a cancel was requested (procrastinate's ``context.should_abort``).
    """

    def __init__(self, engine: Engine, table: str, job_id: int, should_abort: Callable[[], bool] = lambda: False):
        if table not in JOB_TABLES.values():
            raise ValueError(f"unknown job table {table!r}")
        self.engine, self.table, self.job_id, self.should_abort = engine, table, job_id, should_abort

    def update(self, **values: Any) -> None:
        """Set columns of the row (names are the fixed column names above, never user input)."""
        sets = ", ".join(f"{k} = :{k}" for k in values)
        with self.engine.begin() as conn:
            conn.execute(text(f"UPDATE {self.table} SET {sets} WHERE id = :id"), values | {"id": self.job_id})

    def row(self) -> dict:
        with self.engine.connect() as conn:
            return dict(conn.execute(text(f"SELECT * FROM {self.table} WHERE id = :id"),
                                     {"id": self.job_id}).mappings().one())

    def start(self, attempt: int) -> dict:
        """Mark the row running (attempt *attempt*) and return it; raise :class:`Cancelled` if cancelled before."""
        r = self.row()
        if r["state"] == "cancelled" or self.should_abort():
            raise Cancelled()
        with self.engine.begin() as conn:
            conn.execute(text(f"UPDATE {self.table} SET state = 'running', stage = 'started', progress = 0.01, "
                              f"attempts = :a, started_at = now(), error = NULL WHERE id = :id"),
                         {"a": attempt, "id": self.job_id})
        return r

    def progress(self, stage: str, fraction: float) -> None:
        """Store a stage and its progress (kept below 1 until done); raise :class:`Cancelled` when asked to stop."""
        if self.should_abort():
            raise Cancelled()
        self.update(stage=stage, progress=round(min(max(fraction, 0.0), 0.99), 3))

    def finish(self, state: str, error: str | None = None, **values: Any) -> None:
        """Final state: done (progress 1), failed (with the error) or cancelled."""
        assert state in FINAL
        extra = {"progress": 1.0, "stage": "done"} if state == "done" else {}
        self.update(state=state, error=error, **extra, **values)
        with self.engine.begin() as conn:
            conn.execute(text(f"UPDATE {self.table} SET finished_at = now() WHERE id = :id"), {"id": self.job_id})


def on_worker_lost(engine: Engine, task_name: str, task_kwargs: dict, *, attempts: int, outcome: str) -> None:
    """Record on the job's row that its worker died: queued again for a retry, or failed for good."""
    table = JOB_TABLES.get(task_name)
    if table is None or "job_id" not in task_kwargs:
        return
    t = Tracker(engine, table, int(task_kwargs["job_id"]))
    if outcome == "retried":
        t.update(state="queued", stage=f"worker lost during attempt {attempts}; queued again")
    else:
        t.finish("failed", error=f"worker lost during attempt {attempts} (no heartbeat for a while); not retried "
                                 f"again")
