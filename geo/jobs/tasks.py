"""The tasks ``geo worker`` runs. Each task takes the id of its row in a job table (:mod:`geo.jobs.tracked`)
and reads its parameters from there, so the queue carries no copy of them. The periodic
``events_partitions`` task (hourly) is the exception: it has no job row, only procrastinate's.

``hotline_deliver`` takes the id of a ``hotline_deliveries`` row instead (:mod:`geo.jobs.hotline`).

Adding a job kind (import, export, PDF): a table with the tracked columns, an entry in
:data:`geo.jobs.tracked.JOB_TABLES`, and a ``@blueprint.task`` here that runs a service function with a
:class:`~geo.jobs.tracked.Tracker`'s ``progress`` callback.
"""

from __future__ import annotations

import logging

from procrastinate import Blueprint, JobContext
from procrastinate.exceptions import JobAborted
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from geo.jobs.tracked import Cancelled, Tracker

log = logging.getLogger("geo.jobs")
blueprint = Blueprint()


def _engine():
    from geo.db.session import get_engine

    return get_engine()


@blueprint.task(name="partition", pass_context=True)
def partition(context: JobContext, job_id: int) -> int | None:
    """Run the partition of ``partition_jobs`` row *job_id* and store its draft plan.

    Parameters
    ----------
    context : procrastinate's job context (attempt count, abort requests).
    job_id : id in ``partition_jobs``.

    Returns
    -------
    int | None : the draft plan's id (None when cancelled).
    """
    from sqlalchemy import text

    from geo.services.partition import partition_one

    engine = _engine()
    t = Tracker(engine, "partition_jobs", job_id, should_abort=context.should_abort)
    try:
        row = t.start(attempt=(context.job.attempts or 0) + 1)
        with engine.connect() as conn:
            code = conn.execute(text("SELECT code FROM jurisdictions WHERE id = :j"),
                                {"j": row["jurisdiction_id"]}).scalar_one()
        p = row["params"]
        summary = partition_one(
            code, dict(min_pop=p["min_pop"], max_pop=p["max_pop"], by=p["by"], seed=p["seed"],
                       stable=not p["from_scratch"], use_streets=p["use_streets"],
                       population_dataset=p["population_dataset"], streets_dataset=p["streets_dataset"]),
            actor=row["created_by"], progress=t.progress, engine=engine)
    except Cancelled:
        t.finish("cancelled", stage="cancelled")
        raise JobAborted() from None
    except Exception as exc:  # noqa: BLE001 — the job row reports any failure, the queue marks it failed
        log.exception("partition job %s failed", job_id)
        t.finish("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    t.finish("done", plan_id=summary["plan_id"])
    return summary["plan_id"]


@blueprint.periodic(cron="7 * * * *", periodic_id="hourly")
@blueprint.task(name="events_partitions", queueing_lock="events_partitions")
def events_partitions(timestamp: int) -> dict:
    """Hourly: keep the events table's months made ahead, apply the retention, report rows in DEFAULT.

    Parameters
    ----------
    timestamp : the scheduled time (procrastinate's periodic argument; unused).

    Returns
    -------
    dict : :meth:`geo.db.event_partitions.Report.as_dict` (also logged by the maintenance itself).
    """
    from geo.config import get_settings
    from geo.db import event_partitions

    s = get_settings()
    return event_partitions.maintain(_engine(), premake=s.events_premake_months,
                                     retention_months=s.events_retention_months).as_dict()


class _HotlineRetry(BaseRetryStrategy):
    """Retry a webhook delivery when, and as late as, :func:`geo.jobs.hotline.deliver` says (its row counts
    the attempts; procrastinate keeps the job, so a later change of the same order keeps waiting behind it).
    Any other error (the database away for a moment) is retried on the same schedule, counted by the job."""

    def get_retry_decision(self, *, exception: BaseException, job) -> RetryDecision | None:
        from geo.jobs.hotline import DeliveryFailed, Policy

        if isinstance(exception, DeliveryFailed):
            return None if exception.retry_in is None else RetryDecision(retry_in={"seconds": exception.retry_in})
        policy = Policy.from_settings()
        tried = (job.attempts or 0) + 1
        if tried >= policy.max_attempts:
            return None
        log.warning("hotline delivery job %s: %s: %s; retried", job.id, type(exception).__name__, exception)
        return RetryDecision(retry_in={"seconds": policy.wait_after(tried)})


@blueprint.task(name="hotline_deliver", retry=_HotlineRetry())
def hotline_deliver(delivery_id: int) -> str:
    """POST one status change of a 12345 work order to its hotline's webhook (see :mod:`geo.jobs.hotline`).

    Parameters
    ----------
    delivery_id : id in ``hotline_deliveries``.

    Returns
    -------
    str : the delivery's state (``delivered``, ``cancelled`` …); a failed attempt raises for a retry.
    """
    from geo.jobs.hotline import deliver

    return deliver(_engine(), delivery_id)
