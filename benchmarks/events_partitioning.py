"""Partitioning the events table by month (and by street within a month): what it buys and what it costs.

Builds three copies of the same synthetic events in a private embedded PostGIS — same columns that
the big screen and dispatch queries touch, same indexes as migration 0002:

* ``flat``        — one table (what ``geo`` ships today);
* ``by_month``    — ``PARTITION BY RANGE (created_at)``, one partition per month;
* ``month_street``— monthly partitions, each ``PARTITION BY LIST (street_id)`` (jurisdiction).

and times, median of ``--repeat`` runs, the queries behind the big screen (7-day KPIs for the district and
for one street, the 7-day H3 heatmap, the 30-day trend), a 12-month report, a single event by id, a batch
insert, and the monthly retention job (DELETE a month vs DROP its partition). Ratios are against ``flat``
measured in the same run on the same rows. Used for docs/scaling.md.

    python benchmarks/events_partitioning.py [--rows 5000000] [--months 24] [--streets 12] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.lookup import private_cluster  # noqa: E402

COLUMNS = """
    id bigint NOT NULL, jurisdiction_path text NOT NULL, street_id int NOT NULL, grid_code varchar(15) NOT NULL,
    category text NOT NULL, state varchar(16) NOT NULL, created_at timestamptz NOT NULL,
    dispatched_at timestamptz, resolved_at timestamptz, due_at timestamptz NOT NULL, satisfaction smallint,
    h3_9 bigint NOT NULL, geom geometry(Point, 4326) NOT NULL
"""
INDEXES = [  # as migration 0002 (the primary key of a partitioned table must include the partition keys)
    "CREATE INDEX ON {t} USING gist (geom)",
    "CREATE INDEX ON {t} (created_at)",
    "CREATE INDEX ON {t} (jurisdiction_path text_pattern_ops)",
    "CREATE INDEX ON {t} (grid_code)",
    "CREATE INDEX ON {t} (category, created_at) WHERE state NOT IN ('closed', 'rejected')",
]
FILL = """
INSERT INTO {t}
SELECT i, '1/2/' || s || '/' || (100 + s * 10 + c) || '/', s, lpad((s * 1000 + c * 50 + g)::text, 15, '0'),
       (ARRAY['人','房','企','部件','事件'])[1 + (i % 5)],
       CASE WHEN ts < :now - interval '3 days' THEN (ARRAY['closed','closed','closed','resolved','rejected'])[1 + (i % 5)]
            ELSE (ARRAY['reported','accepted','dispatched','in_progress','resolved'])[1 + (i % 5)] END,
       ts, ts + interval '1 hour', CASE WHEN i % 5 < 4 THEN ts + interval '20 hours' END, ts + interval '24 hours',
       CASE WHEN i % 5 < 3 THEN 1 + (i % 5) + (i % 2) END,
       600000000000000000 + (s * 1000 + c * 50 + g) * 7, ST_SetSRID(ST_MakePoint(114.2 + s * 0.01 + g * 1e-4,
                                                                           30.5 + c * 0.01 + g * 1e-4), 4326)
FROM (SELECT i, 1 + (i * 7919) % :streets AS s, (i * 104729) % 10 AS c, (i * 31) % 50 AS g,
             :start + (:span * ((i * 2654435761) % 1000003) / 1000003.0) * interval '1 second' AS ts
      FROM generate_series(CAST(1 AS bigint), :rows) AS i) x
"""
QUERIES = [
    ("KPIs, district, 7 days",
     "SELECT count(*), count(*) FILTER (WHERE dispatched_at IS NOT NULL), count(*) FILTER (WHERE resolved_at "
     "IS NOT NULL), avg(satisfaction), count(*) FILTER (WHERE state NOT IN ('resolved','closed','rejected') AND "
     "due_at < :now) FROM {t} e WHERE jurisdiction_path LIKE '1/2/%' AND created_at >= :now - interval '7 days' "
     "AND created_at < :now"),
    ("KPIs, one street, 7 days",
     "SELECT count(*), count(*) FILTER (WHERE resolved_at IS NOT NULL), avg(satisfaction) FROM {t} e "
     "WHERE street_id = 5 AND jurisdiction_path LIKE '1/2/5/%' AND created_at >= :now - interval '7 days' "
     "AND created_at < :now"),
    ("heatmap r9, 7 days",
     "SELECT h3_9, count(*) FROM {t} e WHERE jurisdiction_path LIKE '1/2/%' AND created_at >= :now - interval "
     "'7 days' AND created_at < :now GROUP BY 1"),
    ("trend, 30 days",
     "SELECT date_trunc('day', created_at), count(*), count(resolved_at) FROM {t} e WHERE jurisdiction_path "
     "LIKE '1/2/%' AND created_at >= :now - interval '30 days' AND created_at < :now GROUP BY 1"),
    ("report, 12 months by street",
     "SELECT street_id, date_trunc('month', created_at), count(*), avg(satisfaction) FROM {t} e "
     "WHERE created_at >= :now - interval '12 months' AND created_at < :now GROUP BY 1, 2"),
    ("one event by id", "SELECT * FROM {t} WHERE id = :id"),
]


def create(conn, kind: str, months: list[datetime], streets: int) -> None:
    from sqlalchemy import text

    t = kind
    if kind == "flat":
        conn.execute(text(f"CREATE TABLE {t} ({COLUMNS}, PRIMARY KEY (id))"))
    else:
        conn.execute(text(f"CREATE TABLE {t} ({COLUMNS}, PRIMARY KEY (id, created_at"
                          f"{', street_id' if kind == 'month_street' else ''})) PARTITION BY RANGE (created_at)"))
        for m0, m1 in zip(months, months[1:]):
            p = f"{t}_{m0:%Y%m}"
            sub = " PARTITION BY LIST (street_id)" if kind == "month_street" else ""
            conn.execute(text(f"CREATE TABLE {p} PARTITION OF {t} FOR VALUES FROM ('{m0.isoformat()}') "
                              f"TO ('{m1.isoformat()}'){sub}"))
            if kind == "month_street":
                for s in range(1, streets + 1):
                    conn.execute(text(f"CREATE TABLE {p}_s{s} PARTITION OF {p} FOR VALUES IN ({s})"))


def timed(conn, sql: str, params: dict, repeat: int) -> float:
    from sqlalchemy import text

    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        conn.execute(text(sql), params).all()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--streets", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    from sqlalchemy import text

    tmp = Path(tempfile.mkdtemp(prefix="geo-bench-partitioning-"))
    tmp.chmod(0o755)
    cluster = private_cluster(tmp)
    from geo.db.session import get_engine

    engine = get_engine()
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    first = (now.replace(day=1, hour=0) - timedelta(days=31 * (a.months - 1))).replace(day=1)
    months = [first]
    while months[-1] <= now:
        nxt = (months[-1] + timedelta(days=32)).replace(day=1)
        months.append(nxt)
    span = (now - first).total_seconds()
    kinds = ["flat", "by_month", "month_street"]
    rows: dict[str, dict[str, float]] = {k: {} for k in kinds}
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        for kind in kinds:
            with engine.begin() as conn:
                create(conn, kind, months, a.streets)
            t0 = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(text(FILL.format(t=kind)), {"now": now, "streets": a.streets, "start": first,
                                                         "span": span, "rows": a.rows})
                for ix in INDEXES:
                    conn.execute(text(ix.format(t=kind)))
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f"VACUUM ANALYZE {kind}"))
            rows[kind]["load + index (s)"] = time.perf_counter() - t0
            print(f"{kind}: {a.rows:,} rows loaded and indexed in {rows[kind]['load + index (s)']:.1f} s",
                  flush=True)
        params = {"now": now, "id": a.rows // 2}
        with engine.connect() as conn:
            for name, sql in QUERIES:
                for kind in kinds:  # warm each table once, then measure
                    timed(conn, sql.format(t=kind), params, 1)
                    rows[kind][name] = timed(conn, sql.format(t=kind), params, a.repeat)
        # a batch of 10,000 new events (as the API's bulk paths do), then the retention job for the oldest month
        for kind in kinds:
            with engine.begin() as conn:
                t0 = time.perf_counter()
                conn.execute(text(FILL.format(t=kind).replace("generate_series(CAST(1 AS bigint), :rows)",
                                                              "generate_series(CAST(:base AS bigint) + 1, :base + 10000)")
                                  .replace(":start + (:span *", ":now - interval '1 hour' + (3000 *")),
                             {"now": now, "streets": a.streets, "base": a.rows, "start": first, "span": span,
                              "rows": a.rows})
                rows[kind]["insert 10k events"] = (time.perf_counter() - t0) * 1000
            m0, m1 = months[0], months[1]
            with engine.begin() as conn:
                t0 = time.perf_counter()
                if kind == "flat":
                    conn.execute(text("DELETE FROM flat WHERE created_at >= :a AND created_at < :b"),
                                 {"a": m0, "b": m1})
                else:
                    p = f"{kind}_{m0:%Y%m}"
                    conn.execute(text(f"ALTER TABLE {kind} DETACH PARTITION {p}"))
                    conn.execute(text(f"DROP TABLE {p}"))
                rows[kind]["retire oldest month"] = (time.perf_counter() - t0) * 1000
    finally:
        engine.dispose()
        cluster.down()
        shutil.rmtree(tmp, ignore_errors=True)

    names = [n for n, _ in QUERIES] + ["insert 10k events", "retire oldest month"]
    print(f"\n{a.rows:,} events over {a.months} months, {a.streets} streets; median of {a.repeat}, ms "
          f"(ratio = flat / partitioned: above 1 the partitioned table is faster)\n")
    print(f"| {'query':30} | {'flat':>9} | {'by month':>9} | {'ratio':>6} | {'month×street':>12} | {'ratio':>6} |")
    print(f"|{'-' * 32}|{'-' * 11}|{'-' * 11}|{'-' * 8}|{'-' * 14}|{'-' * 8}|")
    print(f"| {'load + index (s)':30} | {rows['flat']['load + index (s)']:9.1f} | "
          f"{rows['by_month']['load + index (s)']:9.1f} | "
          f"{rows['flat']['load + index (s)'] / rows['by_month']['load + index (s)']:6.2f} | "
          f"{rows['month_street']['load + index (s)']:12.1f} | "
          f"{rows['flat']['load + index (s)'] / rows['month_street']['load + index (s)']:6.2f} |")
    for n in names:
        f, m, ms = rows["flat"][n], rows["by_month"][n], rows["month_street"][n]
        print(f"| {n:30} | {f:9.1f} | {m:9.1f} | {f / m:6.2f} | {ms:12.1f} | {f / ms:6.2f} |")


if __name__ == "__main__":
    main()
