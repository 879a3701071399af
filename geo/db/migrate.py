"""Run Alembic migrations programmatically (``geo db migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at our migrations and *url* (default: settings)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is None:
        from geo.db.cluster import database_url

        url = database_url()
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Apply Alembic migrations up to *revision*; at head also the job queue's schema (procrastinate) and the
    events partitions' maintenance (months made ahead, see :mod:`geo.db.event_partitions`)."""
    cfg = alembic_config(url)
    command.upgrade(cfg, revision)
    if revision == "head":
        from geo.jobs.queue import ensure_schema

        ensure_schema(cfg.get_main_option("sqlalchemy.url"))
        _maintain_partitions(cfg.get_main_option("sqlalchemy.url"))


def _maintain_partitions(url: str) -> None:
    from geo.config import get_settings
    from geo.db import event_partitions

    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            if not event_partitions.is_partitioned(conn):
                return
        event_partitions.maintain(engine, premake=get_settings().events_premake_months)  # retention: the worker's
    finally:
        engine.dispose()


def downgrade(url: str | None = None, revision: str = "base") -> None:
    """Revert Alembic migrations down to *revision*; at base the job queue's schema goes too."""
    cfg = alembic_config(url)
    command.downgrade(cfg, revision)
    if revision == "base":
        from geo.jobs.queue import drop_schema

        engine = create_engine(cfg.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
        try:
            drop_schema(engine)
        finally:
            engine.dispose()


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("postgresql+psycopg://unused")).get_current_head()


def current_revision(url: str | None = None) -> str | None:
    if url is None:
        from geo.db.cluster import database_url

        url = database_url()
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
