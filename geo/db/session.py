"""Engines and sessions. One engine per URL per process."""

from __future__ import annotations

import getpass
import os
import threading

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

_ENGINES: dict[tuple[str, int], Engine] = {}
_LOCK = threading.Lock()


def get_engine(url: str | None = None, pool_size: int = 5) -> Engine:
    """The engine for *url* (default: the configured database), created once per process."""
    if url is None:
        from geo.db.cluster import database_url

        url = database_url()
    key = (url, pool_size)
    with _LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                                          pool_pre_ping=True, pool_recycle=1800)
        return _ENGINES[key]


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


def dispose_engines() -> None:
    """Close every pooled connection (tests, forks)."""
    with _LOCK:
        for e in _ENGINES.values():
            e.dispose()
        _ENGINES.clear()


def cli_actor() -> str:
    """Who is writing from the command line: ``GEO_ACTOR`` or ``cli:<os user>``."""
    return os.environ.get("GEO_ACTOR") or f"cli:{getpass.getuser()}"


def psycopg_dsn(url: str) -> str:
    """A libpq DSN from a SQLAlchemy URL."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)
