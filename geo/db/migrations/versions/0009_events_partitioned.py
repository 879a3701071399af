"""Events partitioned by month (``PARTITION BY RANGE (created_at)``), managed by pg_partman.

A partitioned table's primary key and unique constraints must contain the partition key, so:

* ``events`` gets the primary key ``(id, created_at)``; ``id`` stays drawn from the same sequence and is still
  unique in practice (nothing else writes ids);
* the tables that point at an event (``event_transitions``, ``work_orders``, ``event_supervisions``) get an
  ``event_created_at`` column and a composite foreign key ``(event_id, event_created_at) → events (id,
  created_at)`` with the ON DELETE of before (and ON UPDATE CASCADE). A BEFORE trigger fills
  ``event_created_at`` from ``events`` when an insert leaves it NULL (and refuses, as a foreign-key violation,
  an ``event_id`` that does not exist), so code that inserts ``event_id`` alone keeps working;
* ``events.idempotency_key`` can no longer be UNIQUE: the key's global uniqueness moves to the
  non-partitioned table ``event_idempotency_keys`` (primary key on the key), filled by an AFTER trigger on
  ``events`` — a second event with a key already taken fails with a unique violation whatever path inserts it.

Months are Beijing-time months (:data:`geo.db.event_partitions.PARTITION_TZ`); pg_partman keeps
``premake`` months ahead (``geo db migrate`` and the worker's hourly ``geo:events_partitions`` task run its
maintenance) and a DEFAULT partition catches anything else, so no insert fails for want of a partition.
Existing rows are moved into their months (partitions from the oldest row's month on). The downgrade puts the
plain table back with the constraints, indexes and rows of 0008. The pg_partman extension itself (schema
``partman``) is left installed on the way down, like PostGIS.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

PARTMAN = "partman"
PARENT = "public.events"
TZ = "Asia/Shanghai"  # = geo.db.event_partitions.PARTITION_TZ (frozen here: a migration does not follow code)
PREMAKE = 4
#: table → ON DELETE of its foreign key to events (as migrations 0002 and 0007 made them)
REFERENCING = {"event_transitions": "CASCADE", "work_orders": "RESTRICT", "event_supervisions": "CASCADE"}
#: the indexes of events (0002, 0004), rebuilt on the new table after its rows are in
INDEXES = [
    ("ix_events_geom", ["geom"], dict(postgresql_using="gist")),
    ("ix_events_created", ["created_at"], {}),
    ("ix_events_path", ["jurisdiction_path"], dict(postgresql_ops={"jurisdiction_path": "text_pattern_ops"})),
    ("ix_events_grid", ["grid_code"], {}),
    ("ix_events_open", ["category", "created_at"],
     dict(postgresql_where=sa.text("state NOT IN ('closed', 'rejected')"))),
    ("ix_events_resolved", ["resolved_at"], dict(postgresql_where=sa.text("resolved_at IS NOT NULL"))),
]
EVENT_FKS = [  # events → other tables (0002), with PostgreSQL's default names
    ("events_plan_id_fkey", "plan_id", "grid_plans", "SET NULL"),
    ("events_jurisdiction_id_fkey", "jurisdiction_id", "jurisdictions", "SET NULL"),
    ("events_assignee_worker_id_fkey", "assignee_worker_id", "workers", "SET NULL"),
]


def _require_partman(conn) -> None:
    if conn.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_partman'")).first():
        return
    if not conn.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_partman'")).first():
        raise RuntimeError("migration 0009 partitions events with pg_partman, which this PostgreSQL server does not "
                           "have: install the Debian package postgresql-15-partman (scripts/system-deps.sh) on the "
                           "database server, then migrate again")
    conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {PARTMAN}"))
    conn.execute(sa.text(f"CREATE EXTENSION pg_partman SCHEMA {PARTMAN}"))


def _drop_event_fks(conn) -> None:
    """Drop every foreign key that references events (whatever it is called)."""
    for table, name in conn.execute(sa.text(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE contype = 'f' AND confrelid = 'events'::regclass AND conparentid = 0")).all():
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')


def upgrade() -> None:
    conn = op.get_bind()
    _require_partman(conn)
    session_tz = conn.execute(sa.text("SHOW TimeZone")).scalar_one()
    op.execute(f"SET LOCAL TimeZone = '{TZ}'")  # partman cuts months in the session's time zone

    # 1. the flat table steps aside (its rows are copied below); names its successor needs are freed
    _drop_event_fks(conn)
    op.execute("ALTER TABLE events RENAME TO events_flat")
    op.execute("ALTER INDEX events_pkey RENAME TO events_flat_pkey")
    op.execute("ALTER TABLE events_flat DROP CONSTRAINT events_idempotency_key_key")
    for name, _, _ in INDEXES:
        op.execute(f"DROP INDEX {name}")

    # 2. the partitioned table: same columns, defaults (id from the same sequence) and checks
    op.execute("CREATE TABLE events (LIKE events_flat INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS) "
               "PARTITION BY RANGE (created_at)")
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY events.id")
    op.execute("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id, created_at)")
    for name, col, target, ondelete in EVENT_FKS:
        op.execute(f"ALTER TABLE events ADD CONSTRAINT {name} FOREIGN KEY ({col}) REFERENCES {target} (id) "
                   f"ON DELETE {ondelete}")
    oldest = conn.execute(sa.text("SELECT min(created_at) FROM events_flat")).scalar()
    conn.execute(sa.text(
        f"SELECT {PARTMAN}.create_parent(:parent, 'created_at', 'native', 'monthly', p_premake := :premake, "
        f"p_start_partition := :start, p_jobmon := false)"),
        {"parent": PARENT, "premake": PREMAKE, "start": None if oldest is None else oldest.isoformat()})
    # keep making months ahead of now() even while no new rows arrive (partman's default follows the data)
    conn.execute(sa.text(f"UPDATE {PARTMAN}.part_config SET infinite_time_partitions = true, jobmon = false "
                         "WHERE parent_table = :parent"), {"parent": PARENT})

    # 3. rows into their months (anything past the premade months lands in DEFAULT and is moved out of it)
    op.execute("INSERT INTO events SELECT * FROM events_flat")
    conn.execute(sa.text(f"SELECT {PARTMAN}.partition_data_time(:parent, p_batch_count := 10000, "
                         "p_analyze := false)"), {"parent": PARENT})
    op.execute("DROP TABLE events_flat")
    for name, cols, kw in INDEXES:
        op.create_index(name, "events", cols, **kw)

    # 4. idempotency keys stay globally unique in a table of their own
    op.create_table(
        "event_idempotency_keys",
        sa.Column("idempotency_key", sa.Text, primary_key=True),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("event_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id", "event_created_at"], ["events.id", "events.created_at"],
                                name="fk_event_idempotency_keys_event", ondelete="CASCADE", onupdate="CASCADE"),
    )
    op.create_index("ix_event_idempotency_keys_event", "event_idempotency_keys", ["event_id", "event_created_at"])
    op.execute("INSERT INTO event_idempotency_keys SELECT idempotency_key, id, created_at FROM events "
               "WHERE idempotency_key IS NOT NULL")
    op.execute("""
        CREATE FUNCTION geo_event_idempotency_key() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                IF NEW.idempotency_key IS NOT DISTINCT FROM OLD.idempotency_key THEN
                    RETURN NULL;
                END IF;
                DELETE FROM event_idempotency_keys WHERE idempotency_key = OLD.idempotency_key AND event_id = OLD.id;
            END IF;
            IF NEW.idempotency_key IS NOT NULL THEN  -- a key already taken raises unique_violation here
                INSERT INTO event_idempotency_keys (idempotency_key, event_id, event_created_at)
                VALUES (NEW.idempotency_key, NEW.id, NEW.created_at);
            END IF;
            RETURN NULL;
        END $$
    """)
    op.execute("CREATE TRIGGER events_idempotency_key AFTER INSERT OR UPDATE OF idempotency_key ON events "
               "FOR EACH ROW EXECUTE FUNCTION geo_event_idempotency_key()")

    # 5. the referencing tables carry the event's created_at and point at (id, created_at)
    op.execute("""
        CREATE FUNCTION geo_fill_event_created_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.event_id IS NOT NULL AND (NEW.event_created_at IS NULL OR (TG_OP = 'UPDATE'
                    AND NEW.event_id IS DISTINCT FROM OLD.event_id
                    AND NEW.event_created_at IS NOT DISTINCT FROM OLD.event_created_at)) THEN
                NEW.event_created_at := (SELECT created_at FROM events WHERE id = NEW.event_id);
                IF NEW.event_created_at IS NULL THEN
                    RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "fk_%_event"',
                        TG_TABLE_NAME, TG_TABLE_NAME
                        USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME,
                              CONSTRAINT = 'fk_' || TG_TABLE_NAME || '_event',
                              DETAIL = format('Key (event_id)=(%s) is not present in table "events".', NEW.event_id);
                END IF;
            END IF;
            RETURN NEW;
        END $$
    """)
    for table, ondelete in REFERENCING.items():
        op.add_column(table, sa.Column("event_created_at", sa.DateTime(timezone=True)))
        op.execute(f"UPDATE {table} t SET event_created_at = e.created_at FROM events e WHERE e.id = t.event_id")
        op.alter_column(table, "event_created_at", nullable=False)
        op.create_foreign_key(f"fk_{table}_event", table, "events", ["event_id", "event_created_at"],
                              ["id", "created_at"], ondelete=ondelete, onupdate="CASCADE")
        op.execute(f"CREATE TRIGGER {table}_event_created_at BEFORE INSERT OR UPDATE OF event_id ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION geo_fill_event_created_at()")
    conn.execute(sa.text("SELECT set_config('TimeZone', :tz, true)"), {"tz": session_tz})


def downgrade() -> None:
    conn = op.get_bind()
    for table in REFERENCING:
        op.execute(f"DROP TRIGGER {table}_event_created_at ON {table}")
        op.drop_constraint(f"fk_{table}_event", table, type_="foreignkey")
        op.drop_column(table, "event_created_at")
    op.execute("DROP FUNCTION geo_fill_event_created_at()")
    op.drop_table("event_idempotency_keys")
    op.execute("DROP TRIGGER events_idempotency_key ON events")
    op.execute("DROP FUNCTION geo_event_idempotency_key()")

    # the plain table of 0008 with every row
    op.execute("CREATE TABLE events_flat (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS)")
    op.execute("INSERT INTO events_flat SELECT * FROM events")
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY events_flat.id")
    template = conn.execute(sa.text(f"SELECT template_table FROM {PARTMAN}.part_config WHERE parent_table = :p"),
                            {"p": PARENT}).scalar()
    conn.execute(sa.text(f"DELETE FROM {PARTMAN}.part_config WHERE parent_table = :p"), {"p": PARENT})
    if template:
        op.execute(f"DROP TABLE IF EXISTS {template}")
    op.execute("DROP TABLE events")  # with its partitions
    op.execute("ALTER TABLE events_flat RENAME TO events")
    op.execute("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id)")
    op.execute("ALTER TABLE events ADD CONSTRAINT events_idempotency_key_key UNIQUE (idempotency_key)")
    for name, col, target, ondelete in EVENT_FKS:
        op.execute(f"ALTER TABLE events ADD CONSTRAINT {name} FOREIGN KEY ({col}) REFERENCES {target} (id) "
                   f"ON DELETE {ondelete}")
    for name, cols, kw in INDEXES:
        op.create_index(name, "events", cols, **kw)
    for table, ondelete in REFERENCING.items():
        op.create_foreign_key(f"{table}_event_id_fkey", table, "events", ["event_id"], ["id"], ondelete=ondelete)
