"""Foundation: jurisdictions, loads, grid plans, grids, population units, streets, special areas, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _geom(kind: str):
    return sa.Column("geom", Geometry(kind, srid=4326, spatial_index=False), nullable=False)


def _jsonb(name: str, default: str = "'{}'::jsonb"):
    return sa.Column(name, JSONB, nullable=False, server_default=sa.text(default))


def _created():
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
    ]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    op.create_table(
        "loads",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dataset", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_crs", sa.Text),
        sa.Column("rows_read", sa.Integer, nullable=False),
        sa.Column("rows_loaded", sa.Integer, nullable=False),
        _jsonb("report"),
        *_created(),
    )

    op.create_table(
        "jurisdictions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(12), nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("urban", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("jurisdictions.id", ondelete="RESTRICT")),
        sa.Column("path", sa.Text, nullable=False, server_default="/"),
        _jsonb("props"),
        _geom("MULTIPOLYGON"),
        sa.Column("load_id", sa.Integer, sa.ForeignKey("loads.id", ondelete="SET NULL")),
        *_created(),
        sa.CheckConstraint("level IN ('city', 'district', 'street', 'community')", name="ck_jurisdictions_level"),
        sa.CheckConstraint("code ~ '^[0-9]{12}$'", name="ck_jurisdictions_code"),
    )
    op.create_index("ix_jurisdictions_geom", "jurisdictions", ["geom"], postgresql_using="gist")
    op.create_index("ix_jurisdictions_path", "jurisdictions", ["path"], postgresql_ops={"path": "text_pattern_ops"})

    op.create_table(
        "grid_plans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("jurisdiction_id", sa.Integer, sa.ForeignKey("jurisdictions.id", ondelete="RESTRICT"),
                  nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("name", sa.Text),
        _jsonb("params"),
        _jsonb("quality"),
        *_created(),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("published_by", sa.Text),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("jurisdiction_id", "version", name="uq_grid_plans_version"),
        sa.CheckConstraint("status IN ('draft', 'published', 'retired')", name="ck_grid_plans_status"),
    )
    op.create_index("uq_grid_plans_one_published", "grid_plans", ["jurisdiction_id"], unique=True,
                    postgresql_where=sa.text("status = 'published'"))

    op.create_table(
        "grids",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("grid_plans.id", ondelete="CASCADE"), nullable=False),
        sa.Column("code", sa.String(15), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False, server_default="1"),
        sa.Column("kind", sa.String(16), nullable=False, server_default="standard"),
        sa.Column("parent_code", sa.String(15)),
        sa.Column("population", sa.Integer, nullable=False, server_default="0"),
        sa.Column("households", sa.Integer, nullable=False, server_default="0"),
        sa.Column("community_id", sa.Integer, sa.ForeignKey("jurisdictions.id", ondelete="SET NULL")),
        sa.Column("community_code", sa.String(12)),
        _jsonb("flags", "'[]'::jsonb"),
        _geom("MULTIPOLYGON"),
        sa.UniqueConstraint("plan_id", "code", name="uq_grids_plan_code"),
        sa.CheckConstraint("kind IN ('standard', 'exclusive', 'rural')", name="ck_grids_kind"),
        sa.CheckConstraint("code ~ '^[0-9]{15}$'", name="ck_grids_code"),
    )
    op.create_index("ix_grids_geom", "grids", ["geom"], postgresql_using="gist")
    op.create_index("ix_grids_plan", "grids", ["plan_id"])

    for table, geom_kind, extra in (
        ("population_units", "GEOMETRY", [
            sa.Column("people", sa.Integer, nullable=False),
            sa.Column("households", sa.Integer),
            sa.Column("building", sa.Text),
            sa.Column("name", sa.Text),
            sa.CheckConstraint("people >= 0", name="ck_population_units_people"),
            sa.CheckConstraint("households IS NULL OR households >= 0", name="ck_population_units_households"),
        ]),
        ("streets", "MULTILINESTRING", [
            sa.Column("name", sa.Text),
            sa.Column("klass", sa.Text),
        ]),
        ("special_areas", "MULTIPOLYGON", [
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("kind", sa.Text),
        ]),
    ):
        id_type = sa.Integer if table == "special_areas" else sa.BigInteger
        op.create_table(
            table,
            sa.Column("id", id_type, primary_key=True),
            sa.Column("dataset", sa.Text, nullable=False),
            sa.Column("source_id", sa.Text, nullable=False),
            *extra,
            _jsonb("props"),
            _geom(geom_kind),
            sa.Column("load_id", sa.Integer, sa.ForeignKey("loads.id", ondelete="CASCADE"), nullable=False),
            sa.UniqueConstraint("dataset", "source_id", name=f"uq_{table}_source"),
        )
        op.create_index(f"ix_{table}_geom", table, ["geom"], postgresql_using="gist")

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("entity", sa.Text, nullable=False),
        sa.Column("entity_id", sa.Text),
        sa.Column("outcome", sa.String(16), nullable=False, server_default="ok"),
        sa.Column("jurisdiction_id", sa.Integer),
        sa.Column("request_id", sa.Text),
        _jsonb("detail"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id"])


def downgrade() -> None:
    for table in ("audit_log", "special_areas", "streets", "population_units", "grids", "grid_plans",
                  "jurisdictions", "loads"):
        op.drop_table(table)
