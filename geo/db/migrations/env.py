"""Alembic environment: the URL comes from geo settings (or the caller's config)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from geo.db.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from geo.db.cluster import database_url

    return database_url()


def include_object(obj, name, type_, reflected, compare_to):
    # PostGIS' own tables (spatial_ref_sys, topology …) are not ours.
    if type_ == "table" and reflected and compare_to is None:
        return False
    return True


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          include_object=include_object, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
