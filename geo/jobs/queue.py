"""The procrastinate app on the project's PostgreSQL: schema, defer, cancel and the stalled-job reaper.

Jobs live in procrastinate's own tables (``procrastinate_jobs`` …) in the same database, so they survive API
and worker restarts. Workers send a heartbeat every :data:`HEARTBEAT_S` seconds; a job whose worker has not
been heard of for :data:`STALLED_S` seconds is *stalled* and :func:`reap_stalled` (run by every worker at start
and every :data:`REAP_EVERY_S` seconds) retries it up to :data:`MAX_ATTEMPTS` times, then marks it failed.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from procrastinate import App, PsycopgConnector
from procrastinate.jobs import Status
from sqlalchemy import Engine, text

log = logging.getLogger("geo.jobs")

HEARTBEAT_S = 5.0
STALLED_S = 20.0
REAP_EVERY_S = 10.0
MAX_ATTEMPTS = 2  # a job is tried at most twice when its worker dies; a task error is not retried

_APPS: dict[str, App] = {}


def conninfo(url: str) -> str:
    """A libpq connection string from a SQLAlchemy URL (``postgresql+psycopg://`` → ``postgresql://``)."""
    from geo.db.session import psycopg_dsn

    return psycopg_dsn(url)


def get_app(url: str | None = None) -> App:
    """The procrastinate :class:`App` for *url* (default: the configured database), with geo's tasks.

    Parameters
    ----------
    url : SQLAlchemy database URL; default :func:`geo.db.cluster.database_url`.

    Returns
    -------
    App : not opened; use ``with app.open():`` for synchronous calls or ``async with app.open_async():``.
    """
    if url is None:
        from geo.db.cluster import database_url

        url = database_url()
    if url not in _APPS:
        from geo.jobs.tasks import blueprint

        app = App(connector=PsycopgConnector(conninfo=conninfo(url), min_size=1, max_size=4))
        app.add_tasks_from(blueprint, namespace="geo")
        _APPS[url] = app
    return _APPS[url]


def schema_applied(engine: Engine) -> bool:
    """Whether procrastinate's tables exist in the database of *engine*."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")).scalar_one()


def ensure_schema(url: str) -> bool:
    """Apply procrastinate's schema once (``geo db up`` / ``geo db migrate`` call it after Alembic).

    Parameters
    ----------
    url : SQLAlchemy URL of the database.

    Returns
    -------
    bool : True when the schema was applied now, False when it was already there.
    """
    from sqlalchemy import create_engine, pool

    eng = create_engine(url, poolclass=pool.NullPool)
    try:
        if schema_applied(eng):
            return False
        from procrastinate import SyncPsycopgConnector

        app = App(connector=SyncPsycopgConnector(conninfo=conninfo(url)))
        with app.open():
            app.schema_manager.apply_schema()
        log.info("procrastinate schema applied")
        return True
    finally:
        eng.dispose()


def drop_schema(engine: Engine) -> None:
    """Remove procrastinate's tables, functions and types (used when the whole schema goes down to base)."""
    with engine.begin() as conn:
        conn.execute(text("""
            DO $$ DECLARE r record; BEGIN
              FOR r IN SELECT oid::regprocedure AS f FROM pg_proc WHERE proname LIKE 'procrastinate%' LOOP
                EXECUTE 'DROP FUNCTION IF EXISTS ' || r.f || ' CASCADE'; END LOOP;
              FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'procrastinate%'
              LOOP EXECUTE 'DROP TABLE IF EXISTS ' || quote_ident(r.tablename) || ' CASCADE'; END LOOP;
              FOR r IN SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                       WHERE n.nspname = 'public' AND typname LIKE 'procrastinate%' AND typtype IN ('e', 'c') LOOP
                EXECUTE 'DROP TYPE IF EXISTS ' || quote_ident(r.typname) || ' CASCADE'; END LOOP;
            END $$"""))


_OPENED: set[int] = set()
_OPEN_LOCK = threading.Lock()


def _sync_app(url: str | None) -> App:
    """The app opened for synchronous use once per process (the API defers and cancels through it)."""
    app = get_app(url)
    with _OPEN_LOCK:
        if id(app) not in _OPENED:
            app.open()
            _OPENED.add(id(app))
    return app


def close_apps() -> None:
    """Close the apps opened for synchronous use and forget every app (after the queue's schema was dropped and
    applied again, e.g. a migration test going down to base: an open connection keeps the old types' ids)."""
    with _OPEN_LOCK:
        for app in _APPS.values():
            if id(app) in _OPENED:
                try:
                    app.close()
                except Exception:  # noqa: BLE001 — closing a dead pool is fine
                    log.debug("closing a procrastinate app failed", exc_info=True)
        _OPENED.clear()
        _APPS.clear()


def defer(task_name: str, url: str | None = None, **kwargs: Any) -> int:
    """Put a job for task ``geo:<task_name>`` on the queue.

    Parameters
    ----------
    task_name : name in :data:`geo.jobs.tasks.blueprint` (e.g. ``"partition"``).
    kwargs : the task's JSON-serialisable arguments.

    Returns
    -------
    int : procrastinate's job id.
    """
    return _sync_app(url).configure_task(f"geo:{task_name}").defer(**kwargs)


def defer_in(conn, task_name: str, *, lock: str | None = None, queue_name: str = "default", **kwargs: Any) -> int:
    """Put a job for ``geo:<task_name>`` on the queue *inside the caller's transaction* (SQLAlchemy connection):
    it exists, and a worker can take it, only once that transaction commits, and it disappears with a rollback.

    This calls procrastinate's own ``procrastinate_defer_jobs_v1`` (what ``defer()`` runs, pinned by the
    ``procrastinate<4`` requirement), since procrastinate's connectors cannot join a SQLAlchemy transaction.

    Parameters
    ----------
    lock : procrastinate lock: jobs with the same lock run one at a time, in the order they were deferred (a
        job waiting for its retry holds the later ones back).
    kwargs : the task's JSON-serialisable arguments.

    Returns
    -------
    int : procrastinate's job id.
    """
    import json

    from sqlalchemy import text as sql

    return conn.execute(sql("""
        SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[
            ROW(:queue, :task, 0, :lock, NULL, CAST(:args AS jsonb), NULL)::procrastinate_job_to_defer_v1]))
    """), {"queue": queue_name, "task": f"geo:{task_name}", "lock": lock, "args": json.dumps(kwargs)}).scalar_one()


def cancel(queue_job_id: int, url: str | None = None) -> bool:
    """Cancel a queued job, or ask its worker to abort a running one.

    Returns
    -------
    bool : False when the job is already finished (nothing to cancel).
    """
    return _sync_app(url).job_manager.cancel_job_by_id(queue_job_id, abort=True)


async def reap_stalled(app: App, engine: Engine) -> list[tuple[int, str]]:
    """Retry (or, after :data:`MAX_ATTEMPTS`, fail) jobs whose worker stopped sending heartbeats.

    Parameters
    ----------
    app : an opened procrastinate app.
    engine : engine on the same database (to update the job's own table, see :mod:`geo.jobs.tracked`).

    Returns
    -------
    list of (procrastinate job id, "retried" | "failed").
    """
    from geo.jobs.tracked import on_worker_lost

    await app.job_manager.prune_stalled_workers(STALLED_S)
    out = []
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_S):
        tried = job.attempts + 1  # procrastinate counts finished tries; this one died
        if tried < MAX_ATTEMPTS:
            await app.job_manager.retry_job_by_id_async(job.id, retry_at=_now())
            outcome = "retried"
        else:
            await app.job_manager.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=False)
            outcome = "failed"
        on_worker_lost(engine, job.task_name, job.task_kwargs, attempts=tried, outcome=outcome)
        log.warning("job %s (%s) lost its worker after %s attempt(s): %s", job.id, job.task_name, tried,
                    outcome)
        out.append((job.id, outcome))
    return out


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def status(queue_job_id: int, url: str | None = None) -> str:
    """procrastinate's status of a job: todo, doing, succeeded, failed, cancelled or aborted."""
    return _sync_app(url).job_manager.get_job_status(queue_job_id).value
