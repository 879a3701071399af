"""A publication log: one row per period a plan was in force, so a rollback keeps the history.

Before, re-publishing a retired plan overwrote its ``published_at`` and cleared its ``retired_at``: the
first period it was in force was lost, and ``?at=`` lookups inside that period found no plan. Now every
publish / rollback adds a row to ``plan_publications`` (who, when, why) and the publication it replaces gets
its ``retired_at``; "in force at T" is read from this table. The existing plans' single periods are copied in.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_publications",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("grid_plans.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
        sa.Column("retired_by_plan_id", sa.Integer, sa.ForeignKey("grid_plans.id", ondelete="SET NULL")),
        sa.CheckConstraint("action IN ('publish', 'rollback')", name="ck_plan_publications_action"),
    )
    op.create_index("ix_plan_publications_plan", "plan_publications", ["plan_id"])
    op.create_index("ix_plan_publications_period", "plan_publications", ["published_at", "retired_at"])
    op.execute("""
        INSERT INTO plan_publications (plan_id, action, published_at, published_by, retired_at)
        SELECT id, 'publish', published_at, coalesce(published_by, created_by), retired_at
        FROM grid_plans WHERE published_at IS NOT NULL ORDER BY published_at, id
    """)


def downgrade() -> None:
    # grid_plans still carries each plan's latest period, which is all the schema before 0010 knew
    op.drop_index("ix_plan_publications_period", table_name="plan_publications")
    op.drop_index("ix_plan_publications_plan", table_name="plan_publications")
    op.drop_table("plan_publications")
