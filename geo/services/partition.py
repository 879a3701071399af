"""Partition one jurisdiction, many in parallel (Dask), and publish a plan."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine


def summary(code: str, plan_id: int, report: dict) -> dict:
    """The one-line summary of a stored plan: grids, in-range share, compactness, seconds."""
    return {"jurisdiction": code, "plan_id": plan_id, "grids": report["n_grids"],
            "in_range": round(report["range"]["in_range_share"], 4),
            "pp_mean": round(report["compactness"]["polsby_popper_mean"], 3),
            "seconds": round(report["runtime_s"], 2)}


def partition_one(code: str, opts: dict, *, actor: str | None = None, url: str | None = None,
                  engine: Engine | None = None, progress: Callable[[str, float], None] | None = None) -> dict:
    """Partition one jurisdiction from what is loaded and store a draft plan.

    Parameters
    ----------
    code : 12-digit jurisdiction code.
    opts : keyword arguments of :func:`geo.db.partitioning.run_partition` (min_pop, max_pop, by, seed, stable,
        use_streets, population_dataset, streets_dataset).
    actor : who asks (default :func:`geo.db.session.cli_actor`).
    url, engine : the database (default: the configured one).
    progress : ``progress(stage, fraction)`` callback.

    Returns
    -------
    dict : :func:`summary` of the draft plan (``plan_id`` …); the full report is on the plan.
    """
    from geo.db.partitioning import run_partition
    from geo.db.session import cli_actor, get_engine

    plan_id, plan = run_partition(engine or get_engine(url), code, actor=actor or cli_actor(), progress=progress,
                                  **opts)
    return summary(code, plan_id, plan.report)


def _one_in_dask(code: str, opts: dict, actor: str, url: str) -> dict:
    return partition_one(code, opts, actor=actor, url=url)


def partition_many(codes: list[str], opts: dict, *, workers: int = 2, scheduler: str | None = None,
                   actor: str | None = None, url: str | None = None) -> list[dict]:
    """Partition several jurisdictions in parallel on a Dask cluster (local processes, or *scheduler*).

    Parameters
    ----------
    codes : jurisdiction codes.
    opts : as for :func:`partition_one`.
    workers : local worker processes when no *scheduler* is given.
    scheduler : address of a running Dask scheduler.

    Returns
    -------
    list of dict : a :func:`summary` per code, or ``{"jurisdiction": code, "error": message}``; one failure
    does not stop the others.
    """
    from dask.distributed import Client, LocalCluster

    from geo.db.cluster import database_url
    from geo.db.session import cli_actor

    url = url or database_url()
    actor = actor or cli_actor()
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        futures = {c: client.submit(_one_in_dask, c, dict(opts), actor, url, pure=False, key=f"partition-{c}")
                   for c in codes}
        out = []
        for c, f in futures.items():
            try:
                out.append(f.result())
            except Exception as exc:  # noqa: BLE001 — report per jurisdiction, keep the others
                out.append({"jurisdiction": c, "error": str(exc)})
        return out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def publish(plan_id: int, *, actor: str | None = None, engine: Engine | None = None,
            override_unstaffed: bool = False, reason: str | None = None) -> dict:
    """Publish a draft plan with the configured switch-in delay, staff carried to its grids.

    Raises :class:`geo.db.staffing.StaffingRefused` when grids would be left without a chief and no
    override with a reason is given, :class:`geo.db.plans.PlanError` when the plan cannot be published."""
    from geo.config import get_settings
    from geo.db.session import cli_actor, get_engine
    from geo.db.staffing import publish_staffed

    return publish_staffed(engine or get_engine(), plan_id, actor or cli_actor(), override_unstaffed=override_unstaffed,
                           reason=reason, switch_in=get_settings().publish_switch_seconds)
