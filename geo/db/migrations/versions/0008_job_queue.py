"""Partition jobs run on the procrastinate queue: its job id, attempts, start time, cancellation.

The queue's own tables (procrastinate_jobs …) are applied by ``geo db up`` / ``geo db migrate`` after Alembic
(:func:`geo.jobs.queue.ensure_schema`), as procrastinate versions its schema itself.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("partition_jobs", sa.Column("queue_job_id", sa.BigInteger))
    op.add_column("partition_jobs", sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
    op.add_column("partition_jobs", sa.Column("started_at", sa.DateTime(timezone=True)))
    op.add_column("partition_jobs", sa.Column("cancelled_by", sa.Text))
    op.drop_constraint("ck_partition_jobs_state", "partition_jobs", type_="check")
    op.create_check_constraint("ck_partition_jobs_state", "partition_jobs",
                               "state IN ('queued', 'running', 'done', 'failed', 'cancelled')")
    # jobs left "running" by the old in-process thread pool can never finish now
    op.execute("UPDATE partition_jobs SET state = 'failed', error = 'interrupted: ran inside an API process "
               "before the job queue', finished_at = now() WHERE state IN ('queued', 'running')")


def downgrade() -> None:
    op.execute("UPDATE partition_jobs SET state = 'failed', error = coalesce(error, 'cancelled') "
               "WHERE state = 'cancelled'")
    op.drop_constraint("ck_partition_jobs_state", "partition_jobs", type_="check")
    op.create_check_constraint("ck_partition_jobs_state", "partition_jobs",
                               "state IN ('queued', 'running', 'done', 'failed')")
    for c in ("cancelled_by", "started_at", "attempts", "queue_job_id"):
        op.drop_column("partition_jobs", c)
