"""Plans from outside the engine and edited by hand: plan kind, parent version, list of edits; grid props.

* ``grid_plans.kind`` — ``engine`` (a partition run), ``imported`` (existing grids read from a file) or
  ``edited`` (a draft made by a hand edit of another plan);
* ``grid_plans.parent_id`` — the plan an edit (or undo) started from; ``grid_plans.edits`` — the list of
  edits since the last engine/imported plan, each with the editor and time;
* ``grids.props`` — what an import carried that has no column (the file's chief/worker names, source row).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("grid_plans", sa.Column("kind", sa.String(16), nullable=False, server_default="engine"))
    op.create_check_constraint("ck_grid_plans_kind", "grid_plans", "kind IN ('engine', 'imported', 'edited')")
    op.add_column("grid_plans", sa.Column("parent_id", sa.Integer(),
                                          sa.ForeignKey("grid_plans.id", ondelete="SET NULL"), nullable=True))
    op.add_column("grid_plans", sa.Column("edits", JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")))
    op.add_column("grids", sa.Column("props", JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")))


def downgrade() -> None:
    op.drop_column("grids", "props")
    op.drop_column("grid_plans", "edits")
    op.drop_column("grid_plans", "parent_id")
    op.drop_constraint("ck_grid_plans_kind", "grid_plans", type_="check")
    op.drop_column("grid_plans", "kind")
