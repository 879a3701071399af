"""Status back to the 12345 hotline by webhook: a callback URL and secret per hotline API key, the key that took
each work order in, and the delivery log (one row per signed POST, with its attempts).

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

STATES = "('pending', 'delivered', 'failed', 'cancelled')"


def upgrade() -> None:
    op.create_table(
        "hotline_webhooks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("api_key_id", sa.Integer(), sa.ForeignKey("api_keys.id", ondelete="RESTRICT"), nullable=False,
                  unique=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
    )
    op.add_column("work_orders", sa.Column("intake_key_id", sa.Integer(),
                                           sa.ForeignKey("api_keys.id", ondelete="SET NULL")))
    op.create_table(
        "hotline_deliveries",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("delivery_id", UUID(as_uuid=False), nullable=False, unique=True),
        sa.Column("webhook_id", sa.Integer(), sa.ForeignKey("hotline_webhooks.id", ondelete="RESTRICT"),
                  nullable=False),
        sa.Column("work_order_id", sa.BigInteger(), sa.ForeignKey("work_orders.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("order_no", sa.Text(), nullable=False),
        sa.Column("jurisdiction_path", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", JSONB(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_status_code", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column("history", JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("queue_job_id", sa.BigInteger()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(f"state IN {STATES}", name="ck_hotline_deliveries_state"),
        sa.UniqueConstraint("webhook_id", "work_order_id", "seq", name="uq_hotline_deliveries_seq"),
    )
    op.create_index("ix_hotline_deliveries_order", "hotline_deliveries", ["order_no"])
    op.create_index("ix_hotline_deliveries_created", "hotline_deliveries", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_hotline_deliveries_created", "hotline_deliveries")
    op.drop_index("ix_hotline_deliveries_order", "hotline_deliveries")
    op.drop_table("hotline_deliveries")
    op.drop_column("work_orders", "intake_key_id")
    op.drop_table("hotline_webhooks")
