"""Events partitioned by month (migration 0009): the move up and down with data, the constraints that must still
hold, idempotency keys unique across months and under concurrency, partition pruning, and the maintenance
(months ahead, DEFAULT reported and moved, retention)."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, pool, text
from sqlalchemy.exc import IntegrityError

from geo.db import event_partitions as ep
from geo.db import migrate

BJ = ZoneInfo("Asia/Shanghai")
TABLES = ["events", "event_transitions", "work_orders", "event_supervisions"]
REFERENCING = ["event_transitions", "work_orders", "event_supervisions"]


def _engine(url):
    return create_engine(url, poolclass=pool.NullPool)


def _event(conn, created_at: datetime, key: str | None = None) -> int:
    return conn.execute(text("""
        INSERT INTO events (idempotency_key, category, subtype, priority, source, h3_7, h3_8, h3_9, h3_10,
                            created_at, created_by, due_at, geom)
        VALUES (:k, 'incident', 'noise', 'normal', 'patrol', 0, 0, 0, 0, :t, 'test', :t + interval '1 day',
                ST_SetSRID(ST_MakePoint(114.3, 30.6), 4326)) RETURNING id
    """), {"k": key, "t": created_at}).scalar_one()


def _dependents(conn, eid: int, order_no: str) -> None:
    """A transition, a 12345 work order and a 督办 pointing at event *eid* — by event_id alone, as the code does."""
    conn.execute(text("INSERT INTO event_transitions (event_id, to_state, actor) VALUES (:e, 'reported', 'test')"),
                 {"e": eid})
    conn.execute(text("""
        INSERT INTO work_orders (order_no, request_hash, called_at, appeal_type, category, subtype, content, event_id,
                                 jurisdiction_path, created_by, geom)
        VALUES (:no, 'h', now(), '投诉', 'incident', 'noise', '噪音', :e, '/1/', 'test',
                ST_SetSRID(ST_MakePoint(114.3, 30.6), 4326))"""), {"no": order_no, "e": eid})
    conn.execute(text("INSERT INTO event_supervisions (event_id, level, kind, actor) VALUES (:e, 1, 'overdue', 't')"),
                 {"e": eid})


def _partition_of(conn, eid: int) -> str:
    return conn.execute(text("SELECT tableoid::regclass::text FROM events WHERE id = :e"), {"e": eid}).scalar_one()


def _month_name(t: datetime) -> str:
    b = t.astimezone(BJ)
    return f"events_p{b.year}_{b.month:02d}"


def _schema(conn) -> dict:
    """Columns, constraints, indexes and triggers of events and the tables pointing at it."""
    q = {
        "kind": "SELECT relname, relkind FROM pg_class WHERE relname = ANY(:t) AND relnamespace = 'public'::regnamespace",
        "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns "
                   "WHERE table_schema = 'public' AND table_name = ANY(:t) ORDER BY table_name, ordinal_position",
        "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conrelid::regclass::text = ANY(:t) ORDER BY 1, 2",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                   "AND tablename = ANY(:t) ORDER BY 1, 2",
        "triggers": "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal "
                    "AND tgrelid::regclass::text = ANY(:t) ORDER BY 1, 2",
    }
    return {k: [tuple(r) for r in conn.execute(text(v), {"t": TABLES}).all()] for k, v in q.items()}


def _as_before(rows: dict, before: dict) -> dict:
    """*rows* with only the columns the rows *before* had (later migrations, 0011 on, add columns of their own)."""
    return {t: [{k: r[k] for k in b} for r, b in zip(rows[t], before[t])] if len(rows[t]) == len(before[t])
            else rows[t] for t, b in before.items()}


def _rows(conn) -> dict:
    """Every row of the four tables as JSON (without the column 0009 adds), in id order."""
    return {t: conn.execute(text(f"SELECT to_jsonb(x) - 'event_created_at' FROM {t} x ORDER BY id")).scalars().all()
            for t in TABLES}


def test_upgrade_moves_months_into_partitions_and_downgrade_restores_the_plain_table(engine, db_url):
    from geo.db.session import dispose_engines

    dispose_engines()
    eng = _engine(db_url)
    migrate.downgrade(db_url, "0008")
    try:
        # events in four months, two of them on either side of a Beijing-time month boundary that is the same
        # UTC day (2025-12-31 15:30 and 16:30 UTC)
        now = datetime.now(timezone.utc)
        times = [datetime(2025, 11, 15, 10, 0, tzinfo=BJ), datetime(2025, 12, 31, 23, 30, tzinfo=BJ),
                 datetime(2026, 1, 1, 0, 30, tzinfo=BJ), now]
        with eng.begin() as c:
            ids = [_event(c, t, key=f"k{i}") for i, t in enumerate(times)]
            for i, eid in enumerate(ids):
                _dependents(c, eid, f"WO-{i}")
            flat_schema, flat_rows = _schema(c), _rows(c)
        assert ("events", "r") in flat_schema["kind"]

        migrate.upgrade(db_url, "0009")
        with eng.connect() as c:
            assert ("events", "p") in _schema(c)["kind"]
            assert [_partition_of(c, e) for e in ids] == [_month_name(t) for t in times]
            assert _month_name(times[1]) == "events_p2025_12" and _month_name(times[2]) == "events_p2026_01"
            assert _rows(c) == flat_rows  # same rows, same ids
            for t in REFERENCING:  # filled from the events
                assert c.execute(text(f"SELECT count(*) FROM {t} x JOIN events e ON e.id = x.event_id "
                                      "AND e.created_at = x.event_created_at")).scalar() == len(ids)
            names = {p["name"] for p in ep.partitions(c)}
            # every month from the oldest row's on, and four ahead of now
            assert {"events_p2025_11", "events_p2025_12", "events_p2026_01", _month_name(now + timedelta(days=4 * 31))
                    } <= names
            assert ep.default_rows(c) == 0
            assert c.execute(text("SELECT count(*) FROM event_idempotency_keys")).scalar() == len(ids)
        _constraints_hold(eng, ids)

        migrate.downgrade(db_url, "0008")
        with eng.connect() as c:
            assert _schema(c) == flat_schema  # plain table, same columns, constraints, indexes, triggers
            assert _rows(c) == flat_rows
            assert c.execute(text("SELECT to_regclass('event_idempotency_keys')")).scalar() is None
            assert c.execute(text("SELECT count(*) FROM pg_class WHERE relname ~ '^events_(p[0-9]{4}_|default)'")).scalar() == 0
        with pytest.raises(IntegrityError):  # the old unique key is back
            with eng.begin() as c:
                _event(c, now, key="k0")
        with pytest.raises(IntegrityError):  # and the old single-column foreign key
            with eng.begin() as c:
                c.execute(text("INSERT INTO event_transitions (event_id, to_state, actor) VALUES (-1, 'x', 't')"))
    finally:
        migrate.upgrade(db_url)  # and up again: the rest of the session runs at head
    with eng.connect() as c:
        assert ("events", "p") in _schema(c)["kind"] and _as_before(_rows(c), flat_rows) == flat_rows
        assert [_partition_of(c, e) for e in ids] == [_month_name(t) for t in times]
    eng.dispose()


def _constraints_hold(eng, ids: list[int]) -> None:
    # a transition for an event that does not exist is refused, as a foreign-key violation
    for sql in ("INSERT INTO event_transitions (event_id, to_state, actor) VALUES (-1, 'x', 't')",
                "INSERT INTO event_transitions (event_id, event_created_at, to_state, actor) "
                "VALUES (:e, now() - interval '9 years', 'x', 't')"):  # right id, wrong month
        with pytest.raises(IntegrityError) as exc:
            with eng.begin() as c:
                c.execute(text(sql), {"e": ids[0]})
        assert exc.value.orig.sqlstate == "23503", exc.value
    # a work order still holds its event (RESTRICT) …
    with pytest.raises(IntegrityError):
        with eng.begin() as c:
            c.execute(text("DELETE FROM events WHERE id = :e"), {"e": ids[0]})
    # … and transitions and 督办 go with it (CASCADE), the key too
    with eng.connect() as c:
        tx = c.begin()
        c.execute(text("DELETE FROM work_orders WHERE event_id = :e"), {"e": ids[0]})
        c.execute(text("DELETE FROM events WHERE id = :e"), {"e": ids[0]})
        for t in ("event_transitions", "event_supervisions"):
            assert c.execute(text(f"SELECT count(*) FROM {t} WHERE event_id = :e"), {"e": ids[0]}).scalar() == 0
        assert c.execute(text("SELECT count(*) FROM event_idempotency_keys WHERE event_id = :e"),
                         {"e": ids[0]}).scalar() == 0
        tx.rollback()  # keep the rows for the downgrade's comparison
    # an idempotency key is unique across months
    with pytest.raises(IntegrityError) as exc:
        with eng.begin() as c:
            _event(c, datetime(2026, 1, 20, tzinfo=BJ), key="k0")
    assert exc.value.orig.diag.constraint_name == "event_idempotency_keys_pkey"


def test_same_idempotency_key_from_two_transactions_makes_one_event(engine, db_url):
    """The second insert waits for the first one's key and fails once it commits (whatever month either is in)."""
    eng = _engine(db_url)
    now = datetime.now(timezone.utc)
    outcome: dict = {}
    a = eng.connect()
    tx = a.begin()
    first = _event(a, now, key="hotline-1")

    def second():
        try:
            with eng.begin() as b:
                _event(b, now - timedelta(days=40), key="hotline-1")
            outcome["ok"] = True
        except IntegrityError as exc:
            outcome["constraint"] = exc.orig.diag.constraint_name

    th = threading.Thread(target=second)
    th.start()
    waiting = 0
    for _ in range(300):  # until the second insert is blocked on the first one's key
        with eng.connect() as c:
            waiting = c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                     "AND query LIKE '%INSERT INTO events%'")).scalar()
        if waiting:
            break
        time.sleep(0.1)
    tx.commit()
    a.close()
    th.join(60)
    assert waiting == 1
    assert outcome == {"constraint": "event_idempotency_keys_pkey"}
    with eng.connect() as c:
        assert c.execute(text("SELECT id FROM events WHERE idempotency_key = 'hotline-1'")).scalars().all() == [first]
    eng.dispose()


def _relations(plan) -> set[str]:
    out = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            out.add(plan["Relation Name"])
        for v in plan.values():
            out |= _relations(v)
    elif isinstance(plan, list):
        for v in plan:
            out |= _relations(v)
    return out


def test_a_query_for_one_month_reads_one_partition(engine):
    now = datetime.now(BJ)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    with engine.begin() as c:
        for t in (start, start + timedelta(days=3), start - timedelta(days=3), end + timedelta(days=1)):
            _event(c, t)
        sql = ("EXPLAIN (FORMAT JSON) SELECT count(*), count(*) FILTER (WHERE state = 'reported') FROM events "
               "WHERE created_at >= :a AND created_at < :b")
        one = _relations(c.execute(text(sql), {"a": start, "b": end}).scalar())
        assert one == {_month_name(start)}
        assert c.execute(text("SELECT count(*) FROM events WHERE created_at >= :a AND created_at < :b"),
                         {"a": start, "b": end}).scalar() == 2
        week = _relations(c.execute(text(sql), {"a": start - timedelta(days=7), "b": start + timedelta(days=7)})
                          .scalar())
        assert week == {_month_name(start - timedelta(days=7)), _month_name(start)}
        everything = _relations(c.execute(text("EXPLAIN (FORMAT JSON) SELECT count(*) FROM events")).scalar())
        assert len(everything) == len(ep.partitions(c)) + 1  # and DEFAULT


def _partition_check(engine):
    from geo.config import Settings
    from geo.db.ops import doctor

    return next(c for c in doctor(engine, Settings(GEO_DEMO=False)) if c.name == "events partitions")


def test_maintenance_makes_months_ahead_reports_default_moves_it_and_retires_old_months(engine):
    with engine.connect() as c:
        parts = ep.partitions(c)
    last = parts[-1]["name"]
    with engine.begin() as c:
        c.execute(text(f"ALTER TABLE events DETACH PARTITION {last}"))
        c.execute(text(f"DROP TABLE {last}"))
    rep = ep.maintain(engine)
    assert rep.created == [last] and rep.default_rows == 0 and rep.partitions == len(parts)
    assert _partition_check(engine).status == "ok"

    # an order from 2001 (imported history) has no month: it lands in DEFAULT and is reported
    old = datetime(2001, 1, 15, 9, 0, tzinfo=BJ)
    with engine.begin() as c:
        recent = _event(c, datetime.now(timezone.utc), key="recent")
        _dependents(c, recent, "WO-recent")
        eid = _event(c, old, key="old")
        _dependents(c, eid, "WO-2001")
        assert _partition_of(c, eid) == ep.DEFAULT
    rep = ep.maintain(engine)
    assert rep.default_rows == 1
    check = _partition_check(engine)
    assert check.status == "warn" and "--move-default" in check.fix

    assert ep.move_default(engine) == 1
    with engine.connect() as c:
        assert _partition_of(c, eid) == "events_p2001_01" and ep.default_rows(c) == 0
        for t in REFERENCING:  # the rows pointing at it came back with it
            assert c.execute(text(f"SELECT count(*) FROM {t} WHERE event_id = :e AND event_created_at = :t"),
                             {"e": eid, "t": old}).scalar() == 1
        assert c.execute(text("SELECT event_id FROM event_idempotency_keys WHERE idempotency_key = 'old'")).scalar() == eid

    with engine.connect() as c:
        cutoff = c.execute(text("SELECT now() - interval '12 months'")).scalar()
        expired = [p["name"] for p in ep.partitions(c) if p["end"] <= cutoff]
    assert "events_p2001_01" in expired and _month_name(datetime.now(timezone.utc)) not in expired
    rep = ep.maintain(engine, retention_months=12)
    assert rep.dropped == expired and rep.deleted_events == 1  # the other expired months are empty
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM events WHERE id = :e"), {"e": eid}).scalar() == 0
        for t in REFERENCING:
            assert c.execute(text(f"SELECT count(*) FROM {t} WHERE event_id = :e"), {"e": eid}).scalar() == 0
            assert c.execute(text(f"SELECT count(*) FROM {t} WHERE event_id = :e"), {"e": recent}).scalar() == 1
        assert c.execute(text("SELECT count(*) FROM event_idempotency_keys WHERE idempotency_key = 'old'")).scalar() == 0
        assert {p["name"] for p in ep.partitions(c)} == {p["name"] for p in parts} - set(expired)


def test_the_worker_runs_the_maintenance_every_hour(geo_env, engine, db_url):
    from geo.jobs import tasks
    from geo.jobs.queue import get_app

    crons = {(p.task.name, p.cron) for p in get_app(db_url).periodic_registry.periodic_tasks.values()}
    assert ("geo:events_partitions", "7 * * * *") in crons
    with engine.connect() as c:
        last = ep.partitions(c)[-1]["name"]
    with engine.begin() as c:
        c.execute(text(f"ALTER TABLE events DETACH PARTITION {last}"))
        c.execute(text(f"DROP TABLE {last}"))
    out = tasks.events_partitions(timestamp=int(time.time()))
    assert out["created"] == [last] and out["default_rows"] == 0


def test_geo_db_partitions_lists_months_and_moves_default(geo_env, engine):
    from typer.testing import CliRunner

    from geo.cli import app

    with engine.begin() as c:
        eid = _event(c, datetime(2003, 5, 5, tzinfo=BJ))
        _dependents(c, eid, "WO-2003")
    r = CliRunner().invoke(app, ["db", "partitions"])
    assert r.exit_code == 0, r.output
    assert _month_name(datetime.now(timezone.utc)) in r.output and "1 event(s) in events_default" in r.output
    r = CliRunner().invoke(app, ["db", "partitions", "--move-default", "--maintain"])
    assert r.exit_code == 0, r.output
    assert "moved 1 event(s)" in r.output and "events_p2003_05" in r.output
    with engine.connect() as c:
        assert _partition_of(c, eid) == "events_p2003_05"
