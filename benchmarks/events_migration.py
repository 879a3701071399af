"""Migration 0009 (events partitioned by month) on a filled table, and what its triggers cost on insert.

In a private embedded PostGIS: the schema at 0008, ``--rows`` synthetic events spread over ``--months`` months
with two transitions each and a 12345 work order for one in ten, then

* ``alembic upgrade 0009`` and ``downgrade 0008`` (and up again), wall seconds — ``events`` is locked meanwhile;
* on the partitioned table, median of ``--repeat`` batches of ``--batch`` rows, ms:
  transitions inserted with ``event_id`` alone (the BEFORE trigger looks ``event_created_at`` up across every
  month) vs with ``event_created_at`` given (no lookup); events inserted with an ``Idempotency-Key`` (the AFTER
  trigger files it in ``event_idempotency_keys``) vs without.

    python benchmarks/events_migration.py [--rows 1000000] [--months 24] [--batch 10000] [--repeat 5]
                                          [--plan-cache-mode force_custom_plan]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.lookup import private_cluster  # noqa: E402

EVENTS = """
INSERT INTO events (idempotency_key, category, subtype, priority, source, state, h3_7, h3_8, h3_9, h3_10,
                    created_at, created_by, due_at, geom)
SELECT CASE WHEN i % 3 = 0 THEN CAST(:tag AS text) || i END, 'incident', 'noise', 'normal', 'patrol', 'closed', 0, 0, 0, 0,
       ts, 'bench', ts + interval '1 day', ST_SetSRID(ST_MakePoint(114.2 + (i % 97) * 1e-3, 30.5 + (i % 89) * 1e-3), 4326)
FROM (SELECT i, now() - (:span * ((i * 2654435761) % 1000003) / 1000003.0) * interval '1 second' AS ts
      FROM generate_series(CAST(:first AS bigint), :last) AS i) x
"""


def inserts(engine, a) -> dict[str, float]:
    """Median ms of batches of inserts (each rolled back), on whatever schema the database is at."""
    from sqlalchemy import text

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("ANALYZE"))  # a migration leaves fresh tables without statistics
        partitioned = c.execute(text("SELECT relkind = 'p' FROM pg_class WHERE relname = 'events'")).scalar()
    ids = list(range(1, a.rows + 1, max(1, a.rows // a.batch)))[: a.batch]

    def batch(sql: str, params: dict) -> float:
        ts = []
        for _ in range(a.repeat):
            with engine.connect() as c:
                tx = c.begin()
                if a.plan_cache_mode:
                    c.execute(text("SELECT set_config('plan_cache_mode', :m, true)"), {"m": a.plan_cache_mode})
                t0 = time.perf_counter()
                c.execute(text(sql), params)
                ts.append((time.perf_counter() - t0) * 1000)
                tx.rollback()
        return statistics.median(ts)

    out = {"transitions by event_id": batch(
        "INSERT INTO event_transitions (event_id, to_state, actor) SELECT i, 'x', 'b' FROM unnest(CAST(:ids AS "
        "bigint[])) i", {"ids": ids})}
    if partitioned:
        out["transitions with event_created_at"] = batch(
            "INSERT INTO event_transitions (event_id, event_created_at, to_state, actor) SELECT id, created_at, 'x', "
            "'b' FROM events WHERE id = ANY(CAST(:ids AS bigint[]))", {"ids": ids})
    out["reading those events by id"] = batch("SELECT id, created_at FROM events WHERE id = ANY(CAST(:ids AS bigint[]))",
                                              {"ids": ids})
    first = a.rows * 10
    keyed = EVENTS.replace("CASE WHEN i % 3 = 0 THEN CAST(:tag AS text) || i END", "CAST(:tag AS text) || i")
    plain = EVENTS.replace("CASE WHEN i % 3 = 0 THEN CAST(:tag AS text) || i END", "NULL")
    p = {"tag": "n", "span": 86400, "first": first, "last": first + a.batch - 1}
    out["events with Idempotency-Key"] = batch(keyed, p)
    out["events without"] = batch(plain, p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--plan-cache-mode", default="", choices=["", "auto", "force_custom_plan", "force_generic_plan"],
                    help="plan_cache_mode for the insert batches (the foreign-key checks are cached plans)")
    a = ap.parse_args()
    from sqlalchemy import text

    tmp = Path(tempfile.mkdtemp(prefix="geo-bench-evmig-"))
    tmp.chmod(0o755)
    cluster = private_cluster(tmp)
    from geo.db import migrate
    from geo.db.session import dispose_engines, get_engine

    url = cluster.url()
    span = a.months * 30.4 * 86400
    out: dict[str, float] = {}
    try:
        migrate.upgrade(url, "0008")
        engine = get_engine(url)
        t0 = time.perf_counter()
        with engine.begin() as c:
            c.execute(text(EVENTS), {"tag": "k", "span": span, "first": 1, "last": a.rows})
            c.execute(text("INSERT INTO event_transitions (event_id, to_state, actor, at) "
                           "SELECT id, s, 'bench', created_at FROM events, (VALUES ('reported'), ('closed')) v(s)"))
            c.execute(text("""
                INSERT INTO work_orders (order_no, request_hash, called_at, appeal_type, category, subtype, content,
                                         event_id, jurisdiction_path, created_by, geom)
                SELECT 'WO' || id, 'h', created_at, '投诉', category, subtype, '-', id, '/', 'bench', geom
                FROM events WHERE id % 10 = 0"""))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))
        print(f"{a.rows:,} events over {a.months} months (+ {2 * a.rows:,} transitions, {a.rows // 10:,} work "
              f"orders) loaded in {time.perf_counter() - t0:.1f} s", flush=True)
        dispose_engines()
        for step, fn in (("upgrade 0008 → 0009 (s)", lambda: migrate.upgrade(url, "0009")),
                         ("downgrade 0009 → 0008 (s)", lambda: migrate.downgrade(url, "0008")),
                         ("upgrade again (s)", lambda: migrate.upgrade(url, "0009"))):
            t0 = time.perf_counter()
            fn()
            out[step] = time.perf_counter() - t0
            print(f"{step}: {out[step]:.1f}", flush=True)
        engine = get_engine(url)
        with engine.connect() as c:
            parts = c.execute(text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass")).scalar()
        after = inserts(engine, a)
        dispose_engines()
        migrate.downgrade(url, "0008")
        before = inserts(get_engine(url), a)
    finally:
        dispose_engines()
        cluster.down()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{a.rows:,} events over {a.months} months, {parts} partitions after 0009 (with DEFAULT); inserts: "
          f"median of {a.repeat} batches of {a.batch:,} rows (each rolled back), ms; ratio = partitioned ÷ flat\n")
    print(f"| {'step':40} | {'flat (0008)':>11} | {'by month (0009)':>15} | {'ratio':>6} |")
    print(f"|{'-' * 42}|{'-' * 12}:|{'-' * 16}:|{'-' * 7}:|")
    for k, v in out.items():
        print(f"| {k:40} | {'—':>11} | {v:15.1f} | {'—':>6} |")
    for k, v in after.items():
        f = before.get(k)
        name = k if k.startswith("reading") else "insert: " + k
        print(f"| {name:40} | {f'{f:.1f}' if f is not None else '— (no such column)':>11} | {v:15.1f} | "
              f"{f'{v / f:.2f}' if f else '—':>6} |")


if __name__ == "__main__":
    main()
