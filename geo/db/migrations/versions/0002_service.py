"""Service: users, API keys, workers and their grids, GPS positions, events and transitions, notifications.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ROLES = "('admin', 'planner', 'dispatcher', 'worker', 'leader')"


def _created():
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
    ]


def _juris():
    return sa.Column("jurisdiction_id", sa.Integer, sa.ForeignKey("jurisdictions.id", ondelete="RESTRICT"),
                     nullable=False)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.Text, nullable=False, unique=True),
        sa.Column("full_name", sa.Text),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        _juris(),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        *_created(),
        sa.CheckConstraint(f"role IN {ROLES}", name="ck_users_role"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("prefix", sa.String(12), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        _juris(),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        *_created(),
        sa.CheckConstraint(f"role IN {ROLES}", name="ck_api_keys_role"),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("phone", sa.Text),
        sa.Column("role", sa.String(16), nullable=False),
        _juris(),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("on_duty", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("duty_changed_at", sa.DateTime(timezone=True)),
        sa.Column("synthetic", sa.Boolean, nullable=False, server_default=sa.text("false")),
        *_created(),
        sa.CheckConstraint("role IN ('chief', 'full_time', 'auxiliary', 'part_time')", name="ck_workers_role"),
    )
    op.create_table(
        "worker_grids",
        sa.Column("worker_id", sa.Integer, sa.ForeignKey("workers.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("grid_code", sa.String(15), primary_key=True),
    )
    op.create_index("ix_worker_grids_code", "worker_grids", ["grid_code"])
    op.create_table(
        "worker_positions",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("worker_id", sa.Integer, sa.ForeignKey("workers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accuracy_m", sa.Float),
        sa.Column("grid_code", sa.String(15)),
        sa.Column("outside_own_grids", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.UniqueConstraint("worker_id", "ts", name="uq_worker_positions_fix"),
    )
    op.create_index("ix_worker_positions_geom", "worker_positions", ["geom"], postgresql_using="gist")

    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("idempotency_key", sa.Text, unique=True),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("subtype", sa.Text, nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="reported"),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("address", sa.Text),
        sa.Column("reporter_name", sa.Text),
        sa.Column("reporter_phone", sa.Text),
        sa.Column("anonymous", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("grid_code", sa.String(15)),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("grid_plans.id", ondelete="SET NULL")),
        sa.Column("jurisdiction_id", sa.Integer, sa.ForeignKey("jurisdictions.id", ondelete="SET NULL")),
        sa.Column("jurisdiction_path", sa.Text),
        sa.Column("department", sa.Text),
        sa.Column("assignee_worker_id", sa.Integer, sa.ForeignKey("workers.id", ondelete="SET NULL")),
        sa.Column("duplicate_of", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        *[sa.Column(f"h3_{r}", sa.BigInteger, nullable=False) for r in (7, 8, 9, 10)],
        *_created(),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True)),
        sa.Column("dispatched_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("satisfaction", sa.SmallInteger),
        sa.Column("synthetic", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.CheckConstraint("state IN ('reported', 'accepted', 'dispatched', 'in_progress', 'resolved', 'closed', "
                           "'returned', 'rejected')", name="ck_events_state"),
        sa.CheckConstraint("satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5", name="ck_events_satisfaction"),
    )
    op.create_index("ix_events_geom", "events", ["geom"], postgresql_using="gist")
    op.create_index("ix_events_created", "events", ["created_at"])
    op.create_index("ix_events_path", "events", ["jurisdiction_path"],
                    postgresql_ops={"jurisdiction_path": "text_pattern_ops"})
    op.create_index("ix_events_grid", "events", ["grid_code"])
    op.create_index("ix_events_open", "events", ["category", "created_at"],
                    postgresql_where=sa.text("state NOT IN ('closed', 'rejected')"))
    op.create_table(
        "event_transitions",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("event_id", sa.BigInteger, sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("from_state", sa.String(16)),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_event_transitions_event", "event_transitions", ["event_id"])

    # API processes keep in-memory lookup indexes; tell them when plans or staffing change.
    op.execute("""
        CREATE FUNCTION geo_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('geo_changes', TG_TABLE_NAME);
            RETURN NULL;
        END $$;
    """)
    for table in ("grid_plans", "workers", "worker_grids"):
        op.execute(f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION geo_notify_change()")


def downgrade() -> None:
    for table in ("grid_plans", "workers", "worker_grids"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
    op.execute("DROP FUNCTION IF EXISTS geo_notify_change()")
    for table in ("event_transitions", "events", "worker_positions", "worker_grids", "workers", "api_keys", "users"):
        op.drop_table(table)
