"""Monthly partitions of ``events`` (migration 0009): keep months made ahead, retire old ones, report DEFAULT.

pg_partman (extension schema ``partman``) owns the partition set ``public.events``: children
``events_pYYYY_MM`` for Beijing-time months plus ``events_default``. :func:`maintain` is what ``geo db migrate``
and the worker's hourly ``geo:events_partitions`` task run:

* pg_partman's ``run_maintenance`` makes the months up to ``premake`` ahead of now (``GEO_EVENTS_PREMAKE_MONTHS``);
* with ``GEO_EVENTS_RETENTION_MONTHS`` > 0, months that ended more than that many months ago are retired:
  their events (and the work orders, transitions and 督办 rows that point at them) are deleted, then the
  empty partition is dropped. pg_partman's own retention is not used: it detaches partitions that other tables
  still reference, which PostgreSQL refuses;
* rows in ``events_default`` (an event whose month has no partition: older than the first month, e.g. 12345
  orders imported from before the installation) are counted and logged — they are served correctly, only
  without partition pruning; :func:`move_default` moves them into months of their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, text

log = logging.getLogger("geo.db.partitions")

PARTMAN = "partman"
PARENT = "public.events"
DEFAULT = "events_default"
#: months are cut in this zone (China has one); migration 0009 freezes the same value
PARTITION_TZ = "Asia/Shanghai"
#: tables that reference events, with the column pair (event_id, event_created_at)
REFERENCING = ("work_orders", "event_transitions", "event_supervisions")
_LOCK = "geo events partitions"


@dataclass
class Report:
    """What one maintenance run did and found."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    deleted_events: int = 0
    default_rows: int = 0
    partitions: int = 0
    covered_until: datetime | None = None

    def as_dict(self) -> dict:
        return {"created": self.created, "dropped": self.dropped, "deleted_events": self.deleted_events,
                "default_rows": self.default_rows, "partitions": self.partitions,
                "covered_until": self.covered_until.isoformat() if self.covered_until else None}


def is_partitioned(conn: Connection) -> bool:
    """Whether ``events`` is the partitioned table of migration 0009 (False before it, or after its downgrade)."""
    return bool(conn.execute(text("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass('public.events')"))
                .scalar())


def partitions(conn: Connection) -> list[dict]:
    """The monthly children, oldest first: ``name``, ``start``, ``end`` and ``rows`` (planner estimate)."""
    rows = conn.execute(text(f"""
        SELECT p.partition_tablename AS name, i.child_start_time AS start, i.child_end_time AS "end",
               greatest(c.reltuples, 0)::bigint AS rows
        FROM {PARTMAN}.show_partitions(:parent) p
        CROSS JOIN LATERAL {PARTMAN}.show_partition_info(p.partition_schemaname || '.' || p.partition_tablename,
                                                         p_parent_table := :parent) i
        JOIN pg_class c ON c.oid = (quote_ident(p.partition_schemaname) || '.' || quote_ident(p.partition_tablename))::regclass
        ORDER BY i.child_start_time
    """), {"parent": PARENT}).mappings().all()
    return [dict(r) for r in rows]


def default_rows(conn: Connection) -> int:
    """Events in the DEFAULT partition (exact count; it is meant to stay empty or nearly)."""
    return conn.execute(text(f"SELECT count(*) FROM ONLY public.{DEFAULT}")).scalar_one()


def _in_zone(conn: Connection) -> None:
    conn.execute(text("SELECT set_config('TimeZone', :tz, true)"), {"tz": PARTITION_TZ})


def maintain(engine: Engine, *, premake: int | None = None, retention_months: int = 0) -> Report:
    """Make months ahead, retire months past retention, count DEFAULT rows; one transaction.

    Parameters
    ----------
    premake : months kept ready after the current one (default: leave pg_partman's setting, 4 from 0009).
    retention_months : 0 keeps every month; N > 0 deletes months whose end is more than N months ago.

    Returns
    -------
    Report
    """
    rep = Report()
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": _LOCK})
        _in_zone(conn)
        before = {p["name"] for p in partitions(conn)}
        if premake is not None:
            conn.execute(text(f"UPDATE {PARTMAN}.part_config SET premake = :n WHERE parent_table = :p "
                              "AND premake <> :n"), {"n": premake, "p": PARENT})
        if retention_months > 0:
            _retire(conn, retention_months, rep)
        conn.execute(text(f"SELECT {PARTMAN}.run_maintenance(:p, p_analyze := false, p_jobmon := false)"),
                     {"p": PARENT})
        after = partitions(conn)
        rep.created = sorted({p["name"] for p in after} - before)
        rep.partitions = len(after)
        rep.covered_until = after[-1]["end"] if after else None
        rep.default_rows = default_rows(conn)
    if rep.created:
        log.info("events partitions made: %s", ", ".join(rep.created))
    if rep.default_rows:
        log.warning("%d event(s) sit in %s (no monthly partition for their created_at); they are served but not "
                    "pruned: `geo db partitions --move-default` gives them months of their own",
                    rep.default_rows, DEFAULT)
    return rep


def _retire(conn: Connection, months: int, rep: Report) -> None:
    """Delete the months that ended more than *months* months ago (their referencing rows first), then drop them."""
    cutoff = conn.execute(text("SELECT now() - make_interval(months => :m)"), {"m": months}).scalar_one()
    for p in partitions(conn):
        if p["end"] > cutoff:
            break
        child = f'public."{p["name"]}"'
        for table in REFERENCING:  # work orders hold their event (RESTRICT): they go with it
            conn.execute(text(f"DELETE FROM {table} t USING {child} e "
                              "WHERE t.event_id = e.id AND t.event_created_at = e.created_at"))
        rep.deleted_events += conn.execute(text(f"DELETE FROM {child}")).rowcount
        conn.execute(text(f"ALTER TABLE events DETACH PARTITION {child}"))
        conn.execute(text(f"DROP TABLE {child}"))
        rep.dropped.append(p["name"])
    if rep.dropped:
        log.info("events retention (%d months): dropped %s, %d event(s)", months, ", ".join(rep.dropped),
                 rep.deleted_events)


def move_default(engine: Engine) -> int:
    """Give the events in DEFAULT partitions of their own months; returns how many were moved.

    pg_partman's ``partition_data_time`` would delete them from DEFAULT and insert them again, which fires the
    ON DELETE of the tables that point at them (transitions would be deleted, work orders refuse). So, in one
    transaction under an exclusive lock: the rows pointing at them are set aside, the events are taken out of
    DEFAULT, the months are created, and everything goes back with the same ids.
    """
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": _LOCK})
        _in_zone(conn)
        conn.execute(text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))
        n = default_rows(conn)
        if not n:
            return 0
        conn.execute(text(f"CREATE TEMP TABLE geo_moved_events ON COMMIT DROP AS TABLE ONLY public.{DEFAULT}"))
        for table in REFERENCING:
            conn.execute(text(f"""
                CREATE TEMP TABLE geo_moved_{table} ON COMMIT DROP AS
                SELECT t.* FROM {table} t JOIN geo_moved_events e
                ON t.event_id = e.id AND t.event_created_at = e.created_at"""))
            conn.execute(text(f"DELETE FROM {table} t USING geo_moved_{table} m WHERE t.id = m.id"))
        conn.execute(text(f"DELETE FROM ONLY public.{DEFAULT}"))  # idempotency keys cascade; the trigger redoes them
        months = conn.execute(text("SELECT array_agg(DISTINCT date_trunc('month', created_at)) FROM geo_moved_events"))\
            .scalar_one()
        conn.execute(text(f"SELECT {PARTMAN}.create_partition_time(:p, :m, p_analyze := false)"),
                     {"p": PARENT, "m": months})
        conn.execute(text("INSERT INTO events SELECT * FROM geo_moved_events"))
        for table in REFERENCING:
            conn.execute(text(f"INSERT INTO {table} SELECT * FROM geo_moved_{table}"))
        left = default_rows(conn)
    log.info("moved %d event(s) out of %s (%d left)", n - left, DEFAULT, left)
    return n - left
