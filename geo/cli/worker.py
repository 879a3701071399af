"""``geo worker``: run queued jobs (partitions today; imports, exports and PDFs later) off the API's process."""

from __future__ import annotations

import typer

from geo.cli._app import app, console, fail as _fail


@app.command("worker")
def worker(
    concurrency: int = typer.Option(1, min=1, max=64, help="Jobs run at the same time by this process (threads; the engine is CPU-bound, so for more parallel partitions run more worker processes)."),
    name: str = typer.Option(None, help="Worker name in logs and the queue (default: geo-worker-<pid>)."),
    queue: list[str] = typer.Option(None, "--queue", help="Only jobs of this queue (repeatable): 'default' "
                                    "(partitions) or 'hotline' (12345 webhook deliveries). Default: every queue."),
) -> None:
    """Run queued jobs until stopped (Ctrl-C / SIGTERM: stops after the running job).

    Sends a heartbeat every few seconds; every worker retries (or, after a second loss, fails) the jobs of
    workers that stopped sending one, so a job whose worker was killed does not stay "running"."""
    import asyncio
    import os

    from geo.db.cluster import ClusterError, database_url
    from geo.logs import configure

    configure()
    try:
        url = database_url()
    except ClusterError as exc:
        _fail(str(exc), 2)
    from geo.jobs.worker import run

    name = name or f"geo-worker-{os.getpid()}"
    console.print(f"{name}: waiting for jobs (concurrency {concurrency}"
                  + (f", queues {', '.join(queue)})" if queue else ")"))
    asyncio.run(run(url, concurrency=concurrency, name=name, queues=queue or None))
