"""SQLAlchemy 2 models of the geo schema (PostGIS, SRID 4326 everywhere).

The schema itself is created by the Alembic migrations in
``geo/db/migrations``; these classes describe it for the ORM and are checked
against the migrated database in the tests.
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SRID = 4326

JURISDICTION_LEVELS = ("city", "district", "street", "community")
PLAN_STATUSES = ("draft", "published", "retired")
GRID_KINDS = ("standard", "exclusive", "rural")


class Base(DeclarativeBase):
    pass


def _now():
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Jurisdiction(Base):
    """An administrative unit: city › district › street/town › community/village."""

    __tablename__ = "jurisdictions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    level: Mapped[str] = mapped_column(String(16), nullable=False)
    urban: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("jurisdictions.id", ondelete="RESTRICT"))
    path: Mapped[str] = mapped_column(Text, nullable=False, server_default="/",
                                      doc="'/1/5/23/': ancestor ids and own id, for subtree queries")
    props: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False), nullable=False)
    load_id: Mapped[int | None] = mapped_column(ForeignKey("loads.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _now()
    created_by: Mapped[str] = mapped_column(Text, nullable=False)

    parent = relationship("Jurisdiction", remote_side=[id])
    __table_args__ = (
        CheckConstraint(f"level IN {JURISDICTION_LEVELS}", name="ck_jurisdictions_level"),
        CheckConstraint("code ~ '^[0-9]{12}$'", name="ck_jurisdictions_code"),
        Index("ix_jurisdictions_geom", "geom", postgresql_using="gist"),
        Index("ix_jurisdictions_path", "path", postgresql_ops={"path": "text_pattern_ops"}),
    )


class Load(Base):
    """One `geo load` run: what was read, by whom, and its load report."""

    __tablename__ = "loads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    dataset: Mapped[str] = mapped_column(Text, nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    source_crs: Mapped[str | None] = mapped_column(Text)
    rows_read: Mapped[int] = mapped_column(Integer, nullable=False)
    rows_loaded: Mapped[int] = mapped_column(Integer, nullable=False)
    report: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = _now()
    created_by: Mapped[str] = mapped_column(Text, nullable=False)


class GridPlan(Base):
    """A versioned grid plan of one jurisdiction (draft → published → retired)."""

    __tablename__ = "grid_plans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    jurisdiction_id: Mapped[int] = mapped_column(ForeignKey("jurisdictions.id", ondelete="RESTRICT"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="draft")
    name: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    quality: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = _now()
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_by: Mapped[str | None] = mapped_column(Text)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    jurisdiction = relationship("Jurisdiction")
    __table_args__ = (
        UniqueConstraint("jurisdiction_id", "version", name="uq_grid_plans_version"),
        CheckConstraint(f"status IN {PLAN_STATUSES}", name="ck_grid_plans_status"),
        Index("uq_grid_plans_one_published", "jurisdiction_id", unique=True,
              postgresql_where=text("status = 'published'")),
    )


class Grid(Base):
    """One grid (网格) of a plan."""

    __tablename__ = "grids"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("grid_plans.id", ondelete="CASCADE"), nullable=False)
    code: Mapped[str] = mapped_column(String(15), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="1")
    kind: Mapped[str] = mapped_column(String(16), nullable=False, server_default="standard")
    parent_code: Mapped[str | None] = mapped_column(String(15))
    population: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    households: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    community_id: Mapped[int | None] = mapped_column(ForeignKey("jurisdictions.id", ondelete="SET NULL"))
    community_code: Mapped[str | None] = mapped_column(String(12))
    flags: Mapped[list] = mapped_column(JSONB, nullable=False, server_default=text("'[]'::jsonb"))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False), nullable=False)

    plan = relationship("GridPlan")
    __table_args__ = (
        UniqueConstraint("plan_id", "code", name="uq_grids_plan_code"),
        CheckConstraint(f"kind IN {GRID_KINDS}", name="ck_grids_kind"),
        CheckConstraint("code ~ '^[0-9]{15}$'", name="ck_grids_code"),
        Index("ix_grids_geom", "geom", postgresql_using="gist"),
        Index("ix_grids_plan", "plan_id"),
    )


class PopulationUnit(Base):
    """A census polygon or an address point (楼栋) with people and households."""

    __tablename__ = "population_units"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset: Mapped[str] = mapped_column(Text, nullable=False)
    source_id: Mapped[str] = mapped_column(Text, nullable=False)
    people: Mapped[int] = mapped_column(Integer, nullable=False)
    households: Mapped[int | None] = mapped_column(Integer)
    building: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    props: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    geom = mapped_column(Geometry("GEOMETRY", srid=SRID, spatial_index=False), nullable=False)
    load_id: Mapped[int] = mapped_column(ForeignKey("loads.id", ondelete="CASCADE"), nullable=False)
    __table_args__ = (
        UniqueConstraint("dataset", "source_id", name="uq_population_units_source"),
        CheckConstraint("people >= 0", name="ck_population_units_people"),
        CheckConstraint("households IS NULL OR households >= 0", name="ck_population_units_households"),
        Index("ix_population_units_geom", "geom", postgresql_using="gist"),
    )


class Street(Base):
    """A street centerline (OSM way, survey line, estate road …)."""

    __tablename__ = "streets"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset: Mapped[str] = mapped_column(Text, nullable=False)
    source_id: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    klass: Mapped[str | None] = mapped_column(Text)
    props: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    geom = mapped_column(Geometry("MULTILINESTRING", srid=SRID, spatial_index=False), nullable=False)
    load_id: Mapped[int] = mapped_column(ForeignKey("loads.id", ondelete="CASCADE"), nullable=False)
    __table_args__ = (
        UniqueConstraint("dataset", "source_id", name="uq_streets_source"),
        Index("ix_streets_geom", "geom", postgresql_using="gist"),
    )


class SpecialArea(Base):
    """A special unit (school, hospital, industrial park, market …) that gets an exclusive grid."""

    __tablename__ = "special_areas"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset: Mapped[str] = mapped_column(Text, nullable=False)
    source_id: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str | None] = mapped_column(Text)
    props: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False), nullable=False)
    load_id: Mapped[int] = mapped_column(ForeignKey("loads.id", ondelete="CASCADE"), nullable=False)
    __table_args__ = (
        UniqueConstraint("dataset", "source_id", name="uq_special_areas_source"),
        Index("ix_special_areas_geom", "geom", postgresql_using="gist"),
    )


class AuditLog(Base):
    """Every write: who, when, what, and whether it was allowed."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = _now()
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    entity: Mapped[str] = mapped_column(Text, nullable=False)
    entity_id: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False, server_default="ok")
    jurisdiction_id: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_entity", "entity", "entity_id"),
    )
