"""The worker loop: procrastinate's worker plus the stalled-job reaper, in one asyncio program."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from geo.jobs import queue

log = logging.getLogger("geo.jobs")


async def _reaper(app, engine) -> None:
    while True:
        try:
            await queue.reap_stalled(app, engine)
        except Exception:  # noqa: BLE001 — a failed sweep is logged and tried again at the next tick
            log.exception("stalled-job sweep failed")
        await asyncio.sleep(queue.REAP_EVERY_S)


async def run(url: str, *, concurrency: int = 1, name: str = "geo-worker", wait: bool = True,
              queues: list[str] | None = None) -> None:
    """Run jobs from the queue on *url* until SIGINT/SIGTERM (or, with ``wait=False``, until it is empty).

    Parameters
    ----------
    url : SQLAlchemy URL of the project database (the queue lives there).
    concurrency : jobs run at once (each in a thread of this process).
    name : the worker's name in logs.
    wait : False to stop once no job is left (tests, one-off runs).
    queues : only these queues (``default``: partitions; ``hotline``: webhook deliveries); None: every queue.
    """
    from geo.db.session import get_engine

    app = queue.get_app(url)
    engine = get_engine(url)
    async with app.open_async():
        reaper = asyncio.create_task(_reaper(app, engine))
        try:
            await app.run_worker_async(concurrency=concurrency, name=name, wait=wait, queues=queues,
                                       update_heartbeat_interval=queue.HEARTBEAT_S,
                                       stalled_worker_timeout=queue.STALLED_S,
                                       fetch_job_polling_interval=2.0, abort_job_polling_interval=1.0,
                                       install_signal_handlers=True)
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
