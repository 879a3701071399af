"""Authentication that holds across processes: token versions, a shared login limiter, auth change notices.

* ``users.token_version``: every access token carries the version it was issued for; a password change
  (``geo user add --replace``) or ``geo user disable`` increments it, so older tokens stop working.
* ``login_attempts``: failed-login counters per (username, client) shared by every API process, read and
  written under a row lock so concurrent attempts cannot overrun the limit.
* ``NOTIFY geo_auth`` on any change to ``users``, ``api_keys`` or ``jurisdictions``: every API process
  drops its cached principals at once (a revocation is effective in milliseconds, not after a cache TTL).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: tables whose changes can change a cached principal (jurisdictions: a subtree's path)
AUTH_TABLES = ("users", "api_keys", "jurisdictions")


def upgrade() -> None:
    op.add_column("users", sa.Column("token_version", sa.Integer, server_default=sa.text("0"), nullable=False))
    op.create_table(
        "login_attempts",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("attempts", sa.Integer, server_default=sa.text("0"), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("strikes", sa.Integer, server_default=sa.text("0"), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_login_attempts_updated", "login_attempts", ["updated_at"])
    op.execute("""
        CREATE FUNCTION geo_notify_auth() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('geo_auth', TG_TABLE_NAME);
            RETURN NULL;
        END $$;
    """)
    for table in AUTH_TABLES:
        op.execute(f"CREATE TRIGGER {table}_notify_auth AFTER INSERT OR UPDATE OR DELETE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION geo_notify_auth()")


def downgrade() -> None:
    for table in AUTH_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify_auth ON {table}")
    op.execute("DROP FUNCTION IF EXISTS geo_notify_auth()")
    op.drop_index("ix_login_attempts_updated", table_name="login_attempts")
    op.drop_table("login_attempts")
    op.drop_column("users", "token_version")
