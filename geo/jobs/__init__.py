"""Background jobs on a real queue: `procrastinate <https://procrastinate.readthedocs.io>`_ on the project's
PostgreSQL, run by ``geo worker`` processes (never by the API).

:mod:`geo.jobs.queue` — the procrastinate app, its schema, deferring/cancelling and the stalled-job reaper;
:mod:`geo.jobs.tracked` — the generic bookkeeping a job table needs (state, progress, stage, error, cancel);
:mod:`geo.jobs.tasks` — the tasks themselves (partition; later import/export/PDF use the same pattern).
"""
