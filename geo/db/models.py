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
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SRID = 4326

JURISDICTION_LEVELS = ("city", "district", "street", "community")
PLAN_STATUSES = ("draft", "published", "retired")
GRID_KINDS = ("standard", "exclusive", "rural")
PLAN_KINDS = ("engine", "imported", "edited")
PUBLICATION_ACTIONS = ("publish", "rollback")


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
    # migration 0006: where the plan came from, the version it was edited from, the hand edits made
    kind: Mapped[str] = mapped_column(String(16), nullable=False, server_default="engine")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("grid_plans.id", ondelete="SET NULL"))
    edits: Mapped[list] = mapped_column(JSONB, nullable=False, server_default=text("'[]'::jsonb"))

    jurisdiction = relationship("Jurisdiction")
    __table_args__ = (
        UniqueConstraint("jurisdiction_id", "version", name="uq_grid_plans_version"),
        CheckConstraint(f"status IN {PLAN_STATUSES}", name="ck_grid_plans_status"),
        CheckConstraint(f"kind IN {PLAN_KINDS}", name="ck_grid_plans_kind"),
        Index("uq_grid_plans_one_published", "jurisdiction_id", unique=True,
              postgresql_where=text("status = 'published'")),
    )


class PlanPublication(Base):
    """One period a plan was in force: published (or rolled back to) at, retired at (migration 0010).

    ``grid_plans.published_at`` / ``retired_at`` describe only the latest period; a plan retired and
    re-published has one row per period here, and "in force at T" is read from this table.
    """

    __tablename__ = "plan_publications"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("grid_plans.id", ondelete="CASCADE"), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    published_by: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_by_plan_id: Mapped[int | None] = mapped_column(ForeignKey("grid_plans.id", ondelete="SET NULL"))
    __table_args__ = (
        CheckConstraint(f"action IN {PUBLICATION_ACTIONS}", name="ck_plan_publications_action"),
        Index("ix_plan_publications_plan", "plan_id"),
        Index("ix_plan_publications_period", "published_at", "retired_at"),
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
    props: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))  # 0006
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
    address: Mapped[str | None] = mapped_column(Text, doc="标准地址 text (社区/小区/路/号/楼栋/单元), migration 0007")
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


# --------------------------------------------------------------------------- service (migration 0002)

ROLES = ("admin", "planner", "dispatcher", "worker", "leader")
WORKER_ROLES = ("chief", "full_time", "auxiliary", "part_time")
EVENT_STATES = ("reported", "accepted", "dispatched", "in_progress", "resolved", "closed", "returned", "rejected")


class User(Base):
    """A person who logs in (OAuth2 password flow), scoped to a jurisdiction subtree."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(Text, unique=True, nullable=False)
    full_name: Mapped[str | None] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    jurisdiction_id: Mapped[int] = mapped_column(ForeignKey("jurisdictions.id", ondelete="RESTRICT"), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_at: Mapped[datetime] = _now()
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    #: incremented on password change or disable: tokens issued for an older version are refused (0005)
    token_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    __table_args__ = (CheckConstraint(f"role IN {ROLES}", name="ck_users_role"),)


class LoginAttempt(Base):
    """Failed-login counter of one (username, client), shared by every API process (migration 0005)."""

    __tablename__ = "login_attempts"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    window_start: Mapped[datetime] = _now()
    strikes: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = _now()
    __table_args__ = (Index("ix_login_attempts_updated", "updated_at"),)


class ApiKey(Base):
    """A key for a device or integration (12345 hotline, sensors); only its SHA-256 is stored."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    prefix: Mapped[str] = mapped_column(String(12), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    jurisdiction_id: Mapped[int] = mapped_column(ForeignKey("jurisdictions.id", ondelete="RESTRICT"), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_at: Mapped[datetime] = _now()
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    __table_args__ = (CheckConstraint(f"role IN {ROLES}", name="ck_api_keys_role"),)


class Worker(Base):
    """Grid staff: chief (网格长), full-time worker (专职网格员), auxiliary, part-time pre-assigned (下沉干部)."""

    __tablename__ = "workers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    phone: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    jurisdiction_id: Mapped[int] = mapped_column(ForeignKey("jurisdictions.id", ondelete="RESTRICT"), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    on_duty: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    duty_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    synthetic: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    created_at: Mapped[datetime] = _now()
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    __table_args__ = (CheckConstraint(f"role IN {WORKER_ROLES}", name="ck_workers_role"),)


class WorkerGrid(Base):
    """Which grids (by stable 15-digit code) a worker serves."""

    __tablename__ = "worker_grids"
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id", ondelete="CASCADE"), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(15), primary_key=True)
    __table_args__ = (Index("ix_worker_grids_code", "grid_code"),)


class WorkerPosition(Base):
    """A GPS fix. (worker_id, ts) is unique, which makes re-sent batches idempotent."""

    __tablename__ = "worker_positions"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id", ondelete="CASCADE"), nullable=False)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    accuracy_m: Mapped[float | None] = mapped_column()
    grid_code: Mapped[str | None] = mapped_column(String(15))
    outside_own_grids: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    received_at: Mapped[datetime] = _now()
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False), nullable=False)
    __table_args__ = (
        UniqueConstraint("worker_id", "ts", name="uq_worker_positions_fix"),
        Index("ix_worker_positions_geom", "geom", postgresql_using="gist"),
    )


class Event(Base):
    """An event (人/房/企/部件/事件) in the closed loop 上报→受理→分流→调处→督办→反馈.

    Partitioned by month of ``created_at`` (migration 0009, :mod:`geo.db.event_partitions`): the primary key is
    ``(id, created_at)``, and the idempotency key's uniqueness lives in :class:`EventIdempotencyKey`.
    """

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(Text, nullable=False)
    subtype: Mapped[str] = mapped_column(Text, nullable=False)
    priority: Mapped[str] = mapped_column(String(16), nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, server_default="reported")
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    address: Mapped[str | None] = mapped_column(Text)
    reporter_name: Mapped[str | None] = mapped_column(Text)
    reporter_phone: Mapped[str | None] = mapped_column(Text)
    anonymous: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    grid_code: Mapped[str | None] = mapped_column(String(15))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("grid_plans.id", ondelete="SET NULL"))
    jurisdiction_id: Mapped[int | None] = mapped_column(ForeignKey("jurisdictions.id", ondelete="SET NULL"))
    jurisdiction_path: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(Text)
    assignee_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"))
    duplicate_of: Mapped[list] = mapped_column(JSONB, nullable=False, server_default=text("'[]'::jsonb"))
    h3_7: Mapped[int] = mapped_column(BigInteger, nullable=False)
    h3_8: Mapped[int] = mapped_column(BigInteger, nullable=False)
    h3_9: Mapped[int] = mapped_column(BigInteger, nullable=False)
    h3_10: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 primary_key=True, doc="the partition key (monthly, Beijing time)")
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = _now()
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger)
    synthetic: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False), nullable=False)
    reopen_count: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0",
                                              doc="times reopened after 办结/结案 (返工), migration 0007")
    __table_args__ = (
        CheckConstraint(f"state IN {EVENT_STATES}", name="ck_events_state"),
        CheckConstraint("satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5", name="ck_events_satisfaction"),
        Index("ix_events_geom", "geom", postgresql_using="gist"),
        Index("ix_events_created", "created_at"),
        Index("ix_events_path", "jurisdiction_path", postgresql_ops={"jurisdiction_path": "text_pattern_ops"}),
        Index("ix_events_grid", "grid_code"),
        Index("ix_events_open", "category", "created_at", postgresql_where=text("state NOT IN ('closed', 'rejected')")),
        Index("ix_events_resolved", "resolved_at", postgresql_where=text("resolved_at IS NOT NULL")),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )


def _event_fk(table: str, ondelete: str) -> ForeignKeyConstraint:
    """The composite foreign key of a table that points at an event (migration 0009)."""
    return ForeignKeyConstraint(["event_id", "event_created_at"], ["events.id", "events.created_at"],
                                name=f"fk_{table}_event", ondelete=ondelete, onupdate="CASCADE")


def _event_created_at():
    return mapped_column(DateTime(timezone=True), nullable=False,
                         doc="the event's created_at (its partition); a trigger fills it from event_id when omitted")


class EventIdempotencyKey(Base):
    """An ``Idempotency-Key`` and the one event it created: unique across every month of ``events``."""

    __tablename__ = "event_idempotency_keys"
    idempotency_key: Mapped[str] = mapped_column(Text, primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event_created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    __table_args__ = (_event_fk("event_idempotency_keys", "CASCADE"),
                      Index("ix_event_idempotency_keys_event", "event_id", "event_created_at"))


class EventTransition(Base):
    """One step of an event's life: who moved it from which state to which, when, and why."""

    __tablename__ = "event_transitions"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event_created_at: Mapped[datetime] = _event_created_at()
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16), nullable=False)
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    at: Mapped[datetime] = _now()
    note: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_event_transitions_event", "event_id"), _event_fk("event_transitions", "CASCADE"))


class PartitionJob(Base):
    """A partition run requested through the API, run by a ``geo worker`` off the procrastinate queue
    (``queue_job_id``); its state, progress and attempts are polled here."""

    __tablename__ = "partition_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    jurisdiction_id: Mapped[int] = mapped_column(ForeignKey("jurisdictions.id", ondelete="CASCADE"), nullable=False)
    params: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    state: Mapped[str] = mapped_column(String(16), nullable=False, server_default="queued")
    progress: Mapped[float] = mapped_column(nullable=False, server_default="0")
    stage: Mapped[str | None] = mapped_column(Text)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("grid_plans.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    queue_job_id: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_by: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (CheckConstraint("state IN ('queued', 'running', 'done', 'failed', 'cancelled')",
                                      name="ck_partition_jobs_state"),)


# --------------------------------------------------------------------------- dispatch (migration 0007)

APPEAL_TYPES = ("咨询", "求助", "投诉", "建议")
CALENDAR_KINDS = ("holiday", "makeup_workday", "workday", "weekend")


class WorkOrder(Base):
    """A 12345 hotline work order (工单); several orders may share one event (并单)."""

    __tablename__ = "work_orders"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_no: Mapped[str] = mapped_column(Text, unique=True, nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    called_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    appeal_type: Mapped[str] = mapped_column(String(8), nullable=False)
    category: Mapped[str] = mapped_column(Text, nullable=False)
    subtype: Mapped[str] = mapped_column(Text, nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    address: Mapped[str | None] = mapped_column(Text)
    caller_name: Mapped[str | None] = mapped_column(Text)
    caller_phone: Mapped[str | None] = mapped_column(Text)
    event_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event_created_at: Mapped[datetime] = _event_created_at()
    merged: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    jurisdiction_path: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _now()
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = _now()
    callback_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    callback_by: Mapped[str | None] = mapped_column(Text)
    callback_satisfaction: Mapped[int | None] = mapped_column(SmallInteger)
    callback_reached: Mapped[bool | None] = mapped_column(Boolean)
    callback_note: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False), nullable=False)
    #: the API key that took the order in (its hotline webhook hears of the order's changes; migration 0011)
    intake_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    __table_args__ = (
        CheckConstraint(f"appeal_type IN {APPEAL_TYPES}", name="ck_work_orders_appeal_type"),
        CheckConstraint("callback_satisfaction IS NULL OR callback_satisfaction BETWEEN 1 AND 5",
                        name="ck_work_orders_satisfaction"),
        Index("ix_work_orders_event", "event_id"),
        Index("ix_work_orders_updated", "updated_at"),
        Index("ix_work_orders_geom", "geom", postgresql_using="gist"),
        _event_fk("work_orders", "RESTRICT"),
    )


class EventSupervision(Base):
    """One 督办 of an overdue or disputed event; each further one escalates a level (社区 → 街道 → 区)."""

    __tablename__ = "event_supervisions"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event_created_at: Mapped[datetime] = _event_created_at()
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    jurisdiction_id: Mapped[int | None] = mapped_column(ForeignKey("jurisdictions.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    at: Mapped[datetime] = _now()
    __table_args__ = (
        CheckConstraint("kind IN ('overdue', 'disputed')", name="ck_event_supervisions_kind"),
        CheckConstraint("level BETWEEN 1 AND 3", name="ck_event_supervisions_level"),
        Index("ix_event_supervisions_event", "event_id"),
        _event_fk("event_supervisions", "CASCADE"),
    )


class WorkCalendarDay(Base):
    """A day that departs from the weekday rule: a public holiday or a make-up workday (调休上班)."""

    __tablename__ = "work_calendar"
    day: Mapped[datetime] = mapped_column(Date, primary_key=True)
    workday: Mapped[bool] = mapped_column(Boolean, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = _now()
    updated_by: Mapped[str] = mapped_column(Text, nullable=False)
    __table_args__ = (CheckConstraint(f"kind IN {CALENDAR_KINDS}", name="ck_work_calendar_kind"),)


class EmergencyMode(Base):
    """平急转换: an emergency period of a jurisdiction, switched on and off by a leader."""

    __tablename__ = "emergency_modes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    jurisdiction_id: Mapped[int] = mapped_column(ForeignKey("jurisdictions.id", ondelete="CASCADE"), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    started_at: Mapped[datetime] = _now()
    started_by: Mapped[str] = mapped_column(Text, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_by: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    __table_args__ = (
        Index("uq_emergency_modes_active", "jurisdiction_id", unique=True, postgresql_where=text("ended_at IS NULL")),
    )


# --------------------------------------------------------------------------- hotline webhooks (migration 0011)

DELIVERY_STATES = ("pending", "delivered", "failed", "cancelled")


class HotlineWebhook(Base):
    """The callback URL and signing secret of a hotline API key: status changes of the work orders it took in
    are POSTed there (see :mod:`geo.jobs.hotline`)."""

    __tablename__ = "hotline_webhooks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="RESTRICT"), nullable=False,
                                            unique=True)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    secret: Mapped[str] = mapped_column(Text, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_at: Mapped[datetime] = _now()
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = _now()
    updated_by: Mapped[str] = mapped_column(Text, nullable=False)


class HotlineDelivery(Base):
    """One status change of a work order for one webhook: its signed JSON body, and every attempt to POST it."""

    __tablename__ = "hotline_deliveries"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(UUID(as_uuid=False), nullable=False, unique=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("hotline_webhooks.id", ondelete="RESTRICT"), nullable=False)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), nullable=False)
    order_no: Mapped[str] = mapped_column(Text, nullable=False)
    jurisdiction_path: Mapped[str] = mapped_column(Text, nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    payload: Mapped[dict] = mapped_column(JSONB, nullable=False)
    state: Mapped[str] = mapped_column(String(12), nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    history: Mapped[list] = mapped_column(JSONB, nullable=False, server_default=text("'[]'::jsonb"))
    queue_job_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint(f"state IN {DELIVERY_STATES}", name="ck_hotline_deliveries_state"),
        UniqueConstraint("webhook_id", "work_order_id", "seq", name="uq_hotline_deliveries_seq"),
        Index("ix_hotline_deliveries_order", "order_no"),
        Index("ix_hotline_deliveries_created", "created_at"),
    )
