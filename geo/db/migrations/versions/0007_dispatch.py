"""Dispatch and the 12345 hotline: address text, work orders, 督办, working-day calendar, emergency mode.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.add_column("population_units", sa.Column("address", sa.Text()))
    op.add_column("events", sa.Column("reopen_count", sa.SmallInteger(), nullable=False, server_default="0"))

    op.create_table(
        "work_orders",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("order_no", sa.Text(), nullable=False, unique=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("called_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("appeal_type", sa.String(8), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("subtype", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("address", sa.Text()),
        sa.Column("caller_name", sa.Text()),
        sa.Column("caller_phone", sa.Text()),
        sa.Column("event_id", sa.BigInteger(), sa.ForeignKey("events.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("merged", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("jurisdiction_path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("callback_at", sa.DateTime(timezone=True)),
        sa.Column("callback_by", sa.Text()),
        sa.Column("callback_satisfaction", sa.SmallInteger()),
        sa.Column("callback_reached", sa.Boolean()),
        sa.Column("callback_note", sa.Text()),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.CheckConstraint("appeal_type IN ('咨询', '求助', '投诉', '建议')", name="ck_work_orders_appeal_type"),
        sa.CheckConstraint("callback_satisfaction IS NULL OR callback_satisfaction BETWEEN 1 AND 5",
                           name="ck_work_orders_satisfaction"),
    )
    op.create_index("ix_work_orders_event", "work_orders", ["event_id"])
    op.create_index("ix_work_orders_updated", "work_orders", ["updated_at"])
    op.create_index("ix_work_orders_geom", "work_orders", ["geom"], postgresql_using="gist")

    op.create_table(
        "event_supervisions",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("event_id", sa.BigInteger(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("jurisdiction_id", sa.Integer(), sa.ForeignKey("jurisdictions.id", ondelete="SET NULL")),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('overdue', 'disputed')", name="ck_event_supervisions_kind"),
        sa.CheckConstraint("level BETWEEN 1 AND 3", name="ck_event_supervisions_level"),
    )
    op.create_index("ix_event_supervisions_event", "event_supervisions", ["event_id"])

    op.create_table(
        "work_calendar",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("workday", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.Text()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.CheckConstraint("kind IN ('holiday', 'makeup_workday', 'workday', 'weekend')", name="ck_work_calendar_kind"),
    )
    from geo.db.workcal import seed

    seed(op.get_bind(), "migration 0007 (chinese_calendar 1.11.0)")

    op.create_table(
        "emergency_modes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("jurisdiction_id", sa.Integer(), sa.ForeignKey("jurisdictions.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("started_by", sa.Text(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("ended_by", sa.Text()),
        sa.Column("detail", JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index("uq_emergency_modes_active", "emergency_modes", ["jurisdiction_id"], unique=True,
                    postgresql_where=sa.text("ended_at IS NULL"))


def downgrade() -> None:
    op.drop_index("uq_emergency_modes_active", table_name="emergency_modes")
    op.drop_table("emergency_modes")
    op.drop_table("work_calendar")
    op.drop_index("ix_event_supervisions_event", table_name="event_supervisions")
    op.drop_table("event_supervisions")
    op.drop_index("ix_work_orders_geom", table_name="work_orders")
    op.drop_index("ix_work_orders_updated", table_name="work_orders")
    op.drop_index("ix_work_orders_event", table_name="work_orders")
    op.drop_table("work_orders")
    op.drop_column("events", "reopen_count")
    op.drop_column("population_units", "address")
