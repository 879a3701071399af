"""Index events by resolution time (the big screen's trend reads it on every refresh).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_resolved", "events", ["resolved_at"], postgresql_where=sa.text("resolved_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_events_resolved", table_name="events")
